"""A predictions file scored against the ground truth a chunk of images at a time, the chunks
spread over worker processes.

The parent walks the file and the ground truth side by side (`chunked_frames`); each chunk's rows
are parsed (a sorted file's come as byte spans, `sorted_csv.image_spans`, and so do a sorted
ground truth's), validated, matched and accumulated in a worker (`Accumulator.add`), and the chunks'
accumulators come back in order and are pooled (`Accumulator.merge`) in that order, so the scores
are the same whatever the number of workers. Memory holds a few chunks per worker and the
detections' outcomes, never the file or the masks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.data.annotations import ImageRecord, with_instances
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.parallel import ordered_map
from pipeline.progress import bar
from pipeline.scoring.evaluator import Accumulator
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.predictions import chunked_frames, frame_of, rows_table


@dataclass(frozen=True)
class _Context:
    path: Path
    ontology: Ontology
    options: KaggleOptions
    groups: np.ndarray | None  # per ground-truth image, the accumulator it counts in (-1: none)
    needs_scores: str | None   # the message of a file without a Score column, where that is an error


def score_file(path: str | Path, ground_truth: Iterable[tuple[int, ImageRecord]], ontology: Ontology,
               options: KaggleOptions, groups: np.ndarray | None = None, needs_scores: str | None = None,
               workers: int = 1, progress: bool = False, images: int | None = None
               ) -> tuple[dict[int, Accumulator], set[int]]:
    """Accumulators of the images of each group (`groups[i]`: image i's group, e.g. its fold; None:
    every image in group 0; -1: in none), and the groups of the images that have predictions.
    `ground_truth`: (index, record) by ascending ImageId. `needs_scores`: the InputError message
    for a file without a Score column (None: such a file is scored without AP). `images`: how many
    the ground truth has, for the progress bar."""
    context = _Context(Path(path), ontology, options, groups, needs_scores)
    accumulators, predicted = {}, set()
    with bar(progress, images, Path(path).name) as counter:
        for parts, found, count in ordered_map(_score_chunk, chunked_frames(path, ground_truth), context, workers):
            for group, part in parts.items():
                accumulators[group] = Accumulator.merge([accumulators[group], part]) if group in accumulators else part
            predicted |= found
            counter.update(count)
    return accumulators, predicted


def _score_chunk(context: _Context, chunk) -> tuple[dict[int, Accumulator], set[int], int]:
    """(accumulator per group, the groups with predictions, images) of one chunk of images."""
    images, records, rows = chunk
    records = with_instances(records, context.ontology)
    table = rows_table(frame_of(rows), records, context.ontology, context.path)
    if table.score is None and context.needs_scores:
        raise InputError(context.needs_scores, context.path, 1)
    groups = np.zeros(len(images), np.int64) if context.groups is None else context.groups[images]
    parts = {}
    for group in np.unique(groups[groups >= 0]).tolist():
        local = np.flatnonzero(groups == group)
        parts[group] = Accumulator(context.ontology, context.options)
        parts[group].add([records[i] for i in local], table.of_images(local), image_index=images[local],
                         position=table.line[np.isin(table.image, local)])
    return parts, set(groups[np.unique(table.image)].tolist()), len(images)
