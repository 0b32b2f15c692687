"""Units of formulas: infer the unit of every KPI formula and check it against the declared one.

Why a small explicit algebra and not pint: the quantities of a KPI catalog are not physical.
Counts of named things (clicks, sessions), ISO currencies that must never mix without a rate,
and percent as a ratio scaled by 100 are not what a physical units library models, and
bending one to them (custom dimensions per counted thing, currencies as dimensions, offset
units for percent) would be longer and harder to read than the rules below.

A unit is a product of base dimensions with (rational) exponents -- ``count``, one per
currency (``currency EUR``), ``seconds``, ``score`` -- times a *scale*: a ratio has no
dimension and scale 1, a percent is the same ratio with scale 100. The rules:

* ``count`` is a dimension only of pure counts. Next to another dimension a count cancels:
  ``cost / clicks`` (cost per click) is currency, ``cpc * clicks`` is currency again,
  ``total_session_duration / sessions`` is seconds. A count times a count is a count,
  ``count / count`` is a ratio whatever is counted (pages per session, impressions per
  person reached), and a ratio per count is still a ratio (average keyword position).
* ``*`` and ``/`` multiply dimensions and scales; the literal ``100`` has scale 100 there (so
  ``ratio * 100`` is a percent and ``percent / 100`` a ratio), ``0.01`` has scale 1/100, every
  other literal is a pure factor (``cost / impressions * 1000`` is still money).
* ``+``, ``-``, ``%``, comparisons, ``and``/``or``, ``a if c else b`` and the functions
  ``coalesce``, ``min``, ``max``, ``clip``, ``where`` and ``safe_div``'s default need one unit
  for all their operands; a literal (or a parameter) takes the unit of the other side, so
  ``1 - x`` and ``100 - share`` work. Counts that both say what they count must count the same
  thing to be added (``{count: customers}`` with ``{count: customers}``).
* Money in two currencies cannot be added, compared, multiplied or divided.
* ``abs``, ``round`` and ``total`` keep their argument's unit, ``sqrt`` halves exponents,
  ``log`` and ``exp`` give a ratio, a comparison and ``not`` give a ratio (0 or 1), ``**``
  with a literal exponent raises exponents (any other exponent needs a dimensionless base).
* A KPI used in a formula contributes its declared unit. An input without a unit, and the
  result of a function registered by a plugin (whose unit behaviour is not known), is
  *unknown*: checks involving it are skipped, and what is computed from it is unknown too.
* The inferred unit must be the declared one; a KPI declared ``score`` also accepts any
  dimensionless formula (NPS is a difference of percentages read as a score).

Inference visits each node of the checked tree once; the allow-list (``check_formula``)
has already bounded the tree to ``MAX_NODES`` nodes and ``MAX_DEPTH`` levels, so the
recursion below stays far from Python's limit whatever the formula.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Mapping

from ._formula_check import FunctionSpec
from ._model import Definition, InputSpec
from .errors import shorten

__all__ = ["NUMBER", "RATIO", "Unit", "UnitError", "declared_unit", "infer_unit", "input_unit"]


@dataclass(frozen=True, slots=True)
class Unit:
    """Dimension exponents (sorted, none zero), a scale, what a pure count counts, and
    ``number`` for literals and parameters, which take the unit of what they are added to."""

    dims: tuple[tuple[str, Fraction], ...] = ()
    scale: float = 1.0
    of: str | None = None
    number: bool = False

    def __str__(self) -> str:
        if self.number:
            return "a number"
        if not self.dims:
            if _close(self.scale, 1.0):
                return "ratio"
            return "percent" if _close(self.scale, 100.0) else f"ratio x {self.scale:g}"
        up = [_dim_text(k, e, self.of) for k, e in self.dims if e > 0]
        down = [_dim_text(k, -e, None) for k, e in self.dims if e < 0]
        text = " x ".join(up) if up else "1"
        if down:
            text += " per " + " per ".join(down)
        return text if _close(self.scale, 1.0) else f"{text} x {self.scale:g}"

    def fits(self, other: Unit) -> bool:
        """Same dimensions and scale (what is counted aside)."""
        return self.dims == other.dims and _close(self.scale, other.scale)


RATIO = Unit()
_MAX_POWER = 64
NUMBER = Unit(number=True)
_BASES = {"count": "count", "seconds": "seconds", "score": "score"}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9)


def _dim_text(key: str, exp: Fraction, of: str | None) -> str:
    name = key.replace(":", " ")
    if key == "count" and of:
        name = f"count of {of}"
    return name if exp == 1 else f"{name}^{exp}"


def _base(unit: str | None, count_of: str | None, currency: str | None,
          kpi_currency: str) -> Unit | None:
    if unit is None:
        return None
    if unit == "ratio":
        return RATIO
    if unit == "percent":
        return Unit(scale=100.0)
    if unit == "currency":
        return Unit(((f"currency:{currency or kpi_currency}", Fraction(1)),))
    return Unit(((_BASES[unit], Fraction(1)),), of=count_of if unit == "count" else None)


def input_unit(spec: InputSpec, kpi_currency: str) -> Unit | None:
    """The unit an input declares (money without a code is in the KPI's currency); None if it
    declares none."""
    return _base(spec.unit, spec.count_of, spec.currency, kpi_currency)


def declared_unit(definition: Definition, default_currency: str) -> Unit:
    unit = _base(str(definition.unit), None, definition.currency, default_currency)
    assert unit is not None  # a KPI's unit is required by the schema
    return unit


class UnitError(Exception):
    """A unit contradiction at ``node`` of the formula."""

    def __init__(self, node: ast.AST, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


# --------------------------------------------------------------------------- the algebra


def _product(a: Unit, b: Unit, sign: int, node: ast.AST, left: ast.AST, right: ast.AST,
             text: str) -> Unit | None:
    dims = dict(a.dims)
    for key, exp in b.dims:
        dims[key] = dims.get(key, Fraction(0)) + sign * exp
    count = dims.pop("count", Fraction(0))
    dims = {k: e for k, e in dims.items() if e}
    money = [k for k in dims if k.startswith("currency:")]
    if len(money) > 1:
        verb = "multiply" if sign > 0 else "divide"
        raise UnitError(node, f"cannot {verb} {a} ({_seg(text, left)}) by {b} "
                        f"({_seg(text, right)}): money in two currencies; convert first")
    # a count next to another dimension turns a total into an average and back (cost per
    # click is money); alone, counts multiply into a count and divide into a ratio
    of = None
    if not dims and count > 0:
        dims["count"] = Fraction(1)
        counted = [u.of for u in (a, b) if u.dims == (("count", Fraction(1)),)]
        of = counted[0] if len(counted) == 1 else None
    scale = _scale(a.scale, b.scale, sign)
    return None if scale is None else Unit(tuple(sorted(dims.items())), scale, of)


def _scale(a: float, b: float, sign: int) -> float | None:
    """``a * b`` or ``a / b``; None (the unit is unknown) when a chain of 100s and 0.01s
    over- or underflows, so that no later step divides by a zero scale."""
    scale = a * b if sign > 0 else a / b
    return scale if scale and math.isfinite(scale) else None


def _number(a: Unit, b: Unit, sign: int) -> Unit | None:
    scale = _scale(a.scale, b.scale, sign)
    return None if scale is None else Unit(scale=scale, number=True)


def _same(units: list[Unit | None], nodes: list[ast.AST], verb: str, text: str) -> Unit | None:
    """The one unit all operands share (a number takes the others'); None if any is unknown."""
    if any(u is None for u in units):
        return None
    known = [(u, n) for u, n in zip(units, nodes) if u is not None and not u.number]
    if not known:
        return NUMBER
    first, first_node = known[0]
    of = first.of
    for unit, node in known[1:]:
        if not unit.fits(first) or (of and unit.of and unit.of != of):
            raise UnitError(node, f"cannot {verb} {first} ({_seg(text, first_node)}) and "
                            f"{unit} ({_seg(text, node)})")
        of = of or unit.of
    return replace(first, of=of)


def _literal(node: ast.AST) -> float | None:
    """The number ``node`` is when it is a literal, signed or not (``x ** -1``)."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return sign * float(node.value)
    return None


def _power(base: Unit | None, exp_node: ast.expr, exp: Unit | None, node: ast.AST,
           text: str) -> Unit | None:
    if base is None:
        return None
    literal = _literal(exp_node)
    if literal is not None:
        if base.number:
            return NUMBER
        power = Fraction(literal).limit_denominator(1000)
        if base.dims and abs(power) > _MAX_POWER:
            return None  # no KPI has such a unit; do not print a 300-digit exponent
        try:
            scale = base.scale ** float(power)
        except (OverflowError, ZeroDivisionError):
            return None
        if not (scale and math.isfinite(scale)):
            return None
        return Unit(tuple((k, e * power) for k, e in base.dims if e * power), scale,
                    base.of if power == 1 else None)
    if exp is not None and not exp.number and (exp.dims or not _close(exp.scale, 1.0)):
        raise UnitError(exp_node, f"an exponent must be a ratio, not {exp} "
                        f"({_seg(text, exp_node)})")
    if base.number:
        return NUMBER
    if base.dims or not _close(base.scale, 1.0):
        raise UnitError(node, f"cannot raise {base} ({_seg(text, node)}) to a power that is "
                        "not a literal number")
    return RATIO


def _seg(text: str, node: ast.AST) -> str:
    return shorten(ast.get_source_segment(text, node) or ast.unparse(node), 60)


# --------------------------------------------------------------------------- inference

# the built-in functions whose unit behaviour is known, and how: "same" (all arguments one
# unit), "first" (the first argument's unit), "ratio", "sqrt", "safe_div", "where"
_RULES = {"min": "same", "max": "same", "coalesce": "same", "clip": "same", "abs": "first",
          "round": "first", "total": "first", "sqrt": "sqrt", "log": "ratio", "exp": "ratio",
          "safe_div": "safe_div", "where": "where"}


class _Infer:
    def __init__(self, text: str, env: Mapping[str, Unit | None],
                 functions: Mapping[str, FunctionSpec]):
        self.text = text
        self.env = env
        self.functions = functions

    def unit(self, node: ast.AST) -> Unit | None:
        if isinstance(node, ast.Constant):
            scale = 100.0 if node.value == 100 else 0.01 if node.value == 0.01 else 1.0
            return Unit(scale=scale, number=True)
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.unit(node.operand)
            return RATIO if isinstance(node.op, ast.Not) else operand
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            return _same([self.unit(v) for v in node.values], list(node.values),
                         f"combine with '{word}'", self.text)
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            units = [self.unit(o) for o in operands]
            for i in range(len(operands) - 1):
                _same(units[i:i + 2], list(operands[i:i + 2]), "compare", self.text)
            return RATIO
        if isinstance(node, ast.IfExp):
            self.unit(node.test)
            branches: list[ast.AST] = [node.body, node.orelse]
            return _same([self.unit(b) for b in branches], branches,
                         "choose ('if ... else') between", self.text)
        if isinstance(node, ast.Call):
            return self.call(node)
        return None  # the allow-list admits nothing else

    def binop(self, node: ast.BinOp) -> Unit | None:
        op = type(node.op)
        if op is ast.Pow:
            return _power(self.unit(node.left), node.right, self.unit(node.right), node, self.text)
        left, right = self.unit(node.left), self.unit(node.right)
        if op in (ast.Add, ast.Sub, ast.Mod):
            verb = {ast.Add: "add", ast.Sub: "subtract", ast.Mod: "take the remainder of"}[op]
            return _same([left, right], [node.left, node.right], verb, self.text)
        if left is None or right is None:
            return None
        if left.number and right.number:
            return _number(left, right, 1 if op is ast.Mult else -1)
        return _product(left, right, 1 if op is ast.Mult else -1, node, node.left, node.right,
                        self.text)

    def call(self, node: ast.Call) -> Unit | None:
        assert isinstance(node.func, ast.Name)  # the allow-list made sure
        name = node.func.id
        args: list[ast.AST] = list(node.args)
        units = [self.unit(a) for a in args]
        spec = self.functions.get(name)
        rule = _RULES.get(name)
        if rule is None or spec is None or not _ours(spec):
            return None  # a plugin's function: its unit behaviour is not known
        verb = f"mix, in {name}(),"
        if rule == "same":
            return _same(units, args, verb, self.text)
        if rule == "first":
            return units[0]
        if rule == "ratio":
            return RATIO
        if rule == "sqrt":
            base = units[0]
            return None if base is None else _power(base, ast.Constant(0.5), None, node,
                                                    self.text)
        if rule == "where":
            return _same(units[1:], args[1:], verb, self.text)
        # safe_div(a, b[, default]): a / b, and the default in the quotient's unit
        a, b = units[0], units[1]
        quotient = None if a is None or b is None else (
            _number(a, b, -1) if a.number and b.number else
            _product(a, b, -1, node, args[0], args[1], self.text))
        if len(args) == 3:
            return _same([quotient, units[2]], [node, args[2]], verb, self.text)
        return quotient


def _ours(spec: FunctionSpec) -> bool:
    # a rule is only for kpiforge's own function; a plugin may register another under the name
    return str(getattr(spec.func, "__module__", "")).split(".")[0] == "kpiforge"


def infer_unit(tree: ast.expr, text: str, env: Mapping[str, Unit | None],
               functions: Mapping[str, FunctionSpec]) -> Unit | None:
    """The unit of a checked formula tree (``text`` is the text it was parsed from, for
    messages); None when unknown. Raises :class:`UnitError` at the first contradiction."""
    return _Infer(text, env, functions).unit(tree)
