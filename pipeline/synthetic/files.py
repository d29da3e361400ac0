"""Writing a generated dataset: JPEG files, and a folder that appears whole or not at all."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pipeline.errors import InputError

JPEG_QUALITY = 90


def write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path.name}")
    path.write_bytes(encoded.tobytes())


@contextlib.contextmanager
def staging_directory(out: Path, marker: str = "train.csv") -> Iterator[Path]:
    """Yield an empty sibling directory of `out`; replace `out` with it only if the block succeeds.

    A non-empty `out` is only replaced if it holds `marker` (a dataset this command wrote).
    """
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a directory", out)
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise InputError(f"refusing to replace a non-empty directory that holds no {marker}", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
        if out.exists():  # a directory cannot be renamed over a non-empty one: move the old aside
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
