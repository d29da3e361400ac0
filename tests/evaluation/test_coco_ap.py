"""The vectorised greedy matcher against a literal transcription of the references' loop."""
import numpy as np
import pytest

from pipeline.scoring import coco_ap

GRID = np.round(np.arange(0.40, 1.0001, 0.05), 2)  # values on and between the thresholds


def literal_match(ious, f1s, gt_ignored, iou_threshold, f1_threshold):
    """FPEval.evaluateImg's loop for one group and one threshold pair (gts already ignore-last)."""
    matched_gt = np.full(ious.shape[1], False)
    result = []
    for d in range(ious.shape[0]):
        best_iou, best_f1, m = min(iou_threshold, 1 - 1e-10), min(f1_threshold, 1 - 1e-10), -1
        for g in range(ious.shape[1]):
            if matched_gt[g]:
                continue
            if m > -1 and not gt_ignored[m] and gt_ignored[g]:
                break
            if ious[d, g] < best_iou or f1s[d, g] < best_f1:
                continue
            best_iou, best_f1, m = ious[d, g], f1s[d, g], g
        if m > -1:
            matched_gt[m] = True
        result.append(m)
    return result


@pytest.mark.parametrize("seed", range(30))
def test_match_equals_the_literal_loop(seed):
    rng = np.random.default_rng(seed)
    dt, gt, iou, f1, rank, ignored, expected = [], [], [], [], [], [], []
    groups = []
    for _ in range(int(rng.integers(1, 6))):
        n_dt, n_gt = int(rng.integers(0, 6)), int(rng.integers(1, 5))
        ious = rng.choice(GRID, size=(n_dt, n_gt)) * (rng.random((n_dt, n_gt)) < 0.7)
        f1s = rng.choice(GRID, size=(n_dt, n_gt))
        gt_ignored = np.sort(rng.random(n_gt) < 0.3)  # the references sort ignored ground truths last
        groups.append((len(rank), len(ignored), ious, f1s, gt_ignored))
        rank.extend(range(n_dt))
        ignored.extend(gt_ignored)
    thresholds_iou = np.repeat(coco_ap.IOU_THRESHOLDS, 10)
    thresholds_f1 = np.tile(coco_ap.F1_THRESHOLDS, 10)
    for first_dt, first_gt, ious, f1s, _ in groups:
        d, g = np.nonzero((ious >= 0.5) & (f1s >= 0.5))
        dt.extend(first_dt + d)
        gt.extend(first_gt + g)
        iou.extend(ious[d, g])
        f1.extend(f1s[d, g])
    candidates = coco_ap.Candidates(np.array(dt, int), np.array(gt, int), np.array(iou), np.array(f1))
    matched = coco_ap.match(candidates, np.array(rank, int), np.array(ignored, bool), thresholds_iou, thresholds_f1)
    for first_dt, first_gt, ious, f1s, gt_ignored in groups:
        for t, (ti, tf) in enumerate(zip(thresholds_iou, thresholds_f1)):
            expected = literal_match(ious, f1s, gt_ignored, ti, tf)
            actual = matched[first_dt : first_dt + ious.shape[0], t]
            assert list(actual) == [first_gt + m if m >= 0 else -1 for m in expected]


def test_the_f1_running_best_makes_the_result_depend_on_ground_truth_order():
    """METRICS.md: a candidate replaces the best only if both its IoU and F1 are at least as high."""
    def match(ious, f1s):
        candidates = coco_ap.Candidates(np.array([0, 0]), np.array([0, 1]), np.array(ious), np.array(f1s))
        return coco_ap.match(candidates, np.array([0]), np.zeros(2, bool), np.array([0.5]), np.array([0.5]))[0, 0]

    assert match([0.9, 0.7], [0.6, 0.9]) == 0  # the second is worse on IoU: the first stays
    assert match([0.7, 0.9], [0.9, 0.6]) == 0  # the second is worse on F1: the first stays
    assert match([0.7, 0.9], [0.6, 0.9]) == 1  # better on both: replaces
    assert match([0.9, 0.9], [0.9, 0.9]) == 1  # ties replace, as in the references


def test_top_detections_keeps_100_per_group_in_accumulation_order():
    score = np.array([0.5, 0.9, 0.5, 0.1] + [0.3] * 120)
    image = np.array([1, 0, 0, 0] + [2] * 120)
    group = image * 46 + 1
    rows, rank = coco_ap.top_detections(image, group, score)
    # Score descending; the tie on 0.5 goes to image 0 first; of the 120 tied rows of image 2 the
    # first 100 in file order stay.
    assert rows.tolist() == [1, 2, 0, *range(4, 104), 3]
    assert rank.tolist() == [0, 1, 0, *range(100), 2]


@pytest.mark.parametrize("thresholds", [10, 100])
def test_precision_recall_in_threshold_blocks_equals_one_pass(monkeypatch, thresholds):
    """A class's (thresholds x detections) arrays are built a block of thresholds at a time; blocks
    that start and end inside a packed byte give every threshold's values exactly as one pass does."""
    rng = np.random.default_rng(thresholds)
    n, num_classes = 400, 5
    dt_class = rng.integers(0, num_classes, n)
    hit = np.packbits(rng.random((n, thresholds)) < 0.4, axis=1)
    ignored = np.packbits(rng.random((n, thresholds)) < 0.1, axis=1)
    regular = np.array([0, 30, 50, 1, 80])
    args = (dt_class, hit, ignored, thresholds, regular, np.arange(num_classes), num_classes)
    whole = coco_ap.precision_recall(*args)
    assert coco_ap.BLOCK_ENTRIES >= n * thresholds  # the default: one block here
    monkeypatch.setattr(coco_ap, "BLOCK_ENTRIES", 3 * 90)  # 3 thresholds for a class of about 80 rows
    blocked = coco_ap.precision_recall(*args)
    for a, b in zip(whole, blocked):
        np.testing.assert_array_equal(a, b)
    assert (whole[0][:, :, 0] == -1).all() and (whole[0][:, :, 1:] >= 0).all()
