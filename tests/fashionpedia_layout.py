"""A small dataset written in both layouts from the same masks: Fashionpedia's (instances JSON with
polygons, compressed and uncompressed RLE, attributes) and Kaggle's (train.csv), plus predictions
as a CSV and as the official results JSON.

Masks are what pycocotools rasterises from the polygons, so both layouts hold the same pixels. Image
ids are shuffled against the file order and the file names (ImageIds), so every order the readers
and evaluators use differs from the others; one val image has no annotation.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from pycocotools import mask as coco_mask

from pipeline.data import ontology as ontology_lib
from pipeline.data import rle

ONTOLOGY = ontology_lib.load()
# Categories with attributes (shirt, pants, dress, sleeve, neckline) and without (shoe, bag, bead).
CLASSES = (0, 6, 10, 31, 33, 23, 24, 37)
FORMATS = ("polygons", "compressed", "uncompressed")


def _polygons(rng, height, width) -> list[list[float]]:
    """One or two random polygons, some vertices a little outside the image (pycocotools clips)."""
    polygons = []
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        radius = rng.uniform(0.1, 0.45) * min(height, width)
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
        points = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
        polygons.append(np.round(points, 2).ravel().tolist())
    return polygons


def _mask(polygons, height, width) -> np.ndarray:
    return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width)))


def _segmentation(form: str, polygons, mask: np.ndarray):
    if form == "polygons":
        return polygons
    if form == "compressed":
        encoded = coco_mask.encode(np.asfortranarray(mask))
        return {"size": list(mask.shape), "counts": encoded["counts"].decode("ascii")}
    return {"size": list(mask.shape), "counts": rle.mask_to_counts(mask).tolist()}


def _attributes(rng) -> list[int]:
    ids = ONTOLOGY.attribute_ids
    return sorted(int(a) for a in rng.choice(ids, int(rng.integers(0, 4)), replace=False))


def _image(rng, height, width) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    base = np.dstack([xx * 255 // width, yy * 255 // height, np.full_like(xx, int(rng.integers(0, 255)))])
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def _split(rng, count: int, first_id: int, empty_last: bool):
    """(images, annotations, masks per image) of one split."""
    ids = rng.permutation(np.arange(first_id, first_id + 3 * count))[:count]
    images, annotations, masks = [], [], []
    for k, image_id in enumerate(ids.tolist()):
        height, width = int(rng.integers(90, 240)), int(rng.integers(90, 240))
        name = "".join(rng.choice(list("0123456789abcdef"), 12))
        images.append({"id": image_id, "file_name": f"{name}.jpg", "height": height, "width": width})
        instances = [] if empty_last and k == count - 1 else range(int(rng.integers(2, 6)))
        image_masks = []
        for _ in instances:
            polygons = _polygons(rng, height, width)
            mask = _mask(polygons, height, width)
            if not mask.any():
                continue
            form = FORMATS[len(annotations) % 3]
            annotations.append({
                "id": int(1000 + len(annotations) * 7), "image_id": image_id,
                "category_id": int(rng.choice(CLASSES)), "attribute_ids": _attributes(rng),
                "segmentation": _segmentation(form, polygons, mask),
                # An area unlike the pixel count, as a file's may be: the evaluators' area ranges use it.
                "area": float(mask.sum()) * float(rng.choice([1.0, 0.4, 3.0])),
                "bbox": [float(v) for v in coco_mask.toBbox(coco_mask.encode(np.asfortranarray(mask)))],
                "iscrowd": 0,
            })
            image_masks.append(mask)
        masks.append(image_masks)
    return images, annotations, masks


def _dataset(images, annotations) -> dict:
    return {
        "info": {"description": "generated"}, "images": images, "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in ONTOLOGY.categories],
        "attributes": [{"id": a.id, "name": a.name, "supercategory": a.supercategory} for a in ONTOLOGY.attributes],
    }


def _kaggle_rows(images, annotations, masks, id_order: bool) -> pd.DataFrame:
    """train.csv of the same instances, images in file order (the cache's) or in id order (the
    order in which equal scores of different images rank, the evaluators' on a JSON file)."""
    rows = []
    by_image = {image["id"]: (image, masks[k]) for k, image in enumerate(images)}
    for image_id in sorted(by_image) if id_order else by_image:
        image, image_masks = by_image[image_id]
        mine = [a for a in annotations if a["image_id"] == image_id]
        for annotation, mask in zip(mine, image_masks):
            rows.append((Path(image["file_name"]).stem, rle.encode(mask), image["height"], image["width"],
                         annotation["category_id"], ",".join(map(str, annotation["attribute_ids"]))))
    return pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds"])


def write_layouts(root: Path, train_images: int = 5, val_images: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """(Fashionpedia-layout root, Kaggle-layout root) of the same images and masks. The Kaggle root's
    train.csv holds train2020's instances, its `val.csv` val2020's (images with annotations only,
    by id)."""
    rng = np.random.default_rng(seed)
    fp_root, kaggle_root = root / "fashionpedia", root / "kaggle"
    splits = {"train": _split(rng, train_images, 10, False), "test": _split(rng, val_images, 500, True)}
    for split, (images, annotations, masks) in splits.items():
        for folder in (fp_root / split, kaggle_root / split):
            folder.mkdir(parents=True, exist_ok=True)
        for image in images:
            pixels = _image(rng, image["height"], image["width"])
            for folder in (fp_root / split, kaggle_root / split):
                cv2.imwrite(str(folder / image["file_name"]), pixels[..., ::-1])
        name = "instances_attributes_train2020.json" if split == "train" else "instances_attributes_val2020.json"
        (fp_root / name).write_text(json.dumps(_dataset(images, annotations)))
        csv_name = "train.csv" if split == "train" else "val.csv"
        _kaggle_rows(images, annotations, masks, split == "test").to_csv(kaggle_root / csv_name, index=False)
    return fp_root, kaggle_root


def write_predictions(fp_root: Path, out: Path, seed: int = 0) -> Path:
    """A predictions CSV (submission layout plus Score, sorted by ImageId) for the val2020 images:
    shifted copies of the ground truth with some classes and attributes changed, false positives,
    tied scores."""
    rng = np.random.default_rng(seed)
    dataset = json.loads((fp_root / "instances_attributes_val2020.json").read_text())
    rows = []
    for image in dataset["images"]:
        height, width = image["height"], image["width"]
        stem = Path(image["file_name"]).stem
        for annotation in [a for a in dataset["annotations"] if a["image_id"] == image["id"]]:
            segmentation = annotation["segmentation"]
            if isinstance(segmentation, list):
                mask = _mask(segmentation, height, width)
            else:
                compressed = coco_mask.frPyObjects(segmentation, height, width) if isinstance(
                    segmentation["counts"], list) else segmentation
                mask = coco_mask.decode(compressed)
            for _ in range(int(rng.integers(0, 3))):
                moved = np.roll(mask, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
                same = rng.random() < 0.8
                attributes = annotation["attribute_ids"] if rng.random() < 0.6 else _attributes(rng)
                rows.append((stem, rle.encode(moved), annotation["category_id"] if same else int(rng.choice(CLASSES)),
                             ",".join(map(str, attributes)), float(rng.choice([0.5, 0.9, round(rng.random(), 3)]))))
        for _ in range(int(rng.integers(0, 2))):  # a false positive
            mask = _mask(_polygons(rng, height, width), height, width)
            rows.append((stem, rle.encode(mask), int(rng.choice(CLASSES)), "", float(rng.choice([0.5, rng.random()]))))
    frame = pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"])
    frame.sort_values("ImageId", kind="stable").to_csv(out, index=False)
    return out
