"""Legwear: pants (jeans with their curved front pockets) and shorts."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.colors import METAL, shade
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.fabric import Fabric
from pipeline.synthetic.scene.measurements import LEG_WIDTHS, SHORTS_WIDTHS
from pipeline.synthetic.scene.sampling import choose

# Legwear is mostly plain and never dotted; the weights of its fabric patterns (None: mottled).
PANTS_PATTERNS = {"plain (pattern)": 0.55, "check": 0.1, "stripe": 0.1, None: 0.25}
SHORTS_PATTERNS = {"plain (pattern)": 0.45, "check": 0.15, "stripe": 0.15, None: 0.25}


def legs(dresser: Dresser, category: str, hem: float, half: float, fabric: Fabric, names) -> int | None:
    """Pants or shorts: two legs from the waist to `hem`, `half` wide on each side of the leg."""
    f = dresser.figure
    center = f.leg_center(1, hem)
    right = [(f.body_half_width(0.38) + 0.006, 0.38), (f.body_half_width(0.48) + 0.008, 0.48),
             (center + half, hem), (max(center - half, 0.006), hem), (0.0, 0.54)]
    left = [(-x, y) for x, y in right[::-1][1:]]
    return dresser.add(category, names, f.shape([right + left]), fabric)


def pants(dresser: Dresser) -> None:
    variant, fabric = dresser.fabric("pants", PANTS_PATTERNS)
    width = choose(dresser.rng, LEG_WIDTHS)
    labelled = fabric.pattern is not None
    names = (fabric.pattern, width, "jeans" if variant == "denim" else None) if labelled else ()
    index = legs(dresser, "pants", 0.94, LEG_WIDTHS[width], fabric, names)
    if index is not None and variant == "denim":
        jeans_pockets(dresser, index, fabric, labelled)


def jeans_pockets(dresser: Dresser, owner, fabric: Fabric, labelled: bool) -> None:
    f = dresser.figure
    for side in (-1, 1):
        waist, hip = f.body_half_width(0.38) + 0.006, f.body_half_width(0.45) + 0.007
        curve = [(side * (waist - 0.045 + 0.045 * (1 - np.cos(a))), 0.38 + 0.065 * np.sin(a))
                 for a in np.linspace(0, np.pi / 2, 8)]
        polygon = [*curve, (side * hip, 0.445), (side * waist, 0.38)]
        dresser.add("pocket", ("curved (pocket)",) if labelled else (), f.shape([polygon]),
                    shade(fabric.color, 0.85), owner, shade(METAL, 0.75))


def shorts(dresser: Dresser) -> None:
    _, fabric = dresser.fabric("pants", SHORTS_PATTERNS)
    width = choose(dresser.rng, SHORTS_WIDTHS)
    names = (fabric.pattern, width) if fabric.pattern is not None else ()
    legs(dresser, "shorts", dresser.rng.uniform(0.6, 0.65), SHORTS_WIDTHS[width], fabric, names)
