"""Reading cross-validation folds: the `ImageId,fold` CSV the folds stage writes (`fold_assignment`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.annotations import parse_int, read_csv_strict
from pipeline.errors import InputError


def read_folds(path: str | Path) -> dict[str, int]:
    """ImageId -> fold, from a folds CSV the folds stage wrote."""
    frame = read_csv_strict(path, ("ImageId", "fold"))
    folds = {}
    for line, (image_id, fold) in enumerate(zip(frame["ImageId"], frame["fold"]), 2):
        try:
            folds[image_id] = parse_int(fold, "fold", 0)
        except ValueError as error:
            raise InputError(str(error), path, line) from None
    return folds


def fold_indices(reader, folds: dict[str, int], fold: int, train: bool) -> list[int]:
    """Reader indices of the training images (fold != K) or the validation images (fold == K)."""
    missing = [image_id for image_id in reader.image_ids if image_id not in folds]
    if missing:
        raise InputError(f"image {missing[0]} of the cache has no fold: rerun python -m pipeline folds", reader.path)
    if fold not in set(folds.values()):
        raise InputError(f"fold {fold} does not exist (folds: {sorted(set(folds.values()))})")
    return [i for i, image_id in enumerate(reader.image_ids) if (folds[image_id] != fold) == train]


def folds_of_images(path: str | Path, image_ids: list[str]) -> np.ndarray:
    """Fold of each ground-truth image (-1: an image the folds file leaves out)."""
    folds = read_folds(path)
    return np.array([folds.get(image_id, -1) for image_id in image_ids], np.int64)
