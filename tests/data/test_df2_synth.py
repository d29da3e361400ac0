"""The embedded DeepFashion2-like data: garments drawn from their landmarks, consumer and shop photos."""
import json

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data.images import image_size
from pipeline.synthetic.deepfashion2 import scene
from pipeline.synthetic.deepfashion2.dataset import Df2SynthConfig, build


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("df2synth") / "data"
    build(out, Df2SynthConfig(train_pairs=4, validation_pairs=3, seed=1, min_size=160, max_size=240))
    return out


@pytest.mark.parametrize("category", df2.CATEGORIES, ids=lambda c: c.name)
def test_a_symmetric_garment_mirrors_onto_its_mirror_slots(category):
    """On a figure with both wrists alike, landmark k reflected is landmark mirror_order[k]: the drawing
    follows the order the mirror table (and the official sigmas) read."""
    product = scene.random_product(np.random.default_rng(category.id), category.id)
    points = scene.landmarks(product, scene.Body(1.0, (0.2, 0.2), 0.06).figure(0, 0, 1))
    reflected = points * [-1, 1]
    assert np.allclose(reflected[df2.mirror_order(category.id)], points)


@pytest.mark.parametrize("category", df2.CATEGORIES, ids=lambda c: c.name)
def test_every_category_is_drawn_through_its_landmarks(category):
    rng = np.random.default_rng(category.id)
    product = scene.random_product(rng, category.id)
    body = scene.random_body(rng)
    points = scene.landmarks(product, body.figure(0, 0, 1))
    assert points.shape == (category.landmarks, 2)
    image, items = scene.render_shop(rng, 300, 220, product, 1, body)
    (item,) = items
    # A shop photo shows the whole garment: every landmark is labelled visible, inside the image.
    assert (item.landmarks[:, 2] == 2).all()
    assert item.difficulty == (item.difficulty[0], 1, 1, 1)  # no occlusion, no zoom, not worn
    # The outline through the annotated landmarks (pixels) covers the garment's mask.
    order = scene.outline(product, np.arange(category.landmarks)[:, None].repeat(2, 1))[:, 0].astype(int)
    drawn = np.zeros(item.mask.shape, np.uint8)
    cv2.fillPoly(drawn, [np.round(item.landmarks[order, :2]).astype(np.int32)], 1)
    overlap = (drawn.astype(bool) & item.mask).sum() / (drawn.astype(bool) | item.mask).sum()
    assert overlap > 0.9, overlap


def test_landmark_order_follows_the_garment(category_id=1):
    rng = np.random.default_rng(0)
    product = scene.random_product(rng, category_id)
    points = scene.landmarks(product, scene.random_body(rng).figure(0, 0, 1))
    assert points[0, 1] > points[1, 1] and points[3, 1] > points[2, 1] > points[1, 1]  # neck: 1 below 2, 4 lowest
    assert points[1, 0] < 0 < points[5, 0]  # 2 image-left, 6 image-right
    assert points[6, 0] < 0 and points[-1, 0] > 0  # from the image-left shoulder round to the right one
    np.testing.assert_allclose(points[6:][::-1] * (-1, 1), points[6:])  # mirror-symmetric outline


def test_the_dataset_reads_back_in_the_official_layout(dataset):
    for split in ("train", "validation"):
        annotations = df2.read_annotations(dataset / split / "annos")  # validates every field
        sources = [a.source for a in annotations]
        assert sources == sorted(sources, key=("user", "shop").index)  # consumer photos first
        for annotation in annotations:
            assert image_size(df2.image_path(dataset / split / "image", annotation.image_id))
            viewpoints = {item.difficulty[3] for item in annotation.items}
            assert viewpoints <= ({1} if annotation.source == "shop" else {2, 3})
        shop = [a for a in annotations if a.source == "shop"]
        assert shop and all(len(a.items) == 1 and a.items[0].style > 0 for a in shop)


def test_shop_products_are_the_consumer_items_of_their_pair(dataset):
    annotations = df2.read_annotations(dataset / "validation" / "annos")
    query = json.loads((dataset / "validation" / "query_gt.json").read_text())
    gallery = json.loads((dataset / "validation" / "gallery_gt.json").read_text())
    assert (query, gallery) == tuple(json.loads(json.dumps(df2.retrieval_ground_truth(annotations))))
    shop = {(a.pair_id, a.items[0].style): a.items[0].category_id for a in annotations if a.source == "shop"}
    matched = 0
    for q in query:
        if q["style"] > 0:
            assert shop[(q["pair_id"], q["style"])] == q["cls"]
            matched += 1
    assert matched > 0


def test_same_seed_same_files(dataset, tmp_path):
    again = tmp_path / "again"
    build(again, Df2SynthConfig(train_pairs=4, validation_pairs=3, seed=1, min_size=160, max_size=240))
    for path in sorted(dataset.rglob("*.*")):
        assert (again / path.relative_to(dataset)).read_bytes() == path.read_bytes(), path


def test_command_knobs_and_errors(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["synth-df2", "--out", str(out), "--train-pairs", "1", "--validation-pairs", "1",
                 "--min-size", "128", "--max-size", "160"]) == 0
    assert "retrieval queries" in capsys.readouterr().out
    params = tmp_path / "params.yaml"
    params.write_text("df2:\n  synth:\n    train_pair: 3\n")
    assert main(["synth-df2", "--params", str(params), "--out", str(out)]) == 2
    assert "unknown config key 'df2.synth.train_pair'" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    assert main(["synth-df2", "--out", str(tmp_path / "other"), "--train-pairs", "1", "--validation-pairs", "1"]) == 2
    assert "holds no train/annos" in capsys.readouterr().err


def test_a_consumer_photo_from_behind_hides_the_front_landmarks(monkeypatch):
    monkeypatch.setattr(scene, "BACK_VIEWS", 1.0)
    rng = np.random.default_rng(5)
    outfit = [(scene.random_product(rng, 8), 1), (scene.random_product(rng, 4), 2)]  # trousers, long coat
    _, items = scene.render_user(rng, 320, 220, outfit, scene.random_body(rng), extras=[])
    coat = [item for item in items if item.product.category_id == 4]
    assert coat and all(item.difficulty[3] == 3 for item in items)
    front = scene.front_landmarks(coat[0].product)
    assert front.size == 9 and (coat[0].landmarks[front, 2] <= 1).all()
    assert (coat[0].landmarks[:, 2] == 2).any()
