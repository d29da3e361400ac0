"""Accessories in class-typical solid colours: shoes, belt, hat, glasses and bag."""
from __future__ import annotations

import numpy as np

from pipeline.synthetic.scene.colors import METAL, palette_color, shade
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.sampling import choose
from pipeline.synthetic.scene.shapes import ellipse, rectangle


def shoes(dresser: Dresser) -> None:
    if dresser.rng.random() < 0.1:
        return  # barefoot
    f = dresser.figure
    _, color = palette_color(dresser.rng, "shoe")
    top = 0.86 if dresser.rng.random() < 0.3 else 0.94  # boots cover the ankle
    for side in (-1, 1):
        x = f.leg_center(side, 0.95)
        upper = rectangle(x - 0.024, top, x + 0.024, 0.97)
        index = dresser.add("shoe", (), f.shape([upper, ellipse(x + side * 0.012, 0.975, 0.043, 0.022)]),
                            color, outline=shade(color, 0.4) if color.mean() > 60 else shade(METAL, 0.6))
        sole = rectangle(x - 0.06, 0.985, x + 0.06, 1.0)
        dresser.canvas.detail(index, f.shape([sole]), shade(color, 0.5) if color.mean() > 128 else METAL)


def belt(dresser: Dresser) -> None:
    f = dresser.figure
    _, color = palette_color(dresser.rng, "belt")
    half = f.body_half_width(0.385) * 1.06 + 0.01
    index = dresser.add("belt", (), f.shape([rectangle(-half, 0.372, half, 0.398)]), color,
                        outline=shade(color, 0.5))
    buckle = [(-0.014, 0.377), (0.014, 0.377), (0.014, 0.393), (-0.014, 0.393), (-0.014, 0.377)]
    dresser.canvas.detail(index, f.shape(strokes=[(buckle, 0.005)]), METAL)


def hat(dresser: Dresser) -> None:
    f = dresser.figure
    _, color = palette_color(dresser.rng, "hat")
    crown = [*ellipse(0, -0.03, 0.047, 0.018, 180, 360, 12), (0.047, 0.03), (-0.047, 0.03)]
    index = dresser.add("hat", (), f.shape([crown, ellipse(0, 0.028, 0.092, 0.017)]), color,
                        outline=shade(color, 0.5))
    dresser.canvas.detail(index, f.shape([rectangle(-0.047, 0.006, 0.047, 0.018)]), shade(color, 0.6))


def glasses(dresser: Dresser) -> None:
    f = dresser.figure
    _, color = palette_color(dresser.rng, "glasses")
    lenses = [ellipse(x, 0.066, 0.02, 0.015) for x in (-0.022, 0.022)]
    dresser.add("glasses", (), f.shape(lenses, strokes=[([(-0.01, 0.062), (0.01, 0.062)], 0.005)]), color,
                outline=shade(METAL, 0.5))


def bag(dresser: Dresser) -> None:
    rng, f = dresser.rng, dresser.figure
    _, color = palette_color(rng, "bag, wallet")
    side = choose(rng, (-1, 1))
    if rng.random() < 0.5:  # hand-held, hanging from the hand
        x, y = f.wrist(side)
        body = [(x - 0.05, y + 0.07), (x + 0.05, y + 0.07), (x + 0.065, y + 0.17), (x - 0.065, y + 0.17)]
        strap = ellipse(x, y + 0.07, 0.035, 0.05, 180, 360, 16)
    else:  # cross-body, strap from the other shoulder
        x, y = side * 0.13 * f.build, 0.47
        body = rectangle(x - 0.055, y, x + 0.055, y + 0.08)
        strap = np.array([(-side * 0.08, 0.16), (x, y)])
    index = dresser.add("bag, wallet", (), f.shape([body], strokes=[(strap, 0.008)]), color,
                        outline=shade(color, 0.5))
    flap = [body[0], body[1], (body[1][0], body[1][1] + 0.03), (body[0][0], body[0][1] + 0.03)]
    dresser.canvas.detail(index, f.shape([flap]), shade(color, 0.8))
