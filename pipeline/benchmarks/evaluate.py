"""The evaluator against pycocotools' COCOeval and the official FPEval, on the same files.

Builds one set per `--images` size (default: the embedded run's 128 images and a 400-image case;
Fashionpedia's validation split has 1,158 images, ~9k instances, ~30k scored predictions):
portrait images of 800-1024 x 550-800 px, elliptic masks (one run per column, the run count of real
garment masks) sized by supercategory, classes drawn with a Zipf-like skew that puts garment parts
and shoes first, 1-6 attributes per instance of a category with attributes. Predictions are 1-3 jittered copies of each ground truth with perturbed
attributes, plus unrelated masks, all with random scores.

Timed, per size and side by side, as whole commands, each a process of its own from start-up and
imports: ours is `python -m pipeline evaluate` from the two CSVs (predictions sorted by ImageId) to
the metrics JSON, and `ours_json` the same command on the references' own files (a Fashionpedia
instances JSON and the official results JSON), with its peak resident memory; each reference
loads those JSON files and evaluates, accumulates and summarises (`reference_runners.headline`).
The CSV-to-JSON conversion the references need is not counted, which favours them.
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
from pipeline.scoring.predictions import read_predictions


# Most frequent first (Zipf weights 1/rank): sleeves, shoes, necklines, tops, pants, pockets, ...
CLASS_ORDER = (31, 23, 33, 1, 6, 32, 10, 4, 35, 28, 8, 0, 29, 14, 24, 13, 7, 36, 19, 2, 9, 22, 21,
               18, 37, 15, 3, 34, 39, 38, 11, 25, 17, 5, 27, 16, 26, 12, 40, 41, 42, 43, 44, 45, 20, 30)
# Mask radius as a fraction of the image's shorter side, by supercategory group.
RADIUS = {"outerwear": (0.15, 0.4), "accessory": (0.03, 0.12), "part": (0.01, 0.1)}


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, nargs="+", default=[128, 400],
                        help="one case per size, timed side by side (default: %(default)s: the embedded run's "
                             "128 training images and a 400-image case; Fashionpedia val has 1158)")
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


# `evaluate` with its peak resident memory (KiB, Linux) printed last.
MEASURED = ("import resource, sys\nfrom pipeline.cli import main\nstatus = main(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(status)")
# A reference evaluator as a command of its own, as `evaluate` is timed: start-up, its imports,
# loading the JSON files, evaluate, accumulate, summarize; it prints its headline AP.
REFERENCE = "import sys\nfrom pipeline.evaluation.reference_runners import headline\nprint(headline(*sys.argv[1:]))"


def _command(argv: list[str], cwd: Path) -> tuple[str, float]:
    """(stdout, wall seconds) of a Python process run in `cwd` (a folder without params.yaml)."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout, seconds


def run(args, settings) -> dict:
    ontology = ontology_lib.load()
    return {
        "image_size": "800-1024 x 550-800 px",
        "timing": "whole commands, each a process of its own from start-up and imports: ours from the two "
                  "CSVs, the references from COCO-format JSON files (the conversion is not counted)",
        "cases": [case(images, ontology, args) for images in args.images],
    }


def case(images: int, ontology: Ontology, args) -> dict:
    """One set of `images` images: the three commands side by side on the same files."""
    gt, predictions = build_set(images, ontology, args.seed)
    references = ("pycocotools",) if args.skip_fpeval else ("pycocotools", "fpeval")
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
        del dataset, results, records

        _, ours = _command(["-m", "pipeline", "evaluate", "--gt", str(gt_csv), "--pred", str(pred_csv),
                            "--out", str(out)], tmp)
        metrics = json.loads(out.read_text())
        measured, ours_json = _command(["-c", MEASURED, "evaluate", "--gt", str(gt_json), "--pred", str(results_json),
                                    "--out", str(tmp / "json_metrics.json")], tmp)
        json_metrics = json.loads((tmp / "json_metrics.json").read_text())
        seconds, headline = {"ours": ours, "ours_json": ours_json}, {}
        for name in references:
            text, seconds[name] = _command(["-c", REFERENCE, name, str(gt_json), str(results_json)], tmp)
            headline[name] = float(text.split()[-1])
    differences = {"ap_iou_vs_pycocotools": abs(metrics["ap_iou"] - headline["pycocotools"]),
                   "json_ap_iou_vs_pycocotools": abs(json_metrics["ap_iou"] - headline["pycocotools"])}
    if "fpeval" in headline:
        differences["ap_iou_f1_vs_fpeval"] = abs(metrics["ap_iou_f1"] - headline["fpeval"])
        differences["json_ap_iou_f1_vs_fpeval"] = abs(json_metrics["ap_iou_f1"] - headline["fpeval"])
    return {
        "images": images,
        "gt_instances": len(gt),
        "predictions": len(predictions),
        "seconds": seconds,
        "ours_json_peak_rss_mb": int(measured.split()[-1]) / 1024,
        **{f"speedup_vs_{name}": seconds[name] / seconds["ours"] for name in references},
        "abs_difference": differences,
        "ap_iou": metrics["ap_iou"],
        "ap_iou_f1": metrics["ap_iou_f1"],
        "kaggle": metrics["kaggle"],
    }
