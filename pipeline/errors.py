"""Errors about bad input: one line naming the file and line, exit status 2 (see `pipeline.cli`)."""
from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input the user must fix. `line` is 1-based with the CSV header as line 1."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line

    def __reduce__(self):  # raised in a worker process, it reaches the parent whole
        return InputError, (self.message, self.path, self.line)

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message
