"""The entry point look-up that spares importlib.metadata agrees with importlib.metadata.

Each case lays out distributions in a folder put first on ``sys.path`` and compares what
``kpiforge._entry_points.entry_points`` finds with ``importlib.metadata.entry_points``, and
whether importlib.metadata was needed at all.
"""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile

import pytest

from kpiforge import _entry_points

GROUP = "kpiforge_test_group"  # no installed distribution declares it


def dist(root, name, entry_points_txt, suffix=".dist-info"):
    folder = root / f"{name}-1.0{suffix}"
    folder.mkdir()
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points_txt is not None:
        (folder / "entry_points.txt").write_text(entry_points_txt)


CASES = {
    "none declares it": ([("a", "[console_scripts]\na = a:main\n")], False),
    "group named only in an entry": ([("b", f"[console_scripts]\n{GROUP} = b:main\n")], False),
    "declared": ([("c", f"[{GROUP}]\nc = c_plugin\n")], True),
    "declared with spaces": ([("d", f"  [{GROUP}]  \nd = d_plugin\n")], True),
    "declared, no entries": ([("e", f"[{GROUP}]\n")], True),
    "no entry_points.txt": ([("f", None)], False),
    "egg-info": ([("g", f"[{GROUP}]\ng = g_plugin\n", ".egg-info")], True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_look_up_agrees_with_importlib_metadata(name, tmp_path, monkeypatch):
    dists, needs_metadata = CASES[name]
    for d in dists:
        dist(tmp_path, *d)
    monkeypatch.setattr(sys, "path", [str(tmp_path)] + sys.path)
    expected = sorted((ep.name, ep.value) for ep in importlib.metadata.entry_points(group=GROUP))
    assert _entry_points.may_declare(GROUP) is needs_metadata
    assert sorted((ep.name, ep.value) for ep in _entry_points.entry_points(GROUP)) == expected
    assert bool(expected) <= needs_metadata  # never an entry point missed


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("z-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: z\nVersion: 1.0\n")
        z.writestr("z-1.0.dist-info/entry_points.txt", f"[{GROUP}]\nz = z_plugin\n")
    monkeypatch.setattr(sys, "path", [str(archive)] + sys.path)
    assert _entry_points.may_declare(GROUP)
    assert [ep.name for ep in _entry_points.entry_points(GROUP)] == ["z"]


def test_a_finder_that_provides_distributions_is_asked_through_importlib_metadata(monkeypatch):
    class Finder:
        @staticmethod
        def find_spec(*args, **kwargs):
            return None

        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", sys.meta_path + [Finder()])
    assert _entry_points.may_declare(GROUP)
