"""Frozen dataclasses filled from YAML mappings: the one way settings and model configs are checked.

`build(cls, values, where)` walks a mapping against a dataclass: nested dataclasses, `dict[str, X]`,
`tuple[X, ...]`, `list[X]`, `X | None` and the scalars. An unknown key, a wrongly typed value or a
value its `__post_init__` rejects is an `InputError` naming the file and line where it was written:
`where(keys)` answers that for a key path (the `Origins` of the YAML files it came from).
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from types import UnionType
from typing import Callable

import yaml

from pipeline.errors import InputError

Keys = tuple[str, ...]
Where = Callable[[Keys], tuple[str | None, int | None]]


class Origins:
    """Where each key path of a merged mapping was written: its file and line.

    A key path not recorded (a default, a value given on the command line without a line) answers
    with the nearest recorded parent, so a section's own errors point at the section.
    """

    def __init__(self, default: str | Path | None = None):
        self.default = None if default is None else str(default)
        self.lines: dict[Keys, tuple[str, int | None]] = {}

    def __call__(self, keys: Keys) -> tuple[str | None, int | None]:
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.lines:
                return self.lines[keys[:end]]
        return self.default, None

    def record(self, keys: Keys, path: str | Path, line: int | None) -> None:
        self.lines[keys] = (str(path), line)

    def drop(self, keys: Keys) -> None:
        """Forget what was recorded at and below `keys` (a value replaced by another file's)."""
        for known in [k for k in self.lines if k[:len(keys)] == keys]:
            del self.lines[known]


def read_yaml(path: str | Path, origins: Origins | None = None, missing_ok: bool = False) -> dict:
    """A YAML file's top-level mapping; the line of every key path goes into `origins`."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise InputError("file not found", path) from None
    return parse_yaml(text, path, origins)


def parse_yaml(text: str, name: str | Path, origins: Origins | None = None) -> dict:
    """YAML text's top-level mapping (`name`: the file it is, for messages and `origins`)."""
    try:
        values = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(f"not valid YAML ({str(error).splitlines()[0]})", name,
                         None if mark is None else mark.line + 1) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError("must be a mapping of keys to values", name, 1)
    if origins is not None:
        _record_lines(root, (), name, origins)
    return values


def _record_lines(node, keys: Keys, path: str | Path, origins: Origins) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*keys, str(key.value))
            origins.record(here, path, key.start_mark.line + 1)
            _record_lines(value, here, path, origins)


def dotted(keys: Keys) -> str:
    return ".".join(keys)


def build(cls: type, values, where: Where, keys: Keys = ()):
    """Dataclass `cls` from the mapping `values` found at `keys`; missing keys keep their defaults."""
    if not isinstance(values, dict):
        raise InputError(f"{dotted(keys) or 'the file'}: expected a mapping, got {values!r}", *where(keys))
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    checked = {}
    for key, value in values.items():
        here = (*keys, str(key))
        if key not in known:
            raise InputError(f"unknown config key {dotted(here)!r}", *where(here))
        checked[key] = coerce(value, hints[key], where, here)
    try:
        return cls(**checked)
    except ValueError as error:
        # A check's message starts with the key it is about ("k must be at least 2"): point at that key.
        first = str(error).split(" ", 1)[0]
        prefix = f"{dotted(keys)}: " if keys else ""
        raise InputError(f"{prefix}{error}", *where((*keys, first) if first in known else keys)) from None


def coerce(value, hint, where: Where, keys: Keys):
    """`value` as type `hint`: a dataclass, dict[str, X], tuple[X, ...], list[X], X | None or a scalar."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, keys)
    origin = typing.get_origin(hint)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _type_error(keys, f"expected a mapping, got {value!r}", where)
        item = typing.get_args(hint)[1] if typing.get_args(hint) else typing.Any
        return {str(k): v if item is typing.Any else coerce(v, item, where, (*keys, str(k))) for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _type_error(keys, f"expected a list, got {value!r}", where)
        return origin(coerce(item, typing.get_args(hint)[0], where, keys) for item in value)
    if hint is typing.Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise _type_error(keys, f"expected {hint.__name__}, got {value!r}", where)
    return value


def _type_error(keys: Keys, message: str, where: Where) -> InputError:
    return InputError(f"{dotted(keys)}: {message}", *where(keys))


def from_mapping(cls: type, values: dict, path: str | Path, lines: dict[str, int] | None = None):
    """Dataclass `cls` from one flat YAML file's mapping; `lines` maps its keys to their 1-based line."""
    origins = Origins(path)
    for key, line in (lines or {}).items():
        origins.record((key,), path, line)
    return build(cls, values, origins)


def to_mapping(config) -> dict:
    """Plain dict (lists, not tuples) that YAML and JSON can write and `build` reads back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
