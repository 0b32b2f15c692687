"""``kpiforge diff OLD NEW``: what changed between two definition sets, for review.

Each side is a file or folder (a folder with a ``kpiforge.yaml`` stands for that project's
definitions), a definitions reference (``kpiforge:standard``) or ``git:REV[:PATH]`` of the
repository the command runs in. Exit 1 when a verdict is an error (a breaking change without a
version increase, a KPI removed without being deprecated first), or with ``--strict`` a warning.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ._cli_common import Context, fail, pass_context, print_diagnostics, print_json, strict_option
from ._format import plural
from ._locate import FieldLocator
from ._terminal import echo
from .errors import DefinitionError, Diagnostic, KpiforgeError

__all__ = ["diff_command"]

_FORMATS = ("text", "json", "md", "github", "sarif")
_MD_MARK = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}


def _load(side: Any, context: Context, label: str) -> Any:
    from ._diff_sides import load_side

    try:
        return load_side(side, context.plugins)
    except DefinitionError as exc:
        print_diagnostics(replace(d, path=side.display(d.path)) for d in exc.diagnostics)
        fail(f"{plural(len(exc.errors), 'error')} in the {label} definitions ({side.spec})")


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _markdown(old: str, new: str, diffs: list[Any], totals: dict[str, int]) -> str:
    lines = [f"### kpiforge diff `{_md_cell(old)}` → `{_md_cell(new)}`", ""]
    if not diffs:
        return "\n".join(lines + ["No KPI changed."])
    lines += [f"{totals['breaking']} breaking, {totals['behavioural']} behavioural, "
              f"{totals['cosmetic']} cosmetic, {totals['added']} added: "
              f"{plural(totals['errors'], 'error')}, {plural(totals['warnings'], 'warning')}", "",
              "| KPI | kind | version | verdict |", "|---|---|---|---|"]
    for d in diffs:
        versions = " → ".join(str(v) for v in (d.old_version, d.new_version) if v is not None)
        lines.append(f"| `{d.kpi}` | {d.kind} | {versions} | "
                     f"{_MD_MARK.get(d.diagnostic.severity, '')} {_md_cell(d.diagnostic.message)} |")
    for d in diffs:
        if d.changes:
            lines += ["", f"<details><summary><code>{d.kpi}</code>: "
                      f"{plural(len(d.changes), 'change')}</summary>", ""]
            lines += [f"- **{c.kind}** {_md_cell(c.describe())}" for c in d.changes]
            lines += ["", "</details>"]
    return "\n".join(lines)


def _text(diffs: list[Any], totals: dict[str, int]) -> None:
    if not diffs:
        echo("no KPI changed")
        return
    width = max(len(c.kind) for d in diffs for c in d.changes) if any(d.changes for d in diffs) else 0
    for d in diffs:
        echo(str(d.diagnostic))
        for c in d.changes:
            echo(f"  {c.kind:<{width}}  {c.describe()}")
    echo(f"{plural(len(diffs), 'KPI')} changed ({totals['breaking']} breaking, "
         f"{totals['behavioural']} behavioural, {totals['cosmetic']} cosmetic, "
         f"{totals['added']} added): {plural(totals['errors'], 'error')}, "
         f"{plural(totals['warnings'], 'warning')}")


@click.command(name="diff")
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(list(_FORMATS)), default="text",
              show_default=True,
              help="text for people, json for tools, md to paste in a pull request, github "
                   "for workflow annotations, sarif for code scanning.")
@strict_option
@pass_context
def diff_command(context: Context, old: str, new: str, fmt: str, strict: bool) -> None:
    """Compare two definition sets KPI by KPI: breaking, behavioural and cosmetic changes.

    OLD and NEW are each a definition file or folder, a project folder (its kpiforge.yaml's
    definitions), a reference such as kpiforge:standard, or git:REV / git:REV:PATH of this
    repository (git:REV alone: the other side's path at REV). A breaking change (formula,
    inputs, unit, currency, direction, id) needs a version increase."""
    import tempfile  # for a diff only: --help does not need it

    from ._annotations import github_lines, sarif_log
    from ._annotations import strict as make_strict
    from ._diff import compare, summary
    from ._diff_sides import materialise

    with tempfile.TemporaryDirectory(prefix="kpiforge-diff-") as tmp:
        try:
            old_side = materialise(old, new, Path(tmp) / "old")
            new_side = materialise(new, old, Path(tmp) / "new")
        except KpiforgeError as exc:
            fail(str(exc))
        old_engine = _load(old_side, context, "old")
        new_engine = _load(new_side, context, "new")
        diffs = compare(old_engine.definitions, new_engine.definitions,
                        locate_old=FieldLocator(old_side.display),
                        locate_new=FieldLocator(new_side.display))
    verdicts: list[Diagnostic] = make_strict((d.diagnostic for d in diffs), strict)
    diffs = [replace(d, diagnostic=v) for d, v in zip(diffs, verdicts)]
    totals = summary(diffs)
    ok = totals["errors"] == 0
    if fmt == "json":
        print_json({"old": old, "new": new, "ok": ok, "strict": strict, "summary": totals,
                    "kpis": [d.to_dict() for d in diffs]})
    elif fmt == "md":
        echo(_markdown(old, new, diffs, totals))
    elif fmt == "github":
        for line in github_lines(verdicts):
            echo(line)
    elif fmt == "sarif":
        print_json(sarif_log(verdicts, command="diff"))
    else:
        _text(diffs, totals)
    raise SystemExit(0 if ok else 1)
