"""One predictions file from several models' files (the `ensemble` stage).

Writes the prediction columns, masks at the original size, rows by image, then score descending.
Inputs come in any row order (a file out of ImageId order is sorted on disk first); they are
walked side by side, one image at a time, fused by `config.workers` processes (None: every core)
a chunk of images each, and the output is written as it goes, in order, so memory does not grow
with the number of images.

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

from pipeline import io
from pipeline.data.images import image_size
from pipeline.data.ontology import Ontology
from pipeline.data.prediction_rows import COLUMNS
from pipeline.ensembling.config import EnsembleConfig
from pipeline.ensembling.fusion import fuse
from pipeline.ensembling.inputs import (ImageDetections, PredictionFile, image_detections, image_frames,
                                        open_prediction_file)
from pipeline.ensembling.masks import iou_matrix
from pipeline.ensembling.nms import greedy_nms, matrix_nms
from pipeline.errors import InputError
from pipeline.parallel import ordered_map, worker_count
from pipeline.progress import bar as progress_bar


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


@dataclass(frozen=True)
class _Context:
    """What every image's fusion reads: the inputs, where their images are, the settings."""
    files: list[PredictionFile]
    folder: Path
    ontology: Ontology
    config: EnsembleConfig


CHUNK_IMAGES = 32  # images per task sent to a worker


def ensemble_files(inputs: list[tuple[Path, float]], image_dir: Path, ontology: Ontology, config: EnsembleConfig,
                   out: Path, progress: bool = False) -> str:
    """Fuse the prediction files `inputs` ((path, weight)) into `out` (COLUMNS, by ImageId, then
    score descending), image by image; a summary. `image_dir`: the images whose headers give their
    sizes. Images go to `config.workers` processes `CHUNK_IMAGES` at a time and their rows come
    back in order, so the file is the same whatever the number of workers and memory holds a few
    chunks per worker."""
    files = [open_prediction_file(path, weight) for path, weight in inputs]
    weights = np.array([f.weight for f in files])
    if not files or (weights <= 0).any():
        raise InputError("ensemble: weights must be positive")
    context = _Context(files, Path(image_dir), ontology, config)
    images = detections_in = detections_out = 0
    chunks = _chunks(image_frames(files))
    with io.csv_rows(out, COLUMNS) as writer, progress_bar(progress, description="ensemble") as bar:
        for rows, count, found in ordered_map(_ensemble_chunk, chunks, context, worker_count(config.workers)):
            writer.writerows(rows)
            images, detections_in, detections_out = images + count, detections_in + found, detections_out + len(rows)
            bar.update(count)
    return (f"{config.method}: {detections_in} detections of {len(files)} files on {images} images -> "
            f"{detections_out} detections -> {out}")


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
        rows += ensemble_image(detections, weights.sum(), weights.max(), context.ontology, context.config)
        found += sum(len(f) for f in frames if f is not None)
    return rows, len(chunk), found
