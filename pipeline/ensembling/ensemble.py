"""One predictions file from several models' files (the `ensemble` stage).

Writes the prediction columns, masks at the original size, rows by image, then score descending.
Inputs must be sorted by ImageId (the pipeline writes
them so); they are walked side by side, one image at a time, and the output is written as it goes,
so memory does not grow with the number of images.

Methods, all on same-class detections only and mask IoU at the original size (`masks`):
- `fusion`: weighted mask fusion (`fusion`);
- `nms`: greedy NMS, the kept detection's own row;
- `matrix_nms`: SOLOv2's score decay (`matrix_kernel`, `matrix_sigma`), then the floor.
For nms and matrix_nms a detection's score is multiplied by its file's weight / the largest weight.
Every method then drops scores under `min_score` and keeps the `max_detections` best per image
(0: all).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import io
from pipeline.data.images import image_size
from pipeline.data.ontology import Ontology
from pipeline.data.prediction_rows import COLUMNS
from pipeline.ensembling.config import EnsembleConfig
from pipeline.ensembling.fusion import fuse
from pipeline.ensembling.inputs import ImageDetections, image_detections, image_frames, open_prediction_file
from pipeline.ensembling.masks import iou_matrix
from pipeline.ensembling.nms import greedy_nms, matrix_nms
from pipeline.errors import InputError


def ensemble_image(detections: ImageDetections, total_weight: float, max_weight: float, ontology: Ontology,
                   settings: EnsembleConfig) -> list[tuple]:
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


def ensemble_files(inputs: list[tuple[Path, float]], image_dir: Path, ontology: Ontology, config: EnsembleConfig,
                   out: Path) -> str:
    """Fuse the prediction files `inputs` ((path, weight)) into `out`, image by image; a summary."""
    files = [open_prediction_file(path, weight) for path, weight in inputs]
    weights = np.array([f.weight for f in files])
    if not files or (weights <= 0).any():
        raise InputError("ensemble: weights must be positive")
    images = detections_in = detections_out = 0
    with io.csv_rows(out, COLUMNS) as writer:
        for image_id, frames in image_frames(files):
            detections = image_detections(files, frames, image_id, image_size(image_dir / f"{image_id}.jpg"), ontology)
            rows = ensemble_image(detections, weights.sum(), weights.max(), ontology, config)
            writer.writerows(rows)
            images += 1
            detections_in += sum(len(f) for f in frames if f is not None)
            detections_out += len(rows)
    return (f"{config.method}: {detections_in} detections of {len(files)} files on {images} images -> "
            f"{detections_out} detections -> {out}")
