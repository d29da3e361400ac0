"""Augmentation applied to an image and its instance masks together (albumentations).

Training uses large-scale jitter (resize to the crop size, rescale by 0.5-2.0, pad, random crop),
horizontal flip and colour jitter. Boxes are recomputed from the augmented masks, and instances
the crop removed are dropped, so boxes, masks, classes and attributes always agree.
"""
from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from pipeline.training.config import AugmentConfig


def train_transform(cfg: AugmentConfig, keypoints: bool = False) -> A.Compose:
    """`keypoints`: also move (x, y) points (DeepFashion2's landmarks), kept when the crop drops them."""
    # Masks resized bilinearly (then rounded back to 0/1 as uint8), as the image is: nearest
    # neighbour shifts their edges by up to half a pixel against the image, which caps the mask
    # IoU a model can learn (0.90 on the overfit drill's small garments, 0.98 bilinear).
    steps = [
        A.LongestMaxSize(max_size=cfg.image_size, mask_interpolation=cv2.INTER_LINEAR),
        A.RandomScale(scale_limit=(cfg.scale_min - 1.0, cfg.scale_max - 1.0), mask_interpolation=cv2.INTER_LINEAR,
                      p=1.0),
        A.PadIfNeeded(cfg.image_size, cfg.image_size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0),
        A.RandomCrop(cfg.image_size, cfg.image_size),
        A.HorizontalFlip(p=cfg.hflip),
    ]
    if cfg.color_jitter > 0:
        s = cfg.color_jitter
        steps.append(A.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s / 10, p=0.8))
    return A.Compose(steps, keypoint_params=A.KeypointParams("xy", remove_invisible=False) if keypoints else None)


def eval_transform(image_size: int) -> A.Compose:
    """Resize so the longest side is `image_size`; no randomness."""
    return A.Compose([A.LongestMaxSize(max_size=image_size)])


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """(N,H,W) masks -> (N,4) float32 xyxy boxes enclosing each mask (x2, y2 exclusive)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def apply(transform: A.Compose, image: np.ndarray, masks: np.ndarray, min_pixels: int = 1, seed: int | None = None):
    """Augment image and masks; return (image, masks, kept) where `kept` indexes surviving instances."""
    if seed is not None:
        transform.set_random_seed(seed)
    if len(masks):
        out = transform(image=image, masks=masks)
        out_masks = np.asarray(out["masks"], dtype=np.uint8)
    else:
        out = transform(image=image)
        out_masks = np.zeros((0, *out["image"].shape[:2]), np.uint8)
    kept = np.flatnonzero(out_masks.reshape(len(out_masks), -1).sum(axis=1) >= min_pixels)
    return out["image"], out_masks[kept], kept
