"""Scores of a model in training on a few of its fold's held-out images (`train.validate_every`).

The images are predicted as `predict` does (no TTA) and scored by the project's evaluator against
train.csv; the engine logs the scores to dvclive (`val/ap_iou`, ...) and keeps `best.pt` by one.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.data.annotations import ImageRecord, index_annotations, records_by_image_id
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.scoring.evaluator import evaluate_frames
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.inference.predict import predict

SCORES = ("ap_iou", "ap_iou_50", "ap_iou_f1", "ap_iou_f1_50", "kaggle")


@dataclass
class HeldOut:
    reader: object                  # the training cache's CacheReader
    indices: list[int]              # reader indices of the images scored
    records: list[ImageRecord]      # their ground truth
    ontology: Ontology
    attribute_threshold: float      # the model config's, as predict uses it
    kaggle_options: KaggleOptions
    device: str

    def __call__(self, model) -> dict[str, float]:
        """The SCORES of `model` (in eval mode) on the images."""
        frame = predict(model, self.reader, self.indices, self.ontology, self.attribute_threshold, self.device)
        metrics = evaluate_frames(self.records, frame, self.ontology, self.kaggle_options, "<validation>")
        return {name: float(metrics[name]) for name in SCORES}


def held_out(reader, indices: list[int], ground_truth_csv, ontology: Ontology, attribute_threshold: float,
             kaggle_options: KaggleOptions, device: str) -> HeldOut:
    """A HeldOut of reader images `indices`, with their records read from `ground_truth_csv` (streamed:
    only those images' records are kept, not the whole file's)."""
    image_ids = [reader.image_ids[i] for i in indices]
    wanted = set(image_ids)
    index = index_annotations(ground_truth_csv, ontology)
    records = {record.image_id: record for _, record in records_by_image_id(index, ontology)
               if record.image_id in wanted}
    missing = [image_id for image_id in image_ids if image_id not in records]
    if missing:
        raise InputError(f"image {missing[0]} of the cache is not in the ground truth", ground_truth_csv)
    return HeldOut(reader, indices, [records[image_id] for image_id in image_ids], ontology,
                   attribute_threshold, kaggle_options, device)
