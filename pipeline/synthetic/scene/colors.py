"""Colours: class-typical palettes, pattern contrast colours and shading."""
from __future__ import annotations

import colorsys

import numpy as np

from pipeline.synthetic.scene.sampling import choose

# Class-typical colours as (hue degrees, saturation, value) ranges; a name tags a variant.
PALETTES = {
    "shirt, blouse": {"pale": ((0, 360), (0.0, 0.18), (0.86, 1.0))},
    "top, t-shirt, sweatshirt": {"vivid": ((0, 360), (0.65, 1.0), (0.75, 1.0))},
    "sweater": {"rust": ((5, 45), (0.4, 0.65), (0.45, 0.7)), "moss": ((70, 150), (0.3, 0.55), (0.35, 0.6)),
                "navy": ((205, 235), (0.4, 0.65), (0.3, 0.5))},
    "jacket": {"dark": ((0, 360), (0.2, 0.6), (0.12, 0.32))},
    "coat": {"camel": ((25, 40), (0.35, 0.55), (0.55, 0.75)), "grey": ((0, 360), (0.0, 0.08), (0.4, 0.6)),
             "wine": ((335, 355), (0.5, 0.75), (0.3, 0.45))},
    "dress": {"rose": ((300, 360), (0.5, 0.9), (0.55, 0.9)), "teal": ((160, 195), (0.5, 0.9), (0.45, 0.8)),
              "violet": ((255, 295), (0.4, 0.8), (0.45, 0.8))},
    "pants": {"denim": ((205, 225), (0.45, 0.7), (0.4, 0.62)), "khaki": ((33, 45), (0.25, 0.45), (0.6, 0.75)),
              "black": ((0, 360), (0.0, 0.1), (0.08, 0.18))},
    "skirt": {"any": ((0, 360), (0.45, 0.85), (0.45, 0.85))},
    "shoe": {"black": ((0, 360), (0.0, 0.1), (0.05, 0.15)), "brown": ((18, 30), (0.5, 0.75), (0.25, 0.4)),
             "white": ((0, 360), (0.0, 0.05), (0.92, 1.0)), "red": ((355, 365), (0.7, 0.9), (0.6, 0.8))},
    "bag, wallet": {"tan": ((22, 35), (0.5, 0.75), (0.45, 0.7)), "black": ((0, 360), (0.0, 0.1), (0.06, 0.15)),
                    "red": ((345, 365), (0.6, 0.85), (0.45, 0.7))},
    "hat": {"black": ((0, 360), (0.0, 0.1), (0.06, 0.15)), "straw": ((40, 52), (0.3, 0.5), (0.75, 0.9)),
            "red": ((350, 365), (0.6, 0.85), (0.5, 0.75))},
    "belt": {"brown": ((18, 30), (0.5, 0.75), (0.15, 0.3)), "black": ((0, 360), (0.0, 0.1), (0.05, 0.12))},
    "glasses": {"dark": ((0, 360), (0.0, 0.25), (0.04, 0.14))},
    "skin": {"skin": ((18, 32), (0.25, 0.6), (0.35, 0.95))},
    "hair": {"dark": ((20, 30), (0.3, 0.6), (0.05, 0.2)), "blond": ((40, 50), (0.4, 0.6), (0.7, 0.9)),
             "red": ((15, 22), (0.6, 0.8), (0.45, 0.65))},
    "background": {"muted": ((0, 360), (0.0, 0.3), (0.35, 0.75))},
}
METAL = np.array([196.0, 196.0, 204.0])  # zips, buckles and other metal fittings


def hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue % 360) / 360, saturation, value)) * 255.0


def palette_color(rng: np.random.Generator, name: str) -> tuple[str, np.ndarray]:
    """A colour from a class palette: (variant name, RGB floats)."""
    variants = PALETTES[name]
    variant = choose(rng, variants)
    ranges = variants[variant]
    return variant, hsv(*(rng.uniform(low, high) for low, high in ranges))


def contrast_color(rng: np.random.Generator, color: np.ndarray) -> np.ndarray:
    """A second colour for patterns: light on dark fabric, dark on light fabric."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(color / 255.0))
    hue = hue * 360 + choose(rng, (0, 30, 180))
    if value > 0.55:
        return hsv(hue, saturation, rng.uniform(0.1, 0.3))
    return hsv(hue, saturation * 0.4, rng.uniform(0.85, 1.0))


def shade(color: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(color * factor, 0, 255)
