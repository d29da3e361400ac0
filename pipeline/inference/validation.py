"""Scores of a model in training on a few held-out images (`train.validate_every`).

The images (a held-out fold's, or val2020's under the papers' protocol) are predicted as `predict`
does (no TTA) and scored by the project's evaluator against their ground truth (train.csv or
Fashionpedia's instances JSON); the engine logs the scores to dvclive (`val/ap_iou`, ...) and keeps
`best.pt` by one.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.data.annotations import ImageRecord
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.scoring.evaluator import evaluate_frames
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.sources import ground_truth_records
from pipeline.inference.predict import predict

SCORES = ("ap_iou", "ap_iou_50", "ap_iou_f1", "ap_iou_f1_50", "kaggle")


@dataclass
class HeldOut:
    reader: object                  # the CacheReader of the images (training or, for val2020, test cache)
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


def held_out(reader, indices: list[int], ground_truth, ontology: Ontology, attribute_threshold: float,
             kaggle_options: KaggleOptions, device: str) -> HeldOut:
    """A HeldOut of reader images `indices`, with their records read from `ground_truth` (a train.csv,
    streamed, or an instances JSON: only those images' records are kept, not the whole file's)."""
    image_ids = [reader.image_ids[i] for i in indices]
    wanted = set(image_ids)
    records = {record.image_id: record for _, record in ground_truth_records(ground_truth, ontology)
               if record.image_id in wanted}
    missing = [image_id for image_id in image_ids if image_id not in records]
    if missing:
        raise InputError(f"image {missing[0]} of the cache is not in the ground truth", ground_truth)
    return HeldOut(reader, indices, [records[image_id] for image_id in image_ids], ontology,
                   attribute_threshold, kaggle_options, device)
