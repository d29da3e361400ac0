"""Instances drawn on their image: semi-transparent coloured masks, outlines, landmarks as dots and a
text label each.

Used by `infer` for predictions and by the notebooks for ground truth, so both look alike: a
category keeps its colour everywhere, which makes predictions and ground truth easy to compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np
from matplotlib import colormaps

from pipeline.data import rle
from pipeline.data.ontology import Ontology
from pipeline.io import atomic_path

MASK_OPACITY = 0.45
LABEL_ATTRIBUTES = 3  # attribute names shown in a label; the printed listing has them all


@dataclass
class Instance:
    """One instance to draw: a {0,1} mask at the image's size, the text to write on it and, for
    DeepFashion2 items, the (K, 2) x, y of the landmarks to mark."""

    mask: np.ndarray
    class_id: int
    label: str
    landmarks: np.ndarray | None = None


def category_colour(class_id: int) -> tuple[int, int, int]:
    """An RGB colour per category from 40 distinct ones (matplotlib's tab20 then tab20b)."""
    palette = colormaps["tab20"].colors + colormaps["tab20b"].colors
    return tuple(round(255 * c) for c in palette[class_id % len(palette)])


def label_text(ontology: Ontology, class_id: int, attribute_ids: Sequence[int] = (), score: float | None = None,
               max_attributes: int = LABEL_ATTRIBUTES) -> str:
    """'category 0.87: attr, attr, attr' (score and attributes only when given)."""
    text = ontology.category_by_id[class_id].name
    if score is not None:
        text += f" {score:.2f}"
    names = [ontology.attribute_by_id[a].name for a in list(attribute_ids)[:max_attributes]]
    if names:
        text += ": " + ", ".join(names) + (", ..." if len(attribute_ids) > max_attributes else "")
    return text


def instances_from_rows(rows: Iterable, size: tuple[int, int], ontology: Ontology, scored: bool = True) -> list[Instance]:
    """Instances of prediction or ground-truth rows (objects with EncodedPixels, ClassId, AttributesIds
    and, when `scored`, Score) of one image of `size` = (height, width)."""
    instances = []
    for row in rows:
        attributes = [int(a) for a in str(row.AttributesIds or "").split(",") if a.strip()]
        score = float(row.Score) if scored else None
        instances.append(Instance(rle.decode(row.EncodedPixels, *size), int(row.ClassId),
                                  label_text(ontology, int(row.ClassId), attributes, score)))
    return instances


def draw(image: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """A copy of the (H, W, 3) RGB uint8 `image` with `instances` drawn, the first on top."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for instance in reversed(instances):  # the first (best-scored) instance is painted last
        mask = instance.mask.astype(bool)
        colour = np.array(category_colour(instance.class_id), np.float32)
        canvas[mask] = (canvas[mask] * (1 - MASK_OPACITY) + colour * MASK_OPACITY).astype(np.uint8)
        contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), thickness, cv2.LINE_AA)
    for instance in reversed(instances):  # dots after all masks, so no mask covers a landmark
        if instance.landmarks is not None:
            draw_landmarks(canvas, instance.landmarks, category_colour(instance.class_id), thickness + 1)
    for instance in reversed(instances):  # labels after all masks and dots
        put_label(canvas, instance)
    return canvas


def put_label(canvas: np.ndarray, instance: Instance) -> None:
    """The instance's text on a filled box in its colour at the top-left corner of its mask."""
    rows = np.flatnonzero(instance.mask.any(axis=1))
    if not rows.size:
        return
    columns = np.flatnonzero(instance.mask.any(axis=0))
    height, width = canvas.shape[:2]
    scale = max(0.35, max(height, width) / 1600)
    weight = max(1, round(scale * 1.5))
    (text_width, text_height), baseline = cv2.getTextSize(instance.label, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    x = int(min(columns[0], max(0, width - text_width)))
    y = int(max(rows[0], text_height + baseline))
    colour = category_colour(instance.class_id)
    cv2.rectangle(canvas, (x, y - text_height - baseline), (x + text_width, y), colour, cv2.FILLED)
    cv2.putText(canvas, instance.label, (x, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, ink(colour), weight,
                cv2.LINE_AA)


def draw_landmarks(canvas: np.ndarray, points: np.ndarray, colour: tuple[int, int, int], radius: int) -> None:
    """(K, 2) x, y `points` as dots of `colour`, ringed in black or white (whichever stands out) so that
    they show on their own mask, which has the same colour."""
    for x, y in np.round(points).astype(int).tolist():
        cv2.circle(canvas, (x, y), radius + 1, ink(colour), cv2.FILLED, cv2.LINE_AA)
        cv2.circle(canvas, (x, y), radius, colour, cv2.FILLED, cv2.LINE_AA)


def ink(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light colours, white on dark ones."""
    return (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 128 else (255, 255, 255)


def write_png(path, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    with atomic_path(path, suffix=".png") as tmp:
        data.tofile(tmp)
