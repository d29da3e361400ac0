"""Seconds and peak memory of each command a rehearsal runs, DVC's stage commands included.

DVC runs every stage as `python -m pipeline ...` through a shell, so the rehearsal puts a `python` of
its own first on DVC's PATH (`write_shim`): it starts the real interpreter with the same arguments,
samples the memory of its process tree twice a second, and appends one JSON line per command to a
log. Peak memory is the larger of the kernel's peak of the largest process (`ru_maxrss`, exact) and
the sampled sum of the tree's proportional set sizes (a stage with worker processes: what they take
together, shared pages counted once; up to half a second late). CPU seconds (user and system, the
command and every child it waited for) hardly depend on what else the machine runs: on a busy machine
they say what the wall seconds would be on an idle one (at most, with the cores in use, CPU / cores).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class Usage:
    """One command's run: its arguments, exit status, wall seconds and peak resident memory (MB)."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def measured(argv: list[str], env: dict | None = None, cwd: str | Path | None = None) -> Usage:
    """Run `argv` (its output goes where ours goes) and measure it."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd)
    sampled = 0.0
    while True:
        done, status, usage = os.wait4(process.pid, os.WNOHANG)  # wait4: the child's rusage, its peak memory
        if done:
            break
        sampled = max(sampled, tree_memory(process.pid))
        time.sleep(SAMPLE_SECONDS)
    process.returncode = os.waitstatus_to_exitcode(status)
    largest = usage.ru_maxrss * 1024  # kilobytes on Linux
    return Usage(tuple(argv[1:]), process.returncode, round(time.perf_counter() - start, 1),
                 round(usage.ru_utime + usage.ru_stime, 1), round(max(largest, sampled) / 2**20, 1))


def tree_memory(pid: int) -> float:
    """Bytes a process and all its descendants take now (proportional set sizes); 0 once it is gone."""
    try:
        process = psutil.Process(pid)
        return sum(p.memory_full_info().pss for p in [process, *process.children(recursive=True)])
    except psutil.Error:
        return 0.0


def append(log: Path, usage: Usage) -> None:
    with open(log, "a") as stream:
        stream.write(json.dumps(asdict(usage)) + "\n")


def read_log(log: Path) -> list[Usage]:
    if not log.exists():
        return []
    return [Usage(**{**row, "argv": tuple(row["argv"])}) for row in map(json.loads, log.read_text().splitlines())]


SHIM = """#!{python}
# `python` for the stage commands of a rehearsal: the real interpreter, measured (pipeline.rehearsal.measure).
import sys
from pipeline.rehearsal.measure import shim_main
sys.exit(shim_main({python!r}, {log!r}))
"""


def write_shim(folder: Path, log: Path) -> Path:
    """An executable `python` in `folder` that runs this interpreter measured into `log`."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "python"
    shim.write_text(SHIM.format(python=sys.executable, log=str(log)))
    shim.chmod(0o755)
    return shim


def shim_main(python: str, log: str) -> int:
    """The shim's body: run the real interpreter with our arguments, log its usage, exit as it did."""
    usage = measured([python, *sys.argv[1:]])
    append(Path(log), usage)
    return usage.returncode
