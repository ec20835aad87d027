"""Ethogram: behaviour over time, one row per annotation/prediction, as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = ["#f0f0f0", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def ethogram(rows: dict[str, np.ndarray], class_names: list[str], fps: float, path: str | Path,
             title: str = "", probabilities: np.ndarray | None = None) -> Path:
    """Draw ``rows`` (name -> per-frame class indices, NaN = unlabelled) over time in seconds;
    with ``probabilities`` ``(T, C)``, add each behaviour's predicted probability as a trace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dltk.plots import save_figure
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names = list(rows)
    n = max(len(v) for v in rows.values())
    grid = np.full((len(names), n), np.nan)
    for i, name in enumerate(names):
        grid[i, : len(rows[name])] = rows[name]
    colors = [COLORS[c % len(COLORS)] for c in range(len(class_names))]
    cmap = ListedColormap(colors).with_extremes(bad="white")
    extra = probabilities is not None
    fig, axes = plt.subplots(2 if extra else 1, 1, figsize=(12, 0.5 * len(names) + (2.2 if extra else 1.2)),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": [len(names), 2] if extra else [1]})
    ax = axes[0, 0]
    ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest", cmap=cmap,
              vmin=-0.5, vmax=len(class_names) - 0.5, extent=(0, n / fps, len(names) - 0.5, -0.5))
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.legend(handles=[Patch(color=colors[c], label=class_names[c]) for c in range(len(class_names))],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    if extra:
        pax = axes[1, 0]
        t = np.arange(len(probabilities)) / fps  # type: ignore[arg-type]
        for c in range(1, len(class_names)):
            pax.plot(t, probabilities[:, c], color=colors[c], lw=0.8, label=class_names[c])  # type: ignore[index]
        pax.set_ylim(0, 1)
        pax.set_ylabel("p")
        pax.set_xlabel("time (s)")
    else:
        ax.set_xlabel("time (s)")
    fig.tight_layout()
    return save_figure(fig, Path(path))
