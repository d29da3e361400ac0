"""EfficientDet's fixed square input, and its box order.

EfficientDet runs at one square size divisible by its coarsest stride (anchors and BiFPN
resampling are built for it). Each image is scaled so that its longer side fills the square
(aspect ratio kept) and centred on a black square: the framing of the engine's training crops
(longest side resized, padded black around the centre), so that predicting an image shows the
model what training showed it. `Placement` maps boxes between the square and input pixels.
effdet's anchors and labeler use (y0, x0, y1, x1) boxes, the project (x0, y0, x1, y1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import clip_boxes_to_image

YXYX_FROM_XYXY = [1, 0, 3, 2]  # swapping the axes is its own inverse


def xyxy_to_yxyx(boxes: torch.Tensor) -> torch.Tensor:
    return boxes[..., YXYX_FROM_XYXY]


def yxyx_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    return boxes[..., YXYX_FROM_XYXY]


@dataclass(frozen=True)
class Placement:
    """Where an input image lies in the square: scaled by `scale`, its top-left corner at (left, top)."""

    scale: float
    top: int
    left: int
    input_size: tuple[int, int]  # (height, width) of the input image

    def to_square(self, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy boxes in input pixels -> in the square."""
        return boxes * self.scale + boxes.new_tensor([self.left, self.top, self.left, self.top])

    def to_input(self, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy boxes in the square -> in input pixels."""
        return (boxes - boxes.new_tensor([self.left, self.top, self.left, self.top])) / self.scale

    def clip(self, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy boxes in the square, clipped to the image inside it."""
        return self.to_square(clip_boxes_to_image(self.to_input(boxes), self.input_size))


class Letterbox(nn.Module):
    """Images of any sizes -> one normalised (B, 3, size, size) batch and each image's placement."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    def forward(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[Placement]]:
        batch = ((images[0].new_zeros((len(images), 3, self.size, self.size))) - self.mean) / self.std  # black
        placements = []
        for i, image in enumerate(images):
            height, width = image.shape[-2:]
            scale = self.size / max(height, width)
            h, w = min(round(height * scale), self.size), min(round(width * scale), self.size)
            top, left = (self.size - h) // 2, (self.size - w) // 2
            resized = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            batch[i, :, top : top + h, left : left + w] = (resized - self.mean) / self.std
            placements.append(Placement(scale, top, left, (height, width)))
        return batch, placements
