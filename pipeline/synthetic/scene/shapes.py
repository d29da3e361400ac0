"""Shapes: polygons and strokes rasterised into a mask cropped to their own bounding box.

Cropping makes the cost follow the drawn area, not the image size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Shape:
    """Polygons to fill, to cut out, then to fill over the cuts, and polylines to stroke (pixels, x y)."""

    fills: list = field(default_factory=list)
    cuts: list = field(default_factory=list)
    strokes: list = field(default_factory=list)  # (points, thickness in pixels)
    overlays: list = field(default_factory=list)

    def rasterize(self, height: int, width: int):
        """((y0, x0, y1, x1), bool mask of that box), or None when nothing falls inside the image."""
        outline = [*self.fills, *self.overlays, *(p for p, _ in self.strokes)]
        if not outline:
            return None
        points = np.concatenate(outline)
        pad = max([t for _, t in self.strokes], default=0) / 2 + 2
        x0, y0 = np.maximum(np.floor(points.min(0) - pad), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(points.max(0) + pad), (width, height)).astype(int)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        origin = np.array([x0, y0], float)

        def fixed(p):  # cv2 draws with 4 fractional bits (shift=4)
            return [np.round((p - origin) * 16).astype(np.int32)]

        for polygon in self.fills:
            cv2.fillPoly(mask, fixed(polygon), 1, cv2.LINE_8, 4)
        for line, thickness in self.strokes:
            cv2.polylines(mask, fixed(line), False, 1, max(1, round(thickness)), cv2.LINE_8, 4)
        for polygon in self.cuts:
            cv2.fillPoly(mask, fixed(polygon), 0, cv2.LINE_8, 4)
        for polygon in self.overlays:
            cv2.fillPoly(mask, fixed(polygon), 1, cv2.LINE_8, 4)
        if not mask.any():
            return None
        return (y0, x0, y1, x1), mask.astype(bool)


def ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360, n: int = 36):
    """`n` points along an ellipse, or its arc from `start` to `end` degrees."""
    angles = np.radians(np.linspace(start, end, n))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)


def mirrored(right_half) -> np.ndarray:
    """A left-right symmetric polygon from its right half, listed top to bottom."""
    right = np.asarray(right_half, float)
    left = right[::-1] * (-1, 1)
    return np.concatenate([right, left])


def rectangle(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """An axis-aligned rectangle, clockwise from its top-left corner."""
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
