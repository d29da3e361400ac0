"""Every pretrained start a params file trains from, fetched and loaded before anything trains.

The `weights` stage, first in the DAG, calls `prefetch`: a start missing on this machine is
downloaded there (once, into its library's cache) or stops the run with one line naming the
config, its `init` line, the checkpoint and where to put it; a checkpoint that does not fit its
model fails there too, as it would at step 0 of every fold hours later.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError
from pipeline.models.factory import create_model, load_config
from pipeline.typed import Origins, read_yaml


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
            origins = Origins(path)
            read_yaml(path, origins)
            raise InputError(error.message, *origins(("init",))) from None
