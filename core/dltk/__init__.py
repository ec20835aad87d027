"""dltk: a deep-learning toolkit for life-science research, built on PyTorch Lightning.

This module is imported by ``dltk --help`` and ``dltk plugins``: it must stay light (no torch).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dltk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
