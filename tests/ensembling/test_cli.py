"""`ensemble` end to end: params-derived inputs of both splits, explicit inputs, noisy ground-truth
copies fused, bad input."""
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.data.annotations import read_annotations
from pipeline.ensembling.inputs import open_prediction_file
from pipeline.errors import InputError
from pipeline.scoring.evaluator import evaluate_frames
from pipeline.data.prediction_rows import COLUMNS

from ensembling_cases import HEADER, LABELS, noisy_copy, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    params = tiny_project(root)
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    return root, params, gt


def ensemble(params, *extra) -> int:
    return main(["--params", str(params), "ensemble", *extra])


@pytest.mark.parametrize("method", ["fusion", "nms", "matrix_nms"])
def test_two_noisy_copies_of_ground_truth_score_at_least_as_well_as_each(project, method):
    root, params, gt = project
    records, _ = read_annotations(root / "data" / "train.csv", LABELS)
    scores = []
    for seed in (1, 2):
        copy = noisy_copy(gt, seed)
        copy.to_csv(root / f"copy{seed}.csv", index=False)
        scores.append(evaluate_frames(records, copy, LABELS))
    out = root / f"{method}.csv"
    assert ensemble(params, "--inputs", str(root / "copy1.csv"), str(root / "copy2.csv"),
                    "--method", method, "--out", str(out)) == 0
    fused = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(fused.columns) == list(COLUMNS)
    result = evaluate_frames(records, fused, LABELS)
    for key in ("ap_iou", "ap_iou_f1"):
        assert result[key] >= max(s[key] for s in scores) - 1e-9, (key, result[key], [s[key] for s in scores])


def test_params_inputs_for_oof_and_test_splits(project, monkeypatch, capsys):
    root, params, gt = project
    monkeypatch.chdir(root)
    for model, seed in (("m1", 3), ("m2", 4)):
        (root / "predictions" / "oof").mkdir(parents=True, exist_ok=True)
        noisy_copy(gt, seed).to_csv(root / "predictions" / "oof" / f"{model}.csv", index=False)
        for fold in (0, 1):
            folder = root / "predictions" / "test" / model
            folder.mkdir(parents=True, exist_ok=True)
            test_ids = sorted(p.stem for p in (root / "data" / "test").glob("*.jpg"))
            rows = [(i, "1 20 101 20", "3", "", 0.5 + 0.1 * fold, "") for i in test_ids]
            pd.DataFrame(rows, columns=HEADER).to_csv(folder / f"fold{fold}.csv", index=False)
    assert ensemble(params, "--split", "oof") == 0
    assert "of 2 files" in capsys.readouterr().out
    assert len(pd.read_csv(root / "predictions" / "oof" / "ensemble.csv")) > 0
    assert ensemble(params, "--split", "test") == 0
    assert "of 4 files" in capsys.readouterr().out
    fused = pd.read_csv(root / "predictions" / "test" / "ensemble.csv", dtype=str, keep_default_na=False)
    # The four fold files hold the same mask per image: one detection, scored (0.5 + 0.6) * 2 / 4.
    assert len(fused) == len(test_ids) and set(fused.Score.astype(float).round(6)) == {0.55}


def test_bad_inputs_are_one_line_errors(project, capsys):
    root, params, gt = project
    good = root / "copy1.csv"
    noisy_copy(gt, 1).to_csv(good, index=False)
    assert ensemble(params, "--inputs", str(root / "missing.csv"), "--out", str(root / "x.csv")) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    lines = good.read_text().splitlines()
    fields = lines[2].split(",")
    fields[1] = "5 3 1 2"  # runs out of order
    (root / "bad.csv").write_text("\n".join(lines[:2] + [",".join(fields)] + lines[3:]) + "\n")
    assert ensemble(params, "--inputs", str(good), str(root / "bad.csv"), "--out", str(root / "x.csv")) == 2
    assert f"{root / 'bad.csv'}:3: RLE runs out of order" in capsys.readouterr().err
    frame = pd.read_csv(good, dtype=str, keep_default_na=False)
    frame.loc[3, "AttributeScores"] = "115=0.5"
    frame.to_csv(root / "bad_scores.csv", index=False)
    assert ensemble(params, "--inputs", str(root / "bad_scores.csv"), "--out", str(root / "x.csv")) == 2
    assert f"{root / 'bad_scores.csv'}:5: attribute score" in capsys.readouterr().err
    assert ensemble(params, "--inputs", str(good), "--weights", "1", "2", "--out", str(root / "x.csv")) == 2
    assert not (root / "x.csv").exists()
    with pytest.raises(InputError, match="Score"):
        pd.DataFrame([("a", "1 2", "1", "")], columns=HEADER[:4]).to_csv(root / "no_score.csv", index=False)
        open_prediction_file(root / "no_score.csv", 1.0)
