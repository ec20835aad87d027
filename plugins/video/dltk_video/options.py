"""The video plugin's ``dltk predict`` options, declared for core to parse (:mod:`dltk.options`);
``dltk predict --run DIR --help`` lists them. Light: no torch import."""

from __future__ import annotations

from dataclasses import dataclass

from dltk.options import option


@dataclass
class FramePredictOptions:
    """``dltk predict`` on a pose-file or video run: one label per frame."""

    fps: float | None = option(None, "frame rate of the input (default: the file's own, else the training rate)")
    min_likelihood: float | None = option(None, "pose points below this likelihood are treated as missing "
                                                "(default: the training setting; pose files only)")
    plot: bool = option(True, "write an ethogram PNG beside the CSV (--no-plot: skip it)")

    def __post_init__(self) -> None:
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"--fps must be > 0, got {self.fps}")
        if self.min_likelihood is not None and not 0.0 <= self.min_likelihood <= 1.0:
            raise ValueError(f"--min-likelihood must be in [0, 1], got {self.min_likelihood}")
