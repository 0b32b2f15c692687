"""The asteval interpreter formulas run on: configured once, one per thread.

This is the second of the two layers that keep untrusted formulas contained (the first is the
allow-list, ``_formula_check``): asteval in its minimal configuration with every node handler
we do not emit switched off, run against a symbol table that holds *only* the functions the
formula calls and its inputs (asteval's own table has ``open``, ``loadtxt``, ``fromfile``,
``print`` ... even with ``minimal=True``; we never use it).

asteval traps handled here and in ``Formula`` (each has a test in ``tests/test_formulas.py``):

* an Interpreter keeps symbols between runs, so a missing input would silently take the
  previous value: every evaluation gets a fresh symbol table;
* after one error ``run()`` returns None forever: the error state is reset after a failure;
* ``eval(node, raise_errors=True)`` raises AttributeError instead of the real error, and
  ``eval`` appends to ``code_text`` on every call (a leak): we only call ``run(node)``, which
  does neither;
* an Interpreter is not thread-safe: one per thread (``threading.local``);
* with numpy installed results are ``numpy.float64``: scalar results are converted to ``float``.

Two of asteval's handlers are replaced by leaner ones with the same meaning (issue 11: on one
scalar formula they were half of the time spent in asteval): ``name`` reads the symbol table
directly, and ``binop`` reads the names and numbers among its operands without a recursive
``run()`` each, applying asteval's own operator table (its ``safe_*`` functions included).
Everything that can fail still runs inside asteval's ``run()``, which records the error.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

from asteval import Interpreter
from asteval.astutils import OPERATORS

from ._reasons import Reason, reason_of

# Only the handlers our lowered trees need; asteval refuses every other node on its own, a
# second line of defence behind the allow-list.
_ASTEVAL_NODES = {"binop", "unaryop", "boolop", "compare", "ifexp", "call", "name", "constant"}


class _NullWriter:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


_local = threading.local()


def _new_interpreter() -> Interpreter:
    from asteval.asteval import ALL_NODES

    config = {node: node in _ASTEVAL_NODES for node in ALL_NODES}
    interp = Interpreter(symtable={}, minimal=True, use_numpy=False, config=config,
                         writer=_NullWriter(), err_writer=_NullWriter())
    # run() only records (and raises) errors while expr is set; without it a failing node
    # silently yields None and the reason is lost
    interp.expr = "<formula>"
    interp.symtable = {}  # drop the 'print' asteval adds even to a table we pass in
    _lean_handlers(interp)
    return interp


def _lean_handlers(interp: Interpreter) -> None:
    """asteval's ``name`` and ``binop`` handlers without the per-node overhead (see above)."""
    own_name = interp.node_handlers["name"]
    run = interp.run
    name_type, constant_type = ast.Name, ast.Constant

    def on_name(node: ast.Name) -> Any:
        try:
            return interp.symtable[node.id]
        except KeyError:  # asteval's own handler says what is wrong (NameError)
            return own_name(node)

    def operand(node: ast.expr) -> Any:
        kind = type(node)
        if kind is name_type:
            return on_name(node)  # type: ignore[arg-type]
        if kind is constant_type:
            return node.value  # type: ignore[attr-defined]
        return run(node)

    def on_binop(node: ast.BinOp) -> Any:
        func = OPERATORS[type(node.op)]
        return func(operand(node.left), operand(node.right))

    interp.node_handlers["name"] = on_name
    interp.node_handlers["binop"] = on_binop


def _interpreter() -> Interpreter:
    try:
        return _local.interp
    except AttributeError:
        interp = _local.interp = _new_interpreter()
        return interp


def _reset(interp: Interpreter) -> None:
    interp.error = []
    interp.error_msg = None
    interp._interrupt = None
    interp.retval = None


def _reason_from_error(interp: Interpreter) -> Reason:
    exc = None
    for holder in interp.error:
        exc = holder.exc_info[1]
        if exc is not None:
            break
    return reason_of(exc)
