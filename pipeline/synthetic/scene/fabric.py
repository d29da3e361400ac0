"""Fabrics: a garment's colour and textile pattern, textured over any window of the image."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synthetic.scene.colors import contrast_color

# Fabrics whose pattern carries an attribute, and the unannotated mottled fabric (None).
PATTERNS = {"plain (pattern)": 0.4, "stripe": 0.13, "check": 0.13, "dot": 0.13, None: 0.21}


@dataclass(frozen=True)
class Fabric:
    """A garment's look: its colour and pattern (None: the unannotated mottled fabric)."""

    color: np.ndarray
    second: np.ndarray
    pattern: str | None
    period: float  # pattern period in pixels
    direction: int  # stripes: 0 horizontal, 1 vertical, 2 diagonal
    seed: int

    @classmethod
    def random(cls, rng, color, unit: float, pattern: str | None) -> Fabric:
        return cls(color, contrast_color(rng, color), pattern, unit * rng.uniform(0.028, 0.045),
                   int(rng.integers(3)), int(rng.integers(2**31)))

    def texture(self, y0: int, x0: int, height: int, width: int) -> np.ndarray:
        """RGB floats (height, width, 3) of the fabric over that window of the image."""
        ys = np.arange(y0, y0 + height, dtype=np.float32)[:, None]
        xs = np.arange(x0, x0 + width, dtype=np.float32)[None, :]
        half = self.period / 2
        if self.pattern == "plain (pattern)":
            weight = np.zeros((1, 1), np.float32)
        elif self.pattern == "stripe":
            along = (ys, xs, (xs + ys) * 0.7071)[self.direction]
            weight = ((along % self.period) < half).astype(np.float32)
        elif self.pattern == "check":
            weight = (((ys % self.period) < half).astype(np.float32) + ((xs % self.period) < half)) / 2
        elif self.pattern == "dot":
            row = np.floor(ys / self.period)
            dy = ys % self.period - half
            dx = (xs + (row % 2) * half) % self.period - half
            weight = ((dx * dx + dy * dy) < (0.3 * self.period) ** 2).astype(np.float32)
        else:  # mottled: smooth noise modulates the brightness, no second colour
            cell = max(self.period, 2.0)
            rng = np.random.default_rng(self.seed)
            coarse = rng.random((int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
            noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
            return np.clip(self.color[None, None, :] * (0.7 + 0.55 * noise[:, :, None]), 0, 255)
        weight = np.broadcast_to(weight, (height, width))[:, :, None]
        return self.color * (1 - weight) + self.second * weight
