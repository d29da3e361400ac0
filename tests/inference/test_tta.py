"""Test-time augmentation: identity view, flip and scale undone, merging, and real families through predict()."""
from dataclasses import replace
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import ROOT, embedded_config
from pipeline.data import rle
from pipeline.data.ontology import load as load_ontology
from pipeline.data.prediction_rows import COLUMNS
from pipeline.errors import InputError
from pipeline.inference.config import TTAConfig
from pipeline.inference.tta import enlarged_input, predict_with_tta
from pipeline.models.factory import FAMILIES, create_model, family, load_config
from pipeline.inference.predict import predict

NUM_ATTRIBUTES = 294


class FakeModel(torch.nn.Module):
    """Detections from the image itself: per entry of `detections` (label, score, mask rule).

    Mask rules: "bright" = the red channel's bright pixels (moves with the image, so a flipped or
    padded view finds the same object), "left" = the image's left quarter whatever it shows.
    """

    def __init__(self, detections):
        super().__init__()
        self.detections = detections
        self.config = SimpleNamespace(family="fake", detections_per_image=100)
        self.calls = []

    def forward(self, images):
        image = images[0]
        self.calls.append(tuple(image.shape[-2:]))
        masks = []
        for _, _, rule in self.detections:
            if rule == "bright":
                masks.append((image[0] > 0.5).float() * 0.9)
            else:
                mask = torch.zeros(image.shape[-2:])
                mask[:, : image.shape[-1] // 4] = 0.8
                masks.append(mask)
        boxes = torch.tensor([[0.0, 0.0, image.shape[-1], image.shape[-2]]] * len(masks))
        return [{"boxes": boxes, "labels": torch.tensor([label for label, _, _ in self.detections]),
                 "scores": torch.tensor([score for _, score, _ in self.detections]),
                 "masks": torch.stack(masks)[:, None],
                 "attributes": torch.full((len(masks), NUM_ATTRIBUTES), 0.25)}]


def asymmetric_image(height=40, width=60):
    """A bright block off centre (upper left) on black."""
    image = torch.zeros(3, height, width)
    image[0, 5:20, 8:25] = 1.0
    return image


def test_identity_view_is_the_plain_output():
    model, image = FakeModel([(3, 0.7, "bright")]), asymmetric_image()
    plain, same = model([image])[0], predict_with_tta(model, image, TTAConfig())
    assert same.keys() == plain.keys()
    assert all(torch.equal(plain[k], same[k]) for k in plain)


def test_flip_and_scale_are_undone_and_views_of_one_object_merge():
    model, image = FakeModel([(3, 0.7, "bright")]), asymmetric_image()
    plain = model([image])[0]
    out = predict_with_tta(model, image, TTAConfig(hflip=True, scales=[0.5, 1.0]))
    assert model.calls[1:] == [(80, 120), (80, 120), (40, 60), (40, 60)]  # the canvas views, then scale 1
    assert len(out["scores"]) == 1 and out["labels"].tolist() == [3]
    assert out["scores"].item() == pytest.approx(0.7)  # found in all four views: sum / 4
    assert out["masks"].shape == plain["masks"].shape
    assert torch.allclose(out["masks"], plain["masks"], atol=1 / 255)
    assert torch.allclose(out["attributes"], plain["attributes"])


def test_a_fixed_mask_comes_back_mirrored_and_unmerged():
    """A mask that ignores the image: the flipped view's one, flipped back, lies on the right."""
    model, image = FakeModel([(5, 0.6, "left")]), asymmetric_image()
    out = predict_with_tta(model, image, TTAConfig(hflip=True))
    assert len(out["scores"]) == 2 and out["scores"].tolist() == pytest.approx([0.3, 0.3])  # one view of two each
    left, right = model([image])[0]["masks"][0, 0] >= 0.5, torch.zeros(40, 60, dtype=torch.bool)
    right[:, 45:] = True
    found = {tuple(m[0].flatten().tolist()) for m in out["masks"] >= 0.5}
    assert found == {tuple(left.flatten().tolist()), tuple(right.flatten().tolist())}


def test_different_classes_never_merge():
    model, image = FakeModel([(1, 0.9, "bright"), (2, 0.5, "bright")]), asymmetric_image()
    out = predict_with_tta(model, image, TTAConfig(hflip=True))
    assert sorted(out["labels"].tolist()) == [1, 2]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.5])


def test_merge_iou_decides_and_max_detections_caps():
    model, image = FakeModel([(5, 0.6, "left"), (7, 0.4, "bright")]), asymmetric_image()
    assert len(predict_with_tta(model, image, TTAConfig(hflip=True, merge_iou=0.55))["scores"]) == 3
    assert len(predict_with_tta(model, image, TTAConfig(hflip=True, max_detections=2))["scores"]) == 2


def test_tta_settings_are_validated_naming_file_and_line(tmp_path):
    from pipeline.settings.load import load_settings

    path = tmp_path / "p.yaml"
    path.write_text("predict:\n  tta:\n    hflip: true\n    scales: [1, 0.8]\n")
    assert load_settings(path).predict.tta.scales == (1.0, 0.8)
    for bad, line in (("scales: []", 3), ("scales: [0]", 3), ("hflip: yes_please", 3), ("merge_iou: 1.5", 3),
                      ("max_detections: 0", 3), ("flip: true", 3)):
        path.write_text(f"predict:\n  tta:\n    {bad}\n")
        with pytest.raises(InputError, match=f"p.yaml:{line}"):
            load_settings(path)


class OneImageReader:
    def __init__(self, image: np.ndarray, orig_size):
        self._image, self.image_ids, self.orig_sizes = image, ["img"], np.array([orig_size])

    def image(self, i):
        return self._image


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if family(n).dataset == "fashionpedia"])
def test_a_real_family_with_flip_and_two_scales_through_predict(name):
    """Random weights, every detection kept: a valid frame, identity TTA identical to none."""
    torch.manual_seed(0)
    config = replace(embedded_config(name), score_threshold=0.0, detections_per_image=20)
    model = create_model(config).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    reader, ontology = OneImageReader(image, (96, 128)), load_ontology()  # pasted 1:1
    plain = predict(model, reader, [0], ontology, 0.5)
    assert predict(model, reader, [0], ontology, 0.5, forward=partial(predict_with_tta, config=TTAConfig())).equals(plain)
    tta = TTAConfig(hflip=True, scales=[0.8, 1.25])
    with torch.inference_mode():
        merged = predict_with_tta(model, torch.from_numpy(image).permute(2, 0, 1).float() / 255, tta)
    count = len(merged["scores"])
    assert 0 < count <= 20 and merged["masks"].shape == (count, 1, 96, 128)
    assert merged["attributes"].shape == (count, NUM_ATTRIBUTES) and merged["scores"].max() <= 1
    frame = predict(model, reader, [0], ontology, 0.5, forward=partial(predict_with_tta, config=tta))
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == int((merged["masks"] >= 0.5).flatten(1).any(1).sum())  # empty masks are dropped
    assert frame.ClassId.between(0, 45).all() and frame.Score.between(0, 1).all()
    assert all(rle.decode(encoded, 96, 128).any() for encoded in frame.EncodedPixels)


def test_enlarged_input_restores_the_model():
    model = create_model(load_config(ROOT / "configs" / "attribute_mask_rcnn_r18.yaml")).eval()
    before = model.transform.min_size, model.transform.max_size
    with enlarged_input(model, 1.5):
        assert model.transform.min_size == (384.0,) and model.transform.max_size == 576.0
    assert (model.transform.min_size, model.transform.max_size) == before
