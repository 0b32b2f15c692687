"""What evaluating a formula gives: :class:`Evaluation`, shared by :mod:`._formulas` (which
compiles) and :mod:`._formula_run` (which evaluates) without importing numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Evaluation"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one evaluation.

    Scalar mode: ``value`` is a finite ``float`` or None, ``reason`` a str or None.
    Array mode: ``value`` is a float64 array with NaN where null and ``reason`` an object array
    of str/None per slice. When no slice is null the reason array is a shared read-only array
    of None (copy it before writing).
    """

    value: float | None | np.ndarray
    reason: str | None | np.ndarray = None


_new_object = object.__new__
_slots: Mapping[str, Any] = vars(Evaluation)  # the slot descriptors set what __init__ would
_set_value, _set_reason = _slots["value"].__set__, _slots["reason"].__set__


def _evaluation(value: Any, reason: Any) -> Evaluation:
    """``Evaluation(value, reason)`` without the frozen dataclass's ``__init__`` (it sets each
    field through ``object.__setattr__``): half the cost, on the scalar path's every call."""
    e = _new_object(Evaluation)
    _set_value(e, value)
    _set_reason(e, reason)
    return e
