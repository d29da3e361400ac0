"""Cross-validation folds, multilabel-stratified on the classes present in each image (the `folds` stage).

Writes `ImageId,fold` (file order of train.csv) and a per-fold class-balance report; readers of the
file use `pipeline.data.folds`, which needs no iterstrat.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import ImageRecord, read_annotations
from pipeline.errors import InputError


def presence_matrix(records: list[ImageRecord], num_classes: int) -> np.ndarray:
    """(images, classes) 0/1: which classes appear in each image."""
    presence = np.zeros((len(records), num_classes), np.uint8)
    for row, record in enumerate(records):
        presence[row, record.class_ids] = 1
    return presence


def assign_folds(presence: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per image; every image is in exactly one validation fold."""
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    if len(presence) < k:
        raise ValueError(f"cannot make {k} folds of {len(presence)} images")
    folds = np.full(len(presence), -1, np.int64)
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, val) in enumerate(splitter.split(np.zeros(len(presence)), presence)):
        folds[val] = fold
    return folds


def balance_report(presence: np.ndarray, folds: np.ndarray, class_names: list[str]) -> dict:
    """Images per fold and, per class, how many images of each fold contain it."""
    k = int(folds.max()) + 1
    per_class = {
        name: [int(presence[folds == f, c].sum()) for f in range(k)]
        for c, name in enumerate(class_names)
        if presence[:, c].any()
    }
    # Worst relative deviation from an even split, over classes present in >= k images.
    deviations = [
        max(abs(n - sum(counts) / k) for n in counts) / (sum(counts) / k)
        for counts in per_class.values()
        if sum(counts) >= k
    ]
    return {
        "images_per_fold": [int((folds == f).sum()) for f in range(k)],
        "max_class_deviation": float(max(deviations, default=0.0)),
        "images_with_class_per_fold": per_class,
    }


def write_folds(root: Path, k: int, seed: int, on_error: str, out: str | Path, report_path: str | Path) -> str:
    """Folds of `root`'s train.csv into `out` (ImageId,fold in file order) and the balance report; a summary.
    Rows the cache stage skips (`on_error` skip) are left out here too."""
    labels = ontology_lib.load_for_dataset(root)
    records, _ = read_annotations(root / "train.csv", labels, on_error)
    presence = presence_matrix(records, labels.num_classes)
    try:
        folds = assign_folds(presence, k, seed)
    except ValueError as error:
        raise InputError(str(error), root / "train.csv") from None
    frame = pd.DataFrame({"ImageId": [r.image_id for r in records], "fold": folds})
    report = balance_report(presence, folds, [c.name for c in labels.categories])
    io.write_csv(out, frame)
    io.write_json(report_path, report)
    return (f"{len(records)} images in {k} folds {report['images_per_fold']}, "
            f"worst class deviation from an even split {report['max_class_deviation']:.1%} -> {out}")
