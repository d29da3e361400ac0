"""Large-scale jitter from a 1024 px cache image (the real-data profile's cache and crop side)."""
import numpy as np

from pipeline.training.config import AugmentConfig
from pipeline.training.transforms import apply, train_transform

SIDE = 1024


def cache_image():
    """A 1024x768 image (a cache at max_size 1024) with one red 200x100 garment and a blue square."""
    image = np.full((768, SIDE, 3), 128, np.uint8)
    masks = np.zeros((2, 768, SIDE), np.uint8)
    masks[0, 300:400, 400:600] = 1
    masks[1, 100:164, 100:164] = 1
    image[masks[0] == 1] = (255, 0, 0)
    image[masks[1] == 1] = (0, 0, 255)
    return image, masks


def test_crops_are_the_side_and_scales_span_half_to_twice():
    image, masks = cache_image()
    transform = train_transform(AugmentConfig(image_size=SIDE, hflip=0.5, color_jitter=0.0))
    scales = []
    for seed in range(40):
        out, out_masks, kept = apply(transform, image, masks, seed=seed)
        assert out.shape == (SIDE, SIDE, 3) and out_masks.shape[1:] == (SIDE, SIDE)
        for mask, index in zip(out_masks, kept):
            colour = (255, 0, 0) if index == 0 else (0, 0, 255)
            inside = out[mask == 1].astype(int)
            # Image and masks moved together: the mask covers the garment's colour (edges resampled).
            assert (np.abs(inside - colour).max(axis=1) < 60).mean() > 0.9
        if 0 in kept:
            rows, cols = np.nonzero(out_masks[list(kept).index(0)])
            if cols.min() > 0 and cols.max() < SIDE - 1:  # not cut by the crop: its width measures the scale
                scales.append((cols.max() - cols.min() + 1) / 200)
    assert min(scales) < 0.7 and max(scales) > 1.6
    assert 0.49 <= min(scales) and max(scales) <= 2.01
