"""The evaluator against pycocotools' COCOeval and the official FPEval, on the same files.

Builds a set the size of Fashionpedia's validation split (1,158 images, ~9k instances, ~30k scored
predictions) in memory: portrait images of 800-1024 x 550-800 px, elliptic masks (one run per
column, the run count of real garment masks) sized by supercategory, classes drawn with a
Zipf-like skew that puts garment parts and shoes first, 1-6 attributes per instance of a category
with attributes. Predictions are 1-3 jittered copies of each ground truth with perturbed
attributes, plus unrelated masks, all with random scores.

Timed: ours is the whole `python -m pipeline evaluate` command, a process of its own from start-up
and imports to the metrics JSON, from the two CSVs (predictions sorted by ImageId). The references
are timed from COCO-format JSON files on disk (loading, evaluate, accumulate, summarize); the
CSV-to-JSON conversion they need is not counted, which favours them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data.annotations import TRAIN_COLUMNS, read_annotations
from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology
from pipeline.evaluation import reference
from pipeline.evaluation.predictions import read_predictions

# Most frequent first (Zipf weights 1/rank): sleeves, shoes, necklines, tops, pants, pockets, ...
CLASS_ORDER = (31, 23, 33, 1, 6, 32, 10, 4, 35, 28, 8, 0, 29, 14, 24, 13, 7, 36, 19, 2, 9, 22, 21,
               18, 37, 15, 3, 34, 39, 38, 11, 25, 17, 5, 27, 16, 26, 12, 40, 41, 42, 43, 44, 45, 20, 30)
# Mask radius as a fraction of the image's shorter side, by supercategory group.
RADIUS = {"outerwear": (0.15, 0.4), "accessory": (0.03, 0.12), "part": (0.01, 0.1)}


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=1158, help="images (default: %(default)s, Fashionpedia val)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-fpeval", action="store_true", help="time pycocotools only (FPEval takes minutes)")


def ellipse_rle(rng, height: int, width: int, center, radii) -> str:
    """Kaggle RLE of a filled ellipse, built column by column without drawing it."""
    cy, cx = center
    ry, rx = radii
    columns = np.arange(max(0, int(np.ceil(cx - rx))), min(width, int(np.floor(cx + rx)) + 1))
    half = ry * np.sqrt(np.clip(1 - ((columns - cx) / rx) ** 2, 0, 1))
    top = np.clip(np.round(cy - half), 0, height - 1).astype(np.int64)
    bottom = np.clip(np.round(cy + half), 0, height - 1).astype(np.int64)
    pairs = np.stack([columns * height + top + 1, bottom - top + 1], axis=1).ravel()
    return " ".join(map(str, pairs.tolist()))


def build_set(images: int, ontology: Ontology, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ground truth in train.csv layout, predictions in submission layout plus Score)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(CLASS_ORDER) + 1)
    class_choice = np.array(CLASS_ORDER)
    attribute_ids = ontology.attribute_ids
    gt_rows, pred_rows = [], []

    def attributes_of(class_id: int) -> list[int]:
        if class_id not in CATEGORIES_WITH_ATTRIBUTES:
            return []
        return sorted(rng.choice(attribute_ids, size=int(rng.integers(1, 7)), replace=False).tolist())

    def text(ids) -> str:
        return ",".join(map(str, sorted(set(ids))))

    for i in range(images):
        image_id = f"bench{i:05d}"
        height, width = int(rng.integers(800, 1025)), int(rng.integers(550, 801))
        short = min(height, width)
        for _ in range(int(rng.integers(4, 12))):  # ~7.8 instances per image
            class_id = int(rng.choice(class_choice, p=weights / weights.sum()))
            low, high = RADIUS[ontology.category_group(class_id)]
            radii = rng.uniform(low, high, 2) * short
            center = rng.uniform(0.2, 0.8, 2) * (height, width)
            attributes = attributes_of(class_id)
            gt_rows.append((image_id, ellipse_rle(rng, height, width, center, radii), height, width,
                            class_id, text(attributes)))
            for _ in range(int(rng.integers(1, 4))):  # jittered copies
                kept = [a for a in attributes if rng.random() < 0.8]
                if rng.random() < 0.3:
                    kept.append(int(rng.choice(attribute_ids)))
                pred_rows.append((image_id,
                                  ellipse_rle(rng, height, width, center + rng.normal(0, 0.08, 2) * radii,
                                              radii * rng.uniform(0.85, 1.15, 2)),
                                  class_id, text(kept), float(rng.random())))
        for _ in range(int(rng.integers(5, 18))):  # unrelated masks
            class_id = int(rng.choice(class_choice, p=weights / weights.sum()))
            low, high = RADIUS[ontology.category_group(class_id)]
            pred_rows.append((image_id,
                              ellipse_rle(rng, height, width, rng.uniform(0.1, 0.9, 2) * (height, width),
                                          rng.uniform(low, high, 2) * short),
                              class_id, text(attributes_of(class_id)), float(rng.random())))
    gt = pd.DataFrame(gt_rows, columns=list(TRAIN_COLUMNS))
    predictions = pd.DataFrame(pred_rows, columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"])
    return gt, predictions


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def run(args) -> dict:
    ontology = ontology_lib.load()
    gt, predictions = build_set(args.images, ontology, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gt_csv, pred_csv, out = tmp / "gt.csv", tmp / "pred.csv", tmp / "metrics.json"
        io.write_csv(gt_csv, gt)
        io.write_csv(pred_csv, predictions.sort_values("ImageId", kind="stable"))
        records, _ = read_annotations(gt_csv, ontology)
        dataset, results = reference.coco_inputs(records, read_predictions(pred_csv, records, ontology), ontology)
        gt_json, results_json = tmp / "gt.json", tmp / "results.json"
        gt_json.write_text(json.dumps(dataset))
        results_json.write_text(json.dumps(results))
        del dataset, results

        # The command as users run it; in the temporary folder, so that no params.yaml applies.
        command = [sys.executable, "-m", "pipeline", "evaluate", "--gt", str(gt_csv), "--pred", str(pred_csv),
                   "--out", str(out)]
        environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        done, ours = _timed(lambda: subprocess.run(command, cwd=tmp, env=environment, capture_output=True, text=True))
        if done.returncode:
            raise RuntimeError(f"evaluate failed: {done.stderr.strip()[-500:]}")
        metrics = json.loads(out.read_text())

        def from_files(runner):
            return runner(json.loads(gt_json.read_text()), json.loads(results_json.read_text()))

        coco, coco_seconds = _timed(lambda: from_files(reference.run_cocoeval))
        seconds = {"ours": ours, "pycocotools": coco_seconds}
        differences = {"ap_iou_vs_pycocotools": abs(metrics["ap_iou"] - coco.stats[0])}
        if not args.skip_fpeval:
            fpeval, seconds["fpeval"] = _timed(lambda: from_files(reference.run_fpeval))
            differences["ap_iou_f1_vs_fpeval"] = abs(metrics["ap_iou_f1"] - fpeval.results["AP"])
    result = {
        "images": args.images,
        "gt_instances": len(gt),
        "predictions": len(predictions),
        "image_size": "800-1024 x 550-800 px",
        "seconds": seconds,
        "speedup_vs_pycocotools": seconds["pycocotools"] / seconds["ours"],
        "abs_difference": differences,
        "ap_iou": metrics["ap_iou"],
        "ap_iou_f1": metrics["ap_iou_f1"],
        "kaggle": metrics["kaggle"],
    }
    if "fpeval" in seconds:
        result["speedup_vs_fpeval"] = seconds["fpeval"] / seconds["ours"]
    return result
