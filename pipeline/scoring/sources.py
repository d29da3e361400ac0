"""Ground truth and predictions from every file format the evaluator takes, a chunk of images at a
time, for `evaluator.Accumulator.add` (`pipeline.evaluation.evaluate.evaluate_files`): one evaluator,
several readers.

Ground truth: a Kaggle train.csv (`annotations`), or a Fashionpedia instances JSON (`*.json`,
`data.fashionpedia`). Predictions: a CSV in submission layout plus Score, in any row order
(`predictions`, scored on worker processes by `streamed`), or the official results JSON (`*.json`, `results_json`: its numeric image ids need
an instances JSON as ground truth). The images' order (which decides how equal scores rank) is the
one the reference evaluators use on the same files: a CSV's order of first appearance, a JSON's ids
ascending.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.data import fashionpedia
from pipeline.data.annotations import ImageRecord, index_annotations, records_by_image_id, streamed_records
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.results_json import load_results, results_chunks


def is_json(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".json"


def ground_truth_records(gt: str | Path, ontology: Ontology) -> Iterator[tuple[int, ImageRecord]]:
    """(position in the ground truth's image order, record) of a train.csv or an instances JSON, by
    ascending ImageId (the order of prediction CSVs), one image at a time."""
    if is_json(gt):
        instances, _ = fashionpedia.load_instances(gt, ontology)
        return instances.records_by_image_id()
    return records_by_image_id(index_annotations(gt, ontology), ontology)


def ground_truth_stream(gt: str | Path, ontology: Ontology, workers: int = 1) -> Iterator[tuple[int, ImageRecord]]:
    """`ground_truth_records`, except that a train.csv's records may come with their rows unparsed
    (`annotations.streamed_records`: `with_instances` parses them where they are used), and it is
    validated on `workers` processes."""
    if is_json(gt):
        return ground_truth_records(gt, ontology)
    return streamed_records(index_annotations(gt, ontology, workers=workers), ontology)


def results_json_chunks(gt: str | Path, pred: str | Path, ontology: Ontology
                        ) -> Iterator[tuple[np.ndarray, list[ImageRecord], InstanceTable]]:
    """(the images' positions in the ground truth's order, their records, their predictions' table)
    of an official results JSON, every ground-truth image once; the table's `line` is each
    prediction's place in its file."""
    if not is_json(gt):
        raise InputError("a results JSON names images by Fashionpedia's numeric ids: score it against the "
                         f"instances JSON they come from, not the CSV {gt}", pred)
    instances, _ = fashionpedia.load_instances(gt, ontology)
    yield from results_chunks(load_results(pred, instances.images), instances, ontology)
