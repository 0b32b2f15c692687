"""``kpiforge --help`` remembered: the text click printed, kept under a key of all it depends on.

Listing the commands imports every command module, click and the plugin machinery: about
three quarters of what ``--help`` cost, for a text that only changes when the code does. So the
text is stored the first time and printed straight from the cache after that, under the sha256
of what it depends on:

* kpiforge's version and every file of its packages, by size and modification time (the
  commands' docstrings and options; an edited editable install is a miss);
* click, found without importing it: its distribution folder names (the version) and its
  module files by size and modification time;
* the interpreter, the width click lays the text out to (see :func:`terminal_columns`) and the
  locale variables gettext reads (click's own words could be translated).

Plugins could add commands: the cache is only used when nothing but the built-in plugins can
load (no ``--plugins-dir``, no ``KPIFORGE_PLUGINS_DIR``/``KPIFORGE_LOAD_PLUGINS``, and no
installed distribution that may declare a ``kpiforge`` entry point). Only ASCII text is kept,
which any stdout can print. Entries are files ``help/<key>`` in the cache folder (``_cache_home``;
``KPIFORGE_NO_CACHE=1`` turns it off), written atomically; a missing or foreign one is a miss
and a folder that cannot be written is no cache. The cache is as trusted as the user's home.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from ._cache_home import cache_folder, keep_newest, write_atomically
from ._digest import sha256

__all__ = ["FORMAT", "MAX_ENTRIES", "help_key", "read_help", "terminal_columns", "write_help"]

FORMAT = 1
MAX_ENTRIES = 32  # a few terminal widths and installs
_FOLDER = "help"
_HEADER = f"kpiforge help cache {FORMAT}\n"
_LOCALE = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
# what makes other plugins load (engine/cli.py, engine/_plugins.py: their names, which a test
# checks; importing those modules is what the cache saves)
_PLUGIN_ENV = ("KPIFORGE_PLUGINS_DIR", "KPIFORGE_LOAD_PLUGINS")
_ENTRY_POINT_GROUP = "kpiforge"


def terminal_columns() -> int:
    """The columns ``shutil.get_terminal_size()`` reports, which click's help formatter lays
    out to, computed the same way without importing shutil (and its compression modules)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            stdout = sys.__stdout__
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):  # no terminal: shutil's fallback
            columns = 0
    return columns or 80


def _files(root: str, out: list[str]) -> None:
    """Name, size and mtime of every file under ``root`` (not bytecode), in a stable order."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        out.append(f"{root}\0?")
        return
    for entry in entries:
        if entry.name == "__pycache__" or entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                _files(entry.path, out)
                continue
            info = entry.stat()
        except OSError:
            out.append(f"{entry.path}\0?")
            continue
        out.append(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}")


def _code_roots() -> list[str] | None:
    """The folders of kpiforge's code and of click's; None when one cannot be found."""
    import importlib.util

    from . import __file__ as init_file

    roots = [os.path.dirname(os.path.abspath(init_file))]
    for name in ("kpiforge.plugins", "click"):
        spec = importlib.util.find_spec(name)
        locations = list(spec.submodule_search_locations or ()) if spec is not None else []
        if not locations:
            return None
        roots.extend(os.path.abspath(p) for p in locations)
    return roots


def help_key() -> str | None:
    """The key of the help text this process would print; None when it must not be cached."""
    if cache_folder() is None or any(os.environ.get(name) for name in _PLUGIN_ENV):
        return None
    from ._entry_points import may_declare

    if may_declare(_ENTRY_POINT_GROUP):
        return None
    roots = _code_roots()
    if roots is None:
        return None
    parts = [_HEADER, __version__, sys.version, str(terminal_columns())]
    parts.extend(f"{name}={os.environ.get(name, '')}" for name in _LOCALE)
    click_root = roots[-1]
    try:
        parts.extend(sorted(n for n in os.listdir(os.path.dirname(click_root))
                            if n.lower().startswith("click-")))
    except OSError:
        return None
    seen: list[str] = []
    for root in roots:
        if not any(root == s or root.startswith(s + os.sep) for s in seen):
            _files(root, parts)
            seen.append(root)
    return str(sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest())


def read_help(key: str) -> str | None:
    """The help text stored under ``key``; None when there is none."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, _FOLDER, key), "rb") as file:
            raw = file.read()
        header, stored, text = raw.decode("ascii").split("\n", 2)
    except (OSError, ValueError):
        return None
    if f"{header}\n" != _HEADER or stored != key or not text:
        return None
    return text


def write_help(key: str, text: str) -> None:
    """Store ``text`` under ``key`` (only ASCII text); any failure only means no cache."""
    folder = cache_folder()
    if folder is None or not text or not text.isascii():
        return
    folder = os.path.join(folder, _FOLDER)
    if write_atomically(folder, key, f"{_HEADER}{key}\n{text}".encode("ascii")):
        keep_newest(folder, MAX_ENTRIES)
