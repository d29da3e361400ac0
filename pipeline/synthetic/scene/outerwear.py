"""Outerwear: a jacket (hip length) or a coat (knee and below) with its lapels, zip, buttons and pockets."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.colors import METAL, shade
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.measurements import COAT_LENGTHS, SLEEVE_LENGTHS, TOP_LENGTHS
from pipeline.synthetic.scene.outlines import collar_polygons, lapel_polygon
from pipeline.synthetic.scene.sampling import choose, weighted
from pipeline.synthetic.scene.shapes import ellipse, mirrored, rectangle


def jacket_or_coat(dresser: Dresser, category: str) -> None:
    """A jacket or coat (`category`) over the rest, with its parts."""
    rng, f = dresser.rng, dresser.figure
    _, fabric = dresser.fabric(category)
    labelled = fabric.pattern is not None
    if category == "jacket":
        length = choose(rng, TOP_LENGTHS)
        hem = TOP_LENGTHS[length] + 0.03
        opening = weighted(rng, {"zip-up": 0.45, "single breasted": 0.3, None: 0.25})
        flare = 0.0
    else:
        length = choose(rng, COAT_LENGTHS)
        hem = COAT_LENGTHS[length]
        opening = choose(rng, ("single breasted", "double breasted"))
        flare = 0.18
    fit = 1.2
    gap = rng.uniform(0.02, 0.04) if opening is None else 0.0
    if opening == "zip-up":
        cut = ellipse(0, 0.14, 0.036, 0.022)
    else:  # a V down to the chest, open to the hem when the front is open
        cut = [(-0.04, 0.1), (0.04, 0.1), (gap, 0.3), (gap, hem + 0.05), (-gap, hem + 0.05), (-gap, 0.3)]
    reach = SLEEVE_LENGTHS["wrist-length"]
    sleeves = [dresser.sleeve_band(side, reach, fit, False) for side in (-1, 1)]
    fills = [mirrored(f.torso(hem, fit, flare)), *sleeves]
    collar = choose(rng, ("shirt (collar)", "mandarin (collar)")) if opening == "zip-up" else None
    if collar is not None and rng.random() < 0.4:
        collar = None
    overlays = [] if collar is None else collar_polygons(collar)
    names = (fabric.pattern, length, opening, "wrist-length") if labelled else ()
    index = dresser.add(category, names, f.shape(fills, cuts=[cut], overlays=overlays), fabric)
    if index is None:
        return
    dresser.sleeves(index, fabric, reach, fit, labelled, "wrist-length")
    if collar is not None:
        dresser.collar(index, fabric, collar, labelled)
    if opening != "zip-up" and rng.random() < 0.85:
        lapel = choose(rng, ("notched (lapel)", "shawl (lapel)"))
        for side in (-1, 1):
            dresser.add("lapel", (lapel,) if labelled else (), f.shape([lapel_polygon(lapel, side, gap)]),
                        shade(fabric.color, 0.8), index, shade(fabric.color, 0.45))
    if opening == "zip-up":
        zipper = rectangle(-0.009, 0.16, 0.009, hem)
        zip_index = dresser.add("zipper", (), f.shape([zipper]), METAL, index, shade(METAL, 0.45))
        teeth = [([(-0.009, y), (0.009, y)], 0.003) for y in np.arange(0.17, hem, 0.012)]
        dresser.canvas.detail(zip_index, f.shape(strokes=teeth), shade(METAL, 0.6))
    elif opening is not None:
        columns = [0.0] if opening == "single breasted" else [-0.032, 0.032]
        dresser.buttons(index, columns, np.arange(0.33, min(hem, 0.6) - 0.02, 0.07), shade(fabric.color, 0.4))
    if rng.random() < 0.7:
        kind = choose(rng, ("flap (pocket)", "patch (pocket)"))
        y = min(hem - 0.06, 0.5)
        dresser.pockets(index, fabric, [(-0.062, y), (0.062, y)], kind, labelled)
