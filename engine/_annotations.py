"""Diagnostics for CI: GitHub workflow-command annotations and SARIF 2.1.0 logs.

``validate``, ``test`` and ``diff`` all produce :class:`Diagnostic` objects, so one rendering
serves the three. ``--strict`` is applied before rendering (:func:`strict`): a warning that
fails the build must also look like an error in the pull request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable
from urllib.parse import quote

from .errors import Diagnostic

__all__ = ["SARIF_SCHEMA", "github_lines", "sarif_log", "strict"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_GITHUB_LEVEL = {"error": "error", "warning": "warning"}  # everything else is a notice
_SARIF_LEVEL = {"error": "error", "warning": "warning"}   # and a note


def strict(diagnostics: Iterable[Diagnostic], on: bool) -> list[Diagnostic]:
    """The diagnostics, warnings made errors when ``on``."""
    return [replace(d, severity="error") if on and d.severity == "warning" else d
            for d in diagnostics]


def _data(text: str) -> str:
    # the escapes GitHub's runner decodes (toolkit/core command.ts): a raw newline would end
    # the command and lose the rest of the message
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_lines(diagnostics: Iterable[Diagnostic]) -> list[str]:
    """One ``::error file=...,line=...,col=...,title=...::message`` line per diagnostic."""
    lines = []
    for d in diagnostics:
        level = _GITHUB_LEVEL.get(d.severity, "notice")
        props = [f"file={_property(d.path)}"]
        if d.line:
            props += [f"line={d.line}", f"col={max(d.column, 1)}"]
        props.append(f"title={_property(f'kpiforge {d.code}')}")
        message = f"{d.field}: {d.message}" if d.field else d.message
        lines.append(f"::{level} {','.join(props)}::{_data(message)}")
    return lines


def _version() -> str:
    from importlib import metadata  # for SARIF only: every validate would pay for it

    try:
        return metadata.version("kpiforge")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0"


def sarif_log(diagnostics: Iterable[Diagnostic], *, command: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of ``kpiforge COMMAND`` and one result per diagnostic."""
    items = list(diagnostics)
    rules = sorted({d.code for d in items})
    results = []
    for d in items:
        # a URI reference: a space or a '#' in a file name must not end the path
        location: dict[str, Any] = {"artifactLocation": {"uri": quote(d.path.replace("\\", "/"))}}
        if d.line:
            location["region"] = {"startLine": d.line, "startColumn": max(d.column, 1)}
        result: dict[str, Any] = {
            "ruleId": d.code, "ruleIndex": rules.index(d.code),
            "level": _SARIF_LEVEL.get(d.severity, "note"),
            "message": {"text": f"{d.field}: {d.message}" if d.field else d.message},
            "locations": [{"physicalLocation": location}]}
        results.append(result)
    driver = {"name": "kpiforge", "version": _version(),
              "informationUri": "https://kpiforge.dev",
              "rules": [{"id": code} for code in rules]}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver}, "results": results,
                      "automationDetails": {"id": f"kpiforge/{command}/"}}]}
