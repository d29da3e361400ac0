"""The workload of `bench scale`: a synthetic dataset at the real data's image sizes, and each
family's predictions at the models' real density.

Images come from `synth` at a size profile (`SIZE_PROFILES`: the embedded dataset's sizes, median
about 0.4 MP with a tenth of the images over 2000 px, and the same shape at about 1 MP). A family's
predictions of an image are `detections` rows (a model writes at most 100): most ground truths
found again with their masks shifted by a few pixels (so the families' masks differ and fusion
votes), then duplicates and confusions to fill up: other ground truths of the image shifted
further, at low scores, with the object's class or one of the few classes it is confused with (the
same few for every family). So masks have the objects' real sizes, and the families' detections
overlap within a class as a detector's duplicates do, which is what fusion, NMS and matching work on. Test images have no ground truth: a few elliptic
objects per image play its part, and each fold's model predicts them with its own noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.data import rle

HEADER = ["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score", "AttributeScores"]
SIZE_PROFILES = {
    "embedded": {"min_size": 400, "max_size": 1200, "large_fraction": 0.1},  # params.yaml's synth section
    "1mp": {"min_size": 640, "max_size": 1900, "large_fraction": 0.1},
}
FOUND = 0.7            # share of the objects a family finds
TRUE_SHIFT = 0.02      # a found object's mask shifted by up to this share of the image side
FILLER_SHIFT = 0.08    # duplicates and confusions: shifted by up to this share
CONFUSIONS = 2         # classes an object is mistaken for, besides its own
NUM_CLASSES = 46


@dataclass
class Object:
    """One object of an image: its mask as a window at (top, left), class and attributes."""
    window: np.ndarray
    top: int
    left: int
    class_id: int
    attributes: tuple[int, ...]
    confusions: tuple[int, ...]  # the classes it is mistaken for


def _confusions(rng) -> tuple[int, ...]:
    return tuple(int(c) for c in rng.integers(0, NUM_CLASSES, CONFUSIONS))


def ground_truth_objects(rows: pd.DataFrame, rng) -> list[Object]:
    """The objects of one image's train.csv rows."""
    height, width = int(rows.Height.iat[0]), int(rows.Width.iat[0])
    objects = []
    for encoded, class_id, attributes in zip(rows.EncodedPixels, rows.ClassId, rows.AttributesIds):
        mask = rle.decode(encoded, height, width)
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if ys.size:
            objects.append(Object(np.ascontiguousarray(mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]), int(ys[0]),
                                  int(xs[0]), int(class_id), tuple(int(a) for a in str(attributes).split(",") if a),
                                  _confusions(rng)))
    return objects


def ellipse_objects(height: int, width: int, rng, attribute_ids: np.ndarray, count: int = 7) -> list[Object]:
    """`count` elliptic objects covering 1-20 % of the image each, random classes and attributes."""
    objects = []
    for _ in range(count):
        area = rng.uniform(0.01, 0.2) * height * width
        rows = int(np.clip(np.sqrt(area * rng.uniform(0.5, 2.0)), 4, height))
        cols = int(np.clip(area / rows, 4, width))
        y, x = np.ogrid[:rows, :cols]
        window = ((((y + 0.5) / rows - 0.5) ** 2 + ((x + 0.5) / cols - 0.5) ** 2) <= 0.25).astype(np.uint8)
        attributes = tuple(sorted(rng.choice(attribute_ids, size=int(rng.integers(0, 4)), replace=False).tolist()))
        objects.append(Object(window, int(rng.integers(0, height - rows + 1)), int(rng.integers(0, width - cols + 1)),
                              int(rng.integers(0, NUM_CLASSES)), attributes, _confusions(rng)))
    return objects


def shifted(obj: Object, height: int, width: int, share: float, rng) -> str:
    """The object's mask moved by up to `share` of the image's sides, clipped to the image, as RLE."""
    dy, dx = (int(round(rng.uniform(-share, share) * side)) for side in (height, width))
    top, left = obj.top + dy, obj.left + dx
    rows, cols = obj.window.shape
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + rows, height), min(left + cols, width)
    if y1 <= y0 or x1 <= x0:
        return ""
    return rle.encode(obj.window[y0 - top:y1 - top, x0 - left:x1 - left], y0, x0, height, width)


def attribute_text(chosen: tuple[int, ...], rng, attribute_ids: np.ndarray, high: bool) -> tuple[str, str]:
    """(AttributesIds, AttributeScores): the chosen attributes at a probability of 0.5-1 if `high`
    (0.05-0.6 otherwise) and three others at 0.05-0.4."""
    scores = {a: rng.uniform(0.5, 1.0) if high else rng.uniform(0.05, 0.6) for a in chosen}
    for a in rng.choice(attribute_ids, size=3, replace=False):
        scores.setdefault(int(a), rng.uniform(0.05, 0.4))
    scores = {a: round(float(p), 3) for a, p in scores.items()}  # as written, so the ids agree with the text
    ids = ",".join(str(a) for a, p in sorted(scores.items()) if p >= 0.5)
    return ids, " ".join(f"{a}:{p:.3f}" for a, p in sorted(scores.items()))


def family_rows(image_id: str, height: int, width: int, objects: list[Object], detections: int, rng,
                attribute_ids: np.ndarray) -> list[tuple]:
    """One family's `detections` prediction rows of an image (HEADER), found objects first."""
    rows = []
    for obj in objects:
        if rng.random() < FOUND and len(rows) < detections:
            rows.append(_row(image_id, height, width, obj, obj.class_id, TRUE_SHIFT, (0.5, 1.0), rng, attribute_ids))
    while objects and len(rows) < detections:
        obj = objects[int(rng.integers(0, len(objects)))]
        class_id = int(rng.choice((obj.class_id, *obj.confusions)))
        rows.append(_row(image_id, height, width, obj, class_id, FILLER_SHIFT, (0.02, 0.5), rng, attribute_ids))
    return [row for row in rows if row[1]]  # a mask shifted out of the image is left out


def _row(image_id, height, width, obj: Object, class_id: int, shift: float, scores: tuple[float, float], rng,
         attribute_ids) -> tuple:
    encoded = shifted(obj, height, width, shift, rng)
    ids, attribute_scores = attribute_text(obj.attributes, rng, attribute_ids, high=scores[0] >= 0.5)
    return image_id, encoded, class_id, ids, round(rng.uniform(*scores), 4), attribute_scores


def predictions(images: list[tuple[str, int, int, list[Object]]], detections: int, rng,
                attribute_ids: np.ndarray) -> pd.DataFrame:
    """One family's (or fold model's) predictions of `images` ((ImageId, height, width, objects),
    ascending ImageId), sorted by ImageId."""
    rows = [row for image_id, height, width, objects in images
            for row in family_rows(image_id, height, width, objects, detections, rng, attribute_ids)]
    return pd.DataFrame(rows, columns=HEADER)


def replicate(frame: pd.DataFrame, repeats: int) -> pd.DataFrame:
    """`repeats` copies under ImageIds `<id>_r<k>`, sorted by ImageId (stable within an image)."""
    copies = [frame.assign(ImageId=frame.ImageId + f"_r{k}") for k in range(repeats)]
    return pd.concat(copies).sort_values("ImageId", kind="stable")


def pixels(sizes: list[tuple[int, int]]) -> dict:
    """Pixels per image of a set of (height, width): median, mean, share with a side over 2000 px."""
    area = np.array([h * w for h, w in sizes], float)
    longest = np.array([max(h, w) for h, w in sizes])
    return {"images": len(sizes), "median_mp": round(float(np.median(area)) / 1e6, 3),
            "mean_mp": round(float(area.mean()) / 1e6, 3), "max_mp": round(float(area.max()) / 1e6, 3),
            "share_over_2000px": round(float((longest > 2000).mean()), 3)}
