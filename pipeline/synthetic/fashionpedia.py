"""The embedded synthetic Fashionpedia-like dataset (the `synth` stage), in either layout.

CI and `make repro` have no real data, so they train and evaluate on this. Kaggle's layout
(`synth.layout: kaggle`): `train/` and `test/` JPEGs, `train.csv` (Kaggle RLE masks with the real
category and attribute ids), `sample_submission.csv` and a copy of the shipped
`label_descriptions.json`. Fashionpedia's (`fashionpedia`, the papers' protocol): the same images
with `instances_attributes_train2020.json` and `instances_attributes_val2020.json` (the test images,
annotated: they play val2020), masks as compressed COCO RLE, and `synthetic.json` (the settings that
made it). The scenes themselves are drawn by `pipeline.synthetic.scene`. The same seed gives
byte-identical files; the dataset is built in a sibling temporary directory and renamed onto the
output, so an interrupted run never leaves half a dataset behind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pycocotools import mask as coco_mask

from pipeline import io
from pipeline.data import ontology, rle
from pipeline.data.annotations import TRAIN_COLUMNS
from pipeline.data.cache_format import FASHIONPEDIA_FILES as SPLIT_FILES
from pipeline.synthetic.config import SynthConfig
from pipeline.synthetic.files import staging_directory, write_jpeg
from pipeline.synthetic.scene.compose import render
from pipeline.synthetic.scene.labels import Labels

SUBMISSION_COLUMNS = ("ImageId", "EncodedPixels", "ClassId", "AttributesIds")
LARGE_SIDE = (2048, 2600)  # longest side of the large images, as in the real data's biggest photos
# Real-shaped sizes: pixels per image log-normal around a median of 0.75 MP (Fashionpedia's photos: about
# 0.5-1 MP) with a long tail of phone photos of up to ~20 MP (clipped to max_size).
REAL_MEDIAN_PIXELS = 0.75e6
REAL_PIXELS_SIGMA = 1.0
MIN_AREA_PIXELS = 60  # instances whose visible area is below this, or below
MIN_AREA_FRACTION = 0.001  # this fraction of the image, are left out of the ground truth


@dataclass(frozen=True)
class Summary:
    path: Path
    train_images: int
    test_images: int
    instances: int
    classes: int
    seconds: float


def image_id(seed: int, split: str, index: int) -> str:
    """A Kaggle-looking 32-hex id, fixed by the seed, split and position."""
    return hashlib.md5(f"synth:{seed}:{split}:{index}".encode()).hexdigest()


def image_size(rng: np.random.Generator, config: SynthConfig, first: bool = False) -> tuple[int, int]:
    """(height, width): mostly portrait as in Fashionpedia, some landscape and square-ish ones. Real-shaped:
    megapixels drawn log-normally around Fashionpedia's median, the `first` image of a split at max_size."""
    if config.real_shaped:
        pixels = REAL_MEDIAN_PIXELS * rng.lognormal(0.0, REAL_PIXELS_SIGMA)
    elif rng.random() < config.large_fraction:
        longest = rng.uniform(*LARGE_SIDE)
    else:
        longest = rng.uniform(config.min_size, config.max_size)
    kind = rng.random()
    ratio = rng.uniform(1.2, 1.7) if kind < 0.7 else rng.uniform(1.0, 1.15) if kind < 0.85 else rng.uniform(1.2, 1.6)
    if config.real_shaped:
        longest = config.max_size if first else min(max((pixels * ratio) ** 0.5, config.min_size), config.max_size)
    shortest = longest / ratio
    height, width = (longest, shortest) if kind < 0.85 else (shortest, longest)
    return int(round(height)), int(round(width))


def render_image(config: SynthConfig, split: str, index: int, labels: Labels):
    """(ImageId, RGB image, visible instances) of one image, independent of every other image."""
    rng = np.random.default_rng([config.seed, ("train", "test").index(split), index])
    height, width = image_size(rng, config, first=index == 0)
    min_area = max(MIN_AREA_PIXELS, int(MIN_AREA_FRACTION * height * width))
    image, instances = render(rng, height, width, labels, min_area, config.real_shaped)
    return image_id(config.seed, split, index), image, instances


def build(out: str | Path, config: SynthConfig) -> Summary:
    """Generate the dataset into `out` (replacing a previous one); what was written."""
    out = Path(out)
    start = time.perf_counter()
    labels = Labels(ontology.load())
    files = KaggleFiles() if config.layout == "kaggle" else FashionpediaFiles()
    with staging_directory(out, files.marker) as staging:
        for split, count in (("train", config.train_images), ("test", config.test_images)):
            (staging / split).mkdir()
            for index in range(count):
                name, image, instances = render_image(config, split, index, labels)
                write_jpeg(staging / split / f"{name}.jpg", image)
                files.add(split, name, image.shape[:2], instances)
        files.write(staging, config)
    return Summary(out, config.train_images, config.test_images, files.instances, len(files.classes),
                   time.perf_counter() - start)


class KaggleFiles:
    """train.csv (the training images' instances), sample_submission.csv, label_descriptions.json."""

    marker = "train.csv"  # `staging_directory` replaces only a folder this command wrote

    def __init__(self):
        self.rows, self.test_ids, self.classes = [], [], set()

    @property
    def instances(self) -> int:
        return len(self.rows)

    def add(self, split: str, name: str, size: tuple[int, int], instances) -> None:
        if split == "test":
            self.test_ids.append(name)
            return
        for instance in instances:
            encoded = rle.encode(instance.full_mask(*size))
            self.rows.append((name, encoded, *size, instance.class_id, ",".join(map(str, instance.attributes))))
            self.classes.add(instance.class_id)

    def write(self, folder: Path, config: SynthConfig) -> None:
        io.write_csv(folder / "train.csv", pd.DataFrame(self.rows, columns=TRAIN_COLUMNS))
        # One placeholder row per test image, as Kaggle's sample submission has.
        placeholder = pd.DataFrame([(i, "1 1", 23, "") for i in self.test_ids], columns=SUBMISSION_COLUMNS)
        io.write_csv(folder / "sample_submission.csv", placeholder)
        shutil.copyfile(ontology.DEFAULT_PATH, folder / "label_descriptions.json")


class FashionpediaFiles:
    """instances_attributes_{train,val}2020.json (the test images as val2020, annotated) and synthetic.json."""

    marker = "synthetic.json"  # not train2020's file: a real Fashionpedia folder is never replaced

    def __init__(self):
        self.images = {split: [] for split in SPLIT_FILES}
        self.annotations = {split: [] for split in SPLIT_FILES}
        self.classes = set()

    @property
    def instances(self) -> int:
        return sum(len(entries) for entries in self.annotations.values())

    def add(self, split: str, name: str, size: tuple[int, int], instances) -> None:
        image_id = len(self.images[split]) + 1
        self.images[split].append({"id": image_id, "file_name": f"{name}.jpg", "height": size[0], "width": size[1]})
        for instance in instances:
            mask = instance.full_mask(*size)
            encoded = coco_mask.encode(np.asfortranarray(mask))
            self.annotations[split].append({
                "id": len(self.annotations[split]) + 1, "image_id": image_id, "category_id": instance.class_id,
                "attribute_ids": list(instance.attributes),
                "segmentation": {"size": list(size), "counts": encoded["counts"].decode("ascii")},
                "area": int(mask.sum()), "bbox": coco_mask.toBbox(encoded).tolist(), "iscrowd": 0})
            self.classes.add(instance.class_id)

    def write(self, folder: Path, config: SynthConfig) -> None:
        labels = ontology.load()
        listed = lambda entries: [{"id": e.id, "name": e.name, "supercategory": e.supercategory}  # noqa: E731
                                  for e in entries]
        for split, name in SPLIT_FILES.items():
            io.write_json(folder / name, {"info": {"description": "synthetic, pipeline.synthetic.fashionpedia"},
                                          "images": self.images[split], "annotations": self.annotations[split],
                                          "categories": listed(labels.categories),
                                          "attributes": listed(labels.attributes)})
        io.write_json(folder / self.marker, dataclasses.asdict(config))


def generate(out_dir: str | Path, train_images: int = 64, test_images: int = 16, seed: int = 0,
             **sizes) -> Path:
    """Generate the dataset into `out_dir`; `sizes` are the other `SynthConfig` fields.

    A tiny, fast set for tests of other modules: `generate(tmp, 4, 1, min_size=160, max_size=240,
    large_fraction=0)`.
    """
    return build(out_dir, SynthConfig(train_images, test_images, seed, **sizes)).path
