"""DeepFashion2: read and validate `image/` + `annos/NNNNNN.json`, and the official conversion to COCO.

The rules (layout, fields, the 294 landmark slots, the converter's output) are those of
switchablenorms/DeepFashion2 as `shared/DEEPFASHION2.md` describes them. image_id is the integer
of the file name (000123.json -> 123). Every field is checked once here, so later code can trust
the records: a bad one is an InputError naming the file and the item, e.g.
`annos/000001.json: item2: landmarks must be 3*14 = 42 numbers for trousers, got 40`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from pipeline.errors import InputError


@dataclass(frozen=True)
class Category:
    id: int
    name: str  # the COCO name of the official converter
    readme_name: str  # the name README and the annotation files use
    landmarks: int
    first_slot: int  # 0-based index of its first landmark among the 294 slots


_TABLE = (
    (1, "short_sleeved_shirt", "short sleeve top", 25),
    (2, "long_sleeved_shirt", "long sleeve top", 33),
    (3, "short_sleeved_outwear", "short sleeve outwear", 31),
    (4, "long_sleeved_outwear", "long sleeve outwear", 39),
    (5, "vest", "vest", 15),
    (6, "sling", "sling", 15),
    (7, "shorts", "shorts", 10),
    (8, "trousers", "trousers", 14),
    (9, "skirt", "skirt", 8),
    (10, "short_sleeved_dress", "short sleeve dress", 29),
    (11, "long_sleeved_dress", "long sleeve dress", 37),
    (12, "vest_dress", "vest dress", 19),
    (13, "sling_dress", "sling dress", 19),
)
CATEGORIES = tuple(
    Category(cid, name, readme, count, sum(row[3] for row in _TABLE[: cid - 1]))
    for cid, name, readme, count in _TABLE
)
CATEGORY_BY_ID = {c.id: c for c in CATEGORIES}
NUM_SLOTS = 294
TOPS = (1, 2, 5, 6, 10, 11, 12, 13)  # tops and dresses: neckline 1-6, then the outline
OUTWEAR = (3, 4)  # a top's landmarks plus the front opening's six at the end
BOTTOMS = (7, 8, 9)  # waistband 1-3, then the outline


def mirror_order(category_id: int) -> np.ndarray:
    """0-based: position k of the category's landmarks holds, in the horizontally flipped image, the
    point that was landmark mirror_order[k] (image-left and image-right swap; points on the axis stay).

    From the landmark order (README Figure 2): a top's neckline is 1 (back centre), 2/6 (top corners),
    3/5 (partway down), 4 (front centre); the outline then runs from the image-left shoulder round
    to the image-right one, so it mirrors end to end. Bottoms: waistband 1/3 (2 centre), then the
    outline end to end. Outerwear: 4 is the top of the opening's image-left edge, its partner the
    opening's first point; the opening's 2nd/3rd mirror its 5th/6th, and its 4th the outline's middle
    point. These pairs are the official OKS sigmas' own: every landmark and its mirror share a sigma,
    and no other reading of the order does for outerwear (long sleeve dress 15/29, .0455 against
    .0486, is the table's one exception).
    """
    count = CATEGORY_BY_ID[category_id].landmarks
    if category_id in BOTTOMS:
        return np.r_[2, 1, 0, np.arange(3, count)[::-1]]
    contour = count - 6 if category_id in OUTWEAR else count
    order = np.r_[0, 5, 4, 3, 2, 1, np.arange(6, contour)[::-1]]
    if category_id in OUTWEAR:
        middle = (6 + contour - 1) // 2
        opening = np.arange(contour, count)
        order[3], order[middle] = opening[0], opening[3]
        order = np.r_[order, 3, opening[[4, 5]], middle, opening[[1, 2]]]
    return order


# Per global slot: the slot its landmark moves to under a horizontal flip (an involution).
MIRRORED_SLOTS = np.concatenate([c.first_slot + mirror_order(c.id) for c in CATEGORIES])
SOURCES = ("user", "shop")
# The four difficulty labels of each item and the names of their values 1, 2, 3 (paper Table 4).
DIFFICULTIES = {
    "scale": ("small", "moderate", "large"),
    "occlusion": ("slight", "medium", "heavy"),
    "zoom_in": ("no", "medium", "large"),
    "viewpoint": ("no_wear", "frontal", "side_or_back"),
}
IMAGE_KEYS = ("source", "pair_id")
# Consumer-to-shop retrieval ranks the gallery 20 deep per query item (the protocol's top-20).
RANKS = 20


@dataclass(frozen=True)
class Item:
    key: str  # "item1", ... as in the file
    category_id: int
    style: int  # 0: in no pair
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 (corners) as in the file
    landmarks: np.ndarray  # (N, 3) float64: x, y, v of the category's N landmarks
    segmentation: tuple[tuple[float, ...], ...]  # polygons x1, y1, x2, y2, ...
    difficulty: tuple[int, int, int, int]  # scale, occlusion, zoom_in, viewpoint, each 1..3

    @property
    def category(self) -> Category:
        return CATEGORY_BY_ID[self.category_id]

    @property
    def box_area(self) -> float:
        """The COCO `area` of the official conversion: the box's, not the mask's."""
        x1, y1, x2, y2 = self.box
        return (x2 - x1) * (y2 - y1)


@dataclass(frozen=True)
class Annotation:
    """One image's annotation file."""

    image_id: int
    path: Path
    source: str
    pair_id: int
    items: tuple[Item, ...]


def image_id_of(path: str | Path) -> int:
    stem = Path(path).stem
    if not stem.isdigit():
        raise InputError("file name must be the image id in digits (e.g. 000123.json)", path)
    return int(stem)


def read_annotation(path: str | Path) -> Annotation:
    """Parse and validate one `annos/NNNNNN.json`."""
    path = Path(path)
    image_id = image_id_of(path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(f"must be a JSON object, got {type(data).__name__}", path)
    for key in IMAGE_KEYS:
        if key not in data:
            raise InputError(f"missing key {key!r}", path)
    if data["source"] not in SOURCES:
        raise InputError(f"source must be one of {', '.join(SOURCES)}, got {data['source']!r}", path)
    pair_id = _integer(data["pair_id"], "pair_id", path, minimum=0)
    # The official converter treats every other key as an item, in file order.
    items = tuple(_item(key, value, path) for key, value in data.items() if key not in IMAGE_KEYS)
    return Annotation(image_id, path, data["source"], pair_id, items)


def load_json(path: str | Path):
    """A parsed JSON file (orjson: result files reach gigabytes; 0.45 s against json's 0.71 s on 48 MB of
    `bench evaluate-df2` results)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except OSError as error:
        raise InputError(f"cannot read ({error})", path) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(f"not valid JSON: {error.msg} (column {error.colno})", path, error.lineno) from None


def read_annotations(annos_dir: str | Path) -> list[Annotation]:
    """Every `*.json` of an annos folder, in image id order."""
    annos_dir = Path(annos_dir)
    if not annos_dir.is_dir():
        raise InputError("annotation folder not found", annos_dir)
    paths = sorted(annos_dir.glob("*.json"), key=image_id_of)
    if not paths:
        raise InputError("no *.json annotation file", annos_dir)
    annotations = [read_annotation(p) for p in paths]
    for previous, current in zip(annotations, annotations[1:]):
        if previous.image_id == current.image_id:
            raise InputError(f"image id {current.image_id} also in {previous.path.name}", current.path)
    return annotations


def _item(key: str, value, path: Path) -> Item:
    if not isinstance(value, dict):
        raise InputError(f"{key}: an item must be a JSON object, got {type(value).__name__}", path)
    where = f"{key}: "
    for field in ("category_name", "category_id", "style", "bounding_box", "landmarks", "segmentation",
                  *DIFFICULTIES):
        if field not in value:
            raise InputError(f"{where}missing key {field!r}", path)
    category_id = _integer(value["category_id"], where + "category_id", path, minimum=1)
    category = CATEGORY_BY_ID.get(category_id)
    if category is None:
        raise InputError(f"{where}category_id must be 1..{len(CATEGORIES)}, got {category_id}", path)
    if value["category_name"] not in (category.name, category.readme_name):
        raise InputError(f"{where}category_name {value['category_name']!r} is not category {category_id} "
                         f"({category.readme_name!r} or {category.name!r})", path)
    box = _numbers(value["bounding_box"], where + "bounding_box", path)
    if len(box) != 4:
        raise InputError(f"{where}bounding_box must be 4 numbers x1, y1, x2, y2, got {len(box)}", path)
    if box[2] < box[0] or box[3] < box[1]:
        raise InputError(f"{where}bounding_box must have x2 >= x1 and y2 >= y1, got {box}", path)
    return Item(
        key=key,
        category_id=category_id,
        style=_integer(value["style"], where + "style", path, minimum=0),
        box=tuple(box),
        landmarks=_landmarks(value["landmarks"], category, where, path),
        segmentation=_polygons(value["segmentation"], where, path),
        difficulty=tuple(_integer(value[name], where + name, path, minimum=1, maximum=3) for name in DIFFICULTIES),
    )


def _landmarks(value, category: Category, where: str, path: Path) -> np.ndarray:
    numbers = _numbers(value, where + "landmarks", path)
    expected = 3 * category.landmarks
    if len(numbers) != expected:
        raise InputError(f"{where}landmarks must be 3*{category.landmarks} = {expected} numbers for "
                         f"{category.name}, got {len(numbers)}", path)
    landmarks = np.array(numbers, np.float64).reshape(-1, 3)
    bad = np.flatnonzero(~np.isin(landmarks[:, 2], (0, 1, 2)))
    if bad.size:
        raise InputError(f"{where}landmark {bad[0] + 1}: visibility must be 0, 1 or 2, got {landmarks[bad[0], 2]:g}",
                         path)
    return landmarks


def _polygons(value, where: str, path: Path) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}segmentation must be a non-empty list of polygons", path)
    polygons = []
    for i, polygon in enumerate(value, 1):
        numbers = _numbers(polygon, f"{where}segmentation polygon {i}", path)
        if len(numbers) < 6 or len(numbers) % 2:
            raise InputError(f"{where}segmentation polygon {i} must be an even count >= 6 of numbers "
                             f"(x, y of 3+ points), got {len(numbers)}", path)
        polygons.append(tuple(numbers))
    return tuple(polygons)


def _numbers(value, what: str, path: Path) -> list:
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list of numbers, got {type(value).__name__}", path)
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise InputError(f"{what} must hold finite numbers only, got {number!r}", path)
    return value


def _integer(value, what: str, path: Path, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer, got {value!r}", path)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        span = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise InputError(f"{what} must be {span}, got {value}", path)
    return value


def image_path(image_dir: str | Path, image_id: int) -> Path:
    return Path(image_dir) / f"{image_id:06d}.jpg"


def slot_keypoints(item: Item, visible_only: bool = False) -> list[float]:
    """The item's landmarks in its category's block of the 294 slots, zeros elsewhere (882 floats);
    `visible_only` zeroes the occluded (v = 1) ones too."""
    points = np.zeros((NUM_SLOTS, 3))
    first = item.category.first_slot
    points[first : first + item.category.landmarks] = item.landmarks
    if visible_only:
        points[points[:, 2] == 1] = 0
    return points.ravel().tolist()


def to_coco(annotations: list[Annotation], sizes: list[tuple[int, int]], visible_only: bool = False) -> dict:
    """The official `deepfashion2_to_coco.py` output; `sizes[i]` is image i's (height, width).

    `visible_only`: occluded landmarks (v = 1) zeroed before counting, presumably how the "vis"
    ground truth (`keypoints_val_vis.json`, not public) was made; a guess (DEEPFASHION2.md).
    """
    images, coco_annotations = [], []
    for annotation, (height, width) in zip(annotations, sizes):
        images.append({"coco_url": "", "date_captured": "", "file_name": f"{annotation.image_id:06d}.jpg",
                       "flickr_url": "", "id": annotation.image_id, "license": 0, "width": width,
                       "height": height})
        for item in annotation.items:
            x1, y1, x2, y2 = item.box
            coco_annotations.append({
                "area": item.box_area,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "category_id": item.category_id,
                "id": len(coco_annotations) + 1,
                "pair_id": annotation.pair_id,
                "image_id": annotation.image_id,
                "iscrowd": 0,
                "style": item.style,
                "num_keypoints": int(np.count_nonzero(item.landmarks[:, 2] >= (2 if visible_only else 1))),
                "keypoints": slot_keypoints(item, visible_only),
                "segmentation": [list(p) for p in item.segmentation],
            })
    categories = [
        {"id": c.id, "name": c.name, "supercategory": "clothes",
         "keypoints": [str(i) for i in range(1, NUM_SLOTS + 1)], "skeleton": []}
        for c in CATEGORIES
    ]
    return {"info": {}, "licenses": [], "images": images, "annotations": coco_annotations,
            "categories": categories}


def retrieval_ground_truth(annotations: list[Annotation]) -> tuple[list[dict], list[dict]]:
    """(query GT, gallery GT) in the official layout: every item of every consumer image (style 0
    included), and the shop items with style > 0; boxes as corners."""
    query, gallery = [], []
    for annotation in annotations:
        for item in annotation.items:
            if annotation.source == "user":
                query.append({"query_image_id": annotation.image_id, "bbox": list(item.box), "cls": item.category_id,
                              "style": item.style, "pair_id": annotation.pair_id})
            elif item.style > 0:
                gallery.append({"gallery_image_id": annotation.image_id, "bbox": list(item.box),
                                "style": item.style, "pair_id": annotation.pair_id})
    return query, gallery
