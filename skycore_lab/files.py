"""Files written whole or not at all, and files fingerprinted.

* :func:`atomic_write` — every file skycore-lab writes for a user (reports,
  manifests, provenance sidecars) goes through a temporary name in the same
  folder and a rename, so an interrupted write never leaves half a file or
  clobbers the previous one;
* :func:`sha256_of` — the SHA-256 of a file, or of its first bytes (what a
  reader consumed of a log that grew since).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "sha256_of"]

_CHUNK = 1 << 20


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary name keeps the suffix (writers such as ``ExcelWriter``
    check it). The file gets an ordinary file's mode (the umask's), or the
    mode of the file it replaces. On any error the temporary file is removed
    and ``path`` is left as it was.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=folder)
    os.close(handle)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it an ordinary file's mode
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, process-wide)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def sha256_of(path: str | os.PathLike, size: int | None = None) -> str:
    """Hex SHA-256 of the file at ``path``, or of its first ``size`` bytes.

    Raises
    ------
    OSError
        The file cannot be read, or is shorter than ``size``.
    """
    digest = hashlib.sha256()
    remaining = size
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            block = handle.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    if remaining:
        raise OSError(f"{os.fspath(path)!r} is shorter than the {size:,} bytes read from it earlier")
    return digest.hexdigest()
