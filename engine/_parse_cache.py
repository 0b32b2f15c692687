"""A cache of parsed definition documents, like Python's own ``__pycache__``.

Parsing the catalog with the position-tracking composer (``_yaml_compose``), and importing
PyYAML for it, was most of what a warm ``kpiforge validate`` still cost once jsonschema's
verdicts were cached (``_verdicts``). So when ``_yamlio`` loads a document with no diagnostic
at all, its data and positions are stored under the sha256 of everything the result depends on:

* :data:`FORMAT`, kpiforge's version, the interpreter's bytecode tag and ``marshal`` version,
* the size and mtime of the loader's own source files (an editable install changes them
  without a version bump),
* PyYAML's identity, found without importing it: the size and mtime of every module file of
  the installed ``yaml`` package (an upgrade rewrites them), and which parser ``_yamlio`` uses
  (libyaml or the pure-Python one),
* the sha256 of the document's text.

A document with any diagnostic (error, warning or note) is never stored, so every message about
a broken file still comes from the parser itself (and ``keep_going``, which only decides what
becomes of a file with errors, is not part of the key). Entries are ``marshal`` data (exact types:
bools stay bools, floats floats, key paths tuples) behind a sha256 of the payload that is
checked before anything is decoded: a missing, unreadable, cut-short or corrupt entry is a miss,
never an error, and a folder that cannot be written is no cache. Like a ``.pyc`` file, which
Python loads with ``marshal`` too, the cache is as trusted as the user's home: it lives in the
verdict cache's folder (``_cache_home.cache_folder``: ``$KPIFORGE_CACHE_DIR``...), never next
to the definitions, and ``KPIFORGE_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import time
from typing import Any

from . import __version__
from ._cache_home import cache_folder, write_atomically
from ._digest import sha256

__all__ = ["FOLDER", "FORMAT", "MAX_BYTES", "MAX_ENTRIES", "MAX_ENTRY_BYTES", "Parsed", "key",
           "read", "write", "yaml_fingerprint"]

FORMAT = 1
FOLDER = "parsed"  # inside the cache folder: one file per document, named by its key
MAX_ENTRIES = 2048  # past either bound the oldest entries are dropped (down to three quarters)
MAX_BYTES = 64 * 2**20
MAX_ENTRY_BYTES = 8 * 2**20  # a parse bigger than this is cheaper to redo than to keep
_MAGIC = b"kpiforge parsed %d\n" % FORMAT
_CHECKSUM = 32  # bytes of sha256
_STALE_TMP_NS = 3600 * 10**9  # a temporary file this old was left by a killed writer
# the modules whose code decides what a load returns (this one: the format of an entry)
_SOURCES = ("_yamlio.py", "_yaml_compose.py", "_keypath.py", "_parse_cache.py")

Parsed = tuple[Any, dict[Any, Any], dict[Any, Any]]  # (data, positions, key_positions)


@functools.lru_cache(maxsize=1)
def yaml_fingerprint() -> tuple[str, bool]:
    """Sizes and mtimes of the installed ``yaml`` package's module files, and whether its
    libyaml extension is there; found without importing ``yaml``."""
    try:
        spec = importlib.util.find_spec("yaml")
    except (ImportError, ValueError):  # a ``yaml`` in sys.modules without a spec: unknown
        return "", False
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        return "no yaml package", False
    suffixes = (".py", *importlib.machinery.EXTENSION_SUFFIXES)
    files, libyaml = [], False
    try:
        with os.scandir(folders[0]) as entries:
            for entry in entries:
                if entry.name.endswith(suffixes):
                    stat = entry.stat()
                    files.append(f"{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}")
                    libyaml = libyaml or (entry.name.startswith("_yaml.")
                                          and not entry.name.endswith(".py"))
    except OSError:
        return "", False
    return f"{folders[0]}\0" + "\0".join(sorted(files)), libyaml


@functools.lru_cache(maxsize=1)
def _context() -> bytes | None:
    """The digest of what every entry depends on besides the document; None: no cache."""
    interpreter = f"{__version__}\0{sys.implementation.cache_tag}\0{marshal.version}\0"
    digest = sha256(_MAGIC + interpreter.encode())
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        for name in _SOURCES:
            stat = os.stat(os.path.join(here, name))
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    except OSError:  # the code is not in files (a zip?): nothing says when it changed
        return None
    fingerprint, _ = yaml_fingerprint()
    if not fingerprint:
        return None
    digest.update(fingerprint.encode("utf-8", "surrogateescape"))
    return digest.digest()


def _folder() -> str | None:
    folder = cache_folder()
    return None if folder is None else os.path.join(folder, FOLDER)


def key(text_digest: bytes, loader: str) -> str | None:
    """The key of the document whose text has sha256 ``text_digest`` when parsed by
    ``loader`` (the parser's class name); None when caching is off or impossible."""
    if cache_folder() is None:
        return None
    context = _context()
    if context is None:
        return None
    return sha256(context + f"\0{loader}\0".encode() + text_digest).hexdigest()


def read(entry_key: str) -> Parsed | None:
    """The stored (data, positions, key_positions) of ``entry_key``; None for a miss."""
    folder = _folder()
    if folder is None:
        return None
    head = _MAGIC + bytes.fromhex(entry_key)
    try:
        with open(os.path.join(folder, entry_key), "rb") as file:
            raw = file.read(len(head) + _CHECKSUM + MAX_ENTRY_BYTES + 1)
    except (OSError, ValueError):
        return None
    if not raw.startswith(head) or len(raw) < len(head) + _CHECKSUM:
        return None
    payload = memoryview(raw)[len(head) + _CHECKSUM:]
    if sha256(payload).digest() != raw[len(head):len(head) + _CHECKSUM]:
        return None  # cut short or changed: nothing in it is decoded
    try:
        value = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if type(value) is not tuple or len(value) != 3 or not all(type(v) is dict for v in value[1:]):
        return None
    return value


def write(entry_key: str, data: Any, positions: dict[Any, Any],
          key_positions: dict[Any, Any]) -> None:
    """Store a document's parse, atomically; any failure only means no cache."""
    folder = _folder()
    if folder is None:
        return
    # the same tuple objects as keys of both: marshal then writes each key path once
    shared = {path: path for path in positions}
    key_positions = {shared.get(path, path): at for path, at in key_positions.items()}
    try:
        payload = marshal.dumps((data, positions, key_positions))
    except ValueError:  # pragma: no cover - a parse is plain data
        return
    if len(payload) > MAX_ENTRY_BYTES:
        return
    blob = _MAGIC + bytes.fromhex(entry_key) + sha256(payload).digest() + payload
    if not write_atomically(folder, entry_key, blob):
        return
    _BUDGET.add(folder, len(blob))


class _Budget:
    """The folder's size, scanned at a process's first write and counted on after it, so the
    bounds cost one directory listing per process, not one per document."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: str | None = None
        self._entries = self._bytes = 0

    def add(self, folder: str, size: int) -> None:
        with self._lock:
            if folder != self._folder:
                self._folder = folder
                self._entries, self._bytes = _prune(folder)
                return
            self._entries, self._bytes = self._entries + 1, self._bytes + size
            if self._entries > MAX_ENTRIES or self._bytes > MAX_BYTES:
                self._entries, self._bytes = _prune(folder)


_BUDGET = _Budget()


def _prune(folder: str) -> tuple[int, int]:
    """Drop the oldest entries past the bounds, and stale temporary files; what is left."""
    entries: list[tuple[int, int, str]] = []
    now = time.time_ns()
    try:
        with os.scandir(folder) as listing:
            for item in listing:
                try:
                    stat = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if item.name.endswith(".tmp"):
                    if now - stat.st_mtime_ns > _STALE_TMP_NS:
                        _unlink(item.path)
                elif len(item.name) == 64:
                    entries.append((stat.st_mtime_ns, stat.st_size, item.path))
    except OSError:
        return 0, 0
    count, total = len(entries), sum(size for _, size, _ in entries)
    if count <= MAX_ENTRIES and total <= MAX_BYTES:
        return count, total
    entries.sort()
    for _, size, path in entries:
        if count <= MAX_ENTRIES * 3 // 4 and total <= MAX_BYTES * 3 // 4:
            break
        if _unlink(path):
            count, total = count - 1, total - size
    return count, total


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
