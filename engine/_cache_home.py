"""Where kpiforge keeps its caches, found with ``os`` alone, and how an entry is written.

The command line's entry point (``_launch``) reads its help cache before importing anything
else, so this module imports nothing that a ``--help`` served from the cache would not need.
"""

from __future__ import annotations

import os
import threading

__all__ = ["CACHE_DIR_ENV", "NO_CACHE_ENV", "cache_folder", "keep_newest", "write_atomically"]

CACHE_DIR_ENV = "KPIFORGE_CACHE_DIR"
NO_CACHE_ENV = "KPIFORGE_NO_CACHE"


def cache_folder() -> str | None:
    """The folder of kpiforge's caches; None when caching is turned off."""
    if os.environ.get(NO_CACHE_ENV, "").strip() not in ("", "0"):
        return None
    given = os.environ.get(CACHE_DIR_ENV)
    if given:
        return given
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is to be ignored
        return os.path.join(xdg, "kpiforge")
    home = os.path.expanduser("~")
    return None if home == "~" else os.path.join(home, ".cache", "kpiforge")


def write_atomically(folder: str | os.PathLike[str], name: str, data: bytes) -> bool:
    """Write ``data`` as ``folder/name`` (made private, 0o700, if missing) in one step: a
    temporary file of this process and thread, renamed over the entry, so a reader sees the
    old entry or the new one, never half. False, and nothing left behind, when it cannot."""
    target = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def keep_newest(folder: str | os.PathLike[str], count: int) -> None:
    """Remove all but the ``count`` most recently touched entries (64-character names) of
    ``folder``; an entry another process removed first, or a folder that cannot be read, is
    no error."""
    try:
        with os.scandir(folder) as entries:
            found = [(e.stat().st_mtime_ns, e.path) for e in entries
                     if len(e.name) == 64 and e.is_file()]
    except OSError:
        return
    for _, path in sorted(found)[:-count]:
        try:
            os.unlink(path)
        except OSError:
            pass
