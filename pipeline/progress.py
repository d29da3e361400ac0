"""Progress bars on long loops: images done, rate and time left, on stderr.

Quiet when turned off (`enabled=False`, the stages' `--no-progress`) or when stderr is not a
terminal (a log file, CI, `dvc repro` piped), so logs keep their one summary line per stage.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterable, Iterator

from tqdm import tqdm


def shown(enabled: bool) -> bool:
    return enabled and sys.stderr.isatty()


def progress(iterable: Iterable, enabled: bool = True, total: int | None = None, description: str = "",
             unit: str = "image") -> Iterable:
    """`iterable` itself, counted on a bar where one is shown."""
    if not shown(enabled):
        return iterable
    return tqdm(iterable, total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def bar(enabled: bool = True, total: int | None = None, description: str = "", unit: str = "image") -> Iterator:
    """A bar to `update(n)` by hand (work that comes in chunks); does nothing where none is shown."""
    if not shown(enabled):
        yield _Quiet()
        return
    with tqdm(total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False) as counter:
        yield counter
