"""`python -m pipeline retrieve`: gallery index on disk, reused while model and cache stay, official results."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_df2
from pipeline.cli import main
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.evaluation.deepfashion2.evaluate import evaluate_retrieval
from pipeline.models.factory import create_model, load_config
from pipeline.training.train import save_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny DF2-like cache and an untrained Match R-CNN file that detects something everywhere."""
    root = tmp_path_factory.mktemp("retrieve")
    tiny_df2(root, pairs=1, size=128)
    config = dataclasses.replace(load_config(ROOT / "configs" / "match_rcnn_lite0.yaml"), init=None,
                                 score_threshold=0.0, detections_per_image=3, min_size=128, max_size=128, letterbox=128)
    torch.manual_seed(0)
    save_model(root / "model.pt", create_model(config), config, "test")
    return root


def retrieve(root, *extra):
    return main(["retrieve", "--weights", str(root / "model.pt"), "--cache", str(root / "train.h5"),
                 "--index", str(root / "index"), "--out", str(root / "retrieval.json"), "--query-threshold", "0",
                 "--gallery-threshold", "0", *extra])


def test_retrieve_writes_official_results_from_an_index_on_disk(project, capsys):
    assert retrieve(project) == 0
    assert "built index" in capsys.readouterr().out
    reader = Df2CacheReader(project / "train.h5")
    sources = dict(zip(reader.index["image_id"].tolist(), reader.index["source"].tolist()))
    index = project / "index"
    meta = json.loads((index / "index.json").read_text())
    assert meta["items"] == 3 * meta["shop_images"]  # every detection of every shop photo (threshold 0)
    embeddings = np.load(index / "embeddings.npy", mmap_mode="r")
    assert isinstance(embeddings, np.memmap) and embeddings.shape == (meta["items"], meta["embedding_size"])
    gallery_ids = np.load(index / "image_ids.npy")
    assert {sources[i] for i in gallery_ids.tolist()} == {1}  # shop photos only

    entries = json.loads((project / "retrieval.json").read_text())
    users = [i for i, s in sources.items() if s == 0]
    assert len(entries) == 3 * len(users) and {e["query_image_id"] for e in entries} == set(users)
    boxes = np.load(index / "boxes.npy")
    for entry in entries:
        assert len(entry["gallery_image_id"]) == min(20, meta["items"])
        for image_id, box in zip(entry["gallery_image_id"], entry["gallery_bbox"]):
            assert any(np.allclose(box, b) for b in boxes[gallery_ids == image_id])
    metrics = evaluate_retrieval(project / "query_gt.json", project / "gallery_gt.json", project / "retrieval.json")
    assert 0 <= metrics["top20"] <= 1 and metrics["queries"] > 0

    mtime = (index / "embeddings.npy").stat().st_mtime_ns
    assert retrieve(project) == 0
    assert "reused index" in capsys.readouterr().out
    assert (index / "embeddings.npy").stat().st_mtime_ns == mtime
    assert retrieve(project, "--gallery-threshold", "0.01") == 0  # another gallery: rebuilt
    assert "built index" in capsys.readouterr().out


def test_retrieve_refuses_other_families(tmp_path, project, capsys):
    config = dataclasses.replace(load_config(ROOT / "configs" / "attribute_mask_rcnn_r18.yaml"), min_size=64,
                                 max_size=64)
    save_model(tmp_path / "model.pt", create_model(config), config, "test")
    code = main(["retrieve", "--weights", str(tmp_path / "model.pt"), "--cache", str(project / "train.h5"),
                 "--index", str(tmp_path / "index"), "--out", str(tmp_path / "r.json")])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("retrieve needs a model that embeds items for retrieval, not attribute_mask_rcnn")
