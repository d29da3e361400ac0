"""The figure's body: skin, hair and face, drawn first so that garments cover them."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.canvas import Canvas
from pipeline.synthetic.scene.colors import palette_color, shade
from pipeline.synthetic.scene.figure import BODY, Figure
from pipeline.synthetic.scene.shapes import ellipse, mirrored


def draw_body(canvas: Canvas, f: Figure, rng: np.random.Generator) -> None:
    skin = palette_color(rng, "skin")[1]
    hair = palette_color(rng, "hair")[1]
    if rng.random() < 0.5:  # long hair falls behind the shoulders
        canvas.skin(f.shape([[(-0.065, 0.03), (0.065, 0.03), (0.08, 0.26), (-0.08, 0.26)]]), hair)
    canvas.skin(f.shape([ellipse(0, 0.06, 0.058, 0.066)]), hair)
    limbs = [mirrored([(0.022, 0.11), (0.022, 0.15), *[(x, y) for y, x in BODY[1:] * (1, f.build)],
                       (0.02, 0.535)])]
    for side in (-1, 1):
        limbs.append(f.arm_band(side, 1.0, 0.03, 0.018))
        hip, knee, ankle = f.leg_center(side, 0.5), f.leg_center(side, 0.72), f.leg_center(side, 0.95)
        limbs.append([(side * 0.01, 0.47), (side * 0.1 * f.build, 0.47), (knee + side * 0.032, 0.72),
                      (ankle + side * 0.02, 0.95), (ankle - side * 0.02, 0.95), (knee - side * 0.03, 0.72),
                      (hip - side * 0.045, 0.53)])
        wrist = f.wrist(side)
        limbs.append(ellipse(wrist[0], wrist[1] + 0.028, 0.02, 0.032))
        limbs.append(ellipse(ankle + side * 0.01, 0.972, 0.032, 0.018))
    limbs.append(ellipse(0, 0.07, 0.05, 0.066))
    canvas.skin(f.shape(limbs), skin)
    canvas.skin(f.shape([ellipse(0, 0.035, 0.052, 0.032, 180, 360)]), hair)  # fringe
    features = [ellipse(x, 0.068, 0.006, 0.005, n=10) for x in (-0.02, 0.02)]
    canvas.skin(f.shape(features, strokes=[([(-0.014, 0.108), (0.014, 0.108)], 0.004)]), shade(skin, 0.45))
