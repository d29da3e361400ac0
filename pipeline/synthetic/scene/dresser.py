"""The kit for drawing one figure's outfit: fabrics, labelled instances and shared garment parts.

The garment modules (`tops`, `skirts`, `legwear`, `outerwear`, `accessories`) draw through a
`Dresser`; the parts several garments share (sleeves, neckline, collar, buttons, pockets) live here.
"""
from __future__ import annotations

import numpy as np

from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES
from pipeline.synthetic.scene.canvas import Canvas
from pipeline.synthetic.scene.colors import palette_color, shade
from pipeline.synthetic.scene.fabric import PATTERNS, Fabric
from pipeline.synthetic.scene.figure import Figure
from pipeline.synthetic.scene.labels import Labels
from pipeline.synthetic.scene.outlines import collar_polygons, neck_hole
from pipeline.synthetic.scene.sampling import weighted
from pipeline.synthetic.scene.shapes import Shape, ellipse, rectangle


class Dresser:
    """Draws garments and their parts for one figure onto a canvas, choosing at random with `rng`."""

    def __init__(self, canvas: Canvas, figure: Figure, rng: np.random.Generator, labels: Labels):
        self.canvas, self.figure, self.rng, self.labels = canvas, figure, rng, labels

    def fabric(self, category: str, patterns=PATTERNS) -> tuple[str, Fabric]:
        """A fabric in the category's palette: (palette variant, fabric)."""
        variant, color = palette_color(self.rng, category)
        return variant, Fabric.random(self.rng, color, self.figure.unit, weighted(self.rng, patterns))

    def add(self, category: str, attribute_names, shape: Shape, fill, owner=None, outline=None):
        """Draw a labelled instance (a part when `owner` is given); its index, or None if not drawn."""
        class_id = self.labels.category(category)
        attributes = self.labels.attributes(attribute_names) if class_id in CATEGORIES_WITH_ATTRIBUTES else ()
        if outline is None and isinstance(fill, Fabric):
            outline = shade(fill.color, 0.5)
        return self.canvas.add(class_id, attributes, shape, fill, outline, self.figure.stroke, owner)

    def sleeves(self, owner, fabric: Fabric, reach: float, fit: float, labelled: bool, length: str, puff=False):
        """Two sleeve parts over the garment's arm bands (already part of the garment's mask)."""
        names = (length, "puff (sleeve)" if puff else "set-in sleeve") if labelled else ()
        for side in (-1, 1):
            self.add("sleeve", names, self.figure.shape([self.sleeve_band(side, reach, fit, puff)]),
                     fabric, owner, shade(fabric.color, 0.45))

    def sleeve_band(self, side: int, reach: float, fit: float, puff: bool) -> np.ndarray:
        """Outline of one sleeve reaching `reach` of the way down the arm."""
        top_half = (0.05 if puff else 0.04) * fit
        return self.figure.arm_band(side, reach, top_half, top_half - 0.014 * reach * fit + (0.012 if puff else 0))

    def neckline(self, owner, fabric: Fabric, kind: str, labelled: bool) -> None:
        hole = neck_hole(kind)
        trim = shade(fabric.color, 0.6) if fabric.color.mean() > 90 else shade(fabric.second, 0.9)
        closed = np.concatenate([hole, hole[:1]])
        self.add("neckline", (kind,) if labelled else (), self.figure.shape(strokes=[(closed, 0.03)]),
                 trim, owner, shade(trim, 0.6))

    def collar(self, owner, fabric: Fabric, kind: str, labelled: bool) -> None:
        self.add("collar", (kind,) if labelled else (), self.figure.shape(collar_polygons(kind)),
                 shade(fabric.color, 0.78), owner, shade(fabric.color, 0.35))

    def buttons(self, owner, xs, ys, color) -> None:
        f = self.figure
        self.canvas.detail(owner, f.shape([ellipse(x, y, 0.007, 0.007, n=12) for x in xs for y in ys]), color)

    def pockets(self, owner, fabric: Fabric, centers, kind: str, labelled: bool) -> None:
        f = self.figure
        for x, y in centers:
            half_w, half_h = 0.028, 0.024
            rect = rectangle(x - half_w, y - half_h, x + half_w, y + half_h)
            index = self.add("pocket", (kind,) if labelled else (), f.shape([rect]), fabric, owner,
                             shade(fabric.color, 0.4))
            if kind == "flap (pocket)":
                flap = [(x - half_w, y - half_h), (x + half_w, y - half_h), (x + half_w, y - 0.005),
                        (x, y + 0.004), (x - half_w, y - 0.005)]
                self.canvas.detail(index, f.shape([flap]), shade(fabric.color, 0.7))
