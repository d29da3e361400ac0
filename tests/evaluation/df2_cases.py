"""Random DeepFashion2 ground truth and results, built to hit COCOeval's corner cases.

Few categories (collisions), scores from a small set (ties), items without labelled landmarks
(ignored for keypoints), false positives, wrong categories, more detections than keypoints'
maxDets (20) in some groups, and results in each of loadRes' three branches.
"""
from __future__ import annotations

import copy

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.data.deepfashion2.annotations import CATEGORY_BY_ID, NUM_SLOTS, Annotation, Item

CATEGORY_CHOICE = (1, 7, 8, 13)
SCORES = (0.3, 0.5, 0.5, 0.7, 0.9)


def random_polygon(rng, box) -> tuple[float, ...]:
    """A star-shaped polygon inside the box (corners x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(4, 9))))
    radius = rng.uniform(0.5, 1.0, angles.size)
    xs = (x1 + x2) / 2 + radius * np.cos(angles) * (x2 - x1) / 2
    ys = (y1 + y2) / 2 + radius * np.sin(angles) * (y2 - y1) / 2
    return tuple(np.round(np.stack([xs, ys], 1).ravel(), 1).tolist())


def random_item(rng, key: str, height: int, width: int) -> Item:
    category = CATEGORY_BY_ID[int(rng.choice(CATEGORY_CHOICE))]
    x1, y1 = float(rng.integers(0, width - 20)), float(rng.integers(0, height - 20))
    x2 = float(min(width, x1 + rng.integers(8, 120)))
    y2 = float(min(height, y1 + rng.integers(8, 120)))
    landmarks = np.zeros((category.landmarks, 3))
    landmarks[:, 0] = rng.uniform(x1, x2, category.landmarks).round(1)
    landmarks[:, 1] = rng.uniform(y1, y2, category.landmarks).round(1)
    landmarks[:, 2] = rng.choice((0, 1, 2), category.landmarks, p=(0.2, 0.3, 0.5))
    if rng.random() < 0.15:
        landmarks[:, 2] = 0  # no labelled landmark at all
    landmarks[landmarks[:, 2] == 0, :2] = 0
    polygons = tuple(random_polygon(rng, (x1, y1, x2, y2)) for _ in range(int(rng.integers(1, 3))))
    return Item(key, category.id, int(rng.integers(0, 3)), (x1, y1, x2, y2), landmarks, polygons,
                tuple(int(v) for v in rng.integers(1, 4, 4)))


def random_case(seed: int) -> tuple[list[Annotation], list[tuple[int, int]], list[dict]]:
    """(annotations, image sizes, results with bbox, segmentation and keypoints per entry)."""
    rng = np.random.default_rng(seed)
    annotations, sizes, results = [], [], []
    for image_id in range(1, int(rng.integers(2, 7)) + 1):
        height, width = int(rng.integers(120, 260)), int(rng.integers(120, 260))
        items = tuple(random_item(rng, f"item{k}", height, width) for k in range(1, int(rng.integers(1, 5)) + 1))
        annotations.append(Annotation(image_id, None, "user", 1, items))
        sizes.append((height, width))
        for item in items:
            for _ in range(int(rng.integers(0, 3))):
                results.append(jittered(rng, image_id, item, height, width))
        for _ in range(int(rng.integers(0, 4))):  # false positives, sometimes many in one group
            fake = random_item(rng, "fake", height, width)
            for _ in range(int(rng.choice((1, 1, 1, 25)))):
                results.append(jittered(rng, image_id, fake, height, width, spread=30))
    return annotations, sizes, results


def jittered(rng, image_id: int, item: Item, height: int, width: int, spread: float | None = None) -> dict:
    """A result near `item`: its box, polygons and landmarks moved by ~`spread` px (default: 1, 3 or 8)."""
    spread = float(rng.choice((1, 3, 8))) if spread is None else spread
    x1, y1, x2, y2 = item.box
    dx, dy = rng.normal(0, spread, 2).round(1)
    category = item.category_id if rng.random() < 0.85 else int(rng.choice(CATEGORY_CHOICE))
    polygons = [list(np.array(p) + np.tile([dx, dy], len(p) // 2)) for p in item.segmentation]
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    keypoints = rng.uniform(0, max(height, width), (NUM_SLOTS, 3)).round(1)
    first = item.category.first_slot
    block = item.landmarks[:, :2] + rng.normal(0, spread / 3, (item.category.landmarks, 2))
    keypoints[first : first + item.category.landmarks, :2] = block.round(1)
    keypoints[:, 2] = 1
    return {
        "image_id": image_id, "category_id": category,
        "bbox": [x1 + dx, y1 + dy, (x2 - x1) * rng.uniform(0.9, 1.1), (y2 - y1) * rng.uniform(0.9, 1.1)],
        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
        "keypoints": keypoints.ravel().tolist(),
        "score": float(rng.choice(SCORES)),
        "polygons": [[round(float(v), 1) for v in p] for p in polygons],  # see in_branch
        "mask_form": str(rng.choice(("rle", "rle", "rle", "polygons", "none"))),
    }


def in_branch(results: list[dict], branch: str) -> list[dict]:
    """The results as a file of loadRes' `branch`: bbox (all keys), segmentation (no bbox) or
    keypoints (keypoints only). In the bbox branch, a result's mask is an RLE, polygons, or absent
    (loadRes then uses the box) as its `mask_form` says; the other branches need the RLE."""
    dropped = {"bbox": (), "segmentation": ("bbox",), "keypoints": ("bbox", "segmentation")}[branch]
    files = []
    for result in copy.deepcopy(results):
        form, polygons = result.pop("mask_form"), result.pop("polygons")
        if branch == "bbox" and form == "polygons":
            result["segmentation"] = polygons
        elif branch == "bbox" and form == "none":
            del result["segmentation"]
        files.append({k: v for k, v in result.items() if k not in dropped})
    return files
