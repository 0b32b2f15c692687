"""A cache of jsonschema's verdicts on definition files, like mypy's or ruff's cache.

Validating the catalog with jsonschema (importing it, building the validators, checking every
KPI) was most of what ``kpiforge validate`` cost on an unchanged catalog. So when jsonschema
finds no error in a file, the sha256 of everything its verdict depends on is remembered:

* the bytes of every schema shipped in ``kpiforge.schemas`` (``$ref`` reaches any of them),
* kpiforge's version and :data:`FORMAT` (bumped when the way a schema is derived changes),
* the installed distributions next to jsonschema (a jsonschema, referencing or format-checker
  upgrade changes what is accepted),
* which check ran (a KPI file, an objectives file) and the sha256 of the document's bytes.

Only "jsonschema found no error" is ever stored, so the cache can only skip re-validating a
file jsonschema accepted before: an invalid file always goes to jsonschema and gets exactly
its errors. A missing, unreadable or corrupt cache file is a miss, never an error; a cache
folder that cannot be written is no cache. The cache lives in the user's cache folder
(``$KPIFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/kpiforge``, else ``~/.cache/kpiforge``),
never next to the definitions, and is as trusted as the user's home; ``KPIFORGE_NO_CACHE=1``
turns it off.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from . import __version__
from ._cache_home import CACHE_DIR_ENV, NO_CACHE_ENV, cache_folder, write_atomically
from ._digest import sha256
from ._schema_files import _root, schema_names

__all__ = ["CACHE_DIR_ENV", "FORMAT", "MAX_ENTRIES", "NO_CACHE_ENV", "Verdicts", "cache_dir"]

FORMAT = 1
MAX_ENTRIES = 4096  # ~260 KB: the oldest verdicts are dropped past it
_FILE = "schema-verdicts"
_HEADER = f"kpiforge schema verdicts {FORMAT}\n"


def cache_dir() -> Path | None:
    """The folder of kpiforge's caches; None when caching is turned off."""
    folder = cache_folder()
    return None if folder is None else Path(folder)


@functools.lru_cache(maxsize=1)
def _context() -> bytes:
    """The digest of what every verdict depends on besides the document (see above)."""
    digest = sha256(f"{_HEADER}{__version__}\n".encode())
    root = _root()
    for name in schema_names():
        content = root.joinpath(name).read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    spec = importlib.util.find_spec("jsonschema")  # finds it without importing it
    location = spec.origin if spec is not None else None
    if location:
        site = Path(location).parent.parent
        try:
            names = sorted(n for n in os.listdir(site) if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            names = []
        digest.update(f"{site}\0{chr(0).join(names)}".encode())
    return digest.digest()


class Verdicts:
    """The verdicts of one run: read once, looked up per file, written once at the end."""

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._known: dict[str, None] | None = None  # read on first lookup (ordered: oldest first)
        self._new: dict[str, None] = {}

    @classmethod
    def open(cls) -> Verdicts:
        return cls(cache_dir())

    @property
    def enabled(self) -> bool:
        return self._folder is not None

    def key(self, check: str, document: str) -> str | None:
        """The key of ``check`` on the document whose sha256 is ``document`` (hex, see
        ``Document.sha256``); None without a cache or without a digest."""
        if self._folder is None or not document:
            return None
        return sha256(_context() + f"\0{check}\0{document}".encode()).hexdigest()

    def accepted(self, key: str | None) -> bool:
        """Whether jsonschema accepted this very check on these very bytes before."""
        if key is None:
            return False
        if self._known is None:
            self._known = self._read()
        return key in self._known or key in self._new

    def remember(self, key: str | None) -> None:
        """Record that jsonschema found no error (call it for nothing else)."""
        if key is not None:
            self._new[key] = None

    def save(self) -> None:
        """Write the new verdicts, atomically; any failure only means no cache."""
        if self._folder is None or not self._new:
            return
        known = self._read()  # again: another process may have written since
        known.update(self._new)
        keys = list(known)[-MAX_ENTRIES:]
        text = _HEADER + "".join(f"{k}\n" for k in keys)
        if not write_atomically(self._folder, _FILE, text.encode("ascii")):
            return
        self._known, self._new = dict.fromkeys(keys), {}

    def _read(self) -> dict[str, None]:
        if self._folder is None:
            return {}
        try:
            with open(self._folder / _FILE, "rb") as file:
                raw = file.read(len(_HEADER) + 65 * MAX_ENTRIES + 1)
        except (OSError, ValueError):
            return {}
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return {}
        if not text.startswith(_HEADER) or not text.endswith("\n"):
            return {}  # not ours, or cut short: nothing in it is trusted
        lines = text[len(_HEADER):].splitlines()
        if not all(len(k) == 64 and _is_hex(k) for k in lines):
            return {}
        return dict.fromkeys(lines)


_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str) -> bool:
    return not set(text) - _HEX
