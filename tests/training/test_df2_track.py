"""The DeepFashion2 track end to end on a tiny set: params.yaml's `df2` section, `train --model
match_rcnn` on the train split (run key, no-op), `predict-df2`, `retrieve`, `report-df2`."""
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import drawn
from pipeline.cli import main
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.errors import InputError
from pipeline.settings.load import load_settings
from pipeline.settings.sections import Df2Settings
from pipeline.evaluation.deepfashion2 import report as report_df2
from pipeline.evaluation.deepfashion2 import retrieval
from pipeline.typed import to_mapping
from pipeline.models.factory import load_config
from pipeline.training.config import AugmentConfig
from pipeline.training.deepfashion2 import Df2TrainDataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    """A folder with params.yaml, a tiny untrained-init config, the synthetic data and both caches."""
    root = tmp_path_factory.mktemp("df2track")
    config = dataclasses.replace(load_config(ROOT / "configs" / "match_rcnn_lite0_192.yaml"), init=None,
                                 score_threshold=0.0, detections_per_image=3, min_size=96, max_size=96, letterbox=96)
    (root / "model.yaml").write_text(yaml.safe_dump(to_mapping(config)))
    (root / "params.yaml").write_text(yaml.safe_dump({
        "train": {"epochs": 1, "batch_size": 1, "processes": 1, "threads": 1, "workers": 0, "amp": False,
                  "warmup_steps": 1, "augment": {"image_size": None, "hflip": 0.0, "color_jitter": 0.0}},
        "df2": {"root": "data", "cache_dir": "cache", "cache_max_size": 96, "model": "match_rcnn",
                "config": str(root / "model.yaml"),
                "query_threshold": 0.0, "gallery_threshold": 0.0, "report": "report.json",
                "synth": {"train_pairs": 1, "validation_pairs": 2, "min_size": 96, "max_size": 112}},
    }))
    params = ["--params", str(root / "params.yaml")]
    assert main(["synth-df2", *params, "--out", str(root / "data")]) == 0
    for split in ("train", "validation"):
        assert main(["cache-df2", "--root", str(root / "data" / split), "--out", str(root / "cache" / f"{split}.h5"),
                     "--max-size", "96"]) == 0
    return root, params


def test_the_params_file_s_df2_section_loads_and_bad_keys_name_themselves(tmp_path):
    section = load_settings(ROOT / "params.yaml").df2
    assert load_config(ROOT / section.config).family == "match_rcnn"
    assert Df2Settings().cache("train") == Path("cache/df2/train.h5")
    path = tmp_path / "params.yaml"
    for bad, message in (("cache_max_siz: 1", "params.yaml:2: unknown config key 'df2.cache_max_siz'"),
                         ("query_threshold: high", "params.yaml:2: df2.query_threshold: expected float"),
                         ("synth: {train_pairs: 0}", "params.yaml:2: df2.synth: train_pairs must be >= 1")):
        path.write_text(f"df2:\n  {bad}\n")
        with pytest.raises(InputError, match=message):
            load_settings(path)


def test_chance_is_the_expected_hit_rate_of_a_random_gallery_order():
    query = retrieval.Boxes(image=np.array([1, 1, 2]), box=np.array([[0, 0, 10, 10]] * 3, float),
                            category=np.array([1, 1, 1]), style=np.array([1, 0, 2]), pair_id=np.array([7, 7, 8]))
    gallery = retrieval.Boxes(image=np.array([3, 4, 5, 6]), box=np.array([[0, 0, 10, 10]] * 4, float),
                              style=np.array([1, 2, 2, 1]), pair_id=np.array([7, 8, 8, 9]))
    # query item 1 has one true match of 4 gallery items, item 3 two; the style-0 item does not count
    matches = report_df2.true_gallery_matches(query, gallery)
    assert matches == [1, 2]
    assert report_df2.chance_top_k(matches, 4, 1) == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert report_df2.chance_top_k(matches, 4, 2) == pytest.approx((1 / 2 + (1 - 1 / 6)) / 2)
    assert report_df2.chance_top_k(matches, 4, 5) == 1.0
    # The ranked gallery: detections on images 3 (two, one off target), 5 and 6; only image 1 has a query result.
    results = retrieval.RetrievalResults(
        query=retrieval.Boxes(image=np.array([1]), box=np.array([[0, 0, 10, 10]], float), category=np.array([1]),
                              score=np.array([0.9])),
        gallery_image=np.full((1, 20), -1), gallery_box=np.zeros((1, 20, 4)))
    image_ids = np.array([3, 3, 5, 6])
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [1, 1, 10, 10], [0, 0, 10, 10]], float)
    assert report_df2.ranked_gallery_matches(query, gallery, results, image_ids, boxes) == [1, 0]


def test_train_predict_retrieve_report(track, monkeypatch, capsys):
    root, params = track
    monkeypatch.chdir(root)
    assert main(["train", *params, "--model", "match_rcnn", "--fold", "0"]) == 2
    assert "no folds" in capsys.readouterr().err
    assert main(["train", *params, "--model", "match_rcnn", "--no-progress"]) == 0
    summary = json.loads((root / "models/match_rcnn/deepfashion2/train.json").read_text())
    train_images = len(list((root / "data/train/image").iterdir()))
    # one epoch is a pass over the images: items of an image and its partner photo, one item per step
    paired = Df2TrainDataset(Df2CacheReader(root / "cache/train.h5"), range(train_images), AugmentConfig(hflip=0.0), 0)
    assert summary["images"] == train_images and paired.images_per_item > 1
    assert summary["steps"] == math.ceil(train_images / paired.images_per_item)
    capsys.readouterr()
    assert main(["train", *params, "--model", "match_rcnn", "--no-progress"]) == 0
    assert "already trained" in capsys.readouterr().out

    assert "predict-df2:" in drawn(monkeypatch, ["predict-df2", *params])  # a progress bar on a terminal
    assert drawn(monkeypatch, ["predict-df2", *params, "--no-progress"]) == ""
    for task in ("bbox", "segm", "keypoints"):
        entries = json.loads((root / "predictions/df2" / f"{task}.json").read_text())
        validation_images = len(list((root / "data/validation/image").iterdir()))
        assert len(entries) == 3 * validation_images  # 3 detections per image at threshold 0
    index = json.loads((root / "predictions/df2/gallery_index/index.json").read_text())
    assert index["items"] == 3 * index["shop_images"] > 0
    capsys.readouterr()
    retrieve = ["retrieve", "--weights", "models/match_rcnn/deepfashion2/model.pt", "--cache", "cache/validation.h5",
                "--index", "predictions/df2/gallery_index", "--out", "predictions/df2/retrieval.json",
                "--query-threshold", "0", "--gallery-threshold", "0"]
    assert "retrieve: queries:" in drawn(monkeypatch, retrieve)
    cache = ["cache-df2", "--root", "data/validation", "--out", "cache/again.h5", "--max-size", "96"]
    assert "cache-df2 validation:" in drawn(monkeypatch, cache)
    assert "reused index" in capsys.readouterr().out  # predict-df2's, same model, cache and threshold

    assert main(["report-df2", *params]) == 0
    report = json.loads((root / "report.json").read_text())
    for name in ("box", "mask", "landmark"):
        assert all(0 <= report[f"{name}_{key}"] <= 1 for key in ("AP", "AP50", "AP75"))
    for k in retrieval.TOP_K:
        assert 0 <= report[f"retrieval_top{k}"] <= 1 and 0 <= report[f"retrieval_top{k}_chance"] <= 1
        assert 0 < report[f"retrieval_top{k}_chance_true_gallery"] <= 1
    assert report["retrieval_queries"] > 0 and report["true_gallery_items"] > 0
    assert report["ranked_gallery_items"] == index["items"]
