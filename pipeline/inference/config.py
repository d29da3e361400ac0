"""Prediction knobs: test-time augmentation and single-photo inference, as plain dataclasses."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TTAConfig:
    """Test-time augmentation (`pipeline.inference.tta`): the views merged per image."""

    hflip: bool = False
    scales: tuple[float, ...] = (1.0,)  # content size relative to a plain call
    merge_iou: float = 0.55  # binary mask IoU at which same-class detections of different views merge
    max_detections: int | None = None  # after merging; None: the model's detections_per_image

    def __post_init__(self):
        if not self.scales or not all(0 < s <= 4 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of numbers in (0, 4], not {list(self.scales)}")
        if not 0 < self.merge_iou <= 1:
            raise ValueError(f"merge_iou must be in (0, 1], not {self.merge_iou}")
        if self.max_detections is not None and self.max_detections < 1:
            raise ValueError(f"max_detections must be null or a positive integer, not {self.max_detections}")

    def views(self) -> list[tuple[float, bool]]:
        """(scale, flipped) of every view."""
        return [(scale, flip) for scale in self.scales for flip in ((False, True) if self.hflip else (False,))]


@dataclass(frozen=True)
class InferConfig:
    """Single-photo inference (`python -m pipeline infer`)."""

    score_threshold: float = 0.3     # instances scoring less are not listed or drawn
    max_instances: int = 20          # per photo, best first
    max_size: int | None = None      # longest side the model sees; None: as the model's cache shrinks
    landmark_threshold: float = 0.0  # DeepFashion2: landmarks whose heatmap peak (a logit) reaches this are drawn
    top: int = 5                     # DeepFashion2 with a gallery index: shop items listed per item

    def __post_init__(self):
        problems = [
            (not 0.0 <= self.score_threshold <= 1.0, f"score_threshold must be in 0..1, got {self.score_threshold}"),
            (self.max_instances < 1, f"max_instances must be >= 1, got {self.max_instances}"),
            (self.max_size is not None and not 16 <= self.max_size <= 8192,
             f"max_size must be in 16..8192, got {self.max_size}"),
            (self.top < 1, f"top must be >= 1, got {self.top}"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)
