"""What the embedded synthetic datasets look like: plain dataclasses, checked when built."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.data.cache_format import check_layout


@dataclass(frozen=True)
class SynthConfig:
    """The Fashionpedia-like set in Kaggle's or Fashionpedia's layout (`pipeline.synthetic.fashionpedia`)."""

    train_images: int = 64
    test_images: int = 16
    seed: int = 0
    min_size: int = 400  # longest image side of the ordinary images, in pixels
    max_size: int = 1200
    large_fraction: float = 0.1  # share of images with a side over 2000 px
    layout: str = "kaggle"  # kaggle | fashionpedia (`pipeline.data.cache_format.split_files`)
    real_shaped: bool = False  # shaped like the real set (`make rehearsal`): sizes spread up to max_size (the
                               # first image of each split at it), one figure, ~8 instances of all 46 categories

    def __post_init__(self):
        check_layout(self.layout)
        problems = [
            (self.train_images < 1, "train_images must be >= 1"),
            (self.test_images < 0, "test_images must be >= 0"),
            (self.seed < 0, "seed must be >= 0"),
            (self.min_size < 64, "min_size must be >= 64"),
            (self.max_size < self.min_size, "max_size must be >= min_size"),
            (not 0.0 <= self.large_fraction <= 1.0, "large_fraction must be within 0..1"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)


@dataclass(frozen=True)
class Df2SynthConfig:
    """The DeepFashion2-like set in its official layout (`pipeline.synthetic.deepfashion2`)."""

    train_pairs: int = 24
    validation_pairs: int = 8
    seed: int = 0
    min_size: int = 320  # longest image side, pixels
    max_size: int = 640

    def __post_init__(self):
        problems = ((self.train_pairs < 1, "train_pairs must be >= 1"),
                    (self.validation_pairs < 1, "validation_pairs must be >= 1"),
                    (self.seed < 0, "seed must be >= 0"), (self.min_size < 96, "min_size must be >= 96"),
                    (self.max_size < self.min_size, "max_size must be >= min_size"))
        for bad, message in problems:
            if bad:
                raise ValueError(message)
