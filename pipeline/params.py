"""`params.yaml`: every knob of the DAG. Command-line flags override the file, section by section."""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pipeline.errors import InputError

DEFAULT_PATH = Path("params.yaml")


def load(path: str | Path = DEFAULT_PATH) -> dict:
    """The whole params file; an empty dict when the default file is absent."""
    path = Path(path)
    if not path.exists():
        if path == DEFAULT_PATH:
            return {}
        raise InputError("params file not found", path)
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML ({str(error).splitlines()[0]})", path) from None
    if not isinstance(params, dict):
        raise InputError("params must be a mapping", path)
    return params


def section(args: argparse.Namespace, name: str, defaults: dict) -> dict:
    """`defaults` < params.yaml's section `name` < flags given on the command line (not None)."""
    merged = dict(defaults)
    merged.update(load(args.params).get(name) or {})
    for key in defaults:
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    return merged


def data_root(args: argparse.Namespace) -> Path:
    """The Kaggle-layout dataset root: `--root` if given, else params.yaml's `data.root`."""
    root = getattr(args, "root", None) or (load(args.params).get("data") or {}).get("root")
    if not root:
        raise InputError("no dataset root: pass --root or set data.root", args.params)
    return Path(root)
