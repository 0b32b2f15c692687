"""The two sides of ``kpiforge diff``: a path, a definitions reference, or a git revision.

``git:REV`` and ``git:REV:PATH`` name a revision of the repository the command runs in. The
tree at that revision is written to a temporary folder with ``git archive`` (nothing in the
working tree or the index is touched) and loaded from there; paths in messages are then mapped
back to the repository's own files, so an annotation points where a reviewer can click.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._defpaths import is_reference
from .errors import KpiforgeError, shorten

__all__ = ["GIT_PREFIX", "Side", "load_side", "materialise"]

GIT_PREFIX = "git:"
PROJECT_FILE = "kpiforge.yaml"
_GIT_TIMEOUT = 120  # seconds: git archive of a large repository, not an endless wait


@dataclass(frozen=True)
class Side:
    """One side of a diff: what was asked (``spec``) and the paths to load. ``project`` is a
    project file whose ``definitions:`` are the side; ``tree`` and ``repo`` map files of a
    materialised revision back to the repository."""

    spec: str
    paths: tuple[str | Path, ...]
    project: Path | None = None
    tree: Path | None = None
    repo: Path | None = None

    def display(self, path: str) -> str:
        """A path of this side as messages should show it (relative to the working directory)."""
        if self.tree is None or self.repo is None:
            return path
        try:
            inside = Path(os.path.abspath(path)).relative_to(self.tree)
        except ValueError:
            return path
        return os.path.relpath(self.repo / inside)


def _git(args: list[str], cwd: Path, what: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise KpiforgeError(f"{what}: git is not installed (needed for git: revisions)") from None
    except subprocess.TimeoutExpired:
        raise KpiforgeError(f"{what}: git took more than {_GIT_TIMEOUT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1].removeprefix("fatal: ") if message else ""
        raise KpiforgeError(f"{what}: {shorten(reason, 200)}" if reason else what)
    return done.stdout


def _local(spec: str) -> Side:
    """A path or reference as given; a folder holding a project file (or the file itself)
    stands for the project's definitions."""
    if is_reference(spec):  # a pack: resolved by Engine.load against the installed packs
        return Side(spec, (spec,))
    path = Path(spec)
    if not path.exists():
        raise KpiforgeError(f"{shorten(spec)}: no such file or directory")
    project = path / PROJECT_FILE if path.is_dir() else path
    if project.name == PROJECT_FILE and project.is_file():
        return Side(spec, (), project=project)
    return Side(spec, (path,))


def materialise(spec: str, other: str, workdir: Path) -> Side:
    """The side ``spec`` names; a git revision is extracted under ``workdir``. ``git:REV``
    without a path takes the other side's path when that is a local path inside the
    repository, else the current directory, so ``diff git:HEAD~1 .`` compares like with like."""
    if not spec.startswith(GIT_PREFIX):
        return _local(spec)
    rev, _, inner = spec[len(GIT_PREFIX):].partition(":")
    if not rev:
        raise KpiforgeError(f"{shorten(spec)}: expected git:REV or git:REV:PATH")
    cwd = Path.cwd()
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd,
                     f"{shorten(spec)}: not inside a git repository").decode().strip()).resolve()
    _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], root,
         f"{shorten(spec)}: unknown revision '{shorten(rev)}'")
    if not inner:
        local = other if other and not other.startswith(GIT_PREFIX) and not is_reference(other) else "."
        inner = local
    target = (cwd / inner).resolve()
    try:
        relative = target.relative_to(root).as_posix() or "."
    except ValueError:
        raise KpiforgeError(f"{shorten(spec)}: {shorten(inner)} is outside the repository "
                            f"{root}") from None
    archive = _git(["archive", "--format=tar", rev, "--", relative], root,
                   f"{shorten(spec)}: cannot read {shorten(relative)} at {shorten(rev)}")
    tree = workdir / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")  # no links or paths leaving the folder
    local_side = _local(str(tree / relative))
    return Side(spec, local_side.paths, local_side.project, tree.resolve(), root)


def load_side(side: Side, plugins: Any) -> Any:
    """The :class:`kpiforge.Engine` of one side's definitions."""
    from ._engine import Engine
    from .commands import load_definitions

    if side.project is not None:
        return load_definitions(side.project, plugins=plugins)
    return Engine.load(*side.paths, plugins=plugins)
