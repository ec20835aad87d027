"""Placeholder declaration (filled in by the part's author): tasks, datamodules, models, benchmarks."""

from __future__ import annotations

TASKS: tuple = ()
DATAMODULES: dict[str, str] = {}
MODELS: dict[str, str] = {}
BENCHMARKS: tuple = ()
