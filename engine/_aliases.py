"""Former input names (a definition's ``aliases``), still accepted with a deprecation warning.

When one catalog name meant two things (``visitors``: landing-page visitors for the lead
conversion rate, site visitors for the conversion rate), the inputs got distinct names and the
old one became an alias of both, so that code and projects written before still compute.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping

from ._model import Definition

__all__ = ["input_aliases", "with_aliases"]


def input_aliases(definitions: Iterable[Definition]) -> dict[str, tuple[str, ...]]:
    """Former input name -> the inputs that replaced it, sorted."""
    out: dict[str, set[str]] = {}
    for definition in definitions:
        for name, spec in definition.inputs.items():
            for alias in spec.aliases:
                out.setdefault(alias, set()).add(name)
    return {alias: tuple(sorted(names)) for alias, names in out.items()}


def with_aliases(inputs: Mapping[str, Any], aliases: Mapping[str, tuple[str, ...]],
                 declared: frozenset[str]) -> Mapping[str, Any]:
    """``inputs`` with each value given under a former name also given under its new names
    (never replacing one given under a new name), with a :class:`DeprecationWarning`."""
    old = [name for name in inputs if name in aliases and name not in declared]
    if not old:
        return inputs
    out = dict(inputs)
    for name in old:
        new = aliases[name]
        for target in new:
            out.setdefault(target, inputs[name])
        warnings.warn(f"input '{name}' is a former name; give it as {' and '.join(new)}",
                      DeprecationWarning, stacklevel=3)
    return out
