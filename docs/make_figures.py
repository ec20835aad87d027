"""Regenerate the figures of the documentation site (docs/img/*.png) from a real run.

    DLTK_DATA_DIR=../shared/data python docs/make_figures.py

Trains the chem ESOL task briefly on the CPU (ECFP features, 15 epochs) into a temporary run
directory and puts its learning curves and test parity plot side by side in docs/img/esol_run.png.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

IMG = Path(__file__).resolve().parent / "img"


def main() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    from dltk.cli import main as dltk

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        code = dltk(["train", "--plugin", "chem", "--task", "esol", "--run-dir", str(run), "--data.features", "ecfp",
                     "--trainer.max_epochs", "15", "--trainer.accelerator", "cpu",
                     "--trainer.enable_progress_bar", "false"])
        if code != 0:
            raise SystemExit(code)
        panels = [run / "plots" / "learning_curves.png", run / "plots" / "parity.png"]
        images = [mpimg.imread(p) for p in panels]
        ratios = [im.shape[1] / im.shape[0] for im in images]
        fig, axes = plt.subplots(1, 2, figsize=(4.5 * sum(ratios), 4.5), gridspec_kw={"width_ratios": ratios})
        for ax, image in zip(axes, images):
            ax.imshow(image)
            ax.axis("off")
        fig.tight_layout()
        IMG.mkdir(exist_ok=True)
        fig.savefig(IMG / "esol_run.png", dpi=80)
        print(f"wrote {IMG / 'esol_run.png'}")


if __name__ == "__main__":
    main()
