"""Where definitions come from: pack references like ``kpiforge:standard``, files and folders.

:func:`resolve_definition_path` is the one place a ``definitions`` item becomes a path, for
``Engine.load``, every command's ``-d``/PATH and the project file alike. References resolve
against the packs plugins registered (``Plugins.definition_packs()``), passed in by the
caller; :func:`with_required_packs` first adds the packs a named pack requires. :func:`discover`
then finds the YAML files of those paths without leaving the folders it was given: a symlink whose
target lies outside is refused (with nothing of the target read), and anything that is not a
regular file is reported instead of opened.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable, Mapping

from ._files import is_inside
from ._packs import Pack
from .errors import Diagnostic, did_you_mean, shorten

__all__ = [
    "OBJECTIVES_FILE",
    "Packs",
    "STANDARD_CATALOG",
    "bundled_definitions_dir",
    "discover",
    "display_path",
    "is_reference",
    "known_packs",
    "pack_of",
    "package_folder",
    "resolve_definition_path",
    "unknown_reference",
    "with_required_packs",
]

STANDARD_CATALOG = "kpiforge:standard"
OBJECTIVES_FILE = "objectives.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")
_TEST_SUFFIXES = (".test.yaml", ".test.yml")
# namespace:name; two letters at least before the colon, so "C:\kpis" and "C:kpis" stay paths
_REFERENCE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+\Z")


def package_folder(package: str) -> Any:
    """The folder of ``package``: its own when it lies on disk (what importlib.resources would
    give; importing that, with tempfile, would cost every command), else importlib's."""
    locations = list(getattr(importlib.import_module(package), "__path__", ()))
    if len(locations) == 1 and os.path.isdir(locations[0]):
        return Path(locations[0])
    from importlib import resources

    return resources.files(package)


def bundled_definitions_dir() -> Path:
    return Path(str(package_folder("kpiforge.definitions")))


@functools.lru_cache(maxsize=1)
def _bundled_resolved() -> Path:
    return bundled_definitions_dir().resolve()


#: Pack name -> pack. Without packs given, the bundled catalog alone (the internal callers
#: that have no plugins; every public entry point passes the registered packs).
Packs = Mapping[str, Pack]


def pack_of(path: Path | None, packs: Packs | None = None) -> Pack | None:
    """The pack whose folder holds ``path``, if any."""
    for pack in known_packs(packs).values():
        if path is not None and path.is_relative_to(pack.path):
            return pack
    return None


def known_packs(packs: Packs | None) -> Packs:
    """``packs``, or without them the bundled catalog alone."""
    if packs is None:
        return {STANDARD_CATALOG: Pack(STANDARD_CATALOG, _bundled_resolved(), "", "", "")}
    return packs


def is_reference(item: str | os.PathLike[str]) -> bool:
    """Whether a ``definitions`` item is a ``namespace:name`` reference rather than a path."""
    return isinstance(item, str) and bool(_REFERENCE.match(item))


def unknown_reference(item: str, packs: Packs | None = None) -> str:
    """The message for a reference no installed pack provides, listing the installed ones."""
    known = sorted(known_packs(packs))
    return (f"unknown definitions pack '{shorten(item)}'{did_you_mean(item, known)}; "
            f"installed packs: {', '.join(known) or 'none'} (see kpiforge packs)")


def resolve_definition_path(item: str | os.PathLike[str], root: Path | None = None,
                            packs: Packs | None = None) -> Path | None:
    """The path a ``definitions`` item names: a pack's folder, or the item as a path
    (relative to ``root`` when given). None for an unknown pack (see
    :func:`unknown_reference`)."""
    if is_reference(item):
        pack = known_packs(packs).get(str(item))
        return pack.path if pack is not None else None
    path = Path(item)
    return root / path if root is not None else path


def with_required_packs(items: Iterable[str | os.PathLike[str]], packs: Packs | None = None
                        ) -> list[str | os.PathLike[str]]:
    """``items`` with, before each pack, the packs it requires (theirs first) that are not
    named already: ``-d acme:sales`` alone loads the standard KPIs its formulas use. A
    required pack that is not installed stays in the list, so it is reported as unknown."""
    given = list(items)
    known = known_packs(packs)
    seen = {str(item) for item in given if is_reference(item)}
    out: list[str | os.PathLike[str]] = []

    def add_requirements(name: str) -> None:
        pack = known.get(name)
        for required in pack.requires if pack is not None else ():
            if required not in seen:
                seen.add(required)
                add_requirements(required)
                out.append(required)

    for item in given:
        if is_reference(item):
            add_requirements(str(item))
        out.append(item)
    return out


def display_path(path: Path, packs: Packs | None = None) -> str:
    """Paths in messages: bundled files as ``definitions/...`` (wherever kpiforge is
    installed), a pack's files as ``acme:sales/file.yaml`` (not ``../site-packages/...``),
    others relative to the working directory."""
    try:
        return "definitions/" + path.relative_to(_bundled_resolved()).as_posix()
    except ValueError:
        pass
    for name, pack in (packs or {}).items():
        if path.is_relative_to(pack.path):
            return f"{name}/{path.relative_to(pack.path).as_posix()}"
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _is_yaml(path: Path) -> bool:
    return path.suffix in _YAML_SUFFIXES


def _walk(folder: Path, problems: list[Diagnostic]) -> list[Path]:
    """The YAML files under ``folder``, never leaving it: directory symlinks are not followed
    (one pointing inside holds nothing new), a file symlink leading outside is refused."""
    found: list[Path] = []
    root = folder.resolve()
    for current, dirs, files in os.walk(folder, followlinks=False):
        base = Path(current)
        for name in sorted(dirs):
            entry = base / name
            if entry.is_symlink() and not is_inside(entry, root):
                problems.append(_outside(entry, folder))
        for name in sorted(files):
            entry = base / name
            if not _is_yaml(entry):
                continue
            if entry.is_symlink() and not is_inside(entry, root):
                problems.append(_outside(entry, folder))
                continue
            found.append(entry)
        dirs.sort()
    return found


def _outside(entry: Path, folder: Path) -> Diagnostic:
    # the target's name is not shown either: the link may point at something private
    return Diagnostic(display_path(entry), 0, 0, "symlink-outside",
                      f"symbolic link leads outside {display_path(folder)}; not followed")


def discover(paths: Iterable[str | os.PathLike[str]], packs: Packs | None = None
             ) -> tuple[list[Path], list[Path], list[Path], list[Diagnostic]]:
    """Split the given pack references, files and folders into definition files, objectives
    files and test files, with a diagnostic for each item that cannot be used."""
    kpi_files: list[Path] = []
    objective_files: list[Path] = []
    test_files: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in with_required_packs(paths, packs):
        path = resolve_definition_path(raw, packs=packs)
        if path is None:
            problems.append(Diagnostic(shorten(str(raw)), 0, 0, "unknown-reference",
                                       unknown_reference(str(raw), packs)))
            continue
        try:
            mode = path.stat().st_mode
        except OSError:
            problems.append(Diagnostic(shorten(str(raw)), 0, 0, "not-found", "no such file or directory"))
            continue
        if stat.S_ISDIR(mode):
            candidates = _walk(path, problems)
        else:
            candidates = [path]
        for candidate in candidates:
            if candidate.name.endswith(_TEST_SUFFIXES):
                test_files.append(candidate)
            elif candidate.name == OBJECTIVES_FILE:
                objective_files.append(candidate)
            else:
                kpi_files.append(candidate)
    dedup = lambda items: list(dict.fromkeys(p.resolve() for p in items))  # noqa: E731
    return dedup(kpi_files), dedup(objective_files), dedup(test_files), problems

