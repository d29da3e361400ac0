"""The embedded synthetic Fashionpedia-like dataset, in Kaggle layout (the `synth` stage).

CI and `make repro` have no real data, so they train and evaluate on this: `train/` and `test/`
JPEGs, `train.csv` (Kaggle RLE masks with the real category and attribute ids),
`sample_submission.csv` and a copy of the shipped `label_descriptions.json`. The scenes themselves
are drawn by `pipeline.synthetic.scene`. The same seed gives byte-identical files; the dataset is
built in a sibling temporary directory and renamed onto the output, so an interrupted run never
leaves half a dataset behind.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.data import ontology, rle
from pipeline.data.annotations import TRAIN_COLUMNS
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
    rows, classes = [], set()
    with staging_directory(out) as staging:
        for split, count in (("train", config.train_images), ("test", config.test_images)):
            (staging / split).mkdir()
            for index in range(count):
                name, image, instances = render_image(config, split, index, labels)
                write_jpeg(staging / split / f"{name}.jpg", image)
                if split == "test":
                    continue
                height, width = image.shape[:2]
                for instance in instances:
                    encoded = rle.encode(instance.full_mask(height, width))
                    attributes = ",".join(map(str, instance.attributes))
                    rows.append((name, encoded, height, width, instance.class_id, attributes))
                    classes.add(instance.class_id)
        io.write_csv(staging / "train.csv", pd.DataFrame(rows, columns=TRAIN_COLUMNS))
        # One placeholder row per test image, as Kaggle's sample submission has.
        test_ids = [image_id(config.seed, "test", i) for i in range(config.test_images)]
        placeholder = pd.DataFrame([(i, "1 1", 23, "") for i in test_ids], columns=SUBMISSION_COLUMNS)
        io.write_csv(staging / "sample_submission.csv", placeholder)
        shutil.copyfile(ontology.DEFAULT_PATH, staging / "label_descriptions.json")
    return Summary(out, config.train_images, config.test_images, len(rows), len(classes),
                   time.perf_counter() - start)


def generate(out_dir: str | Path, train_images: int = 64, test_images: int = 16, seed: int = 0,
             **sizes) -> Path:
    """Generate the dataset into `out_dir`; `sizes` are the other `SynthConfig` fields.

    A tiny, fast set for tests of other modules: `generate(tmp, 4, 1, min_size=160, max_size=240,
    large_fraction=0)`.
    """
    return build(out_dir, SynthConfig(train_images, test_images, seed, **sizes)).path
