"""Checking evaluation inputs: numbers or missing, never text, complex numbers or dates.

A value the caller passes to ``Engine.evaluate`` or ``Formula.evaluate`` is a programming
input, not data: a wrong kind is an :class:`InputError` naming the input, never a silent
conversion (numpy would turn a complex array into its real part and a datetime64 array into
day counts without a word).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["input_array", "input_number"]

_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float; not complex, dates, text, bytes, void


def input_number(name: str, value: Any) -> float:
    """A scalar input as a float (NaN for None / missing)."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        try:
            return float(value)
        except OverflowError:
            raise InputError(f"input {name!r} is too large for a number: "
                             f"{_digits(value)}") from None
    if isinstance(value, (str, bytes)):
        raise InputError(f"input {name!r} is text, not a number: {value[:40]!r}")
    kind = type(value).__name__
    raise InputError(f"input {name!r} is not a number ({kind}): {repr(value)[:40]}")


def input_array(name: str, value: np.ndarray) -> np.ndarray:
    """A one-dimensional float64 array (NaN where missing), or InputError naming the input."""
    kind = value.dtype.kind
    if kind == "f" and value.dtype == np.float64:
        return value
    if kind in _NUMERIC_KINDS:
        return value.astype(np.float64)
    if kind == "O":
        out = np.empty(len(value), dtype=np.float64)
        for i, item in enumerate(value.tolist()):
            try:
                out[i] = input_number(name, item)
            except InputError as exc:
                raise InputError(f"{exc} (at index {i})") from None
        return out
    raise InputError(f"input {name!r} is not numeric: its values are {_kind_name(value.dtype)}")


def _kind_name(dtype: np.dtype) -> str:
    return {"c": "complex numbers", "M": "dates (datetime64)", "m": "durations (timedelta64)",
            "U": "text", "S": "bytes", "V": "raw records"}.get(dtype.kind, str(dtype))


def _digits(value: Any) -> str:
    # str() of a huge int is slow and refused beyond 4,300 digits: estimate from the bit count
    digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
    return f"an integer of about {digits} digits"
