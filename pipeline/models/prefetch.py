"""Every pretrained start a params file trains from, fetched and loaded before anything trains.

The `weights` stage, first in the DAG, calls `prefetch`: a start missing on this machine is
downloaded there (once, into its library's cache) or stops the run with one line naming the
config, its `init` line, the checkpoint and where to put it; a checkpoint that does not fit its
model fails there too, as it would at step 0 of every fold hours later.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.data.deepfashion2_params import load_df2
from pipeline.errors import InputError
from pipeline.models.factory import create_model, load_config


def trained_configs(settings: dict, params_path: str | Path) -> dict[str, Path]:
    """model name -> config file of each model a params file trains: `train.models`, and the
    DeepFashion2 track's model when the file has a `df2` section."""
    models = settings.get("models") or {}
    configs = {}
    for name in (settings.get("train") or {}).get("models") or []:
        entry = models.get(name)
        if not isinstance(entry, dict) or not entry.get("config"):
            raise InputError(f"train.models names {name!r}, which has no config in models", params_path)
        configs[name] = Path(entry["config"])
    if "df2" in settings:
        df2 = load_df2(settings, params_path)
        configs[df2.model] = Path(df2.config)
    return configs


def key_line(path: Path, key: str) -> int | None:
    """The 1-based line of a top-level `key` in a YAML mapping file."""
    root = yaml.compose(path.read_text())
    return next((k.start_mark.line + 1 for k, _ in root.value if k.value == key), None)


def prefetch(configs: dict[str, Path]) -> None:
    """Resolve each config's `init` (downloading a named start missing here) and load it into its
    model as training does, printing a line per model; an InputError names the config's `init` line."""
    for name, path in configs.items():
        config = load_config(path)
        if config.init is None:
            print(f"{name} ({path}): init null, random weights")
            continue
        print(f"{name} ({path}):")
        try:
            create_model(config)
        except InputError as error:
            if error.path is not None:  # a checkpoint that does not fit: the error names the file
                raise
            raise InputError(error.message, path, key_line(path, "init")) from None
