"""DeepFashion2-like scenes: the 13 categories drawn from their landmarks, worn or in a shop photo.

Every garment is a `Product`: a category and its cut (fit, hem, sleeve, neckline, flare) and a
fabric. Its landmarks are computed from the figure's body geometry (`pipeline.synthetic.scene.figure`)
in the category's DeepFashion2 order (`shared/DEEPFASHION2.md` section 2), and its outline
polygon runs through them, so every landmark lies at a known point of the garment:

- upper garments: 1 back-neck centre, 2 and 6 the neckline's top corners (2 image-left), 3 and 5
  partway down, 4 the front-neck centre; then from the image-left shoulder (or strap top) down the
  sleeve's outer edge, across the cuff, back up its inner edge to the armpit, down the side to the
  hem corner, the hem centre, and back up the image-right side in mirror order. Outerwear: 4 is
  the top of the front opening's image-left edge and the outline's middle point its bottom (at the
  hem); the six opening points at the end run down its right edge from the neck to the hem, then
  the left edge's two inner points, so that each landmark's mirror is the one the official OKS
  sigmas pair it with (`annotations.mirror_order`).
- shorts and trousers: 1-3 the waistband left to right, then down the image-left outer seam, the
  left hem, the inseam and crotch, the right hem and up the right seam. Skirts: waistband, left
  hip and hem corner, hem centre, right hem corner and hip.

A consumer photo (`render_user`) puts an outfit on a figure in a scene, with other garments and
figures around it, sometimes cropped, sometimes seen from behind (hair over the face, a shallow
neckline, the front landmarks occluded: viewpoint 3); a shop photo (`render_shop`) shows one product alone,
frontal, on a plain background. Both return the items as DeepFashion2 annotates them: visible
mask, box, landmarks with visibility, and the four difficulty labels.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.data.deepfashion2.annotations import CATEGORY_BY_ID
from pipeline.synthetic.scene.body import draw_body
from pipeline.synthetic.scene.canvas import Canvas
from pipeline.synthetic.scene.colors import palette_color, shade
from pipeline.synthetic.scene.compose import background
from pipeline.synthetic.scene.fabric import PATTERNS, Fabric
from pipeline.synthetic.scene.figure import Figure
from pipeline.synthetic.scene.sampling import weighted
from pipeline.synthetic.scene.shapes import Shape, ellipse

# Per category: (kind, sleeve reach or None, side points, palette). Kind: upper, outwear, dress,
# shorts, trousers, skirt. Side points run from below the armpit to the hem corner.
CUTS = {
    1: ("upper", 0.28, 4, "top, t-shirt, sweatshirt"),
    2: ("upper", 0.97, 4, "sweater"),
    3: ("outwear", 0.28, 4, "jacket"),
    4: ("outwear", 0.97, 4, "coat"),
    5: ("upper", None, 2, "shirt, blouse"),
    6: ("upper", None, 2, "top, t-shirt, sweatshirt"),
    7: ("shorts", None, 0, "pants"),
    8: ("trousers", None, 0, "pants"),
    9: ("skirt", None, 0, "skirt"),
    10: ("dress", 0.28, 6, "dress"),
    11: ("dress", 0.97, 6, "dress"),
    12: ("dress", None, 4, "dress"),
    13: ("dress", None, 4, "dress"),
}
SLINGS = (6, 13)  # narrow straps and a deep neckline
TOPS, BOTTOMS, OUTWEAR, DRESSES = (1, 2, 5, 6), (7, 8, 9), (3, 4), (10, 11, 12, 13)
NECK_Y = 0.15
EASE = 0.006
# Difficulty thresholds (ours; DeepFashion2 does not publish its rules).
SCALE_AREA = (0.06, 0.3)  # visible area over image area: small below the first, large from the second
OCCLUSION = (0.15, 0.5)  # hidden fraction of the in-image garment: slight, medium, heavy
ZOOM = (0.02, 0.3)  # fraction of the garment outside the image: none, medium, large
MIN_VISIBLE = 0.002  # items with less visible area (of the image) are not annotated
BACK_VIEWS = 0.15  # share of consumer photos showing the outfit from behind (viewpoint 3)
BACK_NECK_DEPTH = 0.012


@dataclass(frozen=True)
class Body:
    """The build a product is cut for (a Figure without its place in a photo)."""

    build: float
    wrists: tuple[float, float]
    ankle: float

    def figure(self, cx: float, top: float, unit: float) -> Figure:
        return Figure(cx, top, unit, self.build, self.wrists, self.ankle)


@dataclass(frozen=True)
class Product:
    category_id: int
    fit: float
    hem: float
    neck_width: float
    neck_depth: float
    flare: float
    fabric: Fabric  # `period` in figure heights: scaled to pixels per photo

    def fabric_at(self, unit: float) -> Fabric:
        return dataclasses.replace(self.fabric, period=self.fabric.period * unit)


@dataclass
class DrawnItem:
    """An item as annotated: visible mask (full image), landmarks (N, 3) pixels + v, labels."""

    product: Product
    style: int
    mask: np.ndarray  # bool (H, W)
    landmarks: np.ndarray
    difficulty: tuple[int, int, int, int]


def random_body(rng: np.random.Generator) -> Body:
    return Body(rng.uniform(0.9, 1.1), (rng.uniform(0.15, 0.23), rng.uniform(0.15, 0.23)), rng.uniform(0.045, 0.085))


HEMS = {"upper": (0.43, 0.52), "outwear": (0.5, 0.74), "dress": (0.6, 0.92), "shorts": (0.6, 0.66),
        "trousers": (0.93, 0.95), "skirt": (0.57, 0.92)}


def random_product(rng: np.random.Generator, category_id: int) -> Product:
    kind, _, _, palette = CUTS[category_id]
    _, color = palette_color(rng, palette)
    fabric = Fabric.random(rng, color, 1.0, weighted(rng, PATTERNS))
    sling = category_id in SLINGS
    return Product(
        category_id=category_id,
        fit=float(rng.uniform(1.1, 1.25) if kind == "outwear" else rng.uniform(0.92, 1.15)),
        hem=float(rng.uniform(*HEMS[kind])),
        neck_width=float(rng.uniform(0.05, 0.065) if sling else rng.uniform(0.03, 0.045)),
        neck_depth=float(rng.uniform(0.07, 0.11) if sling else rng.uniform(0.02, 0.07)),
        flare=float(rng.uniform(0.0, 0.5)) if kind in ("dress", "skirt") else 0.0,
        fabric=fabric,
    )


# --- landmarks in figure heights -------------------------------------------------------------


def landmarks(product: Product, f: Figure) -> np.ndarray:
    """(N, 2) landmarks of `product` on figure `f`, in figure heights, in DeepFashion2 order."""
    return _LANDMARKS[CUTS[product.category_id][0]](product, f)


def _neckline(product: Product) -> list:
    w, d = product.neck_width, product.neck_depth
    return [(0, NECK_Y + 0.25 * d), (-w, NECK_Y), (-0.6 * w, NECK_Y + 0.6 * d), (0, NECK_Y + d),
            (0.6 * w, NECK_Y + 0.6 * d), (w, NECK_Y)]


def _side_x(product: Product, f: Figure, y: float) -> float:
    return f.body_half_width(min(y, 0.48)) * product.fit + EASE + product.flare * max(y - 0.48, 0.0)


def _left_half(product: Product, f: Figure) -> list:
    """The image-left half of an upper outline, from the shoulder (or strap) to the hem corner."""
    _, reach, sides, _ = CUTS[product.category_id]
    side = -1
    if reach is None:
        strap = product.neck_width + 0.02 if product.category_id in SLINGS else 0.095 * f.build
        points = [(side * strap, 0.165), (side * _side_x(product, f, 0.24), 0.24)]
    else:
        points = [(side * 0.118 * f.build * min(product.fit, 1.1), 0.165), *_sleeve(product, f, side, reach)]
    ys = np.linspace(0.3, product.hem, sides)
    points += [(side * _side_x(product, f, y), y) for y in ys]
    return points


def _sleeve(product: Product, f: Figure, side: int, reach: float) -> list:
    """Outer edge down, cuff (outer, inner), inner edge up, armpit: 4 points short, 8 long."""
    start, wrist = f.shoulder(side), f.wrist(side)
    axis = wrist - start
    unit_axis = axis / np.linalg.norm(axis)
    outward = side * np.array([unit_axis[1], -unit_axis[0]])
    top_half = 0.04 * product.fit
    end_half = top_half - 0.014 * reach * product.fit
    outer_steps, inner_steps = ((0.5,), ()) if reach < 0.5 else ((0.25, 0.5, 0.75), (0.66, 0.33))
    outer = [start + t * reach * axis + outward * (top_half + (end_half - top_half) * t) for t in outer_steps]
    end = start + reach * axis
    inner = [start + t * reach * axis - outward * (end_half + (top_half - end_half) * (1 - t)) for t in inner_steps]
    armpit = (side * 0.088 * f.build * product.fit, 0.24)
    return [*outer, end + outward * end_half, end - outward * end_half, *inner, armpit]


def _upper(product: Product, f: Figure) -> np.ndarray:
    left = _left_half(product, f)
    right = [(-x, y) for x, y in left[::-1]]
    return np.array([*_neckline(product), *left, (0, product.hem + 0.01), *right], float)


def _outwear(product: Product, f: Figure) -> np.ndarray:
    gap = 0.004
    points = _upper(product, f)
    top, bottom = NECK_Y + product.neck_depth, product.hem + 0.01
    points[3] = (-gap, top)  # 4: the opening's left edge at the neck ...
    points[(6 + len(points) - 1) // 2] = (-gap, bottom)  # ... and the outline's middle point at the hem
    ys = np.linspace(top, bottom, 4)
    opening = [(gap, y) for y in ys] + [(-gap, y) for y in ys[1:3]]
    return np.concatenate([points, opening])


def _waist(f: Figure) -> list:
    waist = f.body_half_width(0.38) + EASE
    return [(-waist, 0.38), (0, 0.38), (waist, 0.38)]


def _shorts(product: Product, f: Figure) -> np.ndarray:
    hip = f.body_half_width(0.48) + 0.008
    center, half = f.leg_center(1, product.hem), 0.05 * product.fit
    inner = max(center - half, 0.006)
    return np.array([*_waist(f), (-hip, 0.48), (-(center + half), product.hem), (-inner, product.hem), (0, 0.54),
                     (inner, product.hem), (center + half, product.hem), (hip, 0.48)])


def _trousers(product: Product, f: Figure) -> np.ndarray:
    hip = f.body_half_width(0.48) + 0.008
    knee, hem = f.leg_center(1, 0.72), f.leg_center(1, product.hem)
    knee_half, hem_half = 0.045 * product.fit, 0.033 * product.fit
    return np.array([*_waist(f), (-hip, 0.48), (-(knee + knee_half), 0.72), (-(hem + hem_half), product.hem),
                     (-(hem - hem_half), product.hem), (-(knee - knee_half), 0.72), (0, 0.54),
                     (knee - knee_half, 0.72), (hem - hem_half, product.hem), (hem + hem_half, product.hem),
                     (knee + knee_half, 0.72), (hip, 0.48)])


def _skirt(product: Product, f: Figure) -> np.ndarray:
    hip = f.body_half_width(0.48) + 0.01
    corner = hip + product.flare * (product.hem - 0.48)
    return np.array([*_waist(f), (-hip, 0.48), (-corner, product.hem), (0, product.hem + 0.012),
                     (corner, product.hem), (hip, 0.48)])


_LANDMARKS = {"upper": _upper, "dress": _upper, "outwear": _outwear, "shorts": _shorts,
              "trousers": _trousers, "skirt": _skirt}


def outline(product: Product, points: np.ndarray) -> np.ndarray:
    """The garment's polygon through its landmarks (figure heights)."""
    kind = CUTS[product.category_id][0]
    if kind in ("shorts", "trousers", "skirt"):  # waistband left to right, then up the right side
        return np.concatenate([points[:3], points[3:][::-1]])
    contour = CATEGORY_BY_ID[product.category_id].landmarks - (6 if kind == "outwear" else 0)
    # From the neck's left corner round the outline to the right corner, then the front neckline back.
    return np.concatenate([points[1:2], points[6:contour], points[5:1:-1]])


def garment_shape(product: Product, f: Figure) -> tuple[Shape, np.ndarray]:
    """(the garment's Shape in pixels, its landmarks in pixels)."""
    points = landmarks(product, f)
    kind = CUTS[product.category_id][0]
    strokes = []
    if kind in ("upper", "dress", "outwear"):  # the back neck, seen through the front neckline
        strokes.append((points[[1, 0, 5]], 0.01))
    return f.shape([outline(product, points)], strokes=strokes), f.px(points)


# --- photos --------------------------------------------------------------------------------


def _label(area: float, thresholds: tuple[float, float]) -> int:
    return 1 + int(area >= thresholds[0]) + int(area >= thresholds[1])


def _annotate(canvas: Canvas, drawn: list) -> list[DrawnItem]:
    """The items as annotated: visible masks, landmark visibility, difficulty labels."""
    height, width = canvas.height, canvas.width
    items = []
    for index, product, style, viewpoint, pixels, polygon_area in drawn:
        instance = canvas.instances[index]
        y0, x0, y1, x1 = instance.box
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = canvas.top[y0:y1, x0:x1] == index + 1
        visible = mask.sum()
        if visible < MIN_VISIBLE * height * width:
            continue
        drawn_pixels = instance.mask.sum()
        near = cv2.dilate(mask.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        points = np.zeros((len(pixels), 3))
        inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
        columns = np.clip(pixels[:, 0].astype(int), 0, width - 1)
        rows = np.clip(pixels[:, 1].astype(int), 0, height - 1)
        points[inside, :2] = np.round(pixels[inside], 1)
        points[inside, 2] = np.where(near[rows[inside], columns[inside]], 2, 1)
        if viewpoint == 3:  # seen from behind, the front neckline and opening are hidden
            front = front_landmarks(product)
            points[front, 2] = np.minimum(points[front, 2], 1)
        difficulty = (_label(visible / (height * width), SCALE_AREA), _label(1 - visible / drawn_pixels, OCCLUSION),
                      _label(max(0.0, 1 - drawn_pixels / max(polygon_area, 1.0)), ZOOM), viewpoint)
        items.append(DrawnItem(product, style, mask, points, difficulty))
    return items


def front_landmarks(product: Product) -> np.ndarray:
    """Indices of the landmarks only a front view shows: neckline 3-5 and the outerwear opening."""
    kind = CUTS[product.category_id][0]
    if kind in ("shorts", "trousers", "skirt"):
        return np.zeros(0, int)
    count = CATEGORY_BY_ID[product.category_id].landmarks
    return np.r_[2:5, count - 6 : count] if kind == "outwear" else np.arange(2, 5)


def _draw(canvas: Canvas, product: Product, f: Figure, style: int, viewpoint: int, drawn: list) -> None:
    shape, pixels = garment_shape(product, f)
    fabric = product.fabric_at(f.unit)
    index = canvas.add(product.category_id, (), shape, fabric, shade(fabric.color, 0.5), f.stroke)
    if index is None:
        return
    polygon = shape.fills[0].astype(np.float32)
    if CUTS[product.category_id][0] == "outwear" and viewpoint != 3:  # the closed front opening, as a seam
        opening = pixels[-6:-2]  # its right edge, neck to hem
        canvas.detail(index, Shape(strokes=[(opening, max(1.0, f.unit * 0.004))]), shade(fabric.color, 0.4))
    drawn.append((index, product, style, viewpoint, pixels, abs(cv2.contourArea(polygon))))


def render_user(rng: np.random.Generator, height: int, width: int, outfit: list[tuple[Product, int]], body: Body,
                extras: list[list[Product]]) -> tuple[np.ndarray, list[DrawnItem]]:
    """A consumer photo: `outfit` ((product, style) in drawing order) on a figure of `body`, and
    `extras` (outfits of other figures, style 0) around it; sometimes zoomed in."""
    canvas = Canvas(background(rng, height, width))
    zoom = rng.random() < 0.3
    unit = height * (rng.uniform(1.2, 1.8) if zoom else rng.uniform(0.75, 0.98))
    top = -rng.uniform(0.05, 0.3) * unit if zoom else rng.uniform(0, max(height - unit, 0) + 0.05 * unit)
    main = body.figure(width * rng.uniform(0.35, 0.65), top, unit)
    others = [random_body(rng).figure(width * rng.uniform(0.05, 0.95), rng.uniform(0, 0.2) * height,
                                      height * rng.uniform(0.6, 0.9)) for _ in extras]
    back = rng.random() < BACK_VIEWS  # the main figure seen from behind
    drawn: list = []
    order = sorted(range(len(others) + 1), key=lambda i: rng.random())  # who stands in front
    for position in order:
        figure = main if position == len(others) else others[position]
        draw_body(canvas, figure, rng)
        garments = outfit if position == len(others) else [(p, 0) for p in extras[position]]
        viewpoint = 2  # frontal
        if back and figure is main:  # hair over the face, the shallow back neckline
            canvas.skin(figure.shape([ellipse(0, 0.07, 0.06, 0.075)]), palette_color(rng, "hair")[1])
            garments = [(dataclasses.replace(p, neck_depth=BACK_NECK_DEPTH), style) for p, style in garments]
            viewpoint = 3
        for product, style in garments:
            _draw(canvas, product, figure, style, viewpoint, drawn)
    if rng.random() < 0.3:  # a bag or an arm in front: occlusion without an item
        x, y = main.px([(rng.uniform(-0.15, 0.15), rng.uniform(0.3, 0.6))])[0]
        size = unit * rng.uniform(0.06, 0.12)
        bag = Shape([np.array([(x - size, y - size), (x + size, y - size), (x + size, y + size), (x - size, y + size)])])
        canvas.skin(bag, palette_color(rng, "bag, wallet")[1])
    noise = rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
    image = np.clip(canvas.image + noise, 0, 255).astype(np.uint8)
    return image, _annotate(canvas, drawn)


def render_shop(rng: np.random.Generator, height: int, width: int, product: Product, style: int,
                body: Body) -> tuple[np.ndarray, list[DrawnItem]]:
    """A shop photo: the product alone, frontal, filling most of a plain light image."""
    color = np.array([rng.uniform(215, 250)] * 3) + rng.uniform(-8, 8, 3)
    canvas = Canvas(np.ascontiguousarray(np.broadcast_to(np.clip(color, 0, 255).astype(np.uint8), (height, width, 3))))
    points = outline(product, landmarks(product, body.figure(0.0, 0.0, 1.0)))
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    unit = min(0.85 * width / (x1 - x0), 0.85 * height / (y1 - y0))
    figure = body.figure(width / 2 - unit * (x0 + x1) / 2, height / 2 - unit * (y0 + y1) / 2, unit)
    drawn: list = []
    _draw(canvas, product, figure, style, 1, drawn)  # not worn
    noise = rng.integers(-3, 4, (height, width, 1), dtype=np.int16)
    image = np.clip(canvas.image + noise, 0, 255).astype(np.uint8)
    return image, _annotate(canvas, drawn)
