"""Which garments and accessories one figure wears, drawn back to front."""
from __future__ import annotations

from pipeline.synthetic.scene import accessories, legwear, outerwear, skirts, tops
from pipeline.synthetic.scene.body import draw_body
from pipeline.synthetic.scene.dresser import Dresser
from pipeline.synthetic.scene.sampling import weighted


def dress_up(dresser: Dresser) -> None:
    """The body, then a dress or a bottom and a top, then the layers and accessories over them."""
    rng = dresser.rng
    draw_body(dresser.canvas, dresser.figure, rng)
    if rng.random() < 0.25:
        skirts.dress(dresser)
        accessories.shoes(dresser)
    else:
        weighted(rng, {legwear.pants: 0.4, legwear.shorts: 0.2, skirts.skirt: 0.4})(dresser)
        accessories.shoes(dresser)
        weighted(rng, {tops.shirt: 0.3, tops.top: 0.45, tops.sweater: 0.25})(dresser)
    if rng.random() < 0.25:
        accessories.belt(dresser)
    if rng.random() < 0.4:
        outerwear.jacket_or_coat(dresser, "coat" if rng.random() < 0.4 else "jacket")
    if rng.random() < 0.3:
        accessories.hat(dresser)
    if rng.random() < 0.3:
        accessories.glasses(dresser)
    if rng.random() < 0.4:
        accessories.bag(dresser)
