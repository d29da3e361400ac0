"""infer: single photos -> printed instances, overlay PNG at the photo's size, prediction rows."""
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT
from pipeline.cli import main
from pipeline.data import rle
from pipeline.data.ontology import load as load_ontology
from pipeline.inference import infer


def save_random_model(path, **overrides):
    """A random-init R18 Mask R-CNN saved as `train` saves model.pt (config + weights)."""
    import dataclasses

    from pipeline.typed import to_mapping
    from pipeline.models.factory import create_model, load_config
    from pipeline.training import checkpoint

    config = dataclasses.replace(load_config(ROOT / "configs" / "attribute_mask_rcnn_r18.yaml"), **overrides)
    torch.manual_seed(0)
    checkpoint.save(path, model=create_model(config).state_dict(), config=to_mapping(config))
    return path


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("infer") / "model.pt"
    # letterbox 0 (resized as torchvision does): with the shipped letterbox 256 this random model pasted no mask
    return save_random_model(path, score_threshold=0.0, detections_per_image=8, letterbox=0)


def write_photo(path, height, width, seed=0):
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width * 3 // 4, height * 3 // 4), (200, 30, 30), cv2.FILLED)
    assert cv2.imwrite(str(path), image)
    return path


def read_rows(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_random_model_writes_rows_and_overlay_at_the_photo_size(random_model, tmp_path, capsys):
    photos = [write_photo(tmp_path / "wide.png", 150, 230), write_photo(tmp_path / "tall.jpg", 300, 140, seed=1)]
    out = tmp_path / "out"
    assert main(["infer", *map(str, photos), "--weights", str(random_model), "--out", str(out),
                 "--score-threshold", "0", "--max-instances", "5", "--max-size", "128"]) == 0
    printed = capsys.readouterr().out
    labels = load_ontology()
    for photo, size in zip(photos, ((150, 230), (300, 140))):
        drawn = cv2.imread(str(out / f"{photo.stem}.png"))
        assert drawn.shape[:2] == size
        assert not np.array_equal(drawn, cv2.imread(str(photo)))  # something was drawn
        rows = read_rows(out / f"{photo.stem}.csv")
        assert 1 <= len(rows) <= 5
        assert list(rows.Score.astype(float)) == sorted(rows.Score.astype(float), reverse=True)
        for row in rows.itertuples():
            assert rle.decode(row.EncodedPixels, *size).any()
            assert labels.category_by_id[int(row.ClassId)].name in printed
        assert f"{photo} ({size[1]}x{size[0]}): {len(rows)} instances" in printed


FAKE_CONFIG = SimpleNamespace(family="attribute_mask_rcnn", attribute_threshold=0.5)


class FakeModel(torch.nn.Module):
    """Two fixed detections on whatever it is given; remembers the input's size."""

    def __init__(self, shirt_score=0.9):
        super().__init__()
        self.shirt_score = shirt_score

    def forward(self, images):
        _, height, width = images[0].shape
        self.input_size = (height, width)
        masks = torch.zeros(2, 1, height, width)
        masks[0, 0, : height // 2, : width // 2] = 1  # the top-left quarter
        masks[1, 0, height // 2:, width // 2:] = 1
        attributes = torch.zeros(2, 294)
        attributes[0, [0, 2]] = 0.9  # attribute ids 0 and 2 (ids below 100 are vector positions too)
        return [{"boxes": torch.zeros(2, 4), "labels": torch.tensor([0, 23]), "scores": torch.tensor([self.shirt_score, 0.2]),
                 "masks": masks, "attributes": attributes}]


def test_printed_names_scores_and_size_handling(tmp_path, monkeypatch, capsys):
    fake = FakeModel()
    monkeypatch.setattr(infer, "load_model", lambda path: (fake, FAKE_CONFIG))
    photo = write_photo(tmp_path / "photo.jpg", 100, 200)
    assert main(["infer", str(photo), "--weights", "any.pt", "--out", str(tmp_path / "out"), "--max-size", "64"]) == 0
    assert fake.input_size == (32, 64)  # shrunk as the cache shrinks: longest side 64
    printed = capsys.readouterr().out
    labels = load_ontology()
    shirt, shoe = labels.category_by_id[0].name, labels.category_by_id[23].name
    assert f"{shirt} 0.90: {labels.attribute_by_id[0].name}, {labels.attribute_by_id[2].name}" in printed
    assert shoe not in printed  # score 0.2 is below the default threshold 0.3
    rows = read_rows(tmp_path / "out" / "photo.csv")
    assert list(rows.ClassId) == ["0"] and rows.AttributesIds[0] == "0,2"
    mask = rle.decode(rows.EncodedPixels[0], 100, 200)  # pasted at the original size (bilinear: corner pixel off)
    assert mask[:49, :99].all() and not mask[50:].any() and not mask[:, 100:].any()


def test_several_weights_are_fused(tmp_path, monkeypatch, capsys):
    models = {"a.pt": FakeModel(0.9), "b.pt": FakeModel(0.5)}
    monkeypatch.setattr(infer, "load_model", lambda path: (models[str(path)], FAKE_CONFIG))
    photo = write_photo(tmp_path / "photo.jpg", 100, 200)
    assert main(["infer", str(photo), "--weights", "a.pt", "b.pt", "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "photo.csv")
    assert list(rows.ClassId) == ["0"]  # one shirt, not one per model
    assert float(rows.Score[0]) == pytest.approx(0.7)  # weighted mask fusion: the models' mean score
    assert "0.70" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_one_line(random_model, tmp_path, capsys):
    photo = write_photo(tmp_path / "ok.jpg", 64, 64)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not a jpeg")
    cases = [
        ([str(tmp_path / "missing.jpg")], str(random_model), "missing.jpg: image file not found"),
        ([str(corrupt)], str(random_model), "corrupt.jpg: cannot decode image"),
        ([str(photo)], str(tmp_path / "none.pt"), "none.pt: checkpoint not found"),
        ([str(photo), str(tmp_path / "ok.png")], str(random_model), "two images named ok.*"),
    ]
    for images, weights, message in cases:
        assert main(["infer", *images, "--weights", weights, "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error


def test_large_real_photos(random_model, shared_dir, tmp_path, capsys):
    """Real photos up to 3676x5214: overlay and masks at full size."""
    photos = sorted((shared_dir / "data" / "real_photos").glob("*.jpg"))
    assert main(["infer", *map(str, photos), "--weights", str(random_model), "--out", str(tmp_path),
                 "--score-threshold", "0", "--max-instances", "3", "--max-size", "256"]) == 0
    for photo in photos:
        size = cv2.imread(str(photo), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION).shape[:2]
        assert cv2.imread(str(tmp_path / f"{photo.stem}.png")).shape[:2] == size
        for row in read_rows(tmp_path / f"{photo.stem}.csv").itertuples():
            assert rle.decode(row.EncodedPixels, *size).any()
    assert capsys.readouterr().out.count(" instances -> ") == len(photos)
