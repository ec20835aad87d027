"""Helpers shared by test modules (importable as ``testutil``: pytest puts ``tests/`` on sys.path)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def preserved_environ() -> Iterator[None]:
    """Restore ``os.environ`` afterwards (an in-process ``dltk train`` exports DLTK_RUN_DIR for its
    DDP workers while it runs)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)
