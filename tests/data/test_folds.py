import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.data import rle
from pipeline.data.fold_assignment import assign_folds, balance_report


def random_presence(images=200, classes=46, seed=0):
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.01, 0.25, classes)
    return (rng.random((images, classes)) < frequency).astype(np.uint8)


def test_every_image_in_one_fold_and_classes_balanced():
    presence = random_presence()
    folds = assign_folds(presence, k=5, seed=0)
    assert set(folds.tolist()) == set(range(5))
    assert np.bincount(folds).min() >= 35
    report = balance_report(presence, folds, [str(c) for c in range(46)])
    assert report["images_per_fold"] == np.bincount(folds).tolist()

    def spread(assignment):  # mean over classes of (most - fewest images with the class in a fold)
        return np.mean([np.ptp(np.bincount(assignment[presence[:, c] == 1], minlength=5)) for c in range(46)])

    rng = np.random.default_rng(0)
    random_spreads = [spread(rng.permutation(folds)) for _ in range(20)]
    assert spread(folds) < 0.75 * np.mean(random_spreads)


def test_deterministic_per_seed():
    presence = random_presence()
    assert np.array_equal(assign_folds(presence, 5, 1), assign_folds(presence, 5, 1))
    assert not np.array_equal(assign_folds(presence, 5, 1), assign_folds(presence, 5, 2))


def test_too_few_images():
    with pytest.raises(ValueError, match="cannot make 5 folds of 3 images"):
        assign_folds(random_presence(images=3), 5, 0)


def test_cli_writes_csv_and_report(tmp_path):
    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 1
    rows = [f"img{i},{rle.encode(mask)},4,4,{i % 3},\n" for i in range(12)]
    (tmp_path / "train.csv").write_text("ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n" + "".join(rows))
    out, report = tmp_path / "folds.csv", tmp_path / "folds.json"
    assert main(["folds", "--root", str(tmp_path), "--k", "3", "--out", str(out), "--report", str(report)]) == 0
    frame = pd.read_csv(out, dtype={"ImageId": str})
    assert list(frame.columns) == ["ImageId", "fold"] and len(frame) == 12
    assert sorted(frame.fold.value_counts().tolist()) == [4, 4, 4]
    assert report.exists()
