"""Registered remote files: canonical URL + sha256, a local mirror consulted first, and a cache.

Lookup order for :func:`fetch`:

1. the local mirror ``$DLTK_DATA_DIR/<relpath>`` (read-only is fine: nothing is written beside it);
2. the cache ``$DLTK_CACHE/<relpath>`` (default ``~/.cache/dltk``), written by an earlier download;
3. a download from the canonical URL into the cache, verified before it is moved into place.

Every file is checked against its registered sha256; a mismatch is an error that names the file,
and a failed download leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dltk.errors import ChecksumError, DataError

_verified: dict[tuple[str, int, float], str] = {}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a published dataset.

    Args:
        relpath: path relative to the mirror/cache root, e.g. ``chem/moleculenet/tox21.csv.gz``.
        url: canonical download URL.
        sha256: full hex digest of the file's bytes.
        size: size in bytes, for progress and a quick sanity check (optional).
        member: when the URL serves a zip archive, the name of the file inside it; ``sha256`` is
            then the digest of that extracted member (what the mirror holds).
    """

    relpath: str
    url: str
    sha256: str
    size: int | None = None
    member: str | None = None


def data_dir() -> Path | None:
    """The local mirror directory (``DLTK_DATA_DIR``), or None when unset."""
    value = os.environ.get("DLTK_DATA_DIR")
    return Path(value).expanduser().resolve() if value else None


def cache_dir(*parts: str) -> Path:
    """The writable cache directory (``DLTK_CACHE``, default ``~/.cache/dltk``), created on demand."""
    root = Path(os.environ.get("DLTK_CACHE") or Path.home() / ".cache" / "dltk").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, memoised on (path, size, mtime) for this process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key in _verified:
        return _verified[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    _verified[key] = h.hexdigest()
    return _verified[key]


def _check(path: Path, remote: RemoteFile) -> Path:
    digest = sha256_file(path)
    if digest != remote.sha256:
        raise ChecksumError(path, f"sha256 mismatch: expected {remote.sha256[:16]}…, "
                                  f"got {digest[:16]}… (corrupt or different file)")
    return path


def fetch(remote: RemoteFile, *, download: bool = True) -> Path:
    """Return a verified local path for ``remote``: mirror, then cache, then download.

    Raises:
        ChecksumError: the mirrored, cached or downloaded file does not match its sha256.
        DataError: the file is not mirrored or cached and cannot be downloaded.
    """
    mirror = data_dir()
    if mirror is not None and (mirror / remote.relpath).is_file():
        return _check(mirror / remote.relpath, remote)
    cached = cache_dir() / remote.relpath
    if cached.is_file():
        return _check(cached, remote)
    if not download:
        raise DataError(remote.relpath, "not found in DLTK_DATA_DIR or the cache, and downloads are off")
    return _download(remote, cached)


def _download(remote: RemoteFile, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(remote.url, timeout=60) as response:  # noqa: S310
                    shutil.copyfileobj(response, out, length=1 << 20)
            except OSError as exc:
                raise DataError(remote.relpath, f"download from {remote.url} failed ({exc}); "
                                "set DLTK_DATA_DIR to a local mirror") from exc
        if remote.member is not None:
            _extract_member(tmp, remote)
        digest = sha256_file(tmp)
        if digest != remote.sha256:
            raise ChecksumError(remote.url, f"sha256 mismatch after download: expected "
                                f"{remote.sha256[:16]}…, got {digest[:16]}…; nothing was cached")
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def _extract_member(archive: Path, remote: RemoteFile) -> None:
    """Replace the downloaded zip ``archive`` in place by its member ``remote.member``."""
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            name = next((n for n in names if n == remote.member or n.endswith("/" + str(remote.member))), None)
            if name is None:
                raise DataError(remote.url, f"archive has no member {remote.member!r} (has: {', '.join(names[:5])})")
            data = zf.read(name)
    except zipfile.BadZipFile as exc:
        raise DataError(remote.url, f"expected a zip archive holding {remote.member!r}: {exc}") from exc
    archive.write_bytes(data)
