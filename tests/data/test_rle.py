import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as coco_mask

from pipeline.benchmarks.rle import decode_naive, encode_naive
from pipeline.data import rle

masks = hnp.arrays(
    np.uint8,
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    elements=st.integers(0, 1),
)


@settings(max_examples=300, deadline=None)
@given(masks)
def test_round_trip(mask):
    encoded = rle.encode(mask)
    decoded = rle.decode(encoded, *mask.shape)
    assert decoded.shape == mask.shape and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, mask)


@settings(max_examples=200, deadline=None)
@given(masks)
def test_matches_naive_codec_and_pycocotools(mask):
    encoded = rle.encode(mask)
    assert encoded == encode_naive(mask)
    np.testing.assert_array_equal(decode_naive(encoded, *mask.shape), mask)
    coco = rle.to_coco(encoded, *mask.shape)
    np.testing.assert_array_equal(coco_mask.decode(coco), mask)
    assert int(coco_mask.area(coco)) == int(mask.sum())
    assert rle.from_coco(coco) == encoded
    assert rle.from_coco(coco_mask.encode(np.asfortranarray(mask))) == encoded


@settings(max_examples=100, deadline=None)
@given(masks)
def test_counts_round_trip(mask):
    counts = rle.mask_to_counts(mask)
    assert counts.sum() == mask.size and (counts[1:-1] > 0).all() and (counts >= 0).all()
    np.testing.assert_array_equal(rle.counts_to_mask(counts, *mask.shape), mask)


@settings(max_examples=300, deadline=None)
@given(masks)
def test_compressed_coco_strings_decode_to_the_masks_runs(mask):
    """pycocotools' compressed counts (differences from two values back, negative ones among them)
    read back as the mask's runs, and from there as its Kaggle RLE."""
    counts = rle.coco_string_counts(coco_mask.encode(np.asfortranarray(mask))["counts"])
    assert counts.sum() == mask.size
    np.testing.assert_array_equal(rle.counts_to_mask(counts, *mask.shape), mask)
    assert rle.runs_to_string(*rle.counts_to_runs(counts)) == rle.encode(mask)


def test_compressed_counts_of_a_large_image_and_bad_strings():
    mask = np.zeros((5000, 6000), np.uint8)
    mask[-1, -1] = 1
    counts = rle.coco_string_counts(coco_mask.encode(np.asfortranarray(mask))["counts"].decode("ascii"))
    assert counts.tolist() == [5000 * 6000 - 1, 1]
    assert rle.coco_string_counts("").size == 0
    with pytest.raises(rle.RLEError, match="outside"):
        rle.coco_string_counts("ab ")
    with pytest.raises(rle.RLEError, match="middle of a value"):
        rle.coco_string_counts("0P")  # 'P' carries the continuation bit


def test_counts_to_runs_drops_empty_runs_and_joins_touching_ones():
    starts, lengths = rle.counts_to_runs(np.array([2, 3, 0, 4, 1, 0, 5]))
    assert starts.tolist() == [2] and lengths.tolist() == [7]  # 3 + 4 joined; the empty run dropped
    starts, lengths = rle.counts_to_runs(np.array([0, 2, 3]))
    assert starts.tolist() == [0] and lengths.tolist() == [2]


def test_kaggle_convention_is_column_major_and_one_indexed():
    mask = np.zeros((3, 4), np.uint8)
    mask[:, 1] = 1  # the whole second column: pixels 4, 5, 6 (1-indexed, down the columns)
    mask[0, 3] = 1  # top of the last column: pixel 10
    assert rle.encode(mask) == "4 3 10 1"


def test_empty_and_full_masks():
    assert rle.encode(np.zeros((5, 5), np.uint8)) == ""
    assert rle.decode("", 5, 5).sum() == 0
    assert rle.encode(np.ones((2, 3), np.uint8)) == "1 6"


def test_touching_runs_decode():
    np.testing.assert_array_equal(rle.decode("1 2 3 2", 2, 2), np.ones((2, 2), np.uint8))


@pytest.mark.parametrize(
    "encoded, message",
    [
        ("1 2 3", "odd number"),
        ("1 0", "length 0"),
        ("0 3", "1-indexed"),
        ("5 2 1 2", "out of order or overlapping"),
        ("1 3 2 2", "out of order or overlapping"),
        ("20 7", "beyond 5x5"),
        ("1 -2", "non-negative integers"),
        ("1 2.5", "non-negative integers"),
        ("a b", "non-negative integers"),
        ("1,2", "non-negative integers"),
    ],
)
def test_malformed_rle_is_rejected(encoded, message):
    with pytest.raises(rle.RLEError, match=message):
        rle.decode(encoded, 5, 5)


@pytest.mark.parametrize("encoded", ["1 2 4 1", " 1 2 4 1 ", "1  2 4 1", "1\t2\n4 1"])
def test_any_whitespace_between_numbers(encoded):
    starts, lengths = rle.parse(encoded, 5, 5)
    assert starts.tolist() == [0, 3] and lengths.tolist() == [2, 1]


def test_bad_size_is_rejected():
    with pytest.raises(rle.RLEError, match="positive"):
        rle.decode("1 1", 0, 5)


def test_real_sample_masks_decode(fashionpedia_sample):
    from PIL import Image

    from pipeline.data import ontology
    from pipeline.data.annotations import read_annotations

    records, errors = read_annotations(fashionpedia_sample / "train.csv", ontology.load())
    assert not errors
    assert sum(len(r.instances) for r in records) == 12
    for record in records:
        with Image.open(fashionpedia_sample / "train" / f"{record.image_id}.jpg") as image:
            assert image.size == (record.width, record.height)
        for instance in record.instances:
            mask = rle.decode(instance.rle, record.height, record.width)
            assert mask.shape == (record.height, record.width) and mask.any()
            assert rle.encode(mask) == instance.rle


@settings(max_examples=200, deadline=None)
@given(masks, st.integers(0, 5), st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))
def test_window_encoding_equals_full_mask(window, top, left, bottom, right):
    height, width = window.shape[0] + top + bottom, window.shape[1] + left + right
    full = np.zeros((height, width), np.uint8)
    full[top : top + window.shape[0], left : left + window.shape[1]] = window
    assert rle.encode(window, top, left, height, width) == rle.encode(full)


def test_window_must_fit():
    with pytest.raises(ValueError, match="does not fit"):
        rle.encode(np.ones((3, 3), np.uint8), 2, 0, 4, 4)
