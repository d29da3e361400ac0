"""Build the settings tree once per command: params.yaml, profiles over it, then the flags.

A profile (`profiles/<name>.yaml`) holds only what differs from params.yaml and is merged over it
key by key; several are merged in order (`real fashionpedia`: the real recipes, then the papers'
data layout); a flag or `--set key=value` sets one key. Each value keeps the file and line that set
it, so a bad key or value is one line naming them (`pipeline.typed`). Keys a section's schema does
not have are errors wherever they were written; open mappings (`models`, `ensemble.weights`, a
model's `train` overrides) take new keys that their schema accepts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from pipeline.errors import InputError
from pipeline.settings.sections import Settings
from pipeline.typed import Keys, Origins, build, parse_yaml, read_yaml

DEFAULT_PARAMS = Path("params.yaml")
PROFILES = Path("profiles")

# One override: (key path, value, what set it: a flag such as `--max-size`, or `--set`).
Override = tuple[Keys, object, str]


def load_settings(params: str | Path = DEFAULT_PARAMS, profile: str | Sequence[str] | None = None,
                  overrides: Iterable[Override] = ()) -> Settings:
    """The checked settings tree; an absent default params.yaml gives every default."""
    return checked(*merged_params(params, profile, overrides))


def checked(values: dict, origins: Origins) -> Settings:
    settings = build(Settings, values, origins)
    object.__setattr__(settings, "origins", origins)  # not a key: frozen, so set once here
    check(settings)
    return settings


def merged_params(params: str | Path = DEFAULT_PARAMS, profile: str | Sequence[str] | None = None,
                  overrides: Iterable[Override] = (), text: str | None = None) -> tuple[dict, Origins]:
    """The raw mapping of params.yaml (or `text`, its content) with the profile and overrides applied,
    and where each key came from."""
    origins = Origins(params)
    if text is None:
        values = read_yaml(params, origins, missing_ok=Path(params) == DEFAULT_PARAMS)
    else:
        values = parse_yaml(text, params, origins)
    for name in profile_names(profile):
        path = profile_path(name)
        overlay = Origins(path)
        merge(values, read_yaml(path, overlay), (), origins, overlay)
    for keys, value, source in overrides:
        put(values, keys, value, source, origins)
    return values, origins


def profile_names(profile: str | Sequence[str] | None) -> list[str]:
    """Profiles to merge in order: a name, a list of names, or names separated by spaces or commas."""
    names = [profile] if isinstance(profile, str) else list(profile or ())
    return [part for name in names for part in name.replace(",", " ").split()]


def profile_path(profile: str) -> Path:
    """`profiles/<name>.yaml` for a bare name; a path as it is."""
    path = Path(profile) if profile.endswith((".yaml", ".yml")) or "/" in profile else PROFILES / f"{profile}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml"))) or "none"
        raise InputError(f"no such profile (profiles: {known})", path)
    return path


def merge(base: dict, over: dict, keys: Keys, origins: Origins, over_origins: Origins) -> None:
    """`over` into `base` key by key: mappings merge, anything else replaces (lists whole)."""
    for key, value in over.items():
        here = (*keys, str(key))
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value, here, origins, over_origins)
            continue
        base[key] = value
        origins.drop(here)
        for known, where in over_origins.lines.items():
            if known[:len(here)] == here:
                origins.lines[known] = where


def put(values: dict, keys: Keys, value, source: str, origins: Origins) -> None:
    """Set one key path (its parents made mappings where needed)."""
    for key in keys[:-1]:
        child = values.get(key)
        if not isinstance(child, dict):
            child = values[key] = {}
        values = child
    values[keys[-1]] = value
    origins.drop(keys)
    origins.record(keys, source, None)


def parse_set(text: str) -> Override:
    """`--set a.b.c=VALUE`, the value read as YAML (`3`, `0.1`, `true`, `[1, 2]`, `null`, text)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=3")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return tuple(key.strip().split(".")), parsed, "--set"


def check(settings: Settings) -> None:
    """What no single section can check: the folds `train` names, and every model entry's training knobs."""
    folds = settings.train.folds
    if any(not 0 <= f < settings.folds.k for f in folds):
        raise settings.error(f"train.folds must be fold numbers within 0..{settings.folds.k - 1} (folds.k), "
                             f"got {list(folds)}", "train", "folds")
    for name in [*settings.models, *[settings.df2.model] * bool(settings.df2.model)]:
        settings.model(name)


GENERATED = "# Generated by `python -m pipeline profile"


def merged_text(params: str | Path, profile: str | Sequence[str], base: str,
                overrides: Iterable[Override] = ()) -> str:
    """`base` (params.yaml's committed text) with the profile merged over it, then `overrides`
    (`--set`), checked, as the YAML text `make repro PROFILE=...` gives DVC."""
    overrides = list(overrides)
    values, origins = merged_params(params, profile, overrides, text=base)
    checked(values, origins)
    names = profile_names(profile)
    paths = ", ".join(str(profile_path(name)) for name in names)
    sets = "".join(f" --set {'.'.join(keys)}={json.dumps(value)}" for keys, value, _ in overrides)
    header = (f"{GENERATED} {' '.join(names)}{sets}`: {params} with {paths} merged over it"
              f"{' and those keys set' if overrides else ''}.\n"
              f"# `git checkout {params}` goes back to the embedded default.\n")
    return header + yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=110)
