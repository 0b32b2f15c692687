"""The entry points of one group, without importing ``importlib.metadata`` when none can exist.

``importlib.metadata`` and what it pulls in (email, zipfile, csv ...) cost every ``kpiforge``
command, ``--help`` included, about a tenth of its time, and usually no installed distribution
declares a ``kpiforge`` entry point. So the folders on ``sys.path`` are first looked through the
way importlib.metadata's own path finder does (the ``*.dist-info`` and ``*.egg-info`` folders
in each, and their ``entry_points.txt``); importlib.metadata itself is asked as soon as one of
those files has a ``[group]`` section, and whenever something is there that this look cannot
read as it would (a zip file or an ``.egg`` on the path, a file it cannot read, another finder
that provides distributions). The answer is then importlib.metadata's, exactly as before.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder
from typing import Any

__all__ = ["entry_points", "may_declare"]

_METADATA_DIRS = (".dist-info", ".egg-info")


def entry_points(group: str) -> list[Any]:
    """``importlib.metadata.entry_points(group=group)`` as a list (empty without a look at
    importlib.metadata when no distribution on ``sys.path`` can declare the group)."""
    if not may_declare(group):
        return []
    import importlib.metadata

    return list(importlib.metadata.entry_points(group=group))


def may_declare(group: str) -> bool:
    """Whether a distribution on ``sys.path`` may declare entry points of ``group``."""
    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return True  # distributions this look does not see
    header = f"[{group}]"
    for entry in sys.path:
        root = entry or "."
        if os.path.basename(root).lower().endswith(".egg"):
            return True
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.exists(root):  # a zip file: importlib.metadata reads inside it
                return True
            continue  # importlib.metadata finds nothing where nothing is
        for child in children:
            if child.lower().endswith(_METADATA_DIRS) and _declares(
                    os.path.join(root, child, "entry_points.txt"), group, header):
                return True
    return False


def _declares(path: str, group: str, header: str) -> bool:
    """Whether ``entry_points.txt`` at ``path`` may have a ``group`` section (True when unsure)."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False  # importlib.metadata reads no entry points there either
    except OSError:
        return True
    if group.encode() not in raw:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    # importlib.metadata's reading: stripped lines, "[name]" opens section name
    for line in text.splitlines():
        value = line.strip()
        if value.startswith("[") and value.endswith("]") and (
                value == header or value.strip("[]") == group):
            return True
    return False
