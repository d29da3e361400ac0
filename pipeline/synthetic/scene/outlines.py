"""Outlines of garment parts in figure heights: neck openings, collars and lapels."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.shapes import ellipse, rectangle

NECKLINES = ("round (neck)", "v-neck", "square (neckline)")  # those tops and dresses choose from


def neck_hole(kind: str) -> np.ndarray:
    """The neck opening cut out of an upper garment, reaching above its top edge."""
    if kind == "v-neck":
        return np.array([(-0.045, 0.1), (0.045, 0.1), (0.0, 0.25)])
    if kind == "square (neckline)":
        return np.array(rectangle(-0.046, 0.1, 0.046, 0.205))
    if kind == "crew (neck)":
        return ellipse(0, 0.138, 0.038, 0.027)
    return ellipse(0, 0.135, 0.047, 0.05)


def collar_polygons(kind: str) -> list[np.ndarray]:
    """A collar's pieces: two points for a shirt collar, two rounds for a Peter Pan one, else a band."""
    if kind == "shirt (collar)":
        return [np.array([(s * 0.036, 0.128), (s * 0.072, 0.18), (s * 0.004, 0.205)]) for s in (-1, 1)]
    if kind == "peter pan (collar)":
        return [ellipse(s * 0.032, 0.165, 0.034, 0.03) for s in (-1, 1)]
    return [np.array([(-0.04, 0.122), (0.04, 0.122), (0.046, 0.152), (-0.046, 0.152)])]  # mandarin band


def lapel_polygon(kind: str, side: int, gap: float) -> np.ndarray:
    """One lapel on `side`, from the neck down to the front opening, `gap` off the centre."""
    tip_x = gap + 0.004
    if kind == "notched (lapel)":
        right = [(0.036, 0.14), (0.078, 0.2), (0.064, 0.214), (0.074, 0.232), (tip_x, 0.31)]
    else:  # shawl: a rounded outer edge
        right = [(0.036, 0.14), *[(0.036 + 0.044 * np.sin(a), 0.14 + 0.17 * (1 - np.cos(a)))
                                 for a in np.linspace(0.3, 1.2, 6)], (tip_x, 0.31)]
    return np.array(right) * (side, 1)
