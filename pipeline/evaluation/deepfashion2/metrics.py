"""DeepFashion2 box, mask and landmark AP, number for number the official `deepfashion2_test.py`.

The official script is pycocotools' COCOeval on the converted ground truth
(`pipeline.data.deepfashion2.annotations.to_coco`) with one change: OKS uses the 294 sigmas below. This module
computes the same similarities (box IoU as pycocotools' bbIou, mask IoU with pycocotools' RLE
functions, OKS with COCOeval.computeOks' operations in its order) for the pairs that can ever
match, and runs the project's vectorised greedy matcher and accumulation (`coco_ap`), which
reproduce COCOeval's. What `loadRes` derives from a result file is reproduced too: its branch
(bbox, segmentation or keypoints) is picked by the first entry's keys and decides every
detection's area (box w*h, mask pixels, or the extent of all 294 points) and box.

Breakdowns (not in the official code, whose subset tables are unpublished): for each difficulty
label value, ground truth with another value is ignored as COCOeval ignores an area range's
outsiders: a detection matched to it does not count, an unmatched detection counts as a false
positive (it has no label of its own).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.data.deepfashion2.annotations import CATEGORIES, CATEGORY_BY_ID, DIFFICULTIES, NUM_SLOTS, Annotation
from pipeline.scoring import coco_ap
from pipeline.errors import InputError

TASKS = ("bbox", "segm", "keypoints")
MAX_DETECTIONS = {"bbox": 100, "segm": 100, "keypoints": 20}
NUM_CLASSES = len(CATEGORIES) + 1  # ids 1..13 index the precision arrays directly
IOU_50, IOU_75 = 0, 5
ALL_AREAS = coco_ap.AREA_RANGES["all"]
MAX_LANDMARKS = max(c.landmarks for c in CATEGORIES)

# The official cocoeval.py's computeOks table, category by category in landmark order.
_SIGMAS_BY_CATEGORY = (
    ".012 .0158 .0169 .0165 .0169 .0158 .0298 .0329 .0321 .0323 .034 .0388 .0452 .0574 .0492 .0352 .0492 .0574 "
    ".0452 .0388 .034 .0323 .0321 .0329 .0298",
    ".0194 .017 .0185 .0193 .0185 .017 .0286 .0471 .0547 .0526 .043 .0392 .0513 .0566 .0509 .0564 .0542 .0604 "
    ".0599 .052 .0599 .0604 .0542 .0564 .0509 .0566 .0513 .0392 .043 .0526 .0547 .0471 .0286",
    ".0074 .0085 .0165 .0248 .0165 .0085 .0156 .0231 .0296 .0137 .0195 .025 .0347 .038 .0257 .037 .0257 .038 "
    ".0347 .025 .0195 .0137 .0296 .0231 .0156 .0248 .0469 .0632 .037 .0469 .0632",
    ".0137 .0153 .0243 .0377 .0243 .0153 .0203 .0366 .0467 .0433 .0393 .0329 .0418 .0477 .0399 .0331 .042 .0492 "
    ".0436 .0478 .0436 .0492 .042 .0331 .0399 .0477 .0418 .0329 .0393 .0433 .0467 .0366 .0203 .0377 .0645 .0573 "
    ".0478 .0645 .0573",
    ".0352 .0158 .021 .0214 .021 .0158 .0196 .05 .0489 .0404 .0401 .0404 .0489 .05 .0196",
    ".0276 .0548 .0283 .0204 .0283 .0548 .0369 .0726 .0677 .064 .0251 .064 .0677 .0726 .0369",
    ".0308 .0216 .0308 .0506 .0494 .0463 .0477 .0463 .0494 .0506",
    ".0275 .0202 .0275 .0651 .0451 .035 .028 .0392 .0362 .0392 .028 .035 .0451 .0651",
    ".0253 .0195 .0253 .0513 .0543 .0415 .0543 .0513",
    ".0153 .023 .0167 .0145 .0167 .023 .0332 .0391 .0391 .0396 .044 .0452 .0498 .0514 .0585 .0655 .0635 .0602 "
    ".0635 .0655 .0585 .0514 .0498 .0452 .044 .0396 .0391 .0391 .0332",
    ".0121 .0134 .0158 .0162 .0158 .0134 .0246 .0406 .047 .0404 .0463 .0466 .0435 .0499 .0455 .044 .0411 .049 "
    ".0576 .0685 .0618 .0483 .0618 .0685 .0576 .049 .0411 .044 .0486 .0499 .0435 .0466 .0463 .0404 .047 .0406 "
    ".0246",
    ".0116 .0167 .016 .018 .016 .0167 .0196 .0385 .0421 .0497 .0562 .0528 .0428 .0528 .0562 .0497 .0421 .0385 "
    ".0196",
    ".0244 .0297 .0244 .0208 .0244 .0297 .0173 .0616 .0659 .0712 .0707 .0685 .0339 .0685 .0707 .0712 .0659 .0616 "
    ".0173",
)
SIGMAS = np.array([float(s) for row in _SIGMAS_BY_CATEGORY for s in row.split()])
_VARIANCES = (SIGMAS * 2) ** 2


@dataclass
class GroundTruth:
    """Every item of the annotations, image by image in id order, items in file order."""

    image_ids: np.ndarray  # (images,) sorted
    sizes: list[tuple[int, int]] | None  # (height, width) per image; only segm needs them
    image: np.ndarray  # (items,) index into image_ids
    category: np.ndarray
    box: np.ndarray  # (items, 4) float64 xywh, as the converter writes it
    area: np.ndarray  # box area
    num_keypoints: np.ndarray
    labelled_slots: np.ndarray  # (items, MAX_LANDMARKS) the global slots of the landmarks with v > 0, first
    labelled_xy: np.ndarray  # (items, MAX_LANDMARKS, 2) their x, y; zero padding after num_keypoints
    difficulty: np.ndarray  # (items, 4): scale, occlusion, zoom_in, viewpoint
    polygons: list

    @classmethod
    def from_annotations(cls, annotations: list[Annotation], sizes=None, visible_only: bool = False) -> "GroundTruth":
        """`visible_only`: landmarks with v = 1 (occluded) count as not labelled, as in the "vis"
        landmark scores (`to_coco(visible_only=True)`)."""
        lowest = 2 if visible_only else 1
        items = [(i, item) for i, a in enumerate(annotations) for item in a.items]
        boxes = np.array([item.box for _, item in items], np.float64).reshape(-1, 4)
        labelled_slots = np.zeros((len(items), MAX_LANDMARKS), np.int64)
        labelled_xy = np.zeros((len(items), MAX_LANDMARKS, 2))
        for row, (_, item) in enumerate(items):
            labelled = np.flatnonzero(item.landmarks[:, 2] >= lowest)
            labelled_slots[row, : labelled.size] = item.category.first_slot + labelled
            labelled_xy[row, : labelled.size] = item.landmarks[labelled, :2]
        return cls(
            image_ids=np.array([a.image_id for a in annotations], np.int64),
            sizes=sizes,
            image=np.array([i for i, _ in items], np.int64),
            category=np.array([item.category_id for _, item in items], np.int64),
            box=np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1),
            area=np.array([item.box_area for _, item in items], np.float64),
            num_keypoints=np.array([np.count_nonzero(item.landmarks[:, 2] >= lowest) for _, item in items], np.int64),
            labelled_slots=labelled_slots,
            labelled_xy=labelled_xy,
            difficulty=np.array([item.difficulty for _, item in items], np.int64).reshape(-1, 4),
            polygons=[item.segmentation for _, item in items],
        )

    def rle(self, row: int) -> dict:
        """COCO.annToRLE of a polygon ground truth: the polygons rasterised and merged."""
        height, width = self.sizes[self.image[row]]
        return mask_utils.merge(mask_utils.frPyObjects([list(p) for p in self.polygons[row]], height, width))


@dataclass
class Results:
    """A result file as `loadRes` leaves it, reduced to what one task reads."""

    image: np.ndarray  # index into the ground truth's image_ids
    category: np.ndarray
    score: np.ndarray
    area: np.ndarray  # loadRes' area: decides the area ranges
    box: np.ndarray | None  # (n, 4) xywh for bbox
    rles: list | None  # for segm
    keypoints: np.ndarray | None  # (n, 294, 2) for keypoints

    def __len__(self) -> int:
        return self.image.size


def read_results(data, path, ground_truth: GroundTruth, task: str) -> Results:
    """Validate a parsed result file for `task`; an InputError names the file and the entry (1-based)."""
    if not isinstance(data, list):
        raise InputError(f"results must be a JSON list, got {type(data).__name__}", path)
    branch = _branch(data, path)
    index_of = {int(i): n for n, i in enumerate(ground_truth.image_ids)}
    image, category, score, area, boxes, rles, keypoints = [], [], [], [], [], [], []
    for number, entry in enumerate(data, 1):
        where = f"entry {number}: "
        if not isinstance(entry, dict):
            raise InputError(f"{where}must be a JSON object, got {type(entry).__name__}", path)
        for key in ("image_id", "category_id", "score"):
            if key not in entry:
                raise InputError(f"{where}missing key {key!r}", path)
        image_id = _integer(entry["image_id"], where + "image_id", path)
        if image_id not in index_of:
            raise InputError(f"{where}image_id {image_id} is not in the ground truth", path)
        category_id = _integer(entry["category_id"], where + "category_id", path)
        if category_id not in CATEGORY_BY_ID:
            raise InputError(f"{where}category_id {category_id} is not a DeepFashion2 category (1..13)", path)
        image.append(index_of[image_id])
        category.append(category_id)
        score.append(_number(entry["score"], where + "score", path))
        size = ground_truth.sizes[index_of[image_id]] if task == "segm" else None
        shape = _SHAPES[branch](entry, where, path, size)
        area.append(shape.area)
        boxes.append(shape.box)
        if task == "segm":
            rles.append(_segmentation(entry, branch, shape, where, path, size))
        if task == "keypoints":
            keypoints.append(shape.points if shape.points is not None else _keypoints(entry, where, path))
    return Results(
        image=np.array(image, np.int64), category=np.array(category, np.int64), score=np.array(score, np.float64),
        area=np.array(area, np.float64), box=np.array(boxes, np.float64).reshape(-1, 4),
        rles=rles if task == "segm" else None,
        keypoints=np.array(keypoints, np.float64).reshape(-1, NUM_SLOTS, 2) if task == "keypoints" else None,
    )


@dataclass
class _Shape:
    area: float
    box: list
    rle: dict | None = None
    points: np.ndarray | None = None


def _branch(data: list, path) -> str:
    """loadRes' choice, from the first entry: a non-empty bbox, else segmentation, else keypoints."""
    first = data[0] if data else {}
    if not isinstance(first, dict):
        raise InputError(f"entry 1: must be a JSON object, got {type(first).__name__}", path)
    if first.get("bbox", []) != []:
        return "bbox"
    for branch in ("segmentation", "keypoints"):
        if branch in first:
            return branch
    if not data:
        return "bbox"
    raise InputError("entry 1: needs a bbox, segmentation or keypoints (loadRes reads the first entry)", path)


def _bbox_shape(entry: dict, where: str, path, size) -> _Shape:
    box = _box(entry, where, path)
    return _Shape(area=box[2] * box[3], box=box)


def _segmentation_shape(entry: dict, where: str, path, size) -> _Shape:
    if "segmentation" not in entry:
        raise InputError(f"{where}missing key 'segmentation' (the first entry has one)", path)
    rle = _rle(entry["segmentation"], where, path, size)
    box = _box(entry, where, path) if "bbox" in entry else mask_utils.toBbox(rle).tolist()
    return _Shape(area=float(mask_utils.area(rle)), box=box, rle=rle)


def _keypoints_shape(entry: dict, where: str, path, size) -> _Shape:
    points = _keypoints(entry, where, path)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return _Shape(area=(x1 - x0) * (y1 - y0), box=[x0, y0, x1 - x0, y1 - y0], points=points)


_SHAPES = {"bbox": _bbox_shape, "segmentation": _segmentation_shape, "keypoints": _keypoints_shape}


def _segmentation(entry: dict, branch: str, shape: _Shape, where: str, path, size) -> dict:
    """The mask COCOeval compares: the RLE given, polygons rasterised, or loadRes' box polygon."""
    if shape.rle is not None:
        return shape.rle
    height, width = size
    if "segmentation" not in entry:
        if branch != "bbox":
            raise InputError(f"{where}missing key 'segmentation' (segm needs masks)", path)
        x, y, w, h = shape.box
        polygon = [x, y, x, y + h, x + w, y + h, x + w, y]
        return mask_utils.merge(mask_utils.frPyObjects([polygon], height, width))
    value = entry["segmentation"]
    if isinstance(value, list):
        polygons = [_numbers(p, f"{where}segmentation polygon", path) for p in value]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise InputError(f"{where}segmentation polygons must be even counts >= 6 of numbers", path)
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return _rle(value, where, path, size)


def _rle(value, where: str, path, size) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("counts"), str) or "size" not in value:
        raise InputError(f"{where}segmentation must be a COCO RLE {{size: [h, w], counts: str}}", path)
    rle_size = _numbers(value["size"], where + "segmentation size", path)
    if len(rle_size) != 2 or any(isinstance(s, float) or s < 0 for s in rle_size):
        raise InputError(f"{where}segmentation size must be two integers [h, w], got {value['size']}", path)
    if size is not None and rle_size != list(size):
        raise InputError(f"{where}segmentation size {rle_size} is not the image's {list(size)}", path)
    return {"size": rle_size, "counts": value["counts"]}


def _box(entry: dict, where: str, path) -> list:
    if "bbox" not in entry:
        raise InputError(f"{where}missing key 'bbox' (the first entry has one)", path)
    box = _numbers(entry["bbox"], where + "bbox", path)
    if len(box) != 4 or box[2] < 0 or box[3] < 0:
        raise InputError(f"{where}bbox must be 4 numbers x, y, w, h with w, h >= 0, got {entry['bbox']}", path)
    return box


def _keypoints(entry: dict, where: str, path) -> np.ndarray:
    if "keypoints" not in entry:
        raise InputError(f"{where}missing key 'keypoints'", path)
    values = _number_array(entry["keypoints"], where + "keypoints", path)
    if len(values) != 3 * NUM_SLOTS:
        raise InputError(f"{where}keypoints must be 3*294 = 882 numbers, got {len(values)}", path)
    return values.reshape(NUM_SLOTS, 3)[:, :2]


def _number_array(value, what: str, path) -> np.ndarray:
    """`_numbers` as one numpy conversion (882 keypoint values per entry): a list numpy reads as
    integers or floats, all finite; the slow check only runs to name what is wrong."""
    array = np.array(value) if isinstance(value, list) else None
    if array is None or array.ndim != 1 or array.dtype.kind not in "iuf" or not np.isfinite(array).all():
        _numbers(value, what, path)
        raise InputError(f"{what} must be a flat list of finite numbers", path)
    return array.astype(np.float64)


def _numbers(value, what: str, path) -> list:
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list of numbers, got {type(value).__name__}", path)
    for number in value:
        _number(number, what, path)
    return value


def _number(value, what: str, path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}", path)
    return value


def _integer(value, what: str, path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer, got {value!r}", path)
    return value


# --- similarities of the pairs in one (image, category) group ---------------------------------


def group_pairs(dt_group: np.ndarray, gt_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth) pair of equal group keys, ground truths in file order."""
    order = np.argsort(gt_group, kind="stable")
    keys = gt_group[order]
    start = np.searchsorted(keys, dt_group, "left")
    counts = np.searchsorted(keys, dt_group, "right") - start
    dt = np.repeat(np.arange(dt_group.size), counts)
    offset = np.arange(dt.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return dt, order[np.repeat(start, counts) + offset]


def box_iou(dt_box: np.ndarray, gt_box: np.ndarray) -> np.ndarray:
    """pycocotools' bbIou for non-crowd pairs, with its operations (xywh boxes, row by row)."""
    w = np.minimum(dt_box[:, 2] + dt_box[:, 0], gt_box[:, 2] + gt_box[:, 0]) - np.maximum(dt_box[:, 0], gt_box[:, 0])
    h = np.minimum(dt_box[:, 3] + dt_box[:, 1], gt_box[:, 3] + gt_box[:, 1]) - np.maximum(dt_box[:, 1], gt_box[:, 1])
    inter = w * h
    union = dt_box[:, 2] * dt_box[:, 3] + gt_box[:, 2] * gt_box[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w > 0) & (h > 0), inter / union, 0.0)


def mask_iou(results: Results, ground_truth: GroundTruth, dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pycocotools' RLE IoU of each pair, one call per detection (its pairs share its group)."""
    iou = np.zeros(dt.size)
    if not dt.size:
        return iou
    gt_rles: dict[int, dict] = {}
    bounds = np.flatnonzero(np.r_[True, dt[1:] != dt[:-1], True])
    for begin, end in zip(bounds[:-1], bounds[1:]):
        rows = gt[begin:end]
        for row in rows:
            if row not in gt_rles:
                gt_rles[row] = ground_truth.rle(row)
        iou[begin:end] = mask_utils.iou([results.rles[dt[begin]]], [gt_rles[r] for r in rows], [0] * rows.size)[0]
    return iou


def oks(results: Results, ground_truth: GroundTruth, dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """COCOeval.computeOks with the 294 sigmas, pair by pair but vectorised.

    A ground truth with labelled landmarks is compared on those only, all in its category's block
    (detections only meet ground truth of their own category). Pairs with the same number of
    labelled landmarks are summed as rows of one C-ordered array, which numpy sums with the same
    pairwise order as computeOks' 1-D `np.sum`, so the values are the same floats.
    """
    result = np.zeros(dt.size)
    labelled = ground_truth.num_keypoints[gt]
    for count in np.unique(labelled):
        pairs = np.flatnonzero(labelled == count)
        result[pairs] = (_oks_labelled(results, ground_truth, dt[pairs], gt[pairs], count) if count
                         else _oks_unlabelled(results, ground_truth, dt[pairs], gt[pairs]))
    return result


def _oks_labelled(results, ground_truth, dt, gt, count) -> np.ndarray:
    slots = ground_truth.labelled_slots[gt, :count]  # (pairs, count)
    xy = ground_truth.labelled_xy[gt, :count]
    dx = results.keypoints[dt[:, None], slots, 0] - xy[..., 0]
    dy = results.keypoints[dt[:, None], slots, 1] - xy[..., 1]
    e = (dx**2 + dy**2) / _VARIANCES[slots] / (ground_truth.area[gt] + np.spacing(1))[:, None] / 2
    return np.sum(np.exp(-e), axis=1) / count


def _oks_unlabelled(results, ground_truth, dt, gt) -> np.ndarray:
    """No labelled landmark: distances of all 294 points to the box grown by its size on each side."""
    box = ground_truth.box[gt]
    x0, x1 = (box[:, 0] - box[:, 2])[:, None], (box[:, 0] + box[:, 2] * 2)[:, None]
    y0, y1 = (box[:, 1] - box[:, 3])[:, None], (box[:, 1] + box[:, 3] * 2)[:, None]
    xd, yd = results.keypoints[dt, :, 0], results.keypoints[dt, :, 1]
    dx = np.maximum(0, x0 - xd) + np.maximum(0, xd - x1)
    dy = np.maximum(0, y0 - yd) + np.maximum(0, yd - y1)
    e = (dx**2 + dy**2) / _VARIANCES / (ground_truth.area[gt] + np.spacing(1))[:, None] / 2
    return np.sum(np.exp(-e), axis=1) / NUM_SLOTS


# --- evaluation ---------------------------------------------------------------------------------


@dataclass
class TaskEvaluation:
    task: str
    precision: dict[str, np.ndarray]  # subset name -> (thresholds, recall points, NUM_CLASSES)
    gt_per_category: np.ndarray
    results_per_category: np.ndarray
    images: int

    def ap(self, subset: str = "all", threshold: int | None = None, category: int | None = None) -> float:
        precision = self.precision[subset]
        if threshold is not None:
            precision = precision[threshold : threshold + 1]
        picked = precision[..., 1:] if category is None else precision[..., category]
        return coco_ap.mean_defined(picked)

    def triple(self, subset: str = "all", category: int | None = None) -> dict:
        return {"AP": self.ap(subset, None, category), "AP50": self.ap(subset, IOU_50, category),
                "AP75": self.ap(subset, IOU_75, category)}

    def metrics(self) -> dict:
        """The JSON of `evaluate-df2`: reference_metrics.json's keys, per category, per difficulty
        subset; -1 where undefined (no ground truth)."""
        result = {"task": self.task, **self.triple(), "images": self.images,
                  "gt_items": int(self.gt_per_category.sum()), "results": int(self.results_per_category.sum())}
        result["categories"] = {
            c.name: {"id": c.id, "gt": int(self.gt_per_category[c.id]),
                     "results": int(self.results_per_category[c.id]), **self.triple(category=c.id)}
            for c in CATEGORIES
        }
        for label, values in DIFFICULTIES.items():
            result[label] = {value: self.triple(f"{label}={value}") for value in values}
        return result


def evaluate(ground_truth: GroundTruth, results: Results, task: str) -> TaskEvaluation:
    """COCOeval(task) over every ground-truth image, with the difficulty subsets."""
    dt_group = results.image * NUM_CLASSES + results.category
    score = results.score
    rows, rank = coco_ap.top_detections(results.image, dt_group, score, MAX_DETECTIONS[task])
    gt_group = ground_truth.image * NUM_CLASSES + ground_truth.category
    dt, gt = group_pairs(dt_group[rows], gt_group)
    similarity = _SIMILARITIES[task](_subset(results, rows, task), ground_truth, dt, gt)
    candidate = similarity >= coco_ap.IOU_THRESHOLDS[0]  # no other pair can ever match
    candidates = coco_ap.Candidates(dt[candidate], gt[candidate], similarity[candidate], np.ones(candidate.sum()))

    low, high = ALL_AREAS
    base_ignored = (ground_truth.area < low) | (ground_truth.area > high)
    if task == "keypoints":
        base_ignored |= ground_truth.num_keypoints == 0
    dt_outside = (results.area[rows] < low) | (results.area[rows] > high)
    subsets = {"all": base_ignored}
    for column, (label, values) in enumerate(DIFFICULTIES.items()):
        for value_index, value in enumerate(values, 1):
            subsets[f"{label}={value}"] = base_ignored | (ground_truth.difficulty[:, column] != value_index)
    precision = {}
    no_f1 = np.zeros(coco_ap.IOU_THRESHOLDS.size)
    for name, gt_ignored in subsets.items():
        matched = coco_ap.match(candidates, rank, gt_ignored, coco_ap.IOU_THRESHOLDS, no_f1)
        hit = matched >= 0
        ignored = np.where(hit, gt_ignored[np.maximum(matched, 0)], dt_outside[:, None])
        regular = np.bincount(ground_truth.category[~gt_ignored], minlength=NUM_CLASSES)
        precision[name], _ = coco_ap.precision_recall(
            results.category[rows], np.packbits(hit, axis=1), np.packbits(ignored, axis=1), hit.shape[1], regular,
            np.arange(1, NUM_CLASSES), NUM_CLASSES,
        )
    return TaskEvaluation(
        task=task, precision=precision, images=ground_truth.image_ids.size,
        gt_per_category=np.bincount(ground_truth.category, minlength=NUM_CLASSES),
        results_per_category=np.bincount(results.category, minlength=NUM_CLASSES),
    )


def _subset(results: Results, rows: np.ndarray, task: str) -> Results:
    return Results(
        image=results.image[rows], category=results.category[rows], score=results.score[rows],
        area=results.area[rows], box=results.box[rows],
        rles=[results.rles[r] for r in rows] if task == "segm" else None,
        keypoints=results.keypoints[rows] if task == "keypoints" else None,
    )


def _box_similarity(results: Results, ground_truth: GroundTruth, dt, gt) -> np.ndarray:
    return box_iou(results.box[dt], ground_truth.box[gt])


_SIMILARITIES = {"bbox": _box_similarity, "segm": mask_iou, "keypoints": oks}
