"""What a real-shaped scene changes (`make rehearsal`'s data): one figure, often framed close so that
part of it is cut off, and a long tail of the categories the garment code never draws.

The embedded scenes show 1-3 whole figures in about 20 categories; Fashionpedia's photos mostly show
one person, often from the waist or knees up, with about 7 instances each over all 46 categories,
a few very common (sleeves, shoes, necklines) and many rare. Here (about 8 instances per image) the
rare ones are small patches of fabric over the figure, their category drawn from a Zipf law (weight
1/rank), so that a set of hundreds of images holds nearly every category and a few images hold the
common ones only.
"""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.canvas import Canvas
from pipeline.synthetic.scene.colors import palette_color, shade
from pipeline.synthetic.scene.fabric import PATTERNS, Fabric
from pipeline.synthetic.scene.figure import Figure
from pipeline.synthetic.scene.labels import Labels
from pipeline.synthetic.scene.sampling import weighted
from pipeline.synthetic.scene.shapes import Shape, ellipse, rectangle

# The categories the garment code never draws, most common first (the Zipf law's ranks).
RARE = ("headband, head covering, hair accessory", "tights, stockings", "scarf", "sock", "watch",
        "buckle", "hood", "vest", "cardigan", "jumpsuit", "applique", "glove", "bead", "ruffle", "tie", "flower",
        "rivet", "bow", "epaulette", "fringe", "ribbon", "sequin", "tassel", "umbrella", "cape", "leg warmer")
RARE_PER_IMAGE = 0.6  # mean number of rare instances per image (Poisson)
CLOSE_UP = 0.75  # share of images framing the figure closer than whole
MAX_ATTRIBUTES = 4  # a rare instance of a category with attributes has 1..this many, at random


def zipf_weights(count: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1)
    return weights / weights.sum()


def one_figure(rng: np.random.Generator, height: int, width: int) -> Figure:
    """One figure, head near the top; a close-up is up to twice the image's height (the legs cut off)."""
    unit = height * (rng.uniform(1.3, 3.0) if rng.random() < CLOSE_UP else rng.uniform(0.8, 1.0))
    unit = min(unit, width * 2.2)
    cx = width * rng.uniform(0.4, 0.6)
    top = rng.uniform(-0.05, 0.08) * unit
    wrists = (rng.uniform(0.15, 0.23), rng.uniform(0.15, 0.23))
    return Figure(cx, top, unit, rng.uniform(0.9, 1.1), wrists, rng.uniform(0.045, 0.085))


def rare_instances(canvas: Canvas, figure: Figure, rng: np.random.Generator, labels: Labels) -> None:
    """A Poisson number of rare-category patches over the figure, in front of it."""
    weights = zipf_weights(len(RARE))
    for _ in range(rng.poisson(RARE_PER_IMAGE)):
        class_id = labels.category(RARE[rng.choice(len(RARE), p=weights)])
        attributes = labels.random_attributes(rng, class_id, MAX_ATTRIBUTES)
        _, color = palette_color(rng, "skirt")
        fill = Fabric.random(rng, color, figure.unit, weighted(rng, PATTERNS))
        canvas.add(class_id, attributes, patch(rng, figure), fill, shade(color, 0.5), figure.stroke)


def patch(rng: np.random.Generator, figure: Figure) -> Shape:
    """An ellipse or a rectangle somewhere on the figure's upper two thirds, 2-10% of its height."""
    x, y = rng.uniform(-0.15, 0.15), rng.uniform(0.02, 0.65)
    rx, ry = rng.uniform(0.01, 0.05, 2)
    outline = ellipse(x, y, rx, ry) if rng.random() < 0.5 else rectangle(x - rx, y - ry, x + rx, y + ry)
    return figure.shape([outline])
