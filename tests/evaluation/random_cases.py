"""Seeded random ground truth and predictions that stress the matching rules.

Small images (so a case evaluates in milliseconds) whose masks still span the small, medium and
large area ranges; categories with and without attributes; predictions that are exact duplicates,
jittered copies or random boxes of ground truths; tied scores; empty and overlapping attribute sets.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.data import ontology as ontology_lib
from pipeline.data import rle
from pipeline.data.annotations import ImageRecord, Instance
from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology

ONTOLOGY = ontology_lib.load()  # the project's ontology, shared by the evaluation tests

# A few categories of each kind so groups hold several instances; attributes from a small pool so
# F1 values fall on and around the thresholds.
CLASSES = (0, 1, 6, 31, 33, 23, 14, 35)
ATTRIBUTE_POOL = (0, 1, 2, 3, 115, 136, 143, 317)


def random_case(seed: int, ontology: Ontology, images: int | None = None) -> tuple[list[ImageRecord], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    records, rows = [], []
    for i in range(images or int(rng.integers(1, 6))):
        height, width = (int(v) for v in rng.integers(8, 200, size=2))
        record = ImageRecord(f"img{seed}_{i}", height, width)
        classes = rng.choice(CLASSES, size=int(rng.integers(1, 4)), replace=False)
        for line in range(int(rng.integers(0, 7))):
            if record.instances and rng.random() < 0.3:  # overlapping ground truths of one class
                twin = record.instances[int(rng.integers(0, len(record.instances)))]
                row = _prediction(rng, record, twin)
                record.instances.append(Instance(row[2], row[1], _attributes(rng), line))
                continue
            mask = _box(rng, height, width)
            record.instances.append(Instance(int(rng.choice(classes)), rle.encode(mask), _attributes(rng), line))
        records.append(record)
        if not record.instances:  # the train.csv layout has no image without instances
            record.instances.append(Instance(int(classes[0]), rle.encode(_box(rng, height, width)), (), 0))
        for instance in record.instances:
            for _ in range(int(rng.integers(0, 4))):
                rows.append(_prediction(rng, record, instance))
        for _ in range(int(rng.integers(0, 3))):  # predictions of nothing in particular
            rows.append(_row(rng, record, _box(rng, height, width), int(rng.choice(CLASSES)), _attributes(rng)))
    rng.shuffle(rows)
    return records, pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"])


def _box(rng, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    box_height, box_width = (max(1, int(f * n)) for f, n in zip(rng.uniform(0.05, 1.0, 2) ** 0.5, (height, width)))
    top, left = int(rng.integers(0, height - box_height + 1)), int(rng.integers(0, width - box_width + 1))
    mask[top : top + box_height, left : left + box_width] = 1
    if rng.random() < 0.3:  # a hole or a second lobe: more than one run per column
        mask[rng.integers(0, height) :: 3, rng.integers(0, width) :: 2] ^= 1
    return mask


def _attributes(rng) -> tuple[int, ...]:
    count = int(rng.choice([0, 0, 1, 2, 3, 4]))
    return tuple(sorted(int(a) for a in rng.choice(ATTRIBUTE_POOL, size=count, replace=False)))


def _prediction(rng, record: ImageRecord, instance: Instance) -> tuple:
    mask = rle.decode(instance.rle, record.height, record.width)
    kind = rng.random()
    if kind < 0.3:
        pass  # exact duplicate
    elif kind < 0.8:  # jittered: shifted and eroded or grown by a little
        mask = np.roll(mask, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
        if rng.random() < 0.5:
            mask = mask.copy()
            mask[rng.integers(0, record.height) :: 4] = 0
    else:
        mask = _box(rng, record.height, record.width)
    attributes = instance.attributes if rng.random() < 0.4 else _attributes(rng)
    class_id = instance.class_id if rng.random() < 0.9 else int(rng.choice(CLASSES))
    return _row(rng, record, mask, class_id, attributes)


def _row(rng, record: ImageRecord, mask: np.ndarray, class_id: int, attributes) -> tuple:
    score = float(rng.choice([0.25, 0.5, 0.75, 1.0])) if rng.random() < 0.4 else float(rng.random())
    return (record.image_id, rle.encode(mask), class_id, ",".join(map(str, attributes)), score)


def has_attributes(class_id: int) -> bool:
    return class_id in CATEGORIES_WITH_ATTRIBUTES
