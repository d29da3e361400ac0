import cv2
import numpy as np
import pytest

from pipeline.data import ontology, rle
from pipeline.data.prediction_rows import parse_attribute_scores
from pipeline.inference.rows import paste_rle, rows_for_image


def blob(h, w, cy, cx, ry, rx):
    yy, xx = np.mgrid[:h, :w]
    return np.clip(1.5 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2), 0, 1).astype(np.float32)


@pytest.mark.parametrize("height, width", [(64, 48), (128, 96), (300, 170), (37, 29)])
def test_paste_matches_full_image_resize(height, width):
    probability = blob(64, 48, 30, 20, 12, 9)
    full = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    pasted = rle.decode(paste_rle(probability, height, width), height, width)
    disagreement = np.logical_xor(pasted, full).sum() / full.sum()
    assert disagreement < 0.02


def test_same_size_is_exact_threshold():
    probability = blob(50, 40, 25, 10, 10, 8)
    assert paste_rle(probability, 50, 40) == rle.encode(probability >= 0.5)


def test_empty_and_border_masks():
    assert paste_rle(np.zeros((10, 10), np.float32), 100, 100) == ""
    probability = np.zeros((10, 10), np.float32)
    probability[:, -1] = 1.0  # touching the right border: the window must stay inside the image
    mask = rle.decode(paste_rle(probability, 100, 100), 100, 100)
    assert mask[:, -5:].all() and not mask[:, :85].any()


def test_large_photo_costs_only_the_object():
    probability = blob(64, 45, 30, 20, 5, 4)
    encoded = paste_rle(probability, 5214, 3676)
    mask = rle.decode(encoded, 5214, 3676)
    assert 0 < mask.sum() < 0.05 * mask.size


def test_rows_for_image():
    labels = ontology.load()
    masks = np.stack([blob(32, 32, 16, 16, 6, 6), np.zeros((32, 32), np.float32)])[:, None]
    attributes = np.zeros((2, labels.num_attributes), np.float32)
    attributes[0, [0, -1]] = 0.9
    attributes[0, 5] = 0.4
    output = {"masks": masks, "labels": np.array([31, 4]), "scores": np.array([0.8, 0.7]), "attributes": attributes}
    rows = rows_for_image("img", output, (64, 64), labels, attribute_threshold=0.5)
    assert len(rows) == 1  # the empty mask is dropped
    image_id, encoded, class_id, attribute_ids, score, attribute_scores = rows[0]
    assert (image_id, class_id, attribute_ids, score) == ("img", 31, "0,340", pytest.approx(0.8))
    assert parse_attribute_scores(attribute_scores) == {0: 0.9, 5: 0.4, 340: 0.9}
    assert rle.decode(encoded, 64, 64).sum() > 100


@pytest.mark.parametrize("text", ["7", "7:x", "7:1.5", "a:0.3"])
def test_malformed_attribute_scores(text):
    with pytest.raises(ValueError):
        parse_attribute_scores(text)


def test_empty_attribute_scores():
    assert parse_attribute_scores("") == {} and parse_attribute_scores(None) == {}


@pytest.mark.parametrize("seed", range(6))
def test_pasting_a_tensor_on_its_device_matches_the_cpu_paste(seed):
    """The GPU path (here on a CPU tensor) resamples the window as cv2 does; cv2 rounds sample
    positions to 1/32 pixel, so a pixel at the threshold may differ, nothing more."""
    import torch

    from pipeline.inference.rows import paste_rle_tensor

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(20, 80, 2))
    height, width = int(h * rng.uniform(0.5, 6)), int(w * rng.uniform(0.5, 6))
    probability = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3)
    probability = (probability - probability.min()) / (probability.max() - probability.min())
    expected = rle.decode(paste_rle(probability, height, width), height, width).astype(bool)
    got = rle.decode(paste_rle_tensor(torch.from_numpy(probability), height, width), height, width).astype(bool)
    assert expected.any() and (expected != got).sum() <= 0.001 * expected.sum()
    assert paste_rle_tensor(torch.zeros(5, 5), 10, 10) == ""
