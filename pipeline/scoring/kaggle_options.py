"""The Kaggle score's two unknowns (`pipeline.scoring.kaggle_score`): a plain dataclass."""
from __future__ import annotations

from dataclasses import dataclass

DENOMINATORS = ("tp_fp_fn", "tp_fp")
THRESHOLD_RULES = ("strict", "inclusive")


@dataclass(frozen=True)
class KaggleOptions:
    denominator: str = "tp_fp_fn"  # TP / (TP + FP + FN) as described; "tp_fp": TP / (TP + FP)
    thresholds: str = "strict"     # IoU > t and F1 > t as described; "inclusive": >=

    def __post_init__(self):
        if self.denominator not in DENOMINATORS:
            raise ValueError(f"kaggle denominator must be one of {DENOMINATORS}, got {self.denominator!r}")
        if self.thresholds not in THRESHOLD_RULES:
            raise ValueError(f"kaggle thresholds must be one of {THRESHOLD_RULES}, got {self.thresholds!r}")
