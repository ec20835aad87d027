"""Shared test setup: offline, CPU, real data from the read-only mirror, caches in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("DLTK_DATA_DIR", str(_DEFAULT_DATA))
# absolute, so tests that change the working directory still find the mirror
os.environ["DLTK_DATA_DIR"] = str(Path(os.environ["DLTK_DATA_DIR"]).expanduser().resolve())
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # default tests run on the CPU
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session gets its own feature/download cache (never the user's ~/.cache)."""
    if "DLTK_TEST_KEEP_CACHE" not in os.environ:
        os.environ["DLTK_CACHE"] = str(tmp_path_factory.mktemp("dltk-cache"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The local data mirror (``DLTK_DATA_DIR``); tests that need real data skip without it."""
    root = Path(os.environ["DLTK_DATA_DIR"])
    if not (root / "MANIFEST.md").is_file():
        pytest.skip(f"real data mirror not found at {root} (set DLTK_DATA_DIR)")
    return root
