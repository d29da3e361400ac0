"""Cross-validation folds, multilabel-stratified on the classes present in each image.

Writes `ImageId,fold` (file order of train.csv) and a per-fold class-balance report.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io, params
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import ImageRecord, parse_int, read_annotations, read_csv_strict
from pipeline.errors import InputError

DEFAULTS = {"k": 5, "seed": 0, "out": "cache/folds.csv", "report": "reports/folds.json"}


def folds_file(params_path: str | Path) -> Path:
    """Where the folds stage writes its CSV, per params.yaml (other stages read it there)."""
    return Path((params.load(params_path).get("folds") or {}).get("out", DEFAULTS["out"]))


def read_folds(path: str | Path) -> dict[str, int]:
    """ImageId -> fold, from a folds CSV this stage wrote."""
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


def add_arguments(parser) -> None:
    parser.add_argument("--root", help="Kaggle-layout dataset root (default: params data.root)")
    parser.add_argument("--k", type=int, help="number of folds (default: params folds.k)")
    parser.add_argument("--seed", type=int, help="shuffling seed (default: params folds.seed)")
    parser.add_argument("--out", help="folds CSV (default: params folds.out)")
    parser.add_argument("--report", help="class-balance JSON (default: params folds.report)")


def presence_matrix(records: list[ImageRecord], num_classes: int) -> np.ndarray:
    """(images, classes) 0/1: which classes appear in each image."""
    presence = np.zeros((len(records), num_classes), np.uint8)
    for row, record in enumerate(records):
        presence[row, record.class_ids] = 1
    return presence


def assign_folds(presence: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per image; every image is in exactly one validation fold."""
    # Imported here: stages that only read folds (predict, report, tune) need no iterstrat.
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

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


def run(args) -> int:
    cfg = params.section(args, "folds", DEFAULTS)
    root = params.data_root(args)
    labels = ontology_lib.load_for_dataset(root)
    # Rows the cache stage skipped (cache.on_error: skip) are left out here too.
    on_error = (params.load(args.params).get("cache") or {}).get("on_error", "raise")
    records, _ = read_annotations(root / "train.csv", labels, on_error)
    presence = presence_matrix(records, labels.num_classes)
    try:
        folds = assign_folds(presence, int(cfg["k"]), int(cfg["seed"]))
    except ValueError as error:
        raise InputError(str(error), root / "train.csv") from None
    frame = pd.DataFrame({"ImageId": [r.image_id for r in records], "fold": folds})
    report = balance_report(presence, folds, [c.name for c in labels.categories])
    io.write_csv(cfg["out"], frame)
    io.write_json(cfg["report"], report)
    print(f"{len(records)} images in {cfg['k']} folds {report['images_per_fold']}, "
          f"worst class deviation from an even split {report['max_class_deviation']:.1%} -> {cfg['out']}")
    return 0
