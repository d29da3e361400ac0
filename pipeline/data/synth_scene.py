"""Scenes of the synthetic dataset: figures wearing garments, drawn together with their masks.

A scene is drawn back to front at its final size. Every shape is rasterised with cv2 into a mask
cropped to its own bounding box, so the cost follows the drawn area, not the image size.
Occlusion lives in two id maps: `top` holds the front-most garment or accessory of each pixel
(skin and hair reset it to none), `part` the front-most garment part. A garment is visible where it
is front-most; a part where it is the front-most part and its garment is front-most, so every part
lies inside its garment as in Fashionpedia.

Classes are told apart by shape, place on the body and a class-typical palette; attributes are
drawn so they can be seen: the textile pattern as texture, lengths and fits as geometry, neckline,
collar, lapel, pocket and opening types as their shapes. An instance in the unannotated mottled
fabric gets no attributes (nor do its parts), so an empty attribute set is learnable too.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.data.ontology import CATEGORIES_WITH_ATTRIBUTES, Ontology

# Fabrics whose pattern carries an attribute, and the unannotated mottled fabric (None).
PATTERNS = {"plain (pattern)": 0.4, "stripe": 0.13, "check": 0.13, "dot": 0.13, None: 0.21}
FITS = {"tight (fit)": 0.9, None: 1.04, "loose (fit)": 1.25}  # width factor of upper garments
LEG_WIDTHS = {"tight (fit)": 0.021, None: 0.033, "wide leg": 0.06}  # half-width at the hem
SHORTS_WIDTHS = {"tight (fit)": 0.045, "loose (fit)": 0.06}
FLARES = {"pencil": 0.05, None: 0.22, "a-line": 0.5}  # skirt widening per unit of length
TOP_LENGTHS = {"above-the-hip (length)": 0.43, "hip (length)": 0.51}  # hem height (figure units)
SKIRT_LENGTHS = {"mini (length)": 0.57, "knee (length)": 0.71, "maxi (length)": 0.92}
COAT_LENGTHS = {"knee (length)": 0.71, "below the knee (length)": 0.8}
SLEEVE_LENGTHS = {"short (length)": 0.28, "elbow-length": 0.5, "three quarter (length)": 0.72,
                  "wrist-length": 0.97}  # fraction of the arm from shoulder to wrist
NECKLINES = ("round (neck)", "v-neck", "square (neckline)")

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
METAL = np.array([196.0, 196.0, 204.0])

# Body outline (height from the top of the head, half-width), in figure heights.
BODY = np.array([(0.145, 0.034), (0.165, 0.115), (0.235, 0.095), (0.38, 0.078), (0.48, 0.097), (0.53, 0.1)])


class Labels:
    """Category and attribute ids of the ontology, looked up by name."""

    def __init__(self, ontology: Ontology):
        self._categories = {c.name: c.id for c in ontology.categories}
        self._attributes = {a.name: a.id for a in ontology.attributes}

    def category(self, name: str) -> int:
        if name not in self._categories:
            raise ValueError(f"the ontology has no category {name!r}")
        return self._categories[name]

    def attributes(self, names) -> tuple[int, ...]:
        """Sorted ids of the named attributes; None entries (unlabelled choices) are skipped."""
        missing = [n for n in names if n is not None and n not in self._attributes]
        if missing:
            raise ValueError(f"the ontology has no attribute {missing[0]!r}")
        return tuple(sorted({self._attributes[n] for n in names if n is not None}))


def choose(rng: np.random.Generator, options):
    """One item of a sequence, or one key of a dict, uniformly at random."""
    options = list(options)
    return options[rng.integers(len(options))]


def weighted(rng: np.random.Generator, weights: dict):
    """One key of an {option: weight} dict at random."""
    keys = list(weights)
    p = np.array(list(weights.values()), float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


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


@dataclass(frozen=True)
class Fabric:
    """A garment's look: its colour and pattern (None: the unannotated mottled fabric)."""

    color: np.ndarray
    second: np.ndarray
    pattern: str | None
    period: float  # pattern period in pixels
    direction: int  # stripes: 0 horizontal, 1 vertical, 2 diagonal
    seed: int

    @classmethod
    def random(cls, rng, color, unit: float, pattern: str | None) -> Fabric:
        return cls(color, contrast_color(rng, color), pattern, unit * rng.uniform(0.028, 0.045),
                   int(rng.integers(3)), int(rng.integers(2**31)))

    def texture(self, y0: int, x0: int, height: int, width: int) -> np.ndarray:
        """RGB floats (height, width, 3) of the fabric over that window of the image."""
        ys = np.arange(y0, y0 + height, dtype=np.float32)[:, None]
        xs = np.arange(x0, x0 + width, dtype=np.float32)[None, :]
        half = self.period / 2
        if self.pattern == "plain (pattern)":
            weight = np.zeros((1, 1), np.float32)
        elif self.pattern == "stripe":
            along = (ys, xs, (xs + ys) * 0.7071)[self.direction]
            weight = ((along % self.period) < half).astype(np.float32)
        elif self.pattern == "check":
            weight = (((ys % self.period) < half).astype(np.float32) + ((xs % self.period) < half)) / 2
        elif self.pattern == "dot":
            row = np.floor(ys / self.period)
            dy = ys % self.period - half
            dx = (xs + (row % 2) * half) % self.period - half
            weight = ((dx * dx + dy * dy) < (0.3 * self.period) ** 2).astype(np.float32)
        else:  # mottled: smooth noise modulates the brightness, no second colour
            cell = max(self.period, 2.0)
            rng = np.random.default_rng(self.seed)
            coarse = rng.random((int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
            noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
            return np.clip(self.color[None, None, :] * (0.7 + 0.55 * noise[:, :, None]), 0, 255)
        weight = np.broadcast_to(weight, (height, width))[:, :, None]
        return self.color * (1 - weight) + self.second * weight


@dataclass
class Shape:
    """Polygons to fill, to cut out, then to fill over the cuts, and polylines to stroke (pixels, x y)."""

    fills: list = field(default_factory=list)
    cuts: list = field(default_factory=list)
    strokes: list = field(default_factory=list)  # (points, thickness in pixels)
    overlays: list = field(default_factory=list)

    def rasterize(self, height: int, width: int):
        """((y0, x0, y1, x1), bool mask of that box), or None when nothing falls inside the image."""
        outline = [*self.fills, *self.overlays, *(p for p, _ in self.strokes)]
        if not outline:
            return None
        points = np.concatenate(outline)
        pad = max([t for _, t in self.strokes], default=0) / 2 + 2
        x0, y0 = np.maximum(np.floor(points.min(0) - pad), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(points.max(0) + pad), (width, height)).astype(int)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        origin = np.array([x0, y0], float)

        def fixed(p):  # cv2 draws with 4 fractional bits (shift=4)
            return [np.round((p - origin) * 16).astype(np.int32)]

        for polygon in self.fills:
            cv2.fillPoly(mask, fixed(polygon), 1, cv2.LINE_8, 4)
        for line, thickness in self.strokes:
            cv2.polylines(mask, fixed(line), False, 1, max(1, round(thickness)), cv2.LINE_8, 4)
        for polygon in self.cuts:
            cv2.fillPoly(mask, fixed(polygon), 0, cv2.LINE_8, 4)
        for polygon in self.overlays:
            cv2.fillPoly(mask, fixed(polygon), 1, cv2.LINE_8, 4)
        if not mask.any():
            return None
        return (y0, x0, y1, x1), mask.astype(bool)


@dataclass
class Instance:
    class_id: int
    attributes: tuple[int, ...]
    owner: int | None  # index of the garment a part belongs to
    box: tuple[int, int, int, int]  # y0, x0, y1, x1 of its (unoccluded) mask
    mask: np.ndarray  # bool, the box's size


@dataclass
class Visible:
    """An instance as annotated: its visible mask inside `box`."""

    class_id: int
    attributes: tuple[int, ...]
    box: tuple[int, int, int, int]
    mask: np.ndarray

    def full_mask(self, height: int, width: int) -> np.ndarray:
        """The mask over the whole image, column-major as Kaggle's RLE reads it."""
        full = np.zeros((height, width), bool, order="F")
        y0, x0, y1, x1 = self.box
        full[y0:y1, x0:x1] = self.mask
        return full


class Canvas:
    """The image being drawn with its instances and occlusion id maps."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.height, self.width = image.shape[:2]
        self.top = np.zeros((self.height, self.width), np.int32)  # 1 + index of the front garment
        self.part = np.zeros((self.height, self.width), np.int32)  # 1 + index of the front part
        self.instances: list[Instance] = []

    def _paint(self, box, mask, fill, outline=None, stroke: int = 1) -> None:
        y0, x0, y1, x1 = box
        region = self.image[y0:y1, x0:x1]
        if isinstance(fill, Fabric):
            region[mask] = fill.texture(y0, x0, y1 - y0, x1 - x0)[mask]
        else:
            region[mask] = fill
        if outline is not None:
            kernel = np.ones((2 * stroke + 1, 2 * stroke + 1), np.uint8)
            edge = mask & ~cv2.erode(mask.view(np.uint8), kernel).astype(bool)
            region[edge] = outline

    def _within(self, owner: int, box, mask) -> np.ndarray:
        """`mask` restricted to the owner's full mask (both given with their boxes)."""
        other = self.instances[owner]
        oy0, ox0, oy1, ox1 = other.box
        y0, x0, y1, x1 = box
        inside = np.zeros_like(mask)
        ty0, tx0, ty1, tx1 = max(y0, oy0), max(x0, ox0), min(y1, oy1), min(x1, ox1)
        if ty1 > ty0 and tx1 > tx0:
            inside[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0] = other.mask[ty0 - oy0:ty1 - oy0, tx0 - ox0:tx1 - ox0]
        return mask & inside

    def skin(self, shape: Shape, color) -> None:
        """Skin or hair: painted, and hides whatever instances were under it."""
        drawn = shape.rasterize(self.height, self.width)
        if drawn is None:
            return
        box, mask = drawn
        self._paint(box, mask, color)
        y0, x0, y1, x1 = box
        self.top[y0:y1, x0:x1][mask] = 0
        self.part[y0:y1, x0:x1][mask] = 0

    def add(self, class_id: int, attributes, shape: Shape, fill, outline=None, stroke: int = 1,
            owner: int | None = None) -> int | None:
        """Draw an instance in front of everything so far; its index, or None if off the image."""
        drawn = shape.rasterize(self.height, self.width)
        if drawn is None:
            return None
        box, mask = drawn
        if owner is not None:
            mask = self._within(owner, box, mask)
            if not mask.any():
                return None
        self._paint(box, mask, fill, outline, stroke)
        index = len(self.instances)
        y0, x0, y1, x1 = box
        (self.part if owner is not None else self.top)[y0:y1, x0:x1][mask] = index + 1
        self.instances.append(Instance(class_id, tuple(attributes), owner, box, mask))
        return index

    def detail(self, owner: int | None, shape: Shape, fill) -> None:
        """Paint a detail (buttons, seams, ribs) inside an instance; it is no instance itself."""
        if owner is None:
            return
        drawn = shape.rasterize(self.height, self.width)
        if drawn is not None:
            box, mask = drawn
            mask = self._within(owner, box, mask)
            self._paint(box, mask, fill)

    def visible(self, min_area: int) -> list[Visible]:
        """Instances as annotated, in drawing order; those with less visible area are dropped."""
        result = []
        for index, instance in enumerate(self.instances):
            y0, x0, y1, x1 = instance.box
            if instance.owner is None:
                mask = self.top[y0:y1, x0:x1] == index + 1
            else:
                mask = (self.part[y0:y1, x0:x1] == index + 1) & (self.top[y0:y1, x0:x1] == instance.owner + 1)
            if mask.sum() >= min_area:
                result.append(Visible(instance.class_id, instance.attributes, instance.box, mask))
        return result


def ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360, n: int = 36):
    angles = np.radians(np.linspace(start, end, n))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)


def mirrored(right_half) -> np.ndarray:
    """A left-right symmetric polygon from its right half, listed top to bottom."""
    right = np.asarray(right_half, float)
    left = right[::-1] * (-1, 1)
    return np.concatenate([right, left])


@dataclass
class Figure:
    """A standing person; garment geometry is given in figure heights from the top of the head."""

    cx: float
    top: float
    unit: float  # figure height in pixels
    build: float  # width factor of the body
    wrists: tuple[float, float]  # |x| of the left and right wrists
    ankle: float  # |x| of both ankles

    def px(self, points) -> np.ndarray:
        return np.asarray(points, float) * self.unit + (self.cx, self.top)

    def shape(self, fills=(), cuts=(), strokes=(), overlays=()) -> Shape:
        return Shape([self.px(p) for p in fills], [self.px(p) for p in cuts],
                     [(self.px(p), t * self.unit) for p, t in strokes], [self.px(p) for p in overlays])

    @property
    def stroke(self) -> int:
        """Outline thickness in pixels."""
        return max(1, round(self.unit * 0.003))

    def body_half_width(self, y: float) -> float:
        return float(np.interp(y, BODY[:, 0], BODY[:, 1])) * self.build

    def shoulder(self, side: int) -> np.ndarray:
        return np.array([side * 0.108 * self.build, 0.172])

    def wrist(self, side: int) -> np.ndarray:
        return np.array([side * self.wrists[side > 0], 0.54])

    def leg_center(self, side: int, y: float) -> float:
        """|x| of a leg's axis at height y, from the hip joint to the ankle."""
        return side * float(np.interp(y, (0.5, 0.94), (0.048, self.ankle)))

    def arm_band(self, side: int, reach: float, top_half: float, end_half: float) -> np.ndarray:
        """Polygon around the arm from the shoulder to `reach` of the way to the wrist."""
        start, wrist = self.shoulder(side), self.wrist(side)
        axis = wrist - start
        unit_axis = axis / np.linalg.norm(axis)
        outward = side * np.array([unit_axis[1], -unit_axis[0]])
        end = start + reach * axis
        return np.array([(side * 0.085 * self.build, 0.158), start + outward * top_half, end + outward * end_half,
                         end - outward * end_half, (side * 0.088 * self.build, 0.24)])

    def torso(self, hem: float, fit: float, flare: float = 0.0, shoulder: float = 0.118) -> np.ndarray:
        """Right half of an upper garment's outline from the neck to the hem."""
        ease = 0.006
        right = [(0.034, 0.145), (shoulder * self.build * min(fit, 1.1), 0.165)]
        for y in (0.235, 0.38, 0.48):
            if y < hem:
                right.append((self.body_half_width(y) * fit + ease, y))
        below_hips = max(hem - 0.48, 0.0)
        right.append((self.body_half_width(min(hem, 0.48)) * fit + ease + flare * below_hips, hem))
        return np.array(right)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A vertical gradient, sometimes a floor, and a few muted shapes."""
    upper, lower = (palette_color(rng, "background")[1] for _ in range(2))
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    column = (upper * (1 - ramp) + lower * ramp).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(column[:, None, :], (height, width, 3)))
    if rng.random() < 0.5:
        floor = int(height * rng.uniform(0.7, 0.9))
        image[floor:] = shade(palette_color(rng, "background")[1], 0.8).astype(np.uint8)
    for _ in range(rng.integers(0, 6)):
        color = palette_color(rng, "background")[1].tolist()
        x, y = int(rng.integers(width)), int(rng.integers(height))
        size = int(rng.uniform(0.05, 0.3) * max(height, width))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), color, -1)
        else:
            cv2.circle(image, (x, y), size // 2, color, -1)
    return image


def place_figures(rng: np.random.Generator, height: int, width: int) -> list[Figure]:
    """1-3 figures, farther (smaller) ones first so nearer ones occlude them."""
    portrait = height >= width
    count = weighted(rng, {1: 0.55, 2: 0.3, 3: 0.15} if portrait else {1: 0.2, 2: 0.45, 3: 0.35})
    base = height * rng.uniform(0.75, 1.0)
    base = min(base, width * 1.8 / count ** 0.5)
    scales = np.sort(rng.uniform(0.75, 1.0, count)) if count > 1 else np.ones(1)
    slots = rng.permutation(count)
    figures = []
    for scale, slot in zip(scales, slots):
        unit = base * scale
        cx = width * (slot + 0.5 + rng.uniform(-0.2, 0.2)) / count
        top = rng.uniform(0.0, max(height - unit, 0.0) + 0.15 * unit) - 0.04 * unit
        wrists = (rng.uniform(0.15, 0.23), rng.uniform(0.15, 0.23))
        figures.append(Figure(cx, top, unit, rng.uniform(0.9, 1.1), wrists, rng.uniform(0.045, 0.085)))
    return figures


class Dresser:
    """Draws one figure and its outfit onto a canvas, choosing garments and attributes at random."""

    def __init__(self, canvas: Canvas, figure: Figure, rng: np.random.Generator, labels: Labels):
        self.canvas, self.figure, self.rng, self.labels = canvas, figure, rng, labels

    # -- helpers -------------------------------------------------------------------------------
    def fabric(self, category: str, patterns=PATTERNS) -> tuple[str, Fabric]:
        variant, color = palette_color(self.rng, category)
        return variant, Fabric.random(self.rng, color, self.figure.unit, weighted(self.rng, patterns))

    def add(self, category: str, attribute_names, shape: Shape, fill, owner=None, outline=None):
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
            rect = [(x - half_w, y - half_h), (x + half_w, y - half_h), (x + half_w, y + half_h),
                    (x - half_w, y + half_h)]
            index = self.add("pocket", (kind,) if labelled else (), f.shape([rect]), fabric, owner,
                             shade(fabric.color, 0.4))
            if kind == "flap (pocket)":
                flap = [(x - half_w, y - half_h), (x + half_w, y - half_h), (x + half_w, y - 0.005),
                        (x, y + 0.004), (x - half_w, y - 0.005)]
                self.canvas.detail(index, f.shape([flap]), shade(fabric.color, 0.7))

    # -- the figure ------------------------------------------------------------------------------
    def dress_up(self) -> None:
        rng = self.rng
        self.body()
        if rng.random() < 0.25:
            self.dress()
            self.shoes()
        else:
            weighted(rng, {self.pants: 0.4, self.shorts: 0.2, self.skirt: 0.4})()
            self.shoes()
            weighted(rng, {self.shirt: 0.3, self.top: 0.45, self.sweater: 0.25})()
        if rng.random() < 0.25:
            self.belt()
        if rng.random() < 0.4:
            self.outerwear("coat" if rng.random() < 0.4 else "jacket")
        if rng.random() < 0.3:
            self.hat()
        if rng.random() < 0.3:
            self.glasses()
        if rng.random() < 0.4:
            self.bag()

    def body(self) -> None:
        f, rng = self.figure, self.rng
        skin = palette_color(rng, "skin")[1]
        hair = palette_color(rng, "hair")[1]
        if rng.random() < 0.5:  # long hair falls behind the shoulders
            self.canvas.skin(f.shape([[(-0.065, 0.03), (0.065, 0.03), (0.08, 0.26), (-0.08, 0.26)]]), hair)
        self.canvas.skin(f.shape([ellipse(0, 0.06, 0.058, 0.066)]), hair)
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
        self.canvas.skin(f.shape(limbs), skin)
        self.canvas.skin(f.shape([ellipse(0, 0.035, 0.052, 0.032, 180, 360)]), hair)  # fringe
        features = [ellipse(x, 0.068, 0.006, 0.005, n=10) for x in (-0.02, 0.02)]
        self.canvas.skin(f.shape(features, strokes=[([(-0.014, 0.108), (0.014, 0.108)], 0.004)]),
                         shade(skin, 0.45))

    def upper(self, category: str, fit_name, hem: float, neck: str, reach: float | None,
              fabric: Fabric, extra_names=(), collar=None, puff=False):
        """An upper-body garment with its sleeves and neckline; returns its index."""
        f = self.figure
        fit = FITS[fit_name]
        labelled = fabric.pattern is not None
        sleeveless = reach is None
        length = "sleeveless" if sleeveless else nearest(SLEEVE_LENGTHS, reach)
        right = f.torso(hem, fit, shoulder=0.095 if sleeveless else 0.118)
        fills = [mirrored(right)]
        if not sleeveless:
            fills += [self.sleeve_band(side, reach, fit, puff) for side in (-1, 1)]
        overlays = [] if collar is None else collar_polygons(collar)
        names = (fabric.pattern, fit_name, length, *extra_names) if labelled else ()
        index = self.add(category, names, f.shape(fills, cuts=[neck_hole(neck)], overlays=overlays), fabric)
        if index is None:
            return None
        if not sleeveless:
            self.sleeves(index, fabric, reach, fit, labelled, length, puff)
        self.neckline(index, fabric, neck, labelled)
        return index

    def shirt(self) -> None:
        rng, f = self.rng, self.figure
        _, fabric = self.fabric("shirt, blouse")
        collar = choose(rng, ("shirt (collar)", "peter pan (collar)", "mandarin (collar)"))
        sleeve = weighted(rng, {"wrist-length": 0.6, "three quarter (length)": 0.2, "short (length)": 0.2})
        reach = SLEEVE_LENGTHS[sleeve]
        hem = 0.5
        index = self.upper("shirt, blouse", choose(rng, FITS), hem, "v-neck", reach, fabric, collar=collar)
        if index is None:
            return
        placket = f.shape(strokes=[([(0, 0.2), (0, hem)], 0.004)])
        self.canvas.detail(index, placket, shade(fabric.color, 0.75))
        self.buttons(index, [0.0], np.arange(0.24, hem - 0.02, 0.06), shade(fabric.color, 0.55))
        labelled = fabric.pattern is not None
        self.collar(index, fabric, collar, labelled)
        if rng.random() < 0.5:
            self.pockets(index, fabric, [(0.05, 0.26)], "patch (pocket)", labelled)

    def top(self) -> None:
        rng = self.rng
        _, fabric = self.fabric("top, t-shirt, sweatshirt")
        length = choose(rng, TOP_LENGTHS)
        sleeve = weighted(rng, {"sleeveless": 0.35, "short (length)": 0.45, "elbow-length": 0.2})
        reach = SLEEVE_LENGTHS.get(sleeve)
        puff = reach == SLEEVE_LENGTHS["short (length)"] and rng.random() < 0.3
        self.upper("top, t-shirt, sweatshirt", choose(rng, FITS), TOP_LENGTHS[length], choose(rng, NECKLINES),
                   reach, fabric, extra_names=(length,), puff=puff)

    def sweater(self) -> None:
        f = self.figure
        _, fabric = self.fabric("sweater")
        fit_name = weighted(self.rng, {"loose (fit)": 0.6, None: 0.4})
        hem, reach = 0.5, SLEEVE_LENGTHS["wrist-length"]
        index = self.upper("sweater", fit_name, hem, "crew (neck)", reach, fabric)
        if index is None:
            return
        ribs = shade(fabric.color, 0.72)
        half = f.body_half_width(hem) * FITS[fit_name] + 0.01
        bands = [[(-half, hem - 0.03), (half, hem - 0.03), (half, hem + 0.01), (-half, hem + 0.01)]]
        for side in (-1, 1):  # cuffs
            band = self.sleeve_band(side, reach, FITS[fit_name], False)
            end_out, end_in = band[2], band[3]
            back = (f.wrist(side) - f.shoulder(side)) * 0.06
            bands.append([end_out - back, end_out, end_in, end_in - back])
        self.canvas.detail(index, f.shape(bands), ribs)

    def dress(self) -> None:
        rng, f = self.rng, self.figure
        _, fabric = self.fabric("dress")
        length = choose(rng, SKIRT_LENGTHS)
        hem = SKIRT_LENGTHS[length]
        flare_name = choose(rng, FLARES)
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
            fills += [self.sleeve_band(side, reach, fit, False) for side in (-1, 1)]
        labelled = fabric.pattern is not None
        names = (fabric.pattern, length, flare_name, sleeve) if labelled else ()
        index = self.add("dress", names, f.shape(fills, cuts=[neck_hole(neck)]), fabric)
        if index is None:
            return
        if reach is not None:
            self.sleeves(index, fabric, reach, fit, labelled, sleeve)
        self.neckline(index, fabric, neck, labelled)

    def legs(self, category: str, hem: float, half: float, fabric: Fabric, names) -> int | None:
        """Pants or shorts: two legs from the waist to `hem`, `half` wide on each side of the leg."""
        f = self.figure
        center = f.leg_center(1, hem)
        right = [(f.body_half_width(0.38) + 0.006, 0.38), (f.body_half_width(0.48) + 0.008, 0.48),
                 (center + half, hem), (max(center - half, 0.006), hem), (0.0, 0.54)]
        left = [(-x, y) for x, y in right[::-1][1:]]
        return self.add(category, names, f.shape([right + left]), fabric)

    def pants(self) -> None:
        rng = self.rng
        variant, fabric = self.fabric("pants", patterns={"plain (pattern)": 0.55, "check": 0.1, "stripe": 0.1,
                                                          None: 0.25})
        width = choose(rng, LEG_WIDTHS)
        labelled = fabric.pattern is not None
        names = (fabric.pattern, width, "jeans" if variant == "denim" else None) if labelled else ()
        index = self.legs("pants", 0.94, LEG_WIDTHS[width], fabric, names)
        if index is not None and variant == "denim":
            self.jeans_pockets(index, fabric, labelled)

    def jeans_pockets(self, owner, fabric: Fabric, labelled: bool) -> None:
        f = self.figure
        for side in (-1, 1):
            waist, hip = f.body_half_width(0.38) + 0.006, f.body_half_width(0.45) + 0.007
            curve = [(side * (waist - 0.045 + 0.045 * (1 - np.cos(a))), 0.38 + 0.065 * np.sin(a))
                     for a in np.linspace(0, np.pi / 2, 8)]
            polygon = [*curve, (side * hip, 0.445), (side * waist, 0.38)]
            self.add("pocket", ("curved (pocket)",) if labelled else (), f.shape([polygon]),
                     shade(fabric.color, 0.85), owner, shade(METAL, 0.75))

    def shorts(self) -> None:
        _, fabric = self.fabric("pants", patterns={"plain (pattern)": 0.45, "check": 0.15, "stripe": 0.15,
                                                    None: 0.25})
        width = choose(self.rng, SHORTS_WIDTHS)
        names = (fabric.pattern, width) if fabric.pattern is not None else ()
        self.legs("shorts", self.rng.uniform(0.6, 0.65), SHORTS_WIDTHS[width], fabric, names)

    def skirt(self) -> None:
        rng, f = self.rng, self.figure
        _, fabric = self.fabric("skirt")
        length = choose(rng, SKIRT_LENGTHS)
        hem = SKIRT_LENGTHS[length]
        flare_name = choose(rng, FLARES)
        waist = f.body_half_width(0.38) + 0.006
        hips = f.body_half_width(0.48) + 0.01
        hem_half = hips + FLARES[flare_name] * (hem - 0.48)
        right = [(waist, 0.38), (hips, 0.48), (hem_half, hem), (0.5 * hips, hem + 0.012)]
        names = (fabric.pattern, length, flare_name) if fabric.pattern is not None else ()
        self.add("skirt", names, f.shape([mirrored(right)]), fabric)

    def shoes(self) -> None:
        if self.rng.random() < 0.1:
            return  # barefoot
        f = self.figure
        _, color = palette_color(self.rng, "shoe")
        top = 0.86 if self.rng.random() < 0.3 else 0.94  # boots cover the ankle
        for side in (-1, 1):
            x = f.leg_center(side, 0.95)
            upper = [(x - 0.024, top), (x + 0.024, top), (x + 0.024, 0.97), (x - 0.024, 0.97)]
            index = self.add("shoe", (), f.shape([upper, ellipse(x + side * 0.012, 0.975, 0.043, 0.022)]),
                             color, outline=shade(color, 0.4) if color.mean() > 60 else shade(METAL, 0.6))
            sole = [(x - 0.06, 0.985), (x + 0.06, 0.985), (x + 0.06, 1.0), (x - 0.06, 1.0)]
            self.canvas.detail(index, f.shape([sole]), shade(color, 0.5) if color.mean() > 128 else METAL)

    def belt(self) -> None:
        f = self.figure
        _, color = palette_color(self.rng, "belt")
        half = f.body_half_width(0.385) * 1.06 + 0.01
        band = [(-half, 0.372), (half, 0.372), (half, 0.398), (-half, 0.398)]
        index = self.add("belt", (), f.shape([band]), color, outline=shade(color, 0.5))
        self.canvas.detail(index, f.shape(strokes=[([(-0.014, 0.377), (0.014, 0.377), (0.014, 0.393),
                                                      (-0.014, 0.393), (-0.014, 0.377)], 0.005)]), METAL)

    def outerwear(self, category: str) -> None:
        """A jacket (hip length) or coat (knee and below) over the rest, with its parts."""
        rng, f = self.rng, self.figure
        _, fabric = self.fabric(category)
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
        fills = [mirrored(f.torso(hem, fit, flare))] + [self.sleeve_band(side, reach, fit, False) for side in (-1, 1)]
        collar = choose(rng, ("shirt (collar)", "mandarin (collar)")) if opening == "zip-up" else None
        if collar is not None and rng.random() < 0.4:
            collar = None
        overlays = [] if collar is None else collar_polygons(collar)
        names = (fabric.pattern, length, opening, "wrist-length") if labelled else ()
        index = self.add(category, names, f.shape(fills, cuts=[cut], overlays=overlays), fabric)
        if index is None:
            return
        self.sleeves(index, fabric, reach, fit, labelled, "wrist-length")
        if collar is not None:
            self.collar(index, fabric, collar, labelled)
        if opening != "zip-up" and rng.random() < 0.85:
            lapel = choose(rng, ("notched (lapel)", "shawl (lapel)"))
            for side in (-1, 1):
                self.add("lapel", (lapel,) if labelled else (), f.shape([lapel_polygon(lapel, side, gap)]),
                         shade(fabric.color, 0.8), index, shade(fabric.color, 0.45))
        if opening == "zip-up":
            zipper = [(-0.009, 0.16), (0.009, 0.16), (0.009, hem), (-0.009, hem)]
            zip_index = self.add("zipper", (), f.shape([zipper]), METAL, index, shade(METAL, 0.45))
            teeth = [([(-0.009, y), (0.009, y)], 0.003) for y in np.arange(0.17, hem, 0.012)]
            self.canvas.detail(zip_index, f.shape(strokes=teeth), shade(METAL, 0.6))
        elif opening is not None:
            columns = [0.0] if opening == "single breasted" else [-0.032, 0.032]
            self.buttons(index, columns, np.arange(0.33, min(hem, 0.6) - 0.02, 0.07), shade(fabric.color, 0.4))
        if rng.random() < 0.7:
            kind = choose(rng, ("flap (pocket)", "patch (pocket)"))
            y = min(hem - 0.06, 0.5)
            self.pockets(index, fabric, [(-0.062, y), (0.062, y)], kind, labelled)

    def hat(self) -> None:
        f = self.figure
        _, color = palette_color(self.rng, "hat")
        crown = [*ellipse(0, -0.03, 0.047, 0.018, 180, 360, 12), (0.047, 0.03), (-0.047, 0.03)]
        index = self.add("hat", (), f.shape([crown, ellipse(0, 0.028, 0.092, 0.017)]), color,
                         outline=shade(color, 0.5))
        self.canvas.detail(index, f.shape([[(-0.047, 0.006), (0.047, 0.006), (0.047, 0.018), (-0.047, 0.018)]]),
                           shade(color, 0.6))

    def glasses(self) -> None:
        f = self.figure
        _, color = palette_color(self.rng, "glasses")
        lenses = [ellipse(x, 0.066, 0.02, 0.015) for x in (-0.022, 0.022)]
        self.add("glasses", (), f.shape(lenses, strokes=[([(-0.01, 0.062), (0.01, 0.062)], 0.005)]), color,
                 outline=shade(METAL, 0.5))

    def bag(self) -> None:
        rng, f = self.rng, self.figure
        _, color = palette_color(rng, "bag, wallet")
        side = choose(rng, (-1, 1))
        if rng.random() < 0.5:  # hand-held, hanging from the hand
            x, y = f.wrist(side)
            body = [(x - 0.05, y + 0.07), (x + 0.05, y + 0.07), (x + 0.065, y + 0.17), (x - 0.065, y + 0.17)]
            strap = ellipse(x, y + 0.07, 0.035, 0.05, 180, 360, 16)
        else:  # cross-body, strap from the other shoulder
            x, y = side * 0.13 * f.build, 0.47
            body = [(x - 0.055, y), (x + 0.055, y), (x + 0.055, y + 0.08), (x - 0.055, y + 0.08)]
            strap = np.array([(-side * 0.08, 0.16), (x, y)])
        index = self.add("bag, wallet", (), f.shape([body], strokes=[(strap, 0.008)]), color,
                         outline=shade(color, 0.5))
        flap = [body[0], body[1], (body[1][0], body[1][1] + 0.03), (body[0][0], body[0][1] + 0.03)]
        self.canvas.detail(index, f.shape([flap]), shade(color, 0.8))


def nearest(table: dict, value: float):
    return min(table, key=lambda k: abs(table[k] - value))


def neck_hole(kind: str) -> np.ndarray:
    """The neck opening cut out of an upper garment, reaching above its top edge."""
    if kind == "v-neck":
        return np.array([(-0.045, 0.1), (0.045, 0.1), (0.0, 0.25)])
    if kind == "square (neckline)":
        return np.array([(-0.046, 0.1), (0.046, 0.1), (0.046, 0.205), (-0.046, 0.205)])
    if kind == "crew (neck)":
        return ellipse(0, 0.138, 0.038, 0.027)
    return ellipse(0, 0.135, 0.047, 0.05)


def collar_polygons(kind: str) -> list[np.ndarray]:
    if kind == "shirt (collar)":
        return [np.array([(s * 0.036, 0.128), (s * 0.072, 0.18), (s * 0.004, 0.205)]) for s in (-1, 1)]
    if kind == "peter pan (collar)":
        return [ellipse(s * 0.032, 0.165, 0.034, 0.03) for s in (-1, 1)]
    return [np.array([(-0.04, 0.122), (0.04, 0.122), (0.046, 0.152), (-0.046, 0.152)])]  # mandarin band


def lapel_polygon(kind: str, side: int, gap: float) -> np.ndarray:
    tip_x = gap + 0.004
    if kind == "notched (lapel)":
        right = [(0.036, 0.14), (0.078, 0.2), (0.064, 0.214), (0.074, 0.232), (tip_x, 0.31)]
    else:  # shawl: a rounded outer edge
        right = [(0.036, 0.14), *[(0.036 + 0.044 * np.sin(a), 0.14 + 0.17 * (1 - np.cos(a)))
                                 for a in np.linspace(0.3, 1.2, 6)], (tip_x, 0.31)]
    return np.array(right) * (side, 1)


def render(rng: np.random.Generator, height: int, width: int, labels: Labels,
           min_area: int) -> tuple[np.ndarray, list[Visible]]:
    """An RGB image of 1-3 dressed figures and its visible instances in drawing order."""
    canvas = Canvas(background(rng, height, width))
    for figure in place_figures(rng, height, width):
        Dresser(canvas, figure, rng, labels).dress_up()
    noise = rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
    image = np.clip(canvas.image + noise, 0, 255).astype(np.uint8)
    return image, canvas.visible(min_area)
