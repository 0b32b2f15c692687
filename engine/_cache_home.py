"""Where kpiforge keeps its caches, found with ``os`` alone.

The command line's entry point (``_launch``) reads its help cache before importing anything
else, so this module imports nothing that a ``--help`` served from the cache would not need.
"""

from __future__ import annotations

import os

__all__ = ["CACHE_DIR_ENV", "NO_CACHE_ENV", "cache_folder"]

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
