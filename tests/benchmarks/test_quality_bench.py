import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, write_tiny_project
from pipeline.benchmarks import quality
from pipeline.cli import main

TINY_FASHIONFORMER = {"init": None, "min_size": 128, "max_size": 128, "fpn_channels": 32, "hidden_dim": 32,
                      "num_queries": 10, "num_stages": 1, "ffn_dim": 64, "num_heads": 4,
                      "score_threshold": 0.0, "detections_per_image": 5}  # an untrained model predicts too


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quality")
    return write_tiny_project(root, train_images=8, model="fashionformer", image_size=128,
                              config=ROOT / "configs" / "fashionformer_lite0.yaml", model_config=TINY_FASHIONFORMER,
                              train={"batch_size": 2, "augment": {"image_size": 128}})


def test_seeds_train_differently_and_the_summary_is_their_mean_and_deviation(tiny_project, tmp_path, capsys,
                                                                             monkeypatch):
    out = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)  # a relative --out-dir, as a user types it
    args = ["--params", str(tiny_project), "bench", "quality", "--models", "fashionformer", "--seeds", "2",
            "--out-dir", "runs", "--set", "train.epochs=1", "--variant", "queries7", "config.num_queries=7"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"folds", "seeds", "tta", "global_batch", "out_dir", "models"}
    assert result["folds"] == [0] and result["tta"] is False and list(result["models"]) == ["fashionformer"]
    variant = result["models"]["fashionformer"]["queries7"]
    assert set(variant) == {"overrides", "seeds", "mean", "std"}
    assert variant["overrides"] == {"train.epochs": 1, "config.num_queries": 7}
    assert set(variant["mean"]) == set(variant["std"]) == set(quality.SUMMARISED)
    rows = variant["seeds"]
    assert all(set(row) == {"seed", *quality.SCORES, "images", "steps", "train_seconds", "train_cpu_seconds",
                            "predict_seconds", "final_loss"} for row in rows)
    assert [row["seed"] for row in rows] == result["seeds"] == [0, 1]
    for key in quality.SUMMARISED:
        assert variant["mean"][key] == pytest.approx(statistics.fmean(row[key] for row in rows))
        assert variant["std"][key] == pytest.approx(statistics.stdev(row[key] for row in rows))
    folds = pd.read_csv(tiny_project.parent / "cache" / "folds.csv")
    scored, trained = (folds.fold == 0).sum(), (folds.fold != 0).sum()
    assert all(row["images"] == scored and row["steps"] == -(-trained // 2) for row in rows)  # 1 epoch of batch 2
    assert all(0 <= row[key] <= 1 for row in rows for key in quality.SCORES)

    # The seed reached the initialisation and the data: other losses and other predictions.
    assert rows[0]["final_loss"] != rows[1]["final_loss"]
    predictions = [pd.read_csv(out / "fashionformer" / "queries7" / f"seed{s}" / "predictions" / "oof" / "fashionformer.csv")
                   for s in (0, 1)]
    assert not predictions[0].equals(predictions[1])
    for seed in (0, 1):
        folder = out / "fashionformer" / "queries7" / f"seed{seed}"
        settings = yaml.safe_load((folder / "params.yaml").read_text())
        assert settings["train"]["seed"] == seed and settings["train"]["processes"] == 1
        assert settings["predict"]["tta"]["hflip"] is False and settings["evaluate"]["workers"] == 1
        model = torch_load(folder / "models" / "fashionformer" / "fold0" / "model.pt")
        assert model["config"]["num_queries"] == 7


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def test_overrides_reach_the_model_config_the_model_training_knobs_or_params(tmp_path):
    settings = {"train": {"lr": 0.002, "processes": 2, "batch_size": 1},
                "models": {"fashionformer": {"config": "configs/fashionformer_lite0.yaml", "train": {"epochs": 14}}},
                "predict": {"tta": {"hflip": True}}}
    overrides = {"train.lr": 0.001, "train.augment.hflip": 0.0, "config.num_stages": 6, "predict.batch_size": 4}
    out = quality.run_settings(settings, "fashionformer", overrides, seed=3, tta=False, config_path=tmp_path / "c.yaml")
    entry = out["models"]["fashionformer"]
    assert entry["train"] == {"epochs": 14, "lr": 0.001, "augment": {"hflip": 0.0}}
    assert entry["config"] == str(tmp_path / "c.yaml") and "config" not in out and "num_stages" not in str(out)
    assert out["train"]["seed"] == 3 and out["predict"] == {"tta": {"hflip": False, "scales": [1.0]}, "batch_size": 4}
    assert settings["models"]["fashionformer"]["train"] == {"epochs": 14}  # the input is left as it was
    config = quality.model_config(ROOT / "configs" / "fashionformer_lite0.yaml", overrides)
    assert config["num_stages"] == 6 and Path(config["init"]).is_absolute()
    layout = quality.protocol({**settings, "data": {"root": "d"}, "cache": {"dir": "c"},
                               "folds": {"out": "f.csv", "report": "f.json"}})
    assert layout["train"]["processes"] == 1 and layout["train"]["batch_size"] == 2  # the same global batch
    assert all(Path(p).is_absolute() for p in (layout["data"]["root"], layout["cache"]["dir"], layout["folds"]["out"]))


@pytest.mark.parametrize("words, message", [
    (["--set", "train.lr"], "is not KEY=VALUE"),
    (["--variant", "a", "--variant", "a", "train.lr=1"], "variant names must be unique"),
    (["--models", "yolo"], "not in params `models`"),
    (["--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_options_are_input_errors(tiny_project, capsys, words, message):
    assert main(["--params", str(tiny_project), "bench", "quality", *words]) == 2
    assert message in capsys.readouterr().err


def test_missing_data_is_an_input_error(tmp_path, capsys):
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings["data"]["root"] = str(tmp_path / "nowhere")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    assert main(["--params", str(tmp_path / "params.yaml"), "bench", "quality"]) == 2
    assert "train.csv not found" in capsys.readouterr().err
