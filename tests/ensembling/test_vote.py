"""The fused mask worked out on runs equals the pixel-wise weighted vote it replaces."""
import numpy as np
import pytest

from pipeline.data import rle
from pipeline.ensembling.masks import VOTE_TOLERANCE, weighted_vote


def pixel_vote(masks, weights, threshold) -> str:
    """The vote pixel by pixel: each member's mask times its share, summed in float32."""
    shares = np.asarray(weights, np.float64) / np.sum(weights)
    votes = np.zeros(masks[0].shape, np.float32)
    for mask, share in zip(masks, shares):
        votes += share * mask
    if not any(mask.any() for mask in masks):
        return ""
    columns = np.flatnonzero(np.any(masks, axis=(0, 1)))
    chosen = np.zeros(masks[0].shape, bool)  # pixels outside the members' columns never count
    x0, x1 = columns[0], columns[-1] + 1
    chosen[:, x0:x1] = votes[:, x0:x1] >= threshold - VOTE_TOLERANCE
    return rle.encode(chosen)


def random_mask(rng, height, width) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    if rng.random() < 0.1:
        return mask
    top, left = rng.integers(0, height), rng.integers(0, width)
    mask[top:top + rng.integers(1, height + 1), left:left + rng.integers(1, width + 1)] = 1
    if rng.random() < 0.5:  # holes and full-height columns: runs across column boundaries
        mask[rng.integers(0, height)::3, :] ^= 1
    return mask


@pytest.mark.parametrize("seed", range(40))
def test_vote_on_runs_equals_the_pixel_vote(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 30, 2))
    masks = [random_mask(rng, height, width) for _ in range(int(rng.integers(1, 6)))]
    # Equal weights make exact ties at the threshold; random ones the float32 sums.
    weights = np.ones(len(masks)) if seed % 2 else rng.uniform(0.01, 1.0, len(masks))
    for threshold in (0.5, 1 / 3, 0.25, 1.0, 1e-7, rng.uniform(0.05, 1.0)):
        runs = [rle.mask_to_runs(mask) for mask in masks]
        assert weighted_vote(runs, weights, height, threshold) == pixel_vote(masks, weights, threshold)
