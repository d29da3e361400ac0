"""How the Kaggle submission is written: a plain dataclass, checked when built."""
from __future__ import annotations

from dataclasses import dataclass

OVERLAP_POLICIES = ("none", "smaller_wins")


@dataclass(frozen=True)
class SubmitConfig:
    max_side: int | None = None  # None or 0: masks at the original size; N: longest side N (never enlarged)
    overlap: str = "none"        # none | smaller_wins: a pixel of several masks stays in the smallest

    def __post_init__(self):
        if self.max_side is not None and self.max_side < 0:
            raise ValueError(f"max_side must be null or an integer >= 0, got {self.max_side}")
        if self.overlap not in OVERLAP_POLICIES:
            raise ValueError(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {self.overlap!r}")
