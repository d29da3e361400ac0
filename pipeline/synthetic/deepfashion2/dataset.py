"""An embedded DeepFashion2-like dataset in the official layout (the `synth-df2` stage).

`OUT/train/` and `OUT/validation/`, each with `image/NNNNNN.jpg` and `annos/NNNNNN.json` (every
field as DeepFashion2's, read back by `pipeline.data.deepfashion2.annotations`), and for validation the
retrieval ground truth `query_gt.json` and `gallery_gt.json` in the official layout.

Each pair is one outfit (a dress, or a top and a bottom, sometimes outerwear over them) on one
body: 1-2 consumer photos of it worn (`source: user`) and one shop photo per product that takes
part in the pair (`source: shop`, style > 0); the other garments of the outfit, and everything the
other figures in a consumer photo wear, have style 0. As in DeepFashion2's validation split, the
consumer photos come first. Scenes: `pipeline.synthetic.deepfashion2.scene`. The same seed gives the
same files; the dataset is built beside OUT and renamed onto it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline import io
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.synthetic.deepfashion2 import scene
from pipeline.synthetic.config import Df2SynthConfig
from pipeline.synthetic.files import staging_directory, write_jpeg

SPLITS = ("train", "validation")


@dataclass
class Pair:
    pair_id: int
    body: scene.Body
    outfit: list[tuple[scene.Product, int]]  # drawing order, with styles (0: no shop photo)
    users: int


def random_outfit(rng: np.random.Generator) -> list[scene.Product]:
    """A dress, or a bottom and a top; outerwear over either, sometimes."""
    if rng.random() < 0.3:
        garments = [int(rng.choice(scene.DRESSES))]
    else:
        garments = [int(rng.choice(scene.BOTTOMS)), int(rng.choice(scene.TOPS))]
    if rng.random() < 0.3:
        garments.append(int(rng.choice(scene.OUTWEAR)))
    return [scene.random_product(rng, category) for category in garments]


def random_pair(rng: np.random.Generator, pair_id: int) -> Pair:
    products = random_outfit(rng)
    in_pair = rng.random(len(products)) < 0.7
    in_pair[int(rng.integers(len(products)))] = True  # every pair has a shop photo
    styles = np.cumsum(in_pair) * in_pair
    return Pair(pair_id, scene.random_body(rng), list(zip(products, styles.tolist())), int(rng.integers(1, 3)))


def image_size(rng: np.random.Generator, config: Df2SynthConfig, portrait: bool = True) -> tuple[int, int]:
    longest = int(rng.integers(config.min_size, config.max_size + 1))
    shortest = int(longest / rng.uniform(1.1, 1.5))
    return (longest, shortest) if portrait else (shortest, longest)


def polygons(mask: np.ndarray) -> list[list[float]]:
    """The outer contours of a mask as DeepFashion2 polygons (x, y pairs), 3+ points each."""
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def annotation(item: scene.DrawnItem) -> dict | None:
    """DeepFashion2's item fields; None when the visible mask has no contour of 3+ points."""
    segmentation = polygons(item.mask)
    if not segmentation:
        return None
    rows, columns = np.nonzero(item.mask)
    category = df2.CATEGORY_BY_ID[item.product.category_id]
    scale, occlusion, zoom_in, viewpoint = item.difficulty
    return {
        "category_name": category.name, "category_id": category.id, "style": item.style,
        "bounding_box": [int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1],
        "landmarks": [float(v) if k % 3 < 2 else int(v) for k, v in enumerate(item.landmarks.ravel())],
        "segmentation": segmentation, "scale": scale, "occlusion": occlusion, "zoom_in": zoom_in,
        "viewpoint": viewpoint,
    }


def write_image(split_dir: Path, image_id: int, source: str, pair_id: int, image: np.ndarray, items) -> int:
    """Write one image and its annotation; the number of items annotated."""
    annotated = [a for a in map(annotation, items) if a is not None]
    anno = {"source": source, "pair_id": pair_id, **{f"item{k}": a for k, a in enumerate(annotated, 1)}}
    write_jpeg(df2.image_path(split_dir / "image", image_id), image)
    io.write_json(split_dir / "annos" / f"{image_id:06d}.json", anno)
    return len(annotated)


def build_split(split_dir: Path, config: Df2SynthConfig, split: str, pairs: int) -> tuple[int, int]:
    """Generate one split; (images, items)."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    (split_dir / "image").mkdir(parents=True)
    (split_dir / "annos").mkdir()
    all_pairs = [random_pair(rng, pair_id) for pair_id in range(1, pairs + 1)]
    image_id, items = 0, 0
    for pair in all_pairs:  # consumer photos first, as DeepFashion2's validation split
        for _ in range(pair.users):
            image_id += 1
            extras = [random_outfit(rng) for _ in range(int(rng.integers(0, 2)))]
            image, drawn = scene.render_user(rng, *image_size(rng, config, rng.random() < 0.8), pair.outfit,
                                             pair.body, extras)
            items += write_image(split_dir, image_id, "user", pair.pair_id, image, drawn)
    for pair in all_pairs:
        for product, style in pair.outfit:
            if style > 0:
                image_id += 1
                image, drawn = scene.render_shop(rng, *image_size(rng, config), product, style, pair.body)
                items += write_image(split_dir, image_id, "shop", pair.pair_id, image, drawn)
    return image_id, items


def build(out: str | Path, config: Df2SynthConfig) -> str:
    """Generate the dataset into `out` (replacing a previous one); a summary line."""
    start = time.perf_counter()
    counts = []
    with staging_directory(Path(out), marker="train/annos") as staging:
        for split, pairs in zip(SPLITS, (config.train_pairs, config.validation_pairs)):
            counts.append(build_split(staging / split, config, split, pairs))
        query, gallery = df2.retrieval_ground_truth(df2.read_annotations(staging / "validation" / "annos"))
        io.write_json(staging / "validation" / "query_gt.json", query)
        io.write_json(staging / "validation" / "gallery_gt.json", gallery)
    (train_images, train_items), (val_images, val_items) = counts
    return (f"{train_images} train images ({train_items} items), {val_images} validation images ({val_items} items, "
            f"{sum(q['style'] > 0 for q in query)} retrieval queries, {len(gallery)} gallery items) "
            f"in {time.perf_counter() - start:.1f} s -> {out}")
