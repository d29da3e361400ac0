"""Checkpoints that load with `torch.load(weights_only=True)`, written atomically.

A checkpoint holds tensors, numbers and strings only: model, optimizer, scheduler and grad-scaler
state plus the step counter. Data order and augmentation are functions of (seed, epoch, index),
so the step counter alone is enough to resume exactly where a killed run stopped.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.errors import InputError
from pipeline.io import atomic_path

LAST = "last.pt"
FINAL = "model.pt"


def save(path: str | Path, **state) -> None:
    # Through a file object: torch.save names the archive inside after a path, so the temporary
    # file's random name would make identical states differ byte for byte.
    with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as stream:
        torch.save(state, stream)


def load(path: str | Path, map_location="cpu", mmap: bool = False) -> dict:
    """The checkpoint's dict; `mmap` reads tensors only when touched (to look at its other entries)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise InputError("checkpoint not found", path) from None
    except (RuntimeError, EOFError, OSError) as error:  # truncated or not a torch file
        raise InputError(f"unreadable checkpoint ({str(error).splitlines()[0]})", path) from None


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel wrapper."""
    return model.module if hasattr(model, "module") else model
