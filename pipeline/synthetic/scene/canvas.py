"""The canvas: the image being drawn, its instances and the occlusion id maps.

A scene is drawn back to front at its final size. Occlusion lives in two id maps: `top` holds the
front-most garment or accessory of each pixel (skin and hair reset it to none), `part` the
front-most garment part. A garment is visible where it is front-most; a part where it is the
front-most part and its garment is front-most, so every part lies inside its garment as in
Fashionpedia.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synthetic.scene.fabric import Fabric
from pipeline.synthetic.scene.shapes import Shape


@dataclass
class Instance:
    """An instance as drawn, before later ones occlude it: its full mask inside `box`."""

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
