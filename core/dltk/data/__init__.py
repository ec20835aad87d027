"""Data access shared by all plugins: registered remote files, local mirror, cache, atomic writes.

Light module (no torch): safe to import from the CLI start-up path.
"""

from dltk.data.registry import RemoteFile, cache_dir, data_dir, fetch, sha256_file

__all__ = ["RemoteFile", "cache_dir", "data_dir", "fetch", "sha256_file"]
