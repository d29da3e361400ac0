"""Hand-made detections and a tiny dataset for the ensembling tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.data import rle
from pipeline.data.ontology import load as load_ontology
from pipeline.ensembling.inputs import image_detections, image_frames, open_prediction_file

LABELS = load_ontology()
SIZE = (40, 40)
HEADER = ["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score", "AttributeScores"]


def box(top, left, rows, cols, size=SIZE) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[top:top + rows, left:left + cols] = 1
    return mask


def write_predictions(path: Path, rows) -> Path:
    """rows: (ImageId, mask or RLE, ClassId, AttributesIds, Score[, AttributeScores])."""
    frame = pd.DataFrame([(r[0], r[1] if isinstance(r[1], str) else rle.encode(r[1]), str(r[2]), r[3], str(r[4]),
                           r[5] if len(r) > 5 else "") for r in rows], columns=HEADER)
    frame.to_csv(path, index=False)
    return path


def detections(tmp_path: Path, *inputs, weights=None, image_id="a"):
    """ImageDetections of `image_id` from lists of rows, one list per input file."""
    weights = weights or [1.0] * len(inputs)
    files = [open_prediction_file(write_predictions(tmp_path / f"in{k}.csv", rows), w)
             for k, (rows, w) in enumerate(zip(inputs, weights))]
    frames = dict(image_frames(files)).get(image_id, [None] * len(files))
    return image_detections(files, frames, image_id, SIZE, LABELS), files


def tiny_project(root: Path, train_images: int = 8) -> Path:
    """Synthetic data (small images), a 2-fold folds file and params.yaml pointing at them."""
    from pipeline.synthetic.fashionpedia import generate

    data = generate(root / "data", train_images, 2, 0, min_size=96, max_size=160, large_fraction=0)
    ids = pd.read_csv(data / "train.csv", dtype=str)["ImageId"].drop_duplicates().tolist()
    pd.DataFrame({"ImageId": ids, "fold": [i % 2 for i in range(len(ids))]}).to_csv(root / "folds.csv", index=False)
    params = {"data": {"root": str(data)}, "folds": {"k": 2, "out": str(root / "folds.csv")},
              "train": {"models": ["m1", "m2"], "folds": [0, 1]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


def noisy_copy(gt: pd.DataFrame, seed: int, drop: float = 0.3, false_positives: int = 2) -> pd.DataFrame:
    """Ground truth as predictions: a share of instances missed, scores noisy, low-score false positives."""
    rng = np.random.default_rng(seed)
    kept = gt[rng.random(len(gt)) >= drop]
    rows = [(r.ImageId, r.EncodedPixels, r.ClassId, r.AttributesIds, rng.uniform(0.5, 1.0),
             " ".join(f"{a}:0.900" for a in str(r.AttributesIds).split(",") if a))
            for r in kept.itertuples()]
    for image_id, image in gt.groupby("ImageId"):
        height, width = int(image.Height.iat[0]), int(image.Width.iat[0])
        for _ in range(false_positives):
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask = box(top, left, height // 4, width // 4, (height, width))
            rows.append((image_id, rle.encode(mask), int(rng.integers(0, 46)), "", rng.uniform(0.05, 0.3), ""))
    # Prediction files are sorted by ImageId, as the pipeline writes them.
    return pd.DataFrame(rows, columns=HEADER).sort_values("ImageId", kind="stable")
