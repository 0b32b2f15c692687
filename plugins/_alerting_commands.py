"""``kpiforge alerts ...`` and ``kpiforge silence ...``: the alert store from the command line.

Every command takes ``--project FILE`` (default ``./kpiforge.yaml``) and reads the project's
``state``, ``alerting``, ``sinks`` and ``routes`` keys straight from the file (hardened loader,
no schema check), so a problem elsewhere in the project (a source's unset ``${PG_PASSWORD}``)
never stops anyone from silencing or retrying alerts; sinks and routes are checked when used.

The commands of :mod:`kpiforge.plugins.alerting_cli`, which imports this module (and click)
only when it registers them: loading the built-in plugins, which every ``Project.load`` does,
must not import the command line.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from kpiforge.commands import (
    current_plugins,
    echo,
    fail,
    format_option,
    load_definitions,
    plural,
    print_diagnostics,
    print_json,
    project_option,
    read_project_file,
    redact_text,
    stdout,
    text,
    warn,
)
from kpiforge.errors import DefinitionError, KpiforgeError, did_you_mean

_KEYS = ("state", "alerting", "sinks", "routes")

project_file_option = project_option(
    "kpiforge.yaml", help="The project file (its state: key locates the alert database).")
fmt_option = format_option("table", "text", "json")


def load_config(project_file: str) -> tuple[Path, dict[str, Any]]:
    """(project directory, {state, alerting, sinks, routes}) from the project file."""
    path = Path(project_file)
    if not path.is_file():
        fail(f"{project_file}: project file not found (use --project FILE)", 2)
    try:
        data = read_project_file(path)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"cannot read {project_file}")
    return path.resolve().parent, {key: data.get(key) for key in _KEYS}


def _store(project_file: str, *, must_exist: bool = False) -> Any:
    from kpiforge.alerts import Store, resolve_state_path

    project_dir, config = load_config(project_file)
    try:
        path = resolve_state_path(project_dir, config.get("state"))
    except KpiforgeError as exc:
        fail(f"{project_file}: {exc}")
    if must_exist and path != ":memory:" and not Path(path).exists():
        return None
    try:
        return Store(path)
    except KpiforgeError as exc:
        fail(str(exc))


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]],
           ids: tuple[str, ...] = ("id",)) -> None:
    """A rich table on stdout. ``ids`` columns are never cut: the other columns wrap instead."""
    from rich.table import Table

    table = Table(title=text(title))
    for i, column in enumerate(columns):
        if column in ids:
            width = max([len(column)] + [len(row[i]) for row in rows])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*map(text, row))
    stdout.print(table)


# -- kpiforge alerts -----------------------------------------------------------------------

@click.group(name="alerts")
def alerts_group() -> None:
    """Alert states, the delivery outbox, and sink tests."""


@alerts_group.command(name="list")
@project_file_option
@click.option("--all", "show_all", is_flag=True, help="Include inactive alerts.")
@fmt_option
def alerts_list(project_file: str, show_all: bool, fmt: str) -> None:
    """Show alert states (pending, firing, resolved)."""
    store = _store(project_file, must_exist=True)
    rows = [] if store is None else store.alerts(include_inactive=show_all)
    if store is not None:
        silences = store.silences(active_at=time.time())
        store.close()
    else:
        silences = []
    from kpiforge.alerts import attributes_of_row, silence_matches

    items = []
    for row in rows:
        silenced = any(silence_matches(attributes_of_row(row), s) for s in silences)
        items.append({
            "fingerprint": row["fingerprint"], "kpi": row["kpi"], "slice": row["slice"],
            "state": row["state"], "status": row["status"],
            # an inactive series keeps the store's default severity, which means nothing
            "severity": None if row["state"] == "inactive" else row["severity"],
            "value": row["value"], "period": row["period"],
            "since": _when(row["fired_at"] if row["state"] == "firing" else
                           row["resolved_at"] if row["state"] == "resolved" else row["started_at"]),
            "last_notified": _when(row["notified_at"]), "silenced": silenced,
        })
    if fmt == "json":
        print_json({"alerts": items})
        return
    _table(plural(len(items), "alert"), ("kpi", "slice", "state", "severity", "status", "period",
                                        "since", "notified", "fingerprint"),
           [(i["kpi"], ", ".join(f"{k}={v}" for k, v in i["slice"].items()),
             i["state"] + (" (silenced)" if i["silenced"] else ""), i["severity"] or "-",
             i["status"] or "", i["period"] or "", i["since"], i["last_notified"], i["fingerprint"])
            for i in items], ids=("fingerprint",))


@alerts_group.command(name="pending")
@project_file_option
@fmt_option
def alerts_pending(project_file: str, fmt: str) -> None:
    """Show messages not delivered yet (waiting for a retry, or failed for good)."""
    store = _store(project_file, must_exist=True)
    rows = [] if store is None else store.undelivered(include_failed=True)
    if store is not None:
        store.close()
    items = [{"id": r["id"], "sink": r["sink"], "kind": r["kind"], "kpi": r["payload"].get("kpi"),
              "period": r["payload"].get("period"), "status": r["status"], "attempts": r["attempts"],
              "next_attempt": _when(r["next_attempt_at"]),
              # masked again here for rows written before errors were redacted
              "last_error": redact_text(r["last_error"]) if r["last_error"] else None,
              "created": _when(r["created_at"])} for r in rows]
    if fmt == "json":
        print_json({"pending": items})
        return
    _table(plural(len(items), "undelivered message"),
           ("id", "sink", "kpi", "kind", "status", "attempts", "next attempt", "last error"),
           [(i["id"], i["sink"], i["kpi"] or "", i["kind"], i["status"], str(i["attempts"]),
             i["next_attempt"], i["last_error"] or "") for i in items])


@alerts_group.command(name="retry")
@project_file_option
@click.option("--sink", help="Only messages for this sink.")
@fmt_option
def alerts_retry(project_file: str, sink: str | None, fmt: str) -> None:
    """Deliver every undelivered message now; exit 1 if some still fail."""
    from kpiforge.alerts import retry_pending

    project_dir, config = load_config(project_file)
    try:
        report = retry_pending(project_dir=project_dir, sinks=config.get("sinks"),
                               state_path=config.get("state"), plugins=current_plugins(),
                               alerting=config.get("alerting"), sink=sink)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"invalid alerting configuration in {project_file}")
    except KpiforgeError as exc:
        fail(str(exc))
    if fmt == "json":
        print_json(report.to_dict())
    else:
        sent = sum(report.sent.values())
        failed = sum(report.failed.values())
        click.echo(f"{sent} delivered, {failed} failed, {report.pending} still undelivered")
        for name, errors in sorted(report.errors.items()):
            for error in errors[:5]:
                echo(f"  {name}: {error}", err=True)
    raise SystemExit(1 if report.failed else 0)


@alerts_group.command(name="test")
@click.argument("sink")
@project_file_option
def alerts_test(sink: str, project_file: str) -> None:
    """Send a test alert to SINK now (no outbox, no state change)."""
    from kpiforge.alerts import send_test

    project_dir, config = load_config(project_file)
    try:
        alert = send_test(sink, project_dir=project_dir, sinks=config.get("sinks"),
                          plugins=current_plugins(), alerting=config.get("alerting"))
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail(f"invalid alerting configuration in {project_file}")
    except KpiforgeError as exc:
        fail(str(exc))
    echo(f"test alert {alert.id} delivered to sink '{sink}'")


# -- kpiforge silence ----------------------------------------------------------------------

@click.group(name="silence")
def silence_group() -> None:
    """Silence alerts for a while: their state is kept, nothing is sent."""


def _parse_match(values: tuple[str, ...]) -> dict[str, str]:
    matchers: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected label=value, got {item!r}", param_hint="--match")
        matchers[name.strip()] = value.strip()
    return matchers


@silence_group.command(name="add")
@click.option("--kpi", help="The KPI id to silence.")
@click.option("--match", "matches", multiple=True, metavar="LABEL=VALUE",
              help="Only alerts with this label or slice value (repeatable; all must match).")
@click.option("--for", "duration", required=True, help="How long, e.g. 2h, 2d, 1w.")
@click.option("--comment", required=True, help="Why (shown in 'silence list').")
@click.option("--author", default=None, help="Who (default: the current user).")
@project_file_option
def silence_add(kpi: str | None, matches: tuple[str, ...], duration: str, comment: str,
                author: str | None, project_file: str) -> None:
    """Add a silence; prints its id."""
    from kpiforge.alerts import parse_duration

    matchers = _parse_match(matches)
    if not kpi and not matchers:
        raise click.UsageError("give --kpi and/or --match: a silence that matches everything "
                               "would hide every alert")
    try:
        seconds = parse_duration(duration, field_name="--for")
    except KpiforgeError as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="--for")
    import getpass  # here rather than at the top: every command, --help too, loads this plugin
    import secrets

    if author is None:
        try:
            author = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            author = ""
    store = _store(project_file)
    if kpi:
        _check_kpi(kpi, project_file, store)
    now = time.time()
    silence_id = secrets.token_hex(6)
    try:
        store.add_silence(silence_id, kpi=kpi, matchers=matchers, starts_at=now,
                          ends_at=now + seconds, comment=comment, created_by=author, now=now)
    finally:
        store.close()
    click.echo(f"{silence_id} (until {_when(now + seconds)})")


def _project_kpis(project_file: str) -> set[str] | None:
    """The ids of the project's KPIs; None when its definitions do not load."""
    try:
        engine = load_definitions(project_file, plugins=current_plugins())
    except KpiforgeError:
        return None
    return set(engine.definitions)


def _check_kpi(kpi: str, project_file: str, store: Any) -> None:
    """A silence for a KPI nobody defines would silence nothing: a typo, refused."""
    known = _project_kpis(project_file)
    if known is None:
        warn(f"cannot check --kpi '{kpi}': the definitions of {project_file} do not load")
        return
    known |= {row["kpi"] for row in store.alerts(include_inactive=True)}
    if kpi not in known:
        store.close()
        fail(f"--kpi: unknown KPI '{kpi}'{did_you_mean(kpi, sorted(known))}")


@silence_group.command(name="list")
@project_file_option
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@fmt_option
def silence_list(project_file: str, show_all: bool, fmt: str) -> None:
    """List active silences."""
    store = _store(project_file, must_exist=True)
    rows = [] if store is None else store.silences(active_at=None if show_all else time.time())
    if store is not None:
        store.close()
    if fmt == "json":
        print_json({"silences": [{**r, "starts_at": _when(r["starts_at"]),
                                   "ends_at": _when(r["ends_at"]),
                                   "created_at": _when(r["created_at"])} for r in rows]})
        return
    _table(plural(len(rows), "silence"), ("id", "kpi", "match", "until", "comment", "by"),
           [(r["id"], r["kpi"] or "*", ", ".join(f"{k}={v}" for k, v in r["matchers"].items()),
             _when(r["ends_at"]), r["comment"], r["created_by"]) for r in rows])


@silence_group.command(name="remove")
@click.argument("silence_id")
@project_file_option
def silence_remove(silence_id: str, project_file: str) -> None:
    """Remove a silence by id."""
    store = _store(project_file, must_exist=True)
    removed = False
    if store is not None:
        try:
            removed = store.remove_silence(silence_id)
        finally:
            store.close()
    if not removed:
        fail(f"no silence with id {silence_id!r}")
    echo(f"removed {silence_id}")

