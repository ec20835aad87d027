"""Dataset registry: mirror first, then cache, then a verified download (file:// URLs, offline)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from dltk.data import RemoteFile, fetch
from dltk.errors import ChecksumError, DataError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    mirror, cache, remote = tmp_path / "mirror", tmp_path / "cache", tmp_path / "remote"
    for d in (mirror, cache, remote):
        d.mkdir()
    monkeypatch.setenv("DLTK_DATA_DIR", str(mirror))
    monkeypatch.setenv("DLTK_CACHE", str(cache))
    return mirror, cache, remote


def test_mirror_is_consulted_first_and_verified(dirs: tuple[Path, Path, Path]) -> None:
    mirror, cache, remote = dirs
    data = b"c1ccccc1\tX1\t1\n"
    (mirror / "chem").mkdir()
    (mirror / "chem" / "a.smiles").write_bytes(data)
    rf = RemoteFile("chem/a.smiles", (remote / "missing").as_uri(), _sha(data))
    assert fetch(rf) == mirror / "chem" / "a.smiles"
    bad = RemoteFile("chem/a.smiles", (remote / "missing").as_uri(), _sha(b"other"))
    with pytest.raises(ChecksumError, match="a.smiles.*sha256 mismatch"):
        fetch(bad)


def test_download_into_cache_then_cache_hit(dirs: tuple[Path, Path, Path]) -> None:
    _, cache, remote = dirs
    data = b"smiles,y\nCCO,1\n"
    (remote / "b.csv").write_bytes(data)
    rf = RemoteFile("chem/b.csv", (remote / "b.csv").as_uri(), _sha(data))
    path = fetch(rf)
    assert path == cache / "chem" / "b.csv" and path.read_bytes() == data
    (remote / "b.csv").unlink()  # second call must not download again
    assert fetch(rf) == path


def test_checksum_mismatch_leaves_nothing_in_cache(dirs: tuple[Path, Path, Path]) -> None:
    _, cache, remote = dirs
    (remote / "c.csv").write_bytes(b"tampered")
    rf = RemoteFile("chem/c.csv", (remote / "c.csv").as_uri(), _sha(b"original"))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch(rf)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_zip_member_is_extracted_and_verified(dirs: tuple[Path, Path, Path]) -> None:
    _, cache, remote = dirs
    member = b"$$$$\n" * 3
    with zipfile.ZipFile(remote / "d.zip", "w") as zf:
        zf.writestr("sub/d.sdf", member)
    rf = RemoteFile("chem/d.sdf", (remote / "d.zip").as_uri(), _sha(member), member="d.sdf")
    assert fetch(rf).read_bytes() == member


def test_unreachable_download_names_the_file(dirs: tuple[Path, Path, Path]) -> None:
    _, _, remote = dirs
    rf = RemoteFile("chem/e.csv", (remote / "nope.csv").as_uri(), _sha(b""))
    with pytest.raises(DataError, match="chem/e.csv.*DLTK_DATA_DIR"):
        fetch(rf)
