"""Columnar instance tables: ground truth and predictions in one shape for the vectorised scorers.

Rows keep file order; `image` indexes the ground truth's image list (its file order), which fixes
how ties between equal scores are broken, exactly as the reference evaluators do on a COCO file
whose image ids follow that order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data import rle
from pipeline.data.annotations import ImageRecord


@dataclass
class InstanceTable:
    image: np.ndarray                      # int64, index into the ground truth's image list
    class_id: np.ndarray                   # int64
    attributes: list[tuple[int, ...]]      # sorted attribute ids per instance
    runs: list[tuple[np.ndarray, np.ndarray]]  # 0-based column-major (starts, lengths) per instance;
                                               # empty once masks are matched and no longer needed
    area: np.ndarray                       # mask area in pixels (int64), or a COCO file's `area` (float64)
    score: np.ndarray | None = None        # float64 confidences; None for ground truth or no Score column
    line: np.ndarray | None = None         # source CSV line per instance, for messages

    def __len__(self) -> int:
        return self.class_id.size

    def of_images(self, images: np.ndarray) -> "InstanceTable":
        """The rows of some images (indices into the image list), re-indexed to `images`' order."""
        new_index = np.full(max(self.image.max(initial=-1), images.max(initial=-1)) + 1, -1)
        new_index[images] = np.arange(images.size)
        rows = np.flatnonzero(new_index[self.image] >= 0)
        return InstanceTable(
            new_index[self.image[rows]],
            self.class_id[rows],
            [self.attributes[r] for r in rows],
            [self.runs[r] for r in rows] if self.runs else [],
            self.area[rows],
            None if self.score is None else self.score[rows],
            None if self.line is None else self.line[rows],
        )

    @classmethod
    def build(cls, image, class_id, attributes, runs, score=None, line=None, area=None) -> "InstanceTable":
        """`area` (default: each mask's pixel count) is what the area ranges compare."""
        if area is None:
            area = np.fromiter((lengths.sum() for _, lengths in runs), np.int64, len(runs))
        else:
            area = np.asarray(area, np.float64).reshape(-1)
        return cls(
            np.asarray(image, np.int64).reshape(-1),
            np.asarray(class_id, np.int64).reshape(-1),
            list(attributes),
            list(runs),
            area,
            None if score is None else np.asarray(score, np.float64).reshape(-1),
            None if line is None else np.asarray(line, np.int64).reshape(-1),
        )


def ground_truth_table(records: list[ImageRecord]) -> InstanceTable:
    """The instances of already validated records, image by image in record order. An instance's
    `area`, where its file gives one (COCO-style files), is its area for the area ranges, as in
    the reference evaluators; else its mask's pixel count."""
    image, class_id, attributes, runs, line, area = [], [], [], [], [], []
    for index, record in enumerate(records):
        for instance in record.instances:
            image.append(index)
            class_id.append(instance.class_id)
            attributes.append(instance.attributes)
            runs.append(rle.parse(instance.rle, record.height, record.width))
            line.append(instance.line)
            area.append(instance.area)
    given = any(a is not None for a in area)
    if given:
        area = [lengths.sum() if a is None else a for a, (_, lengths) in zip(area, runs)]
    return InstanceTable.build(image, class_id, attributes, runs, line=line, area=area if given else None)
