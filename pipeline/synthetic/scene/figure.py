"""Figures: standing people placed in the scene, and the body geometry garments are cut to."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synthetic.scene.sampling import weighted
from pipeline.synthetic.scene.shapes import Shape

# Body outline (height from the top of the head, half-width), in figure heights.
BODY = np.array([(0.145, 0.034), (0.165, 0.115), (0.235, 0.095), (0.38, 0.078), (0.48, 0.097), (0.53, 0.1)])


@dataclass
class Figure:
    """A standing person; garment geometry is given in figure heights from the top of the head."""

    cx: float
    top: float
    unit: float  # figure height in pixels
    build: float  # width factor of the body
    wrists: tuple[float, float]  # |x| of the left and right wrists
    ankle: float  # |x| of both ankles

    def px(self, points) -> np.ndarray:
        return np.asarray(points, float) * self.unit + (self.cx, self.top)

    def shape(self, fills=(), cuts=(), strokes=(), overlays=()) -> Shape:
        return Shape([self.px(p) for p in fills], [self.px(p) for p in cuts],
                     [(self.px(p), t * self.unit) for p, t in strokes], [self.px(p) for p in overlays])

    @property
    def stroke(self) -> int:
        """Outline thickness in pixels."""
        return max(1, round(self.unit * 0.003))

    def body_half_width(self, y: float) -> float:
        return float(np.interp(y, BODY[:, 0], BODY[:, 1])) * self.build

    def shoulder(self, side: int) -> np.ndarray:
        return np.array([side * 0.108 * self.build, 0.172])

    def wrist(self, side: int) -> np.ndarray:
        return np.array([side * self.wrists[side > 0], 0.54])

    def leg_center(self, side: int, y: float) -> float:
        """|x| of a leg's axis at height y, from the hip joint to the ankle."""
        return side * float(np.interp(y, (0.5, 0.94), (0.048, self.ankle)))

    def arm_band(self, side: int, reach: float, top_half: float, end_half: float) -> np.ndarray:
        """Polygon around the arm from the shoulder to `reach` of the way to the wrist."""
        start, wrist = self.shoulder(side), self.wrist(side)
        axis = wrist - start
        unit_axis = axis / np.linalg.norm(axis)
        outward = side * np.array([unit_axis[1], -unit_axis[0]])
        end = start + reach * axis
        return np.array([(side * 0.085 * self.build, 0.158), start + outward * top_half, end + outward * end_half,
                         end - outward * end_half, (side * 0.088 * self.build, 0.24)])

    def torso(self, hem: float, fit: float, flare: float = 0.0, shoulder: float = 0.118) -> np.ndarray:
        """Right half of an upper garment's outline from the neck to the hem."""
        ease = 0.006
        right = [(0.034, 0.145), (shoulder * self.build * min(fit, 1.1), 0.165)]
        for y in (0.235, 0.38, 0.48):
            if y < hem:
                right.append((self.body_half_width(y) * fit + ease, y))
        below_hips = max(hem - 0.48, 0.0)
        right.append((self.body_half_width(min(hem, 0.48)) * fit + ease + flare * below_hips, hem))
        return np.array(right)


def place_figures(rng: np.random.Generator, height: int, width: int) -> list[Figure]:
    """1-3 figures, farther (smaller) ones first so nearer ones occlude them."""
    portrait = height >= width
    count = weighted(rng, {1: 0.55, 2: 0.3, 3: 0.15} if portrait else {1: 0.2, 2: 0.45, 3: 0.35})
    base = height * rng.uniform(0.75, 1.0)
    base = min(base, width * 1.8 / count ** 0.5)
    scales = np.sort(rng.uniform(0.75, 1.0, count)) if count > 1 else np.ones(1)
    slots = rng.permutation(count)
    figures = []
    for scale, slot in zip(scales, slots):
        unit = base * scale
        cx = width * (slot + 0.5 + rng.uniform(-0.2, 0.2)) / count
        top = rng.uniform(0.0, max(height - unit, 0.0) + 0.15 * unit) - 0.04 * unit
        wrists = (rng.uniform(0.15, 0.23), rng.uniform(0.15, 0.23))
        figures.append(Figure(cx, top, unit, rng.uniform(0.9, 1.1), wrists, rng.uniform(0.045, 0.085)))
    return figures
