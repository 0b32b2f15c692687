"""Start-up benchmark: what does a kpiforge command cost before it does any work?

Run ``python benchmarks/bench_startup.py`` (``--quick`` for a fast, noisier run). Each command
runs in its own fresh process, N times, and the median is kept; the floors are measured in the
same run with the same interpreter, so the ratios are meaningful on any machine:

* ``kpiforge --help``, ``kpiforge --version`` and ``kpiforge validate`` (the bundled catalog,
  run in an empty folder so no project is found). ``--help`` and ``validate`` run with
  kpiforge's caches (docs/cli.md: the help text, the schema verdicts) warm, as after any earlier
  ``--help`` or ``validate`` of the same files: the untimed warm-up run fills them, in a cache
  folder of this run's own. The ``(no cache)`` lines (``KPIFORGE_NO_CACHE=1``) are what the
  first run after an install or a change costs: click renders the help, jsonschema checks
  every file;
* floors: ``python -c pass`` (the interpreter alone) and ``python -c "import click"`` (the
  least a click command line can cost).

Time is the child's CPU time (user + system, from ``wait4``): on a shared machine wall time
mostly measures the other processes, CPU time much less. Wall time is shown too.

The targets are the issue's (issue 11, "Start-up"): ``kpiforge --help`` under half of the
180 ms the issue measured before this work (so under 90 ms; 180 ms is the issue's figure, not
one measured here), and ``kpiforge validate`` on the catalog under 150 ms.

``--kpiforge PATH`` measures another installation; the floors use ``--python`` (default: this
interpreter). ``--before PATH`` also measures an installation from before the change (e.g. a
checkout of main's ``.venv/bin/kpiforge``) in the same run, and prints the issue's "under half
of today's time" as a ratio of the two, which holds on any machine (a loaded or slow one makes
the absolute targets above meaningless: compare ``python -c pass`` with the ~10-20 ms it costs
on an idle laptop).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEFORE_HELP_MS = 180.0  # the measurement of `kpiforge --help` before this work
HELP_TARGET_MS = BEFORE_HELP_MS / 2
VALIDATE_TARGET_MS = 150.0


# Bytecode is cached, as after any install (pip compiles a wheel's modules; an editable
# install writes them on first run): with PYTHONDONTWRITEBYTECODE set, every run of a changed
# module would compile it again and the benchmark would measure the compiler.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# commands run with these variables set on top of CHILD_ENV
NO_CACHE = {"KPIFORGE_NO_CACHE": "1"}
COMMAND_ENV: dict[str, dict[str, str]] = {"kpiforge validate (no cache)": NO_CACHE,
                                          "kpiforge --help (no cache)": NO_CACHE,
                                          "before: kpiforge validate": NO_CACHE}


def run_once(argv: list[str], cwd: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one fresh process running ARGV to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**CHILD_ENV, **(env or {})})
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode()}")
    return usage.ru_utime + usage.ru_stime, wall


def measure(commands: dict[str, list[str]], repeats: int, cwd: str) -> dict[str, tuple[float, float]]:
    """Median (cpu, wall) per command; the commands take turns so load drifts hit all alike."""
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    for name, argv in commands.items():  # warm the OS file cache and bytecode once, untimed
        run_once(argv, cwd, COMMAND_ENV.get(name))
    for _ in range(repeats):
        for name, argv in commands.items():
            c, w = run_once(argv, cwd, COMMAND_ENV.get(name))
            cpu[name].append(c)
            wall[name].append(w)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in commands}


def default_kpiforge(python: str) -> list[str]:
    script = Path(python).parent / "kpiforge"
    return [str(script)] if script.exists() else [python, "-m", "kpiforge"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--repeats", type=int, help="processes per command (default 21, quick 3)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the floors")
    parser.add_argument("--kpiforge", help="the kpiforge command to measure "
                        "(default: the one installed next to --python)")
    parser.add_argument("--before", help="a kpiforge command from before the change, measured "
                        "in the same run for the 'under half of before' target")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 21)
    kpiforge = [args.kpiforge] if args.kpiforge else default_kpiforge(args.python)

    commands = {
        "python -c pass": [args.python, "-c", "pass"],
        'python -c "import click"': [args.python, "-c", "import click"],
        "kpiforge --help": kpiforge + ["--help"],
        "kpiforge --help (no cache)": kpiforge + ["--help"],
        "kpiforge --version": kpiforge + ["--version"],
        "kpiforge validate (catalog)": kpiforge + ["validate"],
        "kpiforge validate (no cache)": kpiforge + ["validate"],
    }
    if args.before:
        commands["before: kpiforge --help"] = [args.before, "--help"]
        commands["before: kpiforge validate"] = [args.before, "validate"]
    with tempfile.TemporaryDirectory() as empty:  # no kpiforge.yaml here: the bundled catalog
        # the verdict cache of this run's own, never the user's (the before side has none)
        CHILD_ENV["KPIFORGE_CACHE_DIR"] = os.path.join(empty, ".cache")
        medians = measure(commands, repeats, empty)

    floor, click_floor = medians["python -c pass"][0], medians['python -c "import click"'][0]
    print(f"kpiforge start-up benchmark ({'quick' if args.quick else 'full'}; {repeats} fresh "
          f"processes per command, medians; python {sys.version.split()[0]})")
    print(f"command: {' '.join(kpiforge)}")
    print(f"{'command':<30}{'cpu ms':>9}{'wall ms':>9}{'x pass':>9}{'x click':>9}")
    for name, (cpu, wall) in medians.items():
        print(f"{name:<30}{cpu * 1e3:>9.1f}{wall * 1e3:>9.1f}{cpu / floor:>8.2f}x"
              f"{cpu / click_floor:>8.2f}x")
    print()
    help_ms = medians["kpiforge --help"][0] * 1e3
    validate_ms = medians["kpiforge validate (catalog)"][0] * 1e3
    targets = [
        (f"kpiforge --help < {HELP_TARGET_MS:.0f} ms (half the issue's {BEFORE_HELP_MS:.0f} ms "
         "before)", help_ms, HELP_TARGET_MS),
        (f"kpiforge validate (catalog) < {VALIDATE_TARGET_MS:.0f} ms", validate_ms,
         VALIDATE_TARGET_MS),
    ]
    for label, measured_ms, limit_ms in targets:
        ratio = measured_ms / limit_ms
        print(f"target {label}: measured {ratio:.2f}x of the limit ({measured_ms:.1f} ms) -> "
              f"{'met' if ratio < 1 else 'missed'}")
    if args.before:
        ratio = help_ms / (medians["before: kpiforge --help"][0] * 1e3)
        print(f"target kpiforge --help < 0.5x before (both measured in this run): measured "
              f"{ratio:.2f}x -> {'met' if ratio < 0.5 else 'missed'}")
        ratio = validate_ms / (medians["before: kpiforge validate"][0] * 1e3)
        print(f"info kpiforge validate vs before (both measured in this run): {ratio:.2f}x")
        ratio = medians["kpiforge validate (no cache)"][0] / medians["before: kpiforge validate"][0]
        print(f"info kpiforge validate (no cache) vs before (both measured in this run): "
              f"{ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
