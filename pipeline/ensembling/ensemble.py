"""`python -m pipeline ensemble --split oof|test`: one predictions file from several models' files.

Inputs (params `ensemble.models`, default `train.models`; per-model `weights`, default 1):
- oof: `predictions/oof/<model>.csv`, weight w;
- test: `predictions/test/<model>/fold<K>.csv` for every K in `train.folds`, weight w / folds, so
  a family's fold models are fused like different models and the family weighs w in all.
`--inputs A.csv B.csv [--weights 1 2]` replaces that list (notebooks). Writes
`predictions/<split>/ensemble.csv` (or `--out`) in the prediction columns, masks at the original
size, rows by image, then score descending. Inputs come in any row order (a file out of ImageId
order is sorted on disk first); they are walked side by side, one image at a time, fused by
`workers` processes (params `ensemble.workers`, default every core) a chunk of images each, and
the output is written as it goes, in order, so memory does not grow with the number of images.

Methods, all on same-class detections only and mask IoU at the original size (`masks`):
- `fusion`: weighted mask fusion (`fusion`);
- `nms`: greedy NMS, the kept detection's own row;
- `matrix_nms`: SOLOv2's score decay (`matrix_kernel`, `matrix_sigma`), then the floor.
For nms and matrix_nms a detection's score is multiplied by its file's weight / the largest weight.
Every method then drops scores under `min_score` and keeps the `max_detections` best per image
(0: all).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline import io, layout, params
from pipeline.data import ontology as ontology_lib
from pipeline.data.ontology import Ontology
from pipeline.ensembling.fusion import fuse
from pipeline.ensembling.inputs import (ImageDetections, PredictionFile, image_detections, image_folder,
                                        image_frames, open_prediction_file)
from pipeline.ensembling.masks import iou_matrix
from pipeline.ensembling.nms import KERNELS, greedy_nms, matrix_nms
from pipeline.errors import InputError
from pipeline.data.prediction_rows import COLUMNS
from pipeline.data.images import image_size
from pipeline.parallel import ordered_map, worker_count
from pipeline.progress import bar as progress_bar

METHODS = ("fusion", "nms", "matrix_nms")
DEFAULTS = {"models": [], "weights": {}, "method": "fusion", "iou_threshold": 0.5, "vote_threshold": 0.5,
            "attribute_threshold": 0.5, "matrix_kernel": "gaussian", "matrix_sigma": 2.0, "min_score": 0.0,
            "max_detections": 100, "workers": None}


@dataclass(frozen=True)
class Settings:
    method: str = "fusion"
    iou_threshold: float = 0.5
    vote_threshold: float = 0.5
    attribute_threshold: float = 0.5
    matrix_kernel: str = "gaussian"
    matrix_sigma: float = 2.0
    min_score: float = 0.0
    max_detections: int = 100

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.matrix_kernel not in KERNELS:
            raise ValueError(f"matrix_kernel must be one of {', '.join(KERNELS)}, got {self.matrix_kernel!r}")
        for name in ("iou_threshold", "vote_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.max_detections < 0 or self.matrix_sigma <= 0:
            raise ValueError("max_detections must be >= 0 and matrix_sigma > 0")


def add_arguments(parser) -> None:
    parser.add_argument("--split", choices=("oof", "test"), default="oof", help="default: %(default)s")
    parser.add_argument("--out", help="predictions CSV to write (default: predictions/<split>/ensemble.csv)")
    parser.add_argument("--inputs", nargs="+", help="prediction CSVs to ensemble instead of params ensemble.models")
    parser.add_argument("--weights", nargs="+", type=float, help="one weight per --inputs file (default: 1 each)")
    parser.add_argument("--method", choices=METHODS, help="default: params ensemble.method")
    parser.add_argument("--iou-threshold", dest="iou_threshold", type=float,
                        help="mask IoU that makes two detections one object (default: params)")
    parser.add_argument("--data", "--root", dest="root", help="Kaggle-layout dataset root (default: params data.root)")


def settings(args) -> tuple[dict, Settings]:
    cfg = params.section(args, "ensemble", DEFAULTS)
    try:
        return cfg, Settings(**{k: cfg[k] for k in Settings.__dataclass_fields__})
    except (TypeError, ValueError) as error:
        raise InputError(f"ensemble: {error}", args.params) from None


def input_files(args, cfg: dict) -> list[tuple[Path, float]]:
    """(path, weight) of every file to ensemble."""
    if args.inputs:
        weights = args.weights or [1.0] * len(args.inputs)
        if len(weights) != len(args.inputs):
            raise InputError(f"--weights gives {len(weights)} weights for {len(args.inputs)} --inputs")
        return [(Path(p), w) for p, w in zip(args.inputs, weights)]
    if args.weights:
        raise InputError("--weights needs --inputs")
    everything = params.load(args.params)
    train = everything.get("train") or {}
    models = list(cfg["models"] or train.get("models") or [])
    if not models:
        raise InputError("ensemble: no models (set ensemble.models or train.models)", args.params)
    weights = cfg["weights"] or {}
    if args.split == "oof":
        return [(layout.oof_predictions(m), float(weights.get(m, 1.0))) for m in models]
    folds = list(train.get("folds") or range(int((everything.get("folds") or {}).get("k", 5))))
    return [(layout.fold_predictions("test", m, k), float(weights.get(m, 1.0)) / len(folds))
            for m in models for k in folds]


def ensemble_image(detections: ImageDetections, total_weight: float, max_weight: float, ontology: Ontology,
                   settings: Settings) -> list[tuple]:
    """One image's output rows (COLUMNS), best first."""
    if settings.method == "fusion":
        rows = fuse(detections, total_weight, ontology, settings.iou_threshold, settings.vote_threshold,
                    settings.attribute_threshold)
    else:
        table = detections.table
        score = table.score * detections.weight / max_weight
        iou = iou_matrix(table, detections.height, detections.width)
        if settings.method == "nms":
            kept = greedy_nms(score, iou, settings.iou_threshold)
        else:
            score = matrix_nms(score, iou, settings.matrix_kernel, settings.matrix_sigma)
            kept = np.arange(len(table))
        rows = [(detections.image_id, detections.encoded[i], int(table.class_id[i]),
                 ",".join(map(str, table.attributes[i])), float(score[i]), detections.attribute_scores[i])
                for i in kept]
    rows = sorted((r for r in rows if r[4] >= settings.min_score), key=lambda r: -r[4])
    return rows[:settings.max_detections] if settings.max_detections else rows


@dataclass(frozen=True)
class Counts:
    images: int
    detections_in: int
    detections_out: int


@dataclass(frozen=True)
class _Context:
    """What every image's fusion reads: the inputs, where their images are, the settings."""
    files: list[PredictionFile]
    folder: Path
    ontology: Ontology
    settings: Settings


def ensemble_files(files: list[PredictionFile], folder: Path, ontology: Ontology, settings: Settings, out: Path,
                   workers: int = 1, progress: bool = False) -> Counts:
    """Ensemble the files image by image into `out` (COLUMNS, by ImageId, then score descending).
    `folder`: the images whose headers give their sizes. Images go to `workers` processes
    `CHUNK_IMAGES` at a time and their rows come back in order, so the file is the same whatever
    the number of workers and memory holds a few chunks per worker."""
    context = _Context(files, Path(folder), ontology, settings)
    images = detections_in = detections_out = 0
    with io.csv_rows(out, COLUMNS) as writer, progress_bar(progress, description="ensemble") as bar:
        for rows, count, found in ordered_map(_ensemble_chunk, _chunks(image_frames(files)), context, workers):
            writer.writerows(rows)
            images, detections_in, detections_out = images + count, detections_in + found, detections_out + len(rows)
            bar.update(count)
    return Counts(images, detections_in, detections_out)


CHUNK_IMAGES = 32  # images per task sent to a worker


def _chunks(groups) -> Iterator[list]:
    chunk = []
    for group in groups:
        chunk.append(group)
        if len(chunk) == CHUNK_IMAGES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ensemble_chunk(context: _Context, chunk: list) -> tuple[list[tuple], int, int]:
    """(output rows, images, input detections) of some images' (ImageId, each file's rows)."""
    weights = np.array([f.weight for f in context.files])
    rows, found = [], 0
    for image_id, frames in chunk:
        size = image_size(context.folder / f"{image_id}.jpg")
        detections = image_detections(context.files, frames, image_id, size, context.ontology)
        rows += ensemble_image(detections, weights.sum(), weights.max(), context.ontology, context.settings)
        found += sum(len(f) for f in frames if f is not None)
    return rows, len(chunk), found


def run(args) -> int:
    cfg, config = settings(args)
    root = params.data_root(args)
    ontology = ontology_lib.load_for_dataset(root)
    files = [open_prediction_file(path, weight) for path, weight in input_files(args, cfg)]
    weights = np.array([f.weight for f in files])
    if not files or (weights <= 0).any():
        raise InputError("ensemble: weights must be positive", args.params)
    out = Path(args.out or layout.ensemble_predictions(args.split))
    counts = ensemble_files(files, image_folder(root, args.split), ontology, config, out,
                            worker_count(cfg["workers"], "ensemble", args.params), progress=True)
    print(f"{config.method}: {counts.detections_in} detections of {len(files)} files on {counts.images} images -> "
          f"{counts.detections_out} detections -> {out}")
    return 0
