"""sha256 without ``hashlib``'s start-up: what the verdict cache keys are made of.

``import hashlib`` loads OpenSSL (about 6 ms of CPU, 3% of a warm ``kpiforge validate``), while
CPython always has its own sha256 built in (``_sha2`` from 3.12, ``_sha256`` before): that one
is used when present, hashlib otherwise. The digests are the same.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["sha256"]


def _constructor() -> Any:
    for module, name in (("_sha2", "sha256"), ("_sha256", "sha256")):
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256 as openssl

    return openssl


sha256: Any = _constructor()  # sha256(data=b"") -> an object with update(), hexdigest()...
