"""Pose and annotation readers against the real files' documented counts (data MANIFEST, video
section) and against small files written here in each supported layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from dltk.errors import DataError
from dltk_video import datasets
from dltk_video.readers import (
    Bout,
    bouts_to_frames,
    clean_track,
    frames_to_bouts,
    read_annotations,
    read_boris,
    read_bout_table,
    read_dlc_csv,
    read_pose,
    read_sleap_h5,
)

# frames per class in the tracked window (Supported, Unsupported), MANIFEST
STURMAN_COUNTS = {"12_01": {"Oliver": (351, 44), "Jin": (304, 20), "Furkan": (284, 22)},
                  "8_01": {"Oliver": (446, 112), "Jin": (435, 148), "Furkan": (380, 105)}}


# -- real files ----------------------------------------------------------------------------------
def test_sturman_pandas_resaved_dlc(data_root: Path) -> None:
    track = read_dlc_csv(data_root / datasets.FILES["sturman/12_01/pose"].relpath)
    assert track.coords.shape == (1998, 1, 18, 2)
    assert track.bodyparts[:5] == ["tl", "tr", "bl", "br", "centre"]
    assert track.bodyparts[5:] == list(datasets.STURMAN_MOUSE[:1]) + ["headcentre", "neck", "earl", "earr",
                                                                       "bodycentre", "bcl", "bcr", "hipl", "hipr",
                                                                       "tailbase", "tailcentre", "tailtip"]
    assert np.isfinite(track.coords).all()  # "No NaN"
    assert list(track.frames[:3]) == [0, 1, 2] and track.frames[-1] == 1997  # first data column = frame number
    # first data row: x, y, likelihood of tl (bit-exact float parse of the file's text)
    assert track.coords[0, 0, 0, 0] == np.float32(2.2573689222335815)
    assert track.likelihood[0, 0, 0] == np.float32(0.0061220526695251465)


def test_ethome_multi_animal_dlc(data_root: Path) -> None:
    track = read_dlc_csv(data_root / datasets.FILES["ethome/pose"].relpath)
    assert track.coords.shape == (5700, 2, 7, 2)
    assert track.individuals == ["adult", "juvenile"]
    assert track.bodyparts == list(datasets.ETHOME_BODYPARTS)
    assert track.coords[0, 0, 0].tolist() == [np.float32(606.248), np.float32(718.07)]
    assert track.coords[0, 1, 0].tolist() == [np.float32(279.401), np.float32(250.082)]


def test_labelled_frames_dlc(data_root: Path) -> None:
    track = read_dlc_csv(data_root / datasets.FILES["dlc_openfield/labels"].relpath)
    assert track.coords.shape == (116, 1, 4, 2)  # 116 labelled frames x 4 body parts
    assert track.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert track.index[0] == "labeled-data/m4s1/img0000.png"
    assert track.coords[0, 0, 0].tolist() == [np.float32(21.521), np.float32(265.428)]
    finite = np.isfinite(track.coords).all(-1)
    assert np.array_equal(track.likelihood == 1.0, finite)  # no likelihood column: 1 where labelled


def test_ethome_boris_673_of_5700(data_root: Path) -> None:
    bouts, fps = read_boris(data_root / datasets.FILES["ethome/labels"].relpath)
    assert fps == 30.0
    assert len(bouts) == 10 and {b.behavior for b in bouts} == {"interact"}
    assert bouts[0].start == pytest.approx(29.850) and bouts[0].stop == pytest.approx(34.725)
    labels, _ = bouts_to_frames(bouts, 5700, ["background", "interact"], fps=fps)
    assert int((labels == 1).sum()) == 673
    assert len(frames_to_bouts(labels)) == 10


@pytest.mark.parametrize("session", datasets.STURMAN_SESSIONS)
def test_sturman_frame_counts_per_annotator(data_root: Path, session: str) -> None:
    path = data_root / datasets.FILES[f"sturman/{session}/labels"].relpath
    per_annotator = datasets.sturman_bouts(path)
    assert sorted(per_annotator) == sorted(datasets.STURMAN_ANNOTATORS)
    for annotator, (n_sup, n_unsup) in STURMAN_COUNTS[session].items():
        counts = []
        for behavior in ("Supported", "Unsupported"):
            bouts = [b for b in per_annotator[annotator] if b.behavior == behavior]
            y, _c = bouts_to_frames(bouts, 1998, ["background", behavior], fps=25.0, past_end="clip")
            counts.append(int((y == 1).sum()))
        assert tuple(counts) == (n_sup, n_unsup), annotator


def test_sturman_session_labels(data_root: Path) -> None:
    s = datasets.load_sturman("12_01", "Oliver")
    y = s.target
    # overlapping Supported/Unsupported frames (3) and grooming frames (4) are unlabelled
    assert int(np.isnan(y).sum()) == 3 + 4
    assert int((y == 1).sum()) == 351 - 3 and int((y == 2).sum()) == 44 - 3 - 0


# -- written files ---------------------------------------------------------------------------------
def _dlc_frame(T: int = 5, multi: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    inds = ["a", "b"] if multi else [None]
    cols = []
    for ind in inds:
        for bp in ("nose", "tail"):
            for co in ("x", "y", "likelihood"):
                cols.append(("scorer1",) + ((ind,) if multi else ()) + (bp, co))
    names = ["scorer", "individuals", "bodyparts", "coords"] if multi else ["scorer", "bodyparts", "coords"]
    return pd.DataFrame(rng.uniform(0, 1, (T, len(cols))).round(6),
                        columns=pd.MultiIndex.from_tuples(cols, names=names))


def test_dlc_layouts_written_by_pandas(tmp_path: Path) -> None:
    single = _dlc_frame()
    single.to_csv(tmp_path / "single.csv")  # what DeepLabCut writes (index = frame number)
    track = read_dlc_csv(tmp_path / "single.csv")
    assert track.individuals == ["animal"] and track.bodyparts == ["nose", "tail"]
    assert np.array_equal(track.coords[:, 0, 1, 1], single[("scorer1", "tail", "y")].to_numpy(np.float32))
    assert np.array_equal(track.likelihood[:, 0, 0], single[("scorer1", "nose", "likelihood")].to_numpy(np.float32))
    # read flat and re-saved by pandas (as the Sturman files): ",scorer,..." then "0,bodyparts,..."
    pd.read_csv(tmp_path / "single.csv").to_csv(tmp_path / "resaved.csv")
    assert (tmp_path / "resaved.csv").read_text().startswith(",scorer,scorer1,scorer1.1")
    again = read_dlc_csv(tmp_path / "resaved.csv")
    assert np.array_equal(again.coords, track.coords) and np.array_equal(again.likelihood, track.likelihood)
    multi = _dlc_frame(multi=True)
    multi.to_csv(tmp_path / "multi.csv")
    m = read_dlc_csv(tmp_path / "multi.csv")
    assert m.individuals == ["a", "b"] and m.coords.shape == (5, 2, 2, 2)
    assert np.array_equal(m.coords[:, 1, 0, 0], multi[("scorer1", "b", "nose", "x")].to_numpy(np.float32))


def test_dlc_bad_files(tmp_path: Path) -> None:
    (tmp_path / "plain.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="scorer"):
        read_dlc_csv(tmp_path / "plain.csv")
    frame = _dlc_frame()
    frame.to_csv(tmp_path / "bad.csv")
    text = (tmp_path / "bad.csv").read_text().splitlines()
    cells = text[5].split(",")
    cells[2] = "oops"
    text[5] = ",".join(cells)
    (tmp_path / "bad.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"row 6.*'oops'") as err:
        read_dlc_csv(tmp_path / "bad.csv")
    assert err.value.field == "animal/nose/y"


def test_sleap_analysis_h5(tmp_path: Path) -> None:
    T, n_tracks, nodes = 6, 2, ["head", "thorax", "abdomen"]
    rng = np.random.default_rng(1)
    locations = rng.uniform(0, 100, (T, len(nodes), 2, n_tracks))  # SLEAP's documented (frames, nodes, 2, tracks)
    locations[2, 1, :, 0] = np.nan
    scores = rng.uniform(0, 1, (T, len(nodes), n_tracks))
    with h5py.File(tmp_path / "a.analysis.h5", "w") as f:
        f["tracks"] = locations.T  # stored transposed, as sleap-convert does
        f["point_scores"] = scores.T
        f["node_names"] = np.array([n.encode() for n in nodes])
        f["track_names"] = np.array([b"f1", b"f2"])
    track = read_pose(tmp_path / "a.analysis.h5")
    assert track.individuals == ["f1", "f2"] and track.bodyparts == nodes
    assert np.allclose(track.coords[3, 1, 2], locations[3, 2, :, 1])
    assert np.allclose(track.likelihood[4, 0, 1], scores[4, 1, 0])
    assert track.likelihood[2, 0, 1] == 0.0  # a missing node has no confidence
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(DataError, match="SLEAP"):
        read_sleap_h5(tmp_path / "b.h5")


def test_clean_masks_and_interpolates() -> None:
    from dltk_video.readers import PoseTrack

    coords = np.zeros((5, 1, 2, 2), np.float32)
    coords[:, 0, 0, 0] = [0, 10, 99, 30, 40]
    likelihood = np.ones((5, 1, 2), np.float32)
    likelihood[2, 0, 0] = 0.1
    likelihood[:, 0, 1] = 0.0  # a body part never seen
    track, report = clean_track(PoseTrack(coords, likelihood, ["m"], ["nose", "tail"], np.arange(5)), 0.5)
    assert track.coords[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40]
    assert report.masked == 1 + 5 and report.empty_parts == ["m/tail"]
    assert "skipped 1 body parts" in report.line("x")
    with pytest.raises(DataError, match="NaN-only"):
        clean_track(PoseTrack(np.full_like(coords, np.nan), likelihood, ["m"], ["nose", "tail"], np.arange(5)))


# -- bouts <-> frames ----------------------------------------------------------------------------
CLASSES = ["background", "walk", "rear"]


def test_bouts_to_frames_seconds_and_frames() -> None:
    bouts = [Bout(0.1, 0.3, "walk"), Bout(0.5, 0.5, "rear")]
    y, _ = bouts_to_frames(bouts, 10, CLASSES, fps=10)
    assert y.tolist() == [0, 1, 1, 1, 0, 2, 0, 0, 0, 0]  # round(t*fps) .. round(stop*fps), inclusive
    y2, _ = bouts_to_frames([Bout(1, 3, "walk"), Bout(5, 5, "rear")], 10, CLASSES, fps=None, unit="frames")
    assert np.array_equal(y, y2)
    assert frames_to_bouts(y) == [(1, 1, 3), (2, 5, 5)]


def test_bouts_errors_and_counted_skips() -> None:
    overlapping = [Bout(0.1, 0.4, "walk", row=2), Bout(0.3, 0.6, "rear", row=3)]
    with pytest.raises(DataError, match="row 3.*overlaps"):
        bouts_to_frames(overlapping, 10, CLASSES, fps=10)
    y, counts = bouts_to_frames(overlapping, 10, CLASSES, fps=10, overlap="ignore")
    assert counts["overlap_frames"] == 2 and np.isnan(y[3]) and np.isnan(y[4]) and y[1] == 1 and y[6] == 2
    with pytest.raises(DataError, match="runs past the video end"):
        bouts_to_frames([Bout(0.8, 1.5, "walk")], 10, CLASSES, fps=10)
    y, counts = bouts_to_frames([Bout(0.8, 1.5, "walk"), Bout(2.0, 2.5, "rear")], 10, CLASSES, fps=10,
                                past_end="clip")
    assert counts["past_end"] == 1 and y.tolist()[-2:] == [1, 1]
    with pytest.raises(DataError, match="fps is needed"):
        bouts_to_frames([Bout(0.1, 0.2, "walk")], 10, CLASSES, fps=None)
    with pytest.raises(DataError, match="'groom' is not one of"):
        bouts_to_frames([Bout(0.1, 0.2, "groom")], 10, CLASSES, fps=10)


def test_bout_table_and_boris_variants(tmp_path: Path) -> None:
    (tmp_path / "bouts.csv").write_text("start,stop,behavior\n0.1,0.3,walk\n0.5,0.5,rear\n")
    bouts, fps = read_annotations(tmp_path / "bouts.csv")
    assert fps is None and [(b.start, b.stop, b.behavior) for b in bouts] == [(0.1, 0.3, "walk"), (0.5, 0.5, "rear")]
    (tmp_path / "bad.csv").write_text("start,stop,behavior\n0.4,0.3,walk\n")
    with pytest.raises(DataError, match="row 2.*stops"):
        read_bout_table(tmp_path / "bad.csv")
    meta = "Observation id,x\n,\nMedia file(s),,\n"
    header = "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
    rows = "1.0,v.avi,10,30.0,m,walk,,,START\n2.0,v.avi,10,30.0,m,walk,,,STOP\n3.0,v.avi,10,30.0,m,sniff,,,POINT\n"
    (tmp_path / "boris.csv").write_text(meta + header + rows)
    bouts, fps = read_annotations(tmp_path / "boris.csv")
    assert fps == 30.0 and [(b.start, b.stop, b.behavior) for b in bouts] == [(1.0, 2.0, "walk")]
    (tmp_path / "fps.csv").write_text(meta + header + rows.replace("2.0,v.avi,10,30.0", "2.0,v.avi,10,25.0"))
    with pytest.raises(DataError, match="inconsistent FPS"):
        read_boris(tmp_path / "fps.csv")
    (tmp_path / "open.csv").write_text(meta + header + "1.0,v.avi,10,30.0,m,walk,,,START\n")
    with pytest.raises(DataError, match="never stops"):
        read_boris(tmp_path / "open.csv")
    agg = "Subject,Behavior,Start (s),Stop (s)\nm,walk,1.5,2.5\n"
    (tmp_path / "agg.csv").write_text(meta + agg)
    bouts, _ = read_annotations(tmp_path / "agg.csv")
    assert [(b.start, b.stop) for b in bouts] == [(1.5, 2.5)]
