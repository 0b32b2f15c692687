"""``pct(part, whole)``: a formula function.

Formula functions get Python floats or float64 arrays (one call evaluates every slice at
once), so this one works on both. It does not catch a zero ``whole``: on floats the
``ZeroDivisionError`` becomes a null with the reason "division by zero", on arrays the
infinite or NaN quotient does the same — kpiforge decides what a non-finite value means,
identically on both paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pct(part: Any, whole: Any) -> Any:
    """100 * part / whole."""
    if isinstance(part, np.ndarray) or isinstance(whole, np.ndarray):
        return np.multiply(np.divide(part, whole), 100.0)
    return float(part) / float(whole) * 100.0
