"""How detections are fused and thresholds tuned: plain dataclasses, checked when built."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.parallel import check_workers

METHODS = ("fusion", "nms", "matrix_nms")
KERNELS = ("gaussian", "linear")  # matrix NMS's score decay
METRICS = ("kaggle", "ap_iou_f1", "ap_iou")  # what `tune` maximises: the evaluator's names


@dataclass(frozen=True)
class EnsembleConfig:
    method: str = "fusion"            # fusion | nms | matrix_nms
    iou_threshold: float = 0.5        # mask IoU that makes two same-class detections the same object
    vote_threshold: float = 0.5       # fusion: a pixel is in the fused mask with this share of the weight
    attribute_threshold: float = 0.5  # fusion: attribute ids = averaged probabilities at or above this
    matrix_kernel: str = "gaussian"
    matrix_sigma: float = 2.0
    min_score: float = 0.0            # every method: drop detections scoring less
    max_detections: int = 100         # every method: best N per image; 0 = all
    workers: int | None = None        # processes fusing chunks of images; None: every core

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.matrix_kernel not in KERNELS:
            raise ValueError(f"matrix_kernel must be one of {', '.join(KERNELS)}, got {self.matrix_kernel!r}")
        for name in ("iou_threshold", "vote_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.max_detections < 0 or self.matrix_sigma <= 0:
            raise ValueError("max_detections must be >= 0 and matrix_sigma > 0")
        check_workers(self.workers)


@dataclass(frozen=True)
class TuneConfig:
    metric: str = "kaggle"            # kaggle | ap_iou_f1 | ap_iou
    score_candidates: int = 10        # score cut-offs tried: this many quantiles of the scores (and 0)
    min_class_instances: int = 10     # classes with fewer ground truths keep the global cut-off
    min_attribute_positives: int = 10  # attributes with fewer positive instances keep attribute_default
    attribute_default: float = 0.5
    attribute_grid: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    workers: int | None = None        # processes matching and scoring chunks of images; None: every core

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not self.attribute_grid or any(not 0 < t <= 1 for t in self.attribute_grid) or self.score_candidates < 1:
            raise ValueError("attribute_grid needs values in (0, 1] and score_candidates >= 1")
        check_workers(self.workers)
