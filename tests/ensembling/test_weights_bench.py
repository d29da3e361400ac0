"""bench weights: each fold's ensemble weights chosen on the other folds, scored on the fold itself."""
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from pipeline.evaluation.report import SCORES

from ensembling_cases import noisy_copy, tiny_project


def make_project(root, seeds=(1, 2)):
    """Two families' OOF files: m1 misses a fifth of the objects, m2 more than half."""
    params = tiny_project(root, train_images=8)
    config = yaml.safe_load(params.read_text())
    config["ensemble"] = {"weights": {"m2": 0.5}, "workers": 1}
    params.write_text(yaml.safe_dump(config))
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    (root / "predictions" / "oof").mkdir(parents=True)
    for model, seed, drop in (("m1", seeds[0], 0.2), ("m2", seeds[1], 0.6)):
        noisy_copy(gt, seed, drop=drop).to_csv(root / "predictions" / "oof" / f"{model}.csv", index=False)
    return root, params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("weights"))


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
        tried = {name: scores[other]["ap_iou"] for name, scores in grid.items() if name != "1_0.5"}
        chosen = f"1_{row['chosen_weights']['m2']:g}"
        assert tried[chosen] == max(tried.values())
        assert row["held_out"]["chosen"] == grid[chosen][str(row["fold"])]
        assert row["held_out"]["params"] == grid["1_0.5"][str(row["fold"])]

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


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, project):
    """`bench weights` JSONs of three "training seeds": the module's project and two with other noise."""
    projects = [project, *(make_project(tmp_path_factory.mktemp(f"seed{k}"), (k, k + 10)) for k in (3, 4))]
    paths = []
    for root, params in projects:
        printed = io.StringIO()
        with contextlib.chdir(root), contextlib.redirect_stdout(printed):
            assert main(["--params", str(params), "bench", "weights", "--grid", "0.25", "1", "--metric", "ap_iou"]) == 0
        (root / "weights.json").write_text(printed.getvalue())
        paths.append(str(root / "weights.json"))
    return paths


def test_each_run_is_scored_with_weights_chosen_on_the_other_runs(three_runs, tmp_path, monkeypatch, capsys):
    runs = [json.loads(Path(path).read_text()) for path in three_runs]
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "weights", "--runs", *three_runs, "--metric", "ap_iou_f1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == three_runs and result["metric"] == "ap_iou_f1"

    def cells(vector, chosen_from):
        return [run["grid_scores"][vector][fold] for run in chosen_from for fold in ("0", "1")]

    for vector, row in result["vectors"].items():
        assert row["mean"]["ap_iou"] == pytest.approx(np.mean([c["ap_iou"] for c in cells(vector, runs)]))
    for index, row in enumerate(result["held_out_runs"]):
        others = runs[:index] + runs[index + 1:]
        means = {v: np.mean([c["ap_iou_f1"] for c in cells(v, others)]) for v in runs[0]["grid_scores"]}
        chosen = f"1_{row['chosen_weights']['m2']:g}"
        assert means[chosen] == max(means.values())
        own = runs[index]
        best = {r["fold"]: r["held_out"][own["best_family"]] for r in own["folds"]}
        for key in ("ap_iou", "ap_iou_f1", "kaggle"):
            assert row["scores"][key] == pytest.approx(np.mean([c[key] for c in cells(chosen, [own])]))
            assert row["margin_over_best_family"][key] == pytest.approx(
                row["scores"][key] - np.mean([best[f][key] for f in (0, 1)]))
    assert len(result["held_out_margin"]["ap_iou"]) == 3


def test_runs_of_another_grid_are_one_line(three_runs, tmp_path, capsys):
    other = json.loads(Path(three_runs[1]).read_text())
    other["grid_scores"].pop("1_1")
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps(other))
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": ["m1", "m2"]}')
    for runs, named in (([three_runs[0], str(bad)], "other.json"), ([three_runs[0], str(broken)], "broken.json"),
                        ([three_runs[0], str(tmp_path / "missing.json")], "missing.json")):
        assert main(["bench", "weights", "--runs", *runs]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and named in error[0], error


def hand_made_run(vectors: dict, family: tuple) -> dict:
    """A bench weights JSON whose every score of a vector on fold k is vectors[vector][k]."""
    def scores(value):
        return dict.fromkeys(SCORES, value)
    return {"models": ["m1", "m2"], "best_family": "m1",
            "grid_scores": {v: {str(k): scores(x) for k, x in enumerate(values)} for v, values in vectors.items()},
            "folds": [{"fold": k, "held_out": {"m1": scores(x)}} for k, x in enumerate(family)]}


def test_a_run_is_never_scored_with_weights_chosen_on_itself(tmp_path, capsys):
    # Run a alone prefers m2 at weight 1 strongly; b and c prefer 0.1, so together they pick 0.1.
    runs = {"a.json": hand_made_run({"1_0.1": (0.20, 0.20), "1_1": (0.40, 0.40)}, (0.25, 0.25)),
            "b.json": hand_made_run({"1_0.1": (0.31, 0.31), "1_1": (0.30, 0.30)}, (0.30, 0.30)),
            "c.json": hand_made_run({"1_0.1": (0.33, 0.31), "1_1": (0.30, 0.30)}, (0.32, 0.32))}
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run))
    paths = [str(tmp_path / name) for name in runs]
    assert main(["bench", "weights", "--runs", *paths, "--metric", "ap_iou"]) == 0
    result = json.loads(capsys.readouterr().out)
    chosen = [row["chosen_weights"]["m2"] for row in result["held_out_runs"]]
    assert chosen == [0.1, 1.0, 1.0]  # a from b, c; b from a, c (mean 0.35 against 0.265); c likewise
    margins = result["held_out_margin"]["ap_iou"]
    assert margins == pytest.approx([0.20 - 0.25, 0.30 - 0.30, 0.30 - 0.32])
    assert result["best_over_runs"] == {"m1": 1.0, "m2": 1.0}  # 0.3333 against 0.2767 over all six folds
    assert result["vectors"]["1_0.1"]["worst_margin"]["ap_iou"] == pytest.approx(-0.05)
    assert result["vectors"]["1_1"]["mean"]["kaggle"] == pytest.approx(np.mean([0.4, 0.4, 0.3, 0.3, 0.3, 0.3]))
