"""infer with a Match R-CNN: items listed and written, landmarks drawn as dots, shop matches from a gallery index."""
import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import tiny_df2
from pipeline.cli import main
from pipeline.data.deepfashion2.annotations import CATEGORY_BY_ID
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.inference import overlay
from pipeline.models.factory import create_model, load_config
from pipeline.training.train import save_model

ROOT = Path(__file__).resolve().parents[2]
SIZE = 128  # the cache's longest side, and the model's letterbox


def save_match_rcnn(path, seed=0, **overrides):
    """An untrained Match R-CNN (the DAG's config, no init file) that detects something everywhere; its
    similarity net, as every one, scores an item highest against itself."""
    config = dataclasses.replace(load_config(ROOT / "configs" / "match_rcnn_lite0_192.yaml"), init=None,
                                 score_threshold=0.0, detections_per_image=3, min_size=SIZE, max_size=SIZE,
                                 letterbox=SIZE, **overrides)
    torch.manual_seed(seed)
    model = create_model(config)
    save_model(path, model, config, "test")
    return model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny DF2-like cache, the model file, its gallery index (retrieve's) and the cache's shop photos as PNGs."""
    root = tmp_path_factory.mktemp("infer_df2")
    tiny_df2(root, pairs=1, size=SIZE)
    model = save_match_rcnn(root / "model.pt")
    assert main(["retrieve", "--weights", str(root / "model.pt"), "--cache", str(root / "train.h5"), "--index",
                 str(root / "index"), "--out", str(root / "retrieval.json"), "--query-threshold", "0",
                 "--gallery-threshold", "0"]) == 0
    reader = Df2CacheReader(root / "train.h5")
    shops = {}
    for i in range(len(reader)):
        if reader.index["source"][i] == 1:
            path = root / "photos" / f"shop{reader.index['image_id'][i]}.png"
            path.parent.mkdir(exist_ok=True)
            assert cv2.imwrite(str(path), cv2.cvtColor(reader.image(i), cv2.COLOR_RGB2BGR))
            shops[path] = int(reader.index["image_id"][i])
    return root, shops, model.roi_heads.match_head.similarity.bias.item()


def infer(root, photos, out, *extra):
    return main(["infer", *map(str, photos), "--weights", str(root / "model.pt"), "--out", str(out),
                 "--score-threshold", "0", "--max-size", str(SIZE), *extra])


def test_a_shop_photo_finds_its_own_items_first_in_the_gallery(project, tmp_path, capsys):
    """A shop photo at the cache's pixels gives the model the input the index was built from: each of its
    items is its own best match, item for item, at the similarity of identical embeddings."""
    root, shops, bias = project
    assert infer(root, shops, tmp_path, "--gallery-index", str(root / "index"), "--top", "2") == 0
    printed = capsys.readouterr().out
    gallery = json.loads((root / "index" / "index.json").read_text())["items"]
    for photo, image_id in shops.items():
        items = json.loads((tmp_path / f"{photo.stem}.json").read_text())
        assert [item["item"] for item in items] == list(range(1, len(items) + 1)) and items
        height, width = cv2.imread(str(photo)).shape[:2]
        assert f"{photo} ({width}x{height}): {len(items)} items -> {tmp_path / photo.stem}.png" in printed
        for item in items:
            matches = item["matches"]
            assert len(matches) == min(2, gallery)
            assert (matches[0]["image_id"], matches[0]["item"]) == (image_id, item["item"])
            # Within float noise of the pooled RoI features the embeddings come from.
            assert matches[0]["similarity"] == pytest.approx(torch.sigmoid(torch.tensor(bias)).item(), abs=1e-3)
            assert matches[0]["similarity"] >= matches[1]["similarity"]
            line = (f"  {item['item']:2d}. {item['category']} {item['score']:.2f} -> "
                    + ", ".join(f"image {m['image_id']} item {m['item']} {m['similarity']:.2f}" for m in matches))
            assert line in printed.splitlines()


def test_landmarks_at_the_threshold_or_above_are_drawn_as_dots(project, tmp_path, capsys):
    root, shops, _ = project
    photo = next(iter(shops))
    assert infer(root, [photo], tmp_path / "none", "--landmark-threshold", "1e9") == 0
    items = json.loads((tmp_path / "none" / f"{photo.stem}.json").read_text())
    assert all("matches" not in item for item in items)  # no index given
    assert all("->" not in line for line in capsys.readouterr().out.splitlines()[1:])
    landmarks = np.concatenate([np.array(item["landmarks"]) for item in items])
    assert len(landmarks) == sum(CATEGORY_BY_ID[item["category_id"]].landmarks for item in items)  # the category's
    threshold = float(np.median(landmarks[:, 2]))
    assert infer(root, [photo], tmp_path / "some", "--landmark-threshold", str(threshold)) == 0
    without = cv2.imread(str(tmp_path / "none" / f"{photo.stem}.png"))
    drawn = cv2.imread(str(tmp_path / "some" / f"{photo.stem}.png"))
    changed = np.argwhere((without != drawn).any(axis=2))[:, ::-1]  # x, y
    assert len(changed)
    kept = landmarks[landmarks[:, 2] >= threshold, :2]
    distance = np.linalg.norm(changed[:, None] - kept[None], axis=2).min(axis=1)
    assert distance.max() <= 5  # dots of radius 2, ringed, antialiased, on a 128 px photo

    capsys.readouterr()
    assert infer(root, [photo], tmp_path / "empty", "--gallery-index", str(root / "index"), "--score-threshold",
                 "1") == 0  # no item scores 1
    assert json.loads((tmp_path / "empty" / f"{photo.stem}.json").read_text()) == []
    assert ": 0 items -> " in capsys.readouterr().out


def test_draw_marks_landmarks_in_the_category_colour():
    image = np.full((40, 60, 3), 255, np.uint8)
    instance = overlay.Instance(np.zeros((40, 60), np.uint8), 3, "", np.array([[10.0, 12.0], [45.2, 30.0]]))
    drawn = overlay.draw(image, [instance])
    colour = overlay.category_colour(3)
    assert tuple(drawn[12, 10]) == colour and tuple(drawn[30, 45]) == colour
    assert (drawn[:, 25:35] == 255).all()  # nothing between the dots


def test_bad_gallery_indexes_and_model_mixes_exit_2_with_one_line(project, tmp_path, capsys):
    root, shops, _ = project
    photo = next(iter(shops))
    save_match_rcnn(tmp_path / "other.pt", seed=1)
    save_match_rcnn(tmp_path / "small.pt", fpn_channels=32)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(root / "index", corrupt)
    (corrupt / "index.json").write_text("{")
    partial = tmp_path / "partial"
    shutil.copytree(root / "index", partial)
    (partial / "embeddings.npy").unlink()
    fashionpedia = tmp_path / "fashionpedia.pt"
    config = dataclasses.replace(load_config(ROOT / "configs" / "attribute_mask_rcnn_lite0.yaml"), init=None)
    save_model(fashionpedia, create_model(config), config, "test")
    model = str(root / "model.pt")
    cases = [
        ([model], tmp_path / "missing", "index.json: no gallery index here"),
        ([model], corrupt, "index.json: not valid JSON"),
        ([model], partial, "partial: the arrays"),
        ([str(tmp_path / "other.pt")], root / "index", "index.json: built by another model file"),
        ([str(tmp_path / "small.pt")], root / "index", "index.json: embeddings of size 64, the model's are 32"),
        ([str(fashionpedia)], root / "index", "--gallery-index needs a model that embeds items for retrieval, not attribute_mask_rcnn"),
        ([str(fashionpedia), model], None, "model.pt: a DeepFashion2 model predicts alone"),
    ]
    for weights, index, message in cases:
        extra = ["--gallery-index", str(index)] if index else []
        assert main(["infer", str(photo), "--weights", *weights, "--out", str(tmp_path / "out"), *extra]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error


def test_a_deepfashion2_model_sees_photos_at_the_deepfashion2_cache_size(tmp_path, monkeypatch):
    """Without infer.max_size a photo is shrunk as its model's cache was: each dataset's own side."""

    from pipeline.inference import infer
    from pipeline.inference.config import InferConfig
    from pipeline.ensembling.config import EnsembleConfig
    from pipeline.models.factory import config_class

    class Seen(Exception):
        pass

    def photo(path, max_size):
        raise Seen(max_size)

    monkeypatch.setattr(infer, "Photo", photo)
    sizes = {"fashionpedia": 512, "deepfashion2": 96}
    for name, expected, cfg in (("match_rcnn", 96, InferConfig()), ("attribute_mask_rcnn", 512, InferConfig()),
                                ("match_rcnn", 64, InferConfig(max_size=64))):
        monkeypatch.setattr(infer, "load_model", lambda path, name=name: (None, config_class(name)()))
        with pytest.raises(Seen) as seen:
            list(infer.infer_photos(["x.jpg"], [tmp_path / "m.pt"], tmp_path, cfg, EnsembleConfig(), None, sizes))
        assert seen.value.args == (expected,)