"""A whole scene: a background, then 1-3 dressed figures, farther ones first, and a little noise."""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.synthetic.scene import real_shaped as real_shaped_scene
from pipeline.synthetic.scene.canvas import Canvas, Visible
from pipeline.synthetic.scene.colors import palette_color, shade
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.figure import place_figures
from pipeline.synthetic.scene.labels import Labels
from pipeline.synthetic.scene.outfit import dress_up


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A vertical gradient, sometimes a floor, and a few muted shapes."""
    upper, lower = (palette_color(rng, "background")[1] for _ in range(2))
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    column = (upper * (1 - ramp) + lower * ramp).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(column[:, None, :], (height, width, 3)))
    if rng.random() < 0.5:
        floor = int(height * rng.uniform(0.7, 0.9))
        image[floor:] = shade(palette_color(rng, "background")[1], 0.8).astype(np.uint8)
    for _ in range(rng.integers(0, 6)):
        color = palette_color(rng, "background")[1].tolist()
        x, y = int(rng.integers(width)), int(rng.integers(height))
        size = int(rng.uniform(0.05, 0.3) * max(height, width))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), color, -1)
        else:
            cv2.circle(image, (x, y), size // 2, color, -1)
    return image


def render(rng: np.random.Generator, height: int, width: int, labels: Labels,
           min_area: int, real_shaped: bool = False) -> tuple[np.ndarray, list[Visible]]:
    """An RGB image of 1-3 dressed figures and its visible instances in drawing order; `real_shaped`:
    one figure, often close up, and rare categories over it (`real_shaped` module)."""
    canvas = Canvas(background(rng, height, width))
    figures = [real_shaped_scene.one_figure(rng, height, width)] if real_shaped else place_figures(rng, height, width)
    for figure in figures:
        dress_up(Dresser(canvas, figure, rng, labels))
        if real_shaped:
            real_shaped_scene.rare_instances(canvas, figure, rng, labels)
    noise = rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
    image = np.clip(canvas.image + noise, 0, 255).astype(np.uint8)
    return image, canvas.visible(min_area)
