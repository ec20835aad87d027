"""Raw video -> per-frame CNN embeddings, streamed: PyAV decoding in chunks, a frozen timm encoder,
features cached on disk.

Decoding (:func:`iter_frames`) yields fixed-size chunks of frames resized by FFmpeg's scaler, so
memory does not grow with video length; :func:`encode_video` writes each chunk's embeddings to a
raw file as it goes and turns it into a ``.npy`` at the end (written atomically, under the dltk
cache, keyed by the video's sha256 and the encoder settings), so a second run, or another model
on the same frames, reads the cache instead of decoding again.

The encoder is a timm backbone without its classifier (``num_classes=0``: pooled features). With
``pretrained=False`` its weights come from a fixed seed (``encoder_seed``), so prediction
rebuilds exactly the encoder the head was trained on; ``pretrained=True`` needs the weights in
the Hugging Face cache (no download happens offline).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from dltk.errors import DataError

log = logging.getLogger("dltk.video")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")


@dataclass(frozen=True)
class EncoderConfig:
    """Which frozen encoder turns frames into features (stored with the model).

    Args:
        name: timm model name (e.g. ``resnet18``, ``mobilenetv3_small_050``).
        image_size: frames are resized to ``image_size`` x ``image_size`` pixels.
        pretrained: load timm's pretrained weights (from the local Hugging Face cache).
        seed: seed of the random initialisation when not pretrained.
        gray: average the colour channels (grey recordings), repeated to 3 channels.
        pool: average-pool the last feature map to a ``pool`` x ``pool`` grid (1 = global pooling,
            timm's default; 2-4 keep where things are in the frame, which motion needs when the
            encoder is not pretrained).
    """

    name: str = "resnet18"
    image_size: int = 112
    pretrained: bool = False
    seed: int = 0
    gray: bool = False
    pool: int = 1


def video_info(path: str | Path) -> tuple[float, int]:
    """``(fps, frame count from the container, 0 if unknown)``; a DataError if it cannot be opened."""
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(path, "no video stream in the file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            return fps, int(stream.frames or 0)
    except av.error.FFmpegError as exc:
        raise DataError(path, f"cannot be decoded ({exc.strerror or exc})") from exc


def iter_frames(path: str | Path, size: int, chunk: int = 64, repeat: int = 1,
                height: int | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` into ``(n <= chunk, height or size, size, 3)`` uint8 RGB chunks (``repeat``:
    play the stream that many times, for memory tests on longer inputs). A file that cannot be
    decoded or has no frame is a DataError."""
    import av

    path = Path(path)
    height = height or size
    buffer = np.empty((chunk, height, size, 3), dtype=np.uint8)
    total = 0
    for _ in range(max(1, repeat)):
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise DataError(path, "no video stream in the file")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                n = 0
                for frame in container.decode(stream):
                    buffer[n] = frame.to_ndarray(format="rgb24", width=size, height=height)
                    n += 1
                    total += 1
                    if n == chunk:
                        yield buffer.copy()
                        n = 0
                if n:
                    yield buffer[:n].copy()
        except av.error.FFmpegError as exc:
            raise DataError(path, f"cannot be decoded ({exc.strerror or exc})") from exc
    if total == 0:
        raise DataError(path, "the video has no decodable frame")


def build_encoder(config: EncoderConfig):
    """The frozen timm encoder (eval mode, no gradients)."""
    import timm
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        try:
            model = timm.create_model(config.name, pretrained=config.pretrained, num_classes=0,
                                      global_pool="avg" if config.pool == 1 else "")
        except RuntimeError as exc:
            raise DataError(None, f"encoder {config.name!r}: {exc}") from exc
        except Exception as exc:  # offline without cached weights, unknown name
            raise DataError(None, f"encoder {config.name!r} could not be built ({type(exc).__name__}: {exc}); "
                            "with pretrained=true the weights must be in the local Hugging Face cache") from exc
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    data = timm.data.resolve_data_config({}, model=model)
    model.dltk_mean = torch.tensor(data["mean"]).view(1, 3, 1, 1)  # type: ignore[attr-defined]
    model.dltk_std = torch.tensor(data["std"]).view(1, 3, 1, 1)  # type: ignore[attr-defined]
    return model


def encode_frames(model, frames: np.ndarray, gray: bool = False, device=None,
                  pool: int = 1) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 -> ``(n, D)`` float32 embeddings."""
    import torch

    device = device or torch.device("cpu")
    x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if gray:
        x = x.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    x = (x - model.dltk_mean.to(device)) / model.dltk_std.to(device)
    with torch.inference_mode():
        out = model(x)
        if out.ndim == 4:  # (n, C, h, w) without global pooling: a pool x pool grid
            out = torch.nn.functional.adaptive_avg_pool2d(out, pool).flatten(1)
        return out.float().cpu().numpy()


def _cache_key(path: Path, config: EncoderConfig) -> str:
    from dltk.data.registry import sha256_file

    text = json.dumps({"sha256": sha256_file(path), **asdict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encode_video(path: str | Path, config: EncoderConfig, *, chunk: int = 64, cache: bool = True,
                 progress: bool = True, model=None, repeat: int = 1) -> np.ndarray:
    """Per-frame embeddings ``(T, D)`` of a video, streamed chunk by chunk (cached as ``.npy``)."""
    import torch
    from dltk.data.registry import cache_dir
    from dltk.inference import device

    path = Path(path)
    target = None
    if cache and repeat == 1:
        target = cache_dir("video", "features") / f"{path.stem[:40]}-{_cache_key(path, config)}.npy"
        if target.is_file():
            return np.load(target, allow_pickle=False)
    _fps, n_known = video_info(path)
    model = model if model is not None else build_encoder(config)
    dev = device()
    model = model.to(dev)
    folder = cache_dir("video", "features")
    fd, raw_name = tempfile.mkstemp(dir=folder, prefix=".raw-", suffix=".f32")
    n = dim = 0
    try:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_known * repeat or None, desc=f"encoding {path.name}", unit="frame", leave=False,
                       disable=None)  # no bar when stderr is not a terminal
        with os.fdopen(fd, "wb") as raw:
            for frames in iter_frames(path, config.image_size, chunk, repeat=repeat):
                feats = encode_frames(model, frames, config.gray, dev, config.pool)
                raw.write(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
                n += len(feats)
                dim = feats.shape[1]
                if bar is not None:
                    bar.update(len(feats))
        if bar is not None:
            bar.close()
        data = np.memmap(raw_name, dtype=np.float32, mode="r", shape=(n, dim))
        if target is None:
            out = np.array(data)
            del data
            return out
        from dltk.io import atomic_path

        with atomic_path(target) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
            for lo in range(0, n, 4096):
                arr[lo:lo + 4096] = data[lo:lo + 4096]
            arr.flush()
            del arr
        del data
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        return np.load(target, allow_pickle=False)
    finally:
        Path(raw_name).unlink(missing_ok=True)


def with_deltas(X: np.ndarray, deltas: str, center: bool = False) -> np.ndarray:
    """Per-frame inputs from embeddings ``X``: minus the per-video mean with ``center`` (removes
    the static scene, which differs between recordings); ``deltas``: ``off`` (embeddings),
    ``append`` (embeddings + their frame-to-frame change) or ``only`` (the change alone: motion)."""
    if center:
        X = X - X.mean(axis=0, keepdims=True)
    if deltas in ("off", False):
        return X
    delta = np.diff(X, axis=0, prepend=X[:1])
    return delta if deltas == "only" else np.concatenate([X, delta], axis=1)


def write_video(path: str | Path, frames: np.ndarray, fps: int = 25) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as an H.264 mp4 (yuv420p) with PyAV (tests, demos)."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
