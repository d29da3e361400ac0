"""bench weights: each fold's ensemble weights chosen on the other folds, scored on the fold itself."""
import json

import pandas as pd
import pytest
import yaml

from pipeline.cli import main

from ensembling_cases import noisy_copy, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    params = tiny_project(root, train_images=8)
    config = yaml.safe_load(params.read_text())
    config["ensemble"] = {"weights": {"m2": 0.5}, "workers": 1}
    params.write_text(yaml.safe_dump(config))
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    (root / "predictions" / "oof").mkdir(parents=True)
    for model, seed, drop in (("m1", 1, 0.2), ("m2", 2, 0.6)):
        noisy_copy(gt, seed, drop=drop).to_csv(root / "predictions" / "oof" / f"{model}.csv", index=False)
    return root, params


def test_each_fold_is_scored_with_weights_chosen_on_the_other(project, monkeypatch, capsys):
    root, params = project
    monkeypatch.chdir(root)
    assert main(["--params", str(params), "bench", "weights", "--grid", "0.25", "1", "--metric", "ap_iou"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["params_weights"] == {"m1": 1.0, "m2": 0.5}
    grid = result["grid_scores"]
    assert set(grid) == {"1_0.25", "1_1", "1_0.5"}  # the grid, then params' own weights
    assert [r["fold"] for r in result["folds"]] == [0, 1]
    for row in result["folds"]:
        other = str(1 - row["fold"])
        tried = {name: scores[other] for name, scores in grid.items() if name != "1_0.5"}
        chosen = f"1_{row['chosen_weights']['m2']:g}"
        assert tried[chosen] == max(tried.values())
        assert row["held_out"]["chosen"]["ap_iou"] == grid[chosen][str(row["fold"])]
        assert row["held_out"]["params"]["ap_iou"] == grid["1_0.5"][str(row["fold"])]

    # The families' held-out scores are the report's per-fold scores of their files.
    assert main(["--params", str(params), "report", "--out", "cv.json", "--plots", "plots", "--no-progress"]) == 0
    report = json.loads((root / "cv.json").read_text())
    for row in result["folds"]:
        for model in ("m1", "m2"):
            fold = next(f for f in report[model]["folds"] if f["fold"] == row["fold"])
            assert row["held_out"][model] == {k: fold[k] for k in row["held_out"][model]}
    assert result["best_family"] == "m1"
    means = result["mean"]
    assert result["margin_over_best_family"]["ap_iou"] == pytest.approx(means["chosen"]["ap_iou"] - means["m1"]["ap_iou"])


def test_a_run_without_out_of_fold_files_is_one_line(tmp_path, monkeypatch, capsys):
    params = tiny_project(tmp_path, train_images=4)
    monkeypatch.chdir(tmp_path)
    assert main(["--params", str(params), "bench", "weights"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "out-of-fold files" in error[0] and "predictions/oof/m1.csv" in error[0]
