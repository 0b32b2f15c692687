"""The progress display of long commands: on stderr, only when stderr is a terminal.

A piped or redirected stderr (CI logs, ``2> file``), ``--quiet`` or ``TERM=dumb`` get nothing,
so logs hold only the messages that matter. The work reports through a plain callable,
``progress(step, done, total)``, and knows nothing of rich.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

from ._cli_common import real_console, stderr
from ._terminal import clean

__all__ = ["ProgressCallback", "progress_display"]

ProgressCallback = Callable[[str, int, int], None]


def _shown(quiet: bool) -> bool:
    return not quiet and stderr.is_terminal and os.environ.get("TERM") != "dumb"


@contextlib.contextmanager
def progress_display(description: str, *, quiet: bool = False) -> Iterator[ProgressCallback | None]:
    """A callback that moves a progress bar on stderr, or None when nothing is to be shown."""
    if not _shown(quiet):
        yield None
        return
    # imported only when a bar is drawn: --help and piped output do not need it
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), console=real_console(stderr), transient=True)
    task = bar.add_task(clean(description), total=None)

    def report(step: str, done: int, total: int) -> None:
        bar.update(task, description=clean(f"{description}: {step}"), completed=done, total=total)

    with bar:
        yield report
