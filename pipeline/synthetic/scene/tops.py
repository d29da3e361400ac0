"""Upper-body garments: shirts and blouses, tops and t-shirts, sweaters."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.colors import shade
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.fabric import Fabric
from pipeline.synthetic.scene.measurements import FITS, SLEEVE_LENGTHS, TOP_LENGTHS, nearest
from pipeline.synthetic.scene.outlines import NECKLINES, collar_polygons, neck_hole
from pipeline.synthetic.scene.sampling import choose, weighted
from pipeline.synthetic.scene.shapes import mirrored, rectangle


def upper(dresser: Dresser, category: str, fit_name, hem: float, neck: str, reach: float | None,
          fabric: Fabric, extra_names=(), collar=None, puff=False):
    """An upper-body garment with its sleeves and neckline; returns its index."""
    f = dresser.figure
    fit = FITS[fit_name]
    labelled = fabric.pattern is not None
    sleeveless = reach is None
    length = "sleeveless" if sleeveless else nearest(SLEEVE_LENGTHS, reach)
    right = f.torso(hem, fit, shoulder=0.095 if sleeveless else 0.118)
    fills = [mirrored(right)]
    if not sleeveless:
        fills += [dresser.sleeve_band(side, reach, fit, puff) for side in (-1, 1)]
    overlays = [] if collar is None else collar_polygons(collar)
    names = (fabric.pattern, fit_name, length, *extra_names) if labelled else ()
    index = dresser.add(category, names, f.shape(fills, cuts=[neck_hole(neck)], overlays=overlays), fabric)
    if index is None:
        return None
    if not sleeveless:
        dresser.sleeves(index, fabric, reach, fit, labelled, length, puff)
    dresser.neckline(index, fabric, neck, labelled)
    return index


def shirt(dresser: Dresser) -> None:
    rng, f = dresser.rng, dresser.figure
    _, fabric = dresser.fabric("shirt, blouse")
    collar = choose(rng, ("shirt (collar)", "peter pan (collar)", "mandarin (collar)"))
    sleeve = weighted(rng, {"wrist-length": 0.6, "three quarter (length)": 0.2, "short (length)": 0.2})
    reach = SLEEVE_LENGTHS[sleeve]
    hem = 0.5
    index = upper(dresser, "shirt, blouse", choose(rng, FITS), hem, "v-neck", reach, fabric, collar=collar)
    if index is None:
        return
    placket = f.shape(strokes=[([(0, 0.2), (0, hem)], 0.004)])
    dresser.canvas.detail(index, placket, shade(fabric.color, 0.75))
    dresser.buttons(index, [0.0], np.arange(0.24, hem - 0.02, 0.06), shade(fabric.color, 0.55))
    labelled = fabric.pattern is not None
    dresser.collar(index, fabric, collar, labelled)
    if rng.random() < 0.5:
        dresser.pockets(index, fabric, [(0.05, 0.26)], "patch (pocket)", labelled)


def top(dresser: Dresser) -> None:
    rng = dresser.rng
    _, fabric = dresser.fabric("top, t-shirt, sweatshirt")
    length = choose(rng, TOP_LENGTHS)
    sleeve = weighted(rng, {"sleeveless": 0.35, "short (length)": 0.45, "elbow-length": 0.2})
    reach = SLEEVE_LENGTHS.get(sleeve)
    puff = reach == SLEEVE_LENGTHS["short (length)"] and rng.random() < 0.3
    upper(dresser, "top, t-shirt, sweatshirt", choose(rng, FITS), TOP_LENGTHS[length], choose(rng, NECKLINES),
          reach, fabric, extra_names=(length,), puff=puff)


def sweater(dresser: Dresser) -> None:
    f = dresser.figure
    _, fabric = dresser.fabric("sweater")
    fit_name = weighted(dresser.rng, {"loose (fit)": 0.6, None: 0.4})
    hem, reach = 0.5, SLEEVE_LENGTHS["wrist-length"]
    index = upper(dresser, "sweater", fit_name, hem, "crew (neck)", reach, fabric)
    if index is None:
        return
    ribs = shade(fabric.color, 0.72)
    half = f.body_half_width(hem) * FITS[fit_name] + 0.01
    bands = [rectangle(-half, hem - 0.03, half, hem + 0.01)]
    for side in (-1, 1):  # cuffs
        band = dresser.sleeve_band(side, reach, FITS[fit_name], False)
        end_out, end_in = band[2], band[3]
        back = (f.wrist(side) - f.shoulder(side)) * 0.06
        bands.append([end_out - back, end_out, end_in, end_in - back])
    dresser.canvas.detail(index, f.shape(bands), ribs)
