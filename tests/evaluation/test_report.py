import json

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.data.annotations import TRAIN_COLUMNS, read_annotations
from pipeline.scoring.evaluator import evaluate_frames

from random_cases import ONTOLOGY, random_case


@pytest.fixture
def workspace(tmp_path):
    records, predictions = random_case(3, ONTOLOGY, images=6)
    gt = pd.DataFrame(
        [(r.image_id, i.rle, r.height, r.width, i.class_id, ",".join(map(str, i.attributes)))
         for r in records for i in r.instances],
        columns=list(TRAIN_COLUMNS),
    )
    gt.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "oof").mkdir()
    # Prediction files are sorted by ImageId, as the pipeline writes them.
    predictions = predictions.sort_values("ImageId", kind="stable")
    predictions.to_csv(tmp_path / "oof" / "noisy.csv", index=False)
    perfect = gt.drop(columns=["Height", "Width"]).assign(Score=1.0).sort_values("ImageId", kind="stable")
    perfect.to_csv(tmp_path / "oof" / "perfect.csv", index=False)
    pd.DataFrame({"ImageId": [r.image_id for r in records], "fold": [i % 2 for i in range(6)]}).to_csv(
        tmp_path / "folds.csv", index=False
    )
    (tmp_path / "params.yaml").write_text(
        f"report:\n  predictions_dir: {tmp_path / 'oof'}\n  folds: {tmp_path / 'folds.csv'}\n"
        f"  gt: {tmp_path / 'train.csv'}\n  out: {tmp_path / 'cv.json'}\n  plots: {tmp_path / 'plots'}\n"
    )
    return tmp_path, predictions


def test_report_scores_each_fold_and_writes_plots(workspace, capsys):
    tmp_path, predictions = workspace
    assert main(["--params", str(tmp_path / "params.yaml"), "report"]) == 0
    report = json.loads((tmp_path / "cv.json").read_text())
    assert set(report) == {"noisy", "perfect"}
    assert report["perfect"]["ap_iou"] == pytest.approx(1.0) and report["perfect"]["kaggle"] == pytest.approx(1.0)

    records, _ = read_annotations(tmp_path / "train.csv", ONTOLOGY)
    noisy = report["noisy"]
    assert [f["fold"] for f in noisy["folds"]] == [0, 1]
    for fold in noisy["folds"]:
        fold_records = records[fold["fold"]::2]
        ids = {r.image_id for r in fold_records}
        expected = evaluate_frames(fold_records, predictions[predictions.ImageId.isin(ids)], ONTOLOGY)
        for key in ("ap_iou", "ap_iou_f1", "ap_iou_f1_50", "kaggle"):
            assert fold[key] == pytest.approx(expected[key], abs=1e-12)
    for key in ("ap_iou", "ap_iou_f1", "kaggle"):
        assert noisy[key] == pytest.approx((noisy["folds"][0][key] + noisy["folds"][1][key]) / 2)
    pooled = evaluate_frames(records, predictions, ONTOLOGY)
    assert noisy["pooled"]["ap_iou_f1"] == pytest.approx(pooled["ap_iou_f1"], abs=1e-12)

    curves = pd.read_csv(tmp_path / "plots" / "pr_curves.csv")
    assert len(curves) == 2 * 3 * 101
    bars = pd.read_csv(tmp_path / "plots" / "per_category.csv")
    assert set(bars.model) == {"noisy", "perfect"}
    for name in ("pr_curves.png", "per_category.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    assert "noisy: ap_iou" in capsys.readouterr().out


def test_without_a_folds_file_all_images_are_one_fold(workspace):
    tmp_path, _ = workspace
    assert main(["--params", str(tmp_path / "params.yaml"), "report", "--models", "perfect",
                 "--folds", str(tmp_path / "absent.csv")]) == 0
    report = json.loads((tmp_path / "cv.json").read_text())
    assert list(report) == ["perfect"]
    assert [f["fold"] for f in report["perfect"]["folds"]] == [0] and report["perfect"]["folds"][0]["images"] == 6
