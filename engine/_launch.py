"""The ``kpiforge`` command: ``--version`` and a cached ``--help`` answered before click loads.

Every other command line goes to :func:`kpiforge.cli.main` unchanged. ``kpiforge --version``
prints what click's version option prints (``kpiforge, version X``); ``kpiforge --help`` and
``-h`` print the text click rendered the last time, when the help cache (``_help_cache``) has
it for exactly this code, click, width and set of plugins, and otherwise render it through the
real command group and store it. Both cost the interpreter and this module only.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from . import __version__

__all__ = ["main"]

_HELP = ("--help", "-h")
_PLUGINS_DIR_ENV = "KPIFORGE_PLUGINS_DIR"  # cli.PLUGINS_DIR_ENV (cli imports click; a test checks)


def main(argv: Sequence[str] | None = None) -> None:
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with it closed (`>&-`): output goes nowhere
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
    args = list(sys.argv[1:] if argv is None else argv)
    # a --plugins-dir that is not a folder is an error click reports, even for --version
    if len(args) == 1 and not os.environ.get(_PLUGINS_DIR_ENV):
        if args[0] == "--version":
            sys.stdout.write(f"kpiforge, version {__version__}\n")
            return
        if args[0] in _HELP and _print_help():
            return
    from .cli import main as cli_main

    cli_main(args)


def _print_help() -> bool:
    """Print the help text from the cache, or render, print and store it; False when it
    cannot be cached (then click prints it as for any other command line)."""
    from ._help_cache import help_key, read_help, write_help

    key = help_key()
    if key is None:
        return False
    text = read_help(key)
    if text is None:
        from .cli import help_text

        text = help_text()
        if text is None:
            return False
        write_help(key, text)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `kpiforge --help | head -1`: nothing more to say, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


if __name__ == "__main__":
    main()
