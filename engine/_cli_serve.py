"""``kpiforge serve``: a local, read-only dashboard and JSON API over a project."""

from __future__ import annotations

from typing import Any

import click

from ._cli_common import fail, load_project_or_fail, print_diagnostics, project_option
from .errors import DefinitionError, KpiforgeError

__all__ = ["serve_command"]


@click.command(name="serve")
@project_option("kpiforge.yaml")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (only this machine by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.pass_obj
def serve_command(context: Any, project_file: str, host: str, port: int) -> None:
    """Serve a read-only dashboard (overview by objective, KPI pages, English and French) and a
    JSON API under /api/ (described at /openapi.json) over the project's runs and history.
    Needs the serve extra: pip install 'kpiforge[serve]'."""
    from ._serve import create_app, load_serve_libraries

    try:
        load_serve_libraries()
    except KpiforgeError as exc:
        fail(str(exc))
    project = load_project_or_fail(project_file, context.plugins)
    try:
        print_diagnostics(project.engine.warnings)
    except DefinitionError as exc:
        print_diagnostics(exc.diagnostics)
        fail("the project's definitions have errors")
    import uvicorn

    click.echo(f"kpiforge serve: http://{host}:{port}/ (Ctrl+C stops)", err=True)
    uvicorn.run(create_app(project), host=host, port=port, log_level="warning")
