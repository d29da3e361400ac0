"""`python -m pipeline profile NAME [NAME ...]`: params.yaml becomes the committed params.yaml with
profiles/NAME.yaml merged over it (several: in order).

DVC reads params.yaml for its templates and parameter dependencies, so `make repro PROFILE=NAME`
writes the merged file there first; `git checkout params.yaml` goes back. `--set KEY=VALUE` keys are
written over the profile (a rehearsal's `train.step_cap`). The base is always the
committed params.yaml (outside a git checkout: the file itself), so switching profiles never
merges one profile over another; uncommitted edits of params.yaml are refused, not overwritten.
"""
from __future__ import annotations

import subprocess
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="profiles/NAME.yaml (or a path to a profile file); several are merged in order")


def committed(path: Path) -> str | None:
    """The file's text at git's HEAD; None outside a git checkout or for a file git does not track."""
    try:
        shown = subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return shown.stdout if shown.returncode == 0 else None


def run(settings, args) -> int:
    from pipeline import io
    from pipeline.errors import InputError
    from pipeline.settings.load import GENERATED, merged_text, parse_set

    params = Path(args.params)
    current = params.read_text() if params.exists() else ""
    base = committed(params)
    if base is None:
        if current.startswith(GENERATED):
            raise InputError("is a generated profile and no git history holds the base to merge over", params)
        base = current
    elif current != base and not current.startswith(GENERATED):
        raise InputError("has uncommitted changes: commit or stash them before switching profile", params)
    text = merged_text(params, args.names, base, [parse_set(key) for key in args.set_keys])
    if text == current:
        print(f"{params}: already the {' '.join(args.names)} profile, nothing to do")
        return 0
    io.write_text(params, text)
    print(f"{params}: the committed params with {' '.join(args.names)} merged over it")
    return 0
