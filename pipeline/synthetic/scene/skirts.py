"""Garments with a skirt: skirts and dresses, which choose length and flare alike."""
from __future__ import annotations

from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.fabric import Fabric
from pipeline.synthetic.scene.measurements import FITS, FLARES, SKIRT_LENGTHS, SLEEVE_LENGTHS
from pipeline.synthetic.scene.outlines import NECKLINES, neck_hole
from pipeline.synthetic.scene.sampling import choose, weighted
from pipeline.synthetic.scene.shapes import mirrored


def skirt_choices(dresser: Dresser, category: str) -> tuple[Fabric, str, float, str | None]:
    """(fabric, length name, hem height, flare name) of a skirt or a dress."""
    _, fabric = dresser.fabric(category)
    length = choose(dresser.rng, SKIRT_LENGTHS)
    flare_name = choose(dresser.rng, FLARES)
    return fabric, length, SKIRT_LENGTHS[length], flare_name


def dress(dresser: Dresser) -> None:
    rng, f = dresser.rng, dresser.figure
    fabric, length, hem, flare_name = skirt_choices(dresser, "dress")
    fit_name = weighted(rng, {"tight (fit)": 0.5, None: 0.5})
    sleeve = weighted(rng, {"sleeveless": 0.45, "short (length)": 0.35, "wrist-length": 0.2})
    reach = SLEEVE_LENGTHS.get(sleeve)
    neck = choose(rng, NECKLINES)
    fit = FITS[fit_name]
    bodice = f.torso(0.38, fit, shoulder=0.095 if reach is None else 0.118)
    waist = bodice[-1][0]
    skirt = [(waist + (FLARES[flare_name] + 0.03) * (hem - 0.38), hem),
             (0.5 * waist, hem + 0.012)]
    fills = [mirrored([*bodice, *skirt])]
    if reach is not None:
        fills += [dresser.sleeve_band(side, reach, fit, False) for side in (-1, 1)]
    labelled = fabric.pattern is not None
    names = (fabric.pattern, length, flare_name, sleeve) if labelled else ()
    index = dresser.add("dress", names, f.shape(fills, cuts=[neck_hole(neck)]), fabric)
    if index is None:
        return
    if reach is not None:
        dresser.sleeves(index, fabric, reach, fit, labelled, sleeve)
    dresser.neckline(index, fabric, neck, labelled)


def skirt(dresser: Dresser) -> None:
    f = dresser.figure
    fabric, length, hem, flare_name = skirt_choices(dresser, "skirt")
    waist = f.body_half_width(0.38) + 0.006
    hips = f.body_half_width(0.48) + 0.01
    hem_half = hips + FLARES[flare_name] * (hem - 0.48)
    right = [(waist, 0.38), (hips, 0.48), (hem_half, hem), (0.5 * hips, hem + 0.012)]
    names = (fabric.pattern, length, flare_name) if fabric.pattern is not None else ()
    dresser.add("skirt", names, f.shape([mirrored(right)]), fabric)
