"""The video plugin's declaration: light (imports only dltk.plugin), read by `dltk plugins`."""

from __future__ import annotations

from dltk.plugin import BenchmarkSpec, PluginSpec, Reference, Requirement, TaskSpec

_STURMAN = ("Sturman et al. 2020, Neuropsychopharmacology 45:1942 ('Deep learning-based behavioral analysis "
            "reaches human accuracy'); pairwise frame F1 between its three annotators measured on these two "
            "sessions (MANIFEST)")
_ETHOME = ("Lansdell, ethome (GitHub benlansdell/ethome, tests/data); human F1 between four annotations of "
           "this video and the one-feature baseline as documented in the data MANIFEST")

STURMAN_REFERENCES = (
    Reference("human (min)", _STURMAN, "f1", {"Supported": 0.85, "mean": 0.85}),
    Reference("human (max)", _STURMAN, "f1", {"Supported": 0.94, "mean": 0.94}),
    Reference("target", "issue 6 (Supported-rearing frame F1 on a held-out video)", "f1",
              {"Supported": 0.80, "mean": 0.80}),
)
ETHOME_REFERENCES = (
    Reference("human (min)", _ETHOME, "f1", {"interact": 0.77, "mean": 0.77}),
    Reference("human (max)", _ETHOME, "f1", {"interact": 0.87, "mean": 0.87}),
    Reference("one-feature threshold", _ETHOME + " (adult nose to nearest juvenile point < 100 px, tuned on "
              "the same data)", "f1", {"interact": 0.79, "mean": 0.79}),
)

_SELECTION = ("Hyper-parameters (window, features, architecture, width, learning rate, epochs) were chosen on the "
              "validation frames only; the epoch by early stopping on validation F1. See docs/video.md.")

BENCHMARKS = (
    BenchmarkSpec(
        "sturman_oft", "Sturman OFT rearing: Supported-rearing frame F1 on the held-out session 12_01",
        task="pose_behavior", metric="f1/Supported", higher_is_better=True,
        references=(Reference("human (min)", _STURMAN, "f1/Supported", {"mean": 0.85}),
                    Reference("human (max)", _STURMAN, "f1/Supported", {"mean": 0.94})),
        protocol="Train on session 8_01 (frames 0-1498), validate on its last 25% (frames 1499-1997, "
                 "contiguous), test on the whole held-out session 12_01 (1,998 frames, 25 fps). Target: "
                 "annotator Oliver (highest mean agreement with the other two); Grooming frames and frames "
                 "where one annotator's Supported and Unsupported bouts overlap are unlabelled. Frame F1 of "
                 "Supported vs every other frame. Seeds vary the model initialisation and batch order. "
                 + _SELECTION),
    BenchmarkSpec(
        "ethome_social", "ethome social interaction: interact frame F1 on held-out 10-s time blocks",
        task="ethome_social", metric="f1/interact", higher_is_better=True, seeds=4, seed_split=True,
        references=(Reference("human (min)", _ETHOME, "f1/interact", {"mean": 0.77}),
                    Reference("human (max)", _ETHOME, "f1/interact", {"mean": 0.87}),
                    Reference("one-feature threshold", _ETHOME, "f1/interact", {"mean": 0.79})),
        protocol="One 5,700-frame video (30 fps, 10 interact bouts) cut into 19 contiguous blocks of 300 frames; "
                 "4-fold cross-validation over time: seed s holds out fold f = s % 4 (blocks k % 4 == f as test, "
                 "k % 4 == (f + 2) % 4 as validation, the rest training), so 4 seeds test every frame once. "
                 "Frame F1 of interact on the test blocks, each frame predicted once; every run also reports "
                 "the one-feature baseline (adult nose to nearest juvenile point < threshold, the threshold "
                 "tuned on that fold's training + validation frames) on the same test frames. "
                 + _SELECTION),
)

plugin = PluginSpec(
    name="video",
    summary="Animal behaviour per frame from pose tracks (DeepLabCut, SLEAP) or raw video, recurrent networks.",
    package="dltk_video",
    tasks=(
        TaskSpec("pose_behavior", "Sturman OFT rearing (Supported / Unsupported) per frame from DeepLabCut "
                 "tracks, BiGRU over egocentric features, held-out session", "configs/sturman_oft.yaml",
                 STURMAN_REFERENCES, space={
                 "model.hidden_dim": {"type": "int", "low": 16, "high": 256, "log": True},
                 "model.num_layers": {"type": "int", "low": 1, "high": 3},
                 "model.dropout": {"type": "float", "low": 0.0, "high": 0.6},
                 "model.lr": {"type": "float", "low": 3.0e-4, "high": 1.0e-2, "log": True},
                 "data.window": {"type": "categorical", "choices": [32, 64, 128]}}),
        TaskSpec("ethome_social", "ethome adult-juvenile social interaction per frame (multi-animal DeepLabCut, "
                 "BORIS labels), held-out time blocks", "configs/ethome_social.yaml", ETHOME_REFERENCES),
        TaskSpec("pose_files", "your own DeepLabCut/SLEAP tracks + BORIS or bout-table annotations: --data.pose GLOB "
                 "--data.labels GLOB --data.behaviors a,b --data.fps F", "configs/pose_files.yaml"),
        TaskSpec("video_behavior", "per-frame behaviour from raw video: frozen timm encoder per frame (PyAV, "
                 "streamed, cached) + BiGRU; --data.videos GLOB --data.behaviors a,b (preset: synthetic clips)",
                 "configs/video_behavior.yaml"),
        TaskSpec("pose_estimation", "keypoints (snout, ears, tail base) from frames: timm backbone + heatmaps on the "
                 "116 labelled DeepLabCut open-field frames; predict writes a DeepLabCut CSV for a video",
                 "configs/pose_estimation.yaml"),
    ),
    datamodules={
        "sturman_oft": "dltk_video.datamodules:SturmanOFTDataModule",
        "ethome_social": "dltk_video.datamodules:EthomeSocialDataModule",
        "pose_files": "dltk_video.datamodules:PoseFilesDataModule",
        "video_behavior": "dltk_video.video_datamodules:VideoBehaviorDataModule",
        "dlc_openfield_frames": "dltk_video.pose_estimation:DLCFramesDataModule",
    },
    models={"pose_sequence": "dltk_video.models:PoseSequenceClassifier",
            "keypoint_heatmap": "dltk_video.pose_estimation:KeypointHeatmapNet"},
    requires=(Requirement("av"), Requirement("timm"), Requirement("torchvision")),
    install_hint="pip install 'dltk[video]'",
    benchmarks=BENCHMARKS,
)
