"""The sources of a run: built from the project's settings, asked where data ends, fetched.

A source is a plugin's object, so every call into one goes through :func:`call_source`: a
:class:`kpiforge.SourceError` comes out positioned at the ``kpiforge.yaml`` line of the
setting it is about, any other exception comes out as a ``SourceError`` naming the source, and
secrets put in by ``${VAR}`` never reach a message.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._definitions import did_you_mean
from ._redact import RedactingSource, redact_source_error, redact_text, secret_values
from ._run_plan import RunPlan, RunProject
from .sources import SourceFrame, SourceRequest
from .errors import KpiforgeError, RunError, SourceError
from .hookspecs import SourceContext

__all__ = ["build_sources", "call_source", "data_by_source", "fetch_frames", "latest_day"]


def data_by_source(project: RunProject, data: Any, plugins: Any) -> dict[str, Any]:
    """The in-memory table of each source that takes one: the project's inline data, updated
    with ``data`` (a ``{source: table}`` mapping, or one table for the only such source)."""
    tables = dict(project.inline_data)
    types = plugins.source_types
    in_memory = [n for n, s in project.sources.items()
                 if s.type in types and "data" in types[s.type].capabilities]
    if data is None:
        return tables
    if isinstance(data, Mapping):
        # a table type is never a Mapping (DataFrame, pyarrow Table, list): this is {name: table}
        unknown = [k for k in data if k not in project.sources]
        if unknown:
            key = unknown[0]
            expected = ", ".join(f"'{n}'" for n in in_memory) or "none"
            raise RunError(f"data: no source is named {key!r}{did_you_mean(key, project.sources)}; "
                           f"the project's sources that take in-memory data: {expected}")
        tables.update(data)
        return tables
    if len(in_memory) == 1:
        tables[in_memory[0]] = data
        return tables
    names = ", ".join(in_memory) or "none"
    raise RunError(f"data: pass a mapping of source name to table (sources that take in-memory data: {names})")


def build_sources(project: RunProject, names: Iterable[str], plugins: Any,
                  data: Mapping[str, Any]) -> dict[str, Any]:
    """The source objects ``names``, made by their type's factory (``${VAR}`` expanded, and the
    values put in redacted from everything the source says)."""
    built = {}
    for name in names:
        config = project.sources[name]
        registration = plugins.source_types.get(config.type)
        if registration is None:
            raise SourceError(f"source '{name}': unknown source type '{config.type}'"
                              f"{did_you_mean(config.type, plugins.source_types)}")
        expanded: list[str] = []
        settings = project.source_settings(name, expanded=expanded)
        if name in data:
            settings["data"] = data[name]
        secrets = secret_values(registration.secrets, settings, expanded)
        try:
            source = registration.obj(name, settings, SourceContext(project_dir=project.root))
        except SourceError as exc:
            exc = redact_source_error(exc, secrets)
            located = _located(project, name, exc) if exc.field else None
            if located is None:
                raise exc from None
            raise located from None
        except KpiforgeError:
            raise
        except Exception as exc:  # a plugin's factory: translate, naming source and plugin
            raise SourceError(redact_text(f"source '{name}' ({config.type}, plugin "
                                          f"{registration.plugin}): {type(exc).__name__}: {exc}",
                                          secrets)) from None
        built[name] = RedactingSource(name, source, secrets) if secrets else source
    return built


def call_source(project: RunProject, name: str, what: str, func: Any, *args: Any) -> Any:
    """``func(*args)``, a call into source ``name``, with its errors as located SourceErrors."""
    try:
        return func(*args)
    except SourceError as exc:
        located = _located(project, name, exc)
        if located is None:
            raise
        raise located from exc
    except KpiforgeError:
        raise
    except Exception as exc:
        raise SourceError(f"source '{name}': {what} failed: {type(exc).__name__}: {exc}") from exc


def _located(project: RunProject, name: str, exc: SourceError) -> SourceError | None:
    """``exc`` with each problem prefixed by the kpiforge.yaml line that declared the setting
    it is about; None when there is nothing to add (no file, or already located)."""
    config = project.sources.get(name)
    if config is None or not config.file or getattr(exc, "located", False):
        return None
    problems = getattr(exc, "problems", None) or ((getattr(exc, "field", ()), str(exc)),)
    lines = [f"{config.file}:{config.line_of(field)}: {text}" for field, text in problems]
    located = SourceError("\n".join(lines), field=getattr(exc, "field", ()),
                          debug=getattr(exc, "debug", None))
    located.located = True  # type: ignore[attr-defined]
    return located


def latest_day(project: RunProject, sources: Mapping[str, Any]) -> date | None:
    """The newest local day with data over ``sources``."""
    best: date | None = None
    request = SourceRequest("day", project.timezone, project.week_start_index)
    for name, source in sources.items():
        if hasattr(source, "latest"):
            moment = call_source(project, name, "finding the latest data", source.latest, request)
            day = moment.date() if hasattr(moment, "date") and moment is not None else moment
        else:  # a plugin source without latest(): ask for every day, keep the last label
            frame = call_source(project, name, "fetch", source.fetch, request)
            day = max((date.fromisoformat(p) for p in frame.periods), default=None)
        if day is not None and (best is None or day > best):
            best = day
    return best


def fetch_frames(project: RunProject, sources: Mapping[str, Any], plan: RunPlan, grain: str,
                 ranges: tuple[tuple[date, date], ...], dims: Sequence[str],
                 progress: Callable[[str, int, int], None] | None
                 ) -> tuple[dict[str, SourceFrame], list[str]]:
    """One aggregate query per splittable source over ``ranges``: its frame by source name,
    and the warnings the sources gave (each once)."""
    frames: dict[str, SourceFrame] = {}
    warnings: list[str] = []
    splittable = plan.splittable
    for done, name in enumerate(splittable):
        if progress is not None:
            progress(f"source '{name}'", done, len(splittable) + 1)
        inputs = plan.sources[name].inputs
        config = project.sources[name]
        request = SourceRequest(grain, project.timezone, project.week_start_index, ranges, tuple(dims),
                                {i: config.inputs[i] for i in inputs})
        frame = call_source(project, name, "fetch", sources[name].fetch, request)
        if not isinstance(frame, SourceFrame):
            raise SourceError(f"source '{name}': fetch returned {type(frame).__name__}, not a SourceFrame")
        for what, keys in (("dimension", dims), ("input", inputs)):
            table = frame.dims if what == "dimension" else frame.inputs
            absent = [k for k in keys if k not in table]
            if absent:
                raise SourceError(f"source '{name}': fetch returned no {what} {', '.join(absent)}")
        frames[name] = frame
        warnings.extend(w for w in getattr(frame, "warnings", ()) if w not in warnings)
    return frames, warnings
