"""Key paths and positions of loaded YAML documents, and how messages name them.

Apart from ``_yaml_compose`` (which imports PyYAML) so that a document read from the parse
cache (``_parse_cache``) and everything that reports on it never needs ``yaml``.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

from .errors import MAX_DIAGNOSTICS_PER_FILE, shorten

__all__ = ["MAX_DEPTH", "MAX_DIAGNOSTICS", "KeyPath", "Position", "field_name"]

MAX_DEPTH = 64
# A hostile file could otherwise produce one diagnostic per alias: hundreds of thousands.
MAX_DIAGNOSTICS = MAX_DIAGNOSTICS_PER_FILE

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]

_PLAIN_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")


def field_name(path: Sequence[str | int]) -> str:
    """Render a key path the way users write it: ``kpis[2].formula``, ``inputs["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = shorten(part)  # a key is source text too: a 100 kB one must not be echoed
        if _PLAIN_FIELD.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out
