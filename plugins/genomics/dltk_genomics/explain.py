"""Explanations for the binding tasks: ``dltk explain --run DIR [--sequence ACGT...] [--filters N]``.

In-silico mutagenesis (ISM)
---------------------------
For a sequence of length ``L`` the model scores the sequence and each of its ``3 L`` single-base
substitutions in one batch (after the same pad/crop as ``dltk predict``). The PNG shows

* a heat map of ``p(mutant) - p(reference)`` for every position and substituted base (blue: the
  substitution lowers the predicted binding probability, red: raises it), and
* above it, the reference sequence drawn as a logo whose letter heights are each position's
  importance, ``p(reference) - mean over the 3 substitutions of p(mutant)``: letters above the axis
  support binding, below it oppose it.

ISM measures the effect on the reported probability itself (no gradient approximation through the
max pooling), exactly for every substitution, at the cost of ``3 L + 1`` forward passes (one batch).

Filter logos
------------
Each first-layer filter is shown as the sequence logo of the subsequences that activate it (as in
DeepBind's and Basset's filter visualisations): over up to ``--max-sequences`` bound test
sequences (forward strand), every window whose activation exceeds half of that filter's maximum is
collected; their base frequencies form a position frequency matrix drawn with information-content
letter heights (bits). Filters are ranked by how many windows pass, the top ``--filters`` drawn.

Non-sequence tasks of the plugin have no explanation: a :class:`~dltk.errors.ConfigError` says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dltk.errors import ConfigError, DataError
from dltk.io import atomic_path
from dltk.options import option

from dltk_genomics import encoding, sequences

log = logging.getLogger("dltk.genomics")

COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}


@dataclass
class GenomicsExplainOptions:
    """``dltk explain`` on a binding run: in-silico mutagenesis and first-layer filter logos."""

    sequence: list[str] = option(list, "a sequence to mutate in silico (repeatable); IUPAC letters, U read as T")
    filters: int = option(16, "number of filter logos (0: none)")
    max_sequences: int = option(2000, "bound test sequences scanned for the filter logos")
    output_dir: str | None = option(None, "where to write the PNGs (default RUN/explain)")

    def __post_init__(self) -> None:
        if self.filters < 0 or self.max_sequences < 1:
            raise ValueError("--filters must be >= 0 and --max-sequences >= 1")
        if not self.sequence and self.filters == 0:
            raise ValueError("nothing to do: give --sequence ACGT... and/or --filters N > 0")


# --------------------------------------------------------------------------------------------------
# computation


def _require_sequence_model(model: Any) -> None:
    from dltk_genomics.seq_models import SequenceModel

    if not isinstance(model, SequenceModel):
        raise ConfigError(f"dltk explain supports the binding tasks of the genomics plugin (tf_binding, "
                          f"tf_binding_danq, rbp_binding, intervals); this run's model is "
                          f"{type(model).__name__}")


def predict_codes(model: Any, codes: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Probabilities (N, T) of the model for (N, L) codes."""
    import torch
    from dltk.base import INPUT

    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(codes), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(codes[start:start + batch_size])).to(device)
            out.append(model.postprocess(model({INPUT: x})).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_tasks), np.float32)


def mutagenesis(model: Any, sequence: str) -> tuple[np.ndarray, float, np.ndarray]:
    """ISM of one sequence (first task).

    Returns:
        the (L,) reference codes after pad/crop, the reference probability, and (L, 4) effects
        ``p(mutant) - p(reference)`` (0 at the reference base and at padded positions).

    Raises:
        DataError: the sequence is empty or holds non-IUPAC characters.
    """
    reason, pos = sequences.check_sequence(sequence.strip())
    if reason is not None:
        where = f" ({sequence[pos]!r} at position {pos + 1})" if pos >= 0 else ""
        raise DataError("--sequence", f"cannot explain a sequence {reason}{where}")
    length = int(model.data_info.get("seq_length") or len(sequence))
    ref = encoding.encode_batch([sequence.strip()], length)[0]
    variants = np.repeat(ref[None], 4 * length + 1, axis=0)
    bases = np.array([1, 2, 4, 8], dtype=np.uint8)
    for j, b in enumerate(bases):
        variants[1 + j * length + np.arange(length), np.arange(length)] = b
    probs = predict_codes(model, variants)[:, 0]
    p_ref = float(probs[0])
    effects = (probs[1:].reshape(4, length).T - p_ref).astype(np.float32)
    effects[ref == encoding.PAD] = 0.0
    is_ref = variants[1:].reshape(4, length, length)[:, np.arange(length), np.arange(length)].T == ref[:, None]
    effects[is_ref] = 0.0  # the "substitution" by the reference base itself
    return ref, p_ref, effects


def filter_pfms(model: Any, codes: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Activation-based position frequency matrices of the first-layer filters.

    Returns:
        (F, k, 4) frequency matrices (rows sum to 1 where any window passed) and (F,) the number of
        windows that passed each filter's threshold.
    """
    import torch

    conv = model.first_layer()
    k = conv.kernel_size[0]
    pad = conv.padding[0] if isinstance(conv.padding, tuple) else 0
    device = next(model.parameters()).device
    counts = np.zeros((conv.out_channels, k, 4), dtype=np.float64)
    hits = np.zeros(conv.out_channels, dtype=np.int64)
    model.eval()
    with torch.inference_mode():
        x = model.one_hot(torch.from_numpy(np.ascontiguousarray(codes)).to(device))
        act = conv(x).float()  # (N, F, P)
        peak = act.amax(dim=(0, 2)).clamp_min(1e-6)
        xpad = torch.nn.functional.pad(x, (pad, pad)).float()
        windows = xpad.unfold(2, k, 1)  # (N, 4, P, k)
        for f in range(conv.out_channels):
            n_idx, p_idx = torch.nonzero(act[:, f] > threshold * peak[f], as_tuple=True)
            if len(n_idx) == 0:
                continue
            hits[f] = len(n_idx)
            counts[f] = windows[n_idx, :, p_idx].sum(0).T.cpu().numpy()
    totals = counts.sum(-1, keepdims=True)
    pfm = np.where(totals > 0, counts / np.maximum(totals, 1e-12), 0.25)
    return pfm, hits


def information_content(pfm: np.ndarray) -> np.ndarray:
    """Letter heights in bits: frequency x (2 - entropy) per position (no small-sample correction)."""
    p = np.clip(pfm, 1e-9, 1)
    entropy = -(p * np.log2(p)).sum(-1, keepdims=True)
    return pfm * (2 - entropy)


# --------------------------------------------------------------------------------------------------
# drawing


def draw_logo(ax: Any, heights: np.ndarray, letters: str = "ACGT") -> None:
    """Stacked letters: ``heights`` (L, 4); positive values stack up, negative down, largest outside."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    font = FontProperties(family="DejaVu Sans", weight="bold")
    glyphs = {c: TextPath((0, 0), c, size=1, prop=font) for c in letters}
    for x, column in enumerate(heights):
        up, down = 0.0, 0.0
        for j in np.argsort(np.abs(column)):
            h = float(column[j])
            if abs(h) < 1e-6:
                continue
            path = glyphs[letters[j]]
            ext = path.get_extents()
            bottom = up if h > 0 else down + h
            transform = (Affine2D().translate(-ext.x0, -ext.y0).scale(0.9 / ext.width, abs(h) / ext.height)
                         .translate(x - 0.45, bottom))
            ax.add_patch(PathPatch(transform.transform_path(path), facecolor=COLORS.get(letters[j], "grey"),
                                   edgecolor="none"))
            if h > 0:
                up += h
            else:
                down += h
    ax.set_xlim(-0.6, len(heights) - 0.4)
    lo = min(0.0, float(np.minimum(heights, 0).sum(1).min(initial=0)))
    hi = max(1e-3, float(np.maximum(heights, 0).sum(1).max(initial=0)))
    ax.set_ylim(lo * 1.05, hi * 1.05)


def render_ism(ref: np.ndarray, p_ref: float, effects: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure

    length = len(ref)
    valid = np.isin(ref, [1, 2, 4, 8])
    importance = np.where(valid, -effects.sum(1) / 3.0, 0.0)
    heights = np.zeros((length, 4), dtype=np.float32)
    base_idx = {1: 0, 2: 1, 4: 2, 8: 3}
    for i, c in enumerate(ref):
        if int(c) in base_idx:
            heights[i, base_idx[int(c)]] = importance[i]
    width = min(40.0, max(8.0, length * 0.12))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(width, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [1.2, 1]})
    draw_logo(ax1, heights)
    ax1.axhline(0, color="black", lw=0.5)
    ax1.set_ylabel("importance\n(Δp, mean)")
    ax1.set_title(f"{title}: p(bound) = {p_ref:.3f}")
    lim = max(1e-3, float(np.abs(effects).max()))
    im = ax2.imshow(effects.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                    extent=(-0.5, length - 0.5, 3.5, -0.5))
    ax2.set_yticks(range(4), list("ACGT"))
    ax2.set_xlabel("position")
    for i, c in enumerate(ref):
        if int(c) in base_idx:
            ax2.plot(i, base_idx[int(c)], marker=".", color="black", ms=2)
    fig.colorbar(im, ax=[ax1, ax2], label="p(mutant) - p(reference)", fraction=0.02, pad=0.01)
    return save_figure(fig, path)


def render_filters(pfm: np.ndarray, hits: np.ndarray, order: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure

    n = len(order)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    k = pfm.shape[1]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * max(2.5, k * 0.22), rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, f in zip(axes.flat, order):
        ax.set_axis_on()
        draw_logo(ax, information_content(pfm[f]))
        ax.set_ylim(0, 2)
        ax.set_yticks([0, 1, 2])
        ax.set_xticks([])
        ax.set_title(f"filter {int(f)} ({int(hits[f])} sites)", fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------
# entry point


def explain(run_dir: Path, model: Any, datamodule: Any, options: GenomicsExplainOptions) -> list[Path]:
    """``dltk explain --run DIR [--sequence SEQ ...] [--filters N] [--max-sequences N] [--output-dir D]``.

    Writes ``ism_<index>.png`` (and ``ism_<index>.csv``, the effect matrix) per ``--sequence`` and
    ``filter_logos.png``; returns the paths written.

    Raises:
        ConfigError: the run is not a binding task, or bad options.
        DataError: a sequence that cannot be encoded (nothing is written).
    """
    _require_sequence_model(model)
    ns = options
    out_dir = Path(ns.output_dir) if ns.output_dir else Path(run_dir) / "explain"
    results = [mutagenesis(model, s) for s in ns.sequence]  # validate every sequence before writing
    written: list[Path] = []
    for i, (ref, p_ref, effects) in enumerate(results):
        written.append(render_ism(ref, p_ref, effects, out_dir / f"ism_{i}.png", f"--sequence #{i}"))
        with atomic_path(out_dir / f"ism_{i}.csv") as tmp, open(tmp, "w") as fh:
            fh.write("position,reference,A,C,G,T\n")
            fh.writelines(f"{j + 1},{encoding.decode(np.array([c]))}," + ",".join(f"{v:.6g}" for v in row) + "\n" for j, (c, row) in enumerate(zip(ref, effects)))
        written.append(out_dir / f"ism_{i}.csv")
        top = np.argsort(effects.sum(1))[:3]
        print(f"dltk explain: #{i}: p(bound) {p_ref:.3f}; most important positions "
              + ", ".join(f"{int(j) + 1}{encoding.decode(ref[j:j + 1])}" for j in top))
    if ns.filters > 0:
        datamodule.setup("test")
        codes = _bound_test_codes(datamodule, ns.max_sequences)
        pfm, hits = filter_pfms(model, codes)
        order = np.argsort(-hits, kind="stable")[:ns.filters]
        written.append(render_filters(pfm, hits, order, out_dir / "filter_logos.png",
                                      f"first-layer filters: sites activating > 50% of the maximum in "
                                      f"{len(codes)} bound test sequences"))
    return written


def _bound_test_codes(datamodule: Any, limit: int) -> np.ndarray:
    from dltk.base import INPUT, TARGET

    out = []
    total = 0
    for batch in datamodule.test_dataloader():
        keep = batch[TARGET][:, 0] == 1
        if keep.any():
            out.append(batch[INPUT][keep].numpy())
            total += int(keep.sum())
        if total >= limit:
            break
    if not out:
        raise DataError(None, "no bound sequence in the test split to build filter logos from")
    return np.concatenate(out)[:limit]
