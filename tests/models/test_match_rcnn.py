"""Match R-CNN: the family interface, the landmark stream's category slots, the match network, its
DeepFashion2 training data and result files, and the overfit drill scored by the official-equal evaluator."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNPredictor

from conftest import tiny_df2
from df2_overfit import overfit_and_score
from family import assert_bad_config_is_an_input_error, assert_state_dict_round_trips
from pipeline import io
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data.deepfashion2.cache import Df2CacheReader, Df2Sample
from pipeline.errors import InputError
from pipeline.evaluation.deepfashion2.evaluate import evaluate_detection, evaluate_retrieval
from pipeline.inference.deepfashion2.predict import detection_results, rank_gallery, retrieval_results, to_original
from pipeline.models.config import portable
from pipeline.typed import to_mapping
from pipeline.models.factory import config_from_mapping, count_parameters, create_model, load_config
from pipeline.models.match_rcnn.heads import (
    MAX_LANDMARKS, LandmarkPredictor, MatchHead, compact_landmarks, sample_pairs, spread_landmarks,
)
from pipeline.models.match_rcnn.model import LandmarkTransform
from pipeline.synthetic.deepfashion2 import scene
from pipeline.training.data import collate
from pipeline.training.deepfashion2 import Df2TrainDataset
from pipeline.training.transforms import AugmentConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LOSS_KEYS = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_landmarks", "loss_pair", "loss_objectness",
             "loss_rpn_box_reg"}
SHORT_SLEEVED_SHIRT, TROUSERS = 0, 7  # model ids (category_id - 1)


@pytest.fixture(scope="module")
def tiny_config():
    """The embedded config, randomly initialised, at test image sizes."""
    return dataclasses.replace(load_config(CONFIGS / "match_rcnn_lite0.yaml"), init=None, min_size=128, max_size=160)


def item_target(height, width, shop: bool, pair_id: int, styles=(1, 0)):
    """A shirt and trousers (rectangles with landmarks along them) in one image."""
    masks = torch.zeros(2, height, width, dtype=torch.uint8)
    masks[0, 12:90, 10:60] = 1
    masks[1, 20:100, 70:120] = 1
    landmarks = torch.zeros(2, df2.NUM_SLOTS, 3)
    landmarks[0, :25] = torch.stack([torch.linspace(12, 58, 25), torch.full((25,), 50.0), torch.full((25,), 2.0)], 1)
    landmarks[1, 168:182] = torch.stack([torch.full((14,), 90.0), torch.linspace(25, 95, 14), torch.full((14,), 2.0)],
                                        1)
    return {"boxes": torch.tensor([[10.0, 12, 60, 90], [70, 20, 120, 100]]),
            "labels": torch.tensor([SHORT_SLEEVED_SHIRT, TROUSERS]), "masks": masks, "landmarks": landmarks,
            "styles": torch.tensor(styles), "pair_ids": torch.tensor([pair_id, pair_id]),
            "shop": torch.tensor([shop, shop])}


def consumer_and_shop():
    """A consumer photo and a shop photo of pair 1 (the shirt is its product, style 1)."""
    torch.manual_seed(3)
    return [torch.rand(3, 128, 160), torch.rand(3, 128, 160)], [item_target(128, 160, False, 1),
                                                                item_target(128, 160, True, 1)]


def train_losses(model, images, targets):
    model.train()
    return model(list(images), list(targets))


def test_training_returns_every_weighted_loss_and_backpropagates(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    images, targets = consumer_and_shop()
    losses = train_losses(model, images, targets)
    assert set(losses) == LOSS_KEYS
    assert all(v.ndim == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    heads = model.roi_heads
    for parameter in (heads.landmark_predictor.kps_score_lowres.weight, heads.landmark_predictor.hidden.weight,
                      heads.landmark_head[0].weight,
                      heads.match_head.embed.weight, heads.match_head.similarity.weight, heads.mask_head[0][0].weight,
                      model.backbone.body.conv_stem.weight):
        assert parameter.grad.abs().sum() > 0

    torch.manual_seed(1)
    weighted = create_model(dataclasses.replace(tiny_config, landmark_loss_weight=2.0, pair_loss_weight=0.5))
    weighted.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    base = train_losses(model, images, targets)
    torch.manual_seed(5)
    scaled = train_losses(weighted, images, targets)
    assert torch.isclose(scaled["loss_landmarks"], 2 * base["loss_landmarks"])
    assert torch.isclose(scaled["loss_pair"], 0.5 * base["loss_pair"])
    assert torch.isclose(scaled["loss_mask"], base["loss_mask"])


def test_images_without_items_give_zero_landmark_and_pair_losses_in_the_graph(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros((0, 128, 160), dtype=torch.uint8), "landmarks": torch.zeros((0, df2.NUM_SLOTS, 3)),
             "styles": torch.zeros(0, dtype=torch.int64), "pair_ids": torch.zeros(0, dtype=torch.int64),
             "shop": torch.zeros(0, dtype=torch.bool)}
    losses = train_losses(model, [torch.rand(3, 128, 160)], [empty])
    assert losses["loss_landmarks"].item() == 0.0 and losses["loss_pair"].item() == 0.0
    sum(losses.values()).backward()
    assert model.roi_heads.match_head.similarity.weight.grad is not None
    assert model.roi_heads.landmark_predictor.kps_score_lowres.weight.grad is not None


def test_inference_outputs_landmarks_in_the_category_slots_and_embeddings(tiny_config):
    torch.manual_seed(0)
    config = dataclasses.replace(tiny_config, score_threshold=0.0, detections_per_image=8)
    sizes = [(120, 176), (150, 100)]
    for letterbox in (0, 160):
        model = create_model(dataclasses.replace(config, letterbox=letterbox)).eval()
        with torch.no_grad():
            outputs = model([torch.rand(3, h, w) for h, w in sizes])
        for out, (h, w) in zip(outputs, sizes):
            n = len(out["boxes"])
            assert 0 < n <= 8
            assert out["masks"].shape == (n, 1, h, w) and out["labels"].max() <= 12
            assert out["landmarks"].shape == (n, df2.NUM_SLOTS, 3)
            assert out["embeddings"].shape == (n, config.embedding_size)
            for label, points in zip(out["labels"].tolist(), out["landmarks"]):
                category = df2.CATEGORY_BY_ID[label + 1]
                block = slice(category.first_slot, category.first_slot + category.landmarks)
                inside = torch.zeros(df2.NUM_SLOTS, dtype=torch.bool)
                inside[block] = True
                assert (points[~inside] == 0).all()
                # At input image pixels, clipped to the image.
                assert (points[inside, :2] >= 0).all()
                assert (points[inside, 0] <= w).all() and (points[inside, 1] <= h).all()


@pytest.mark.parametrize("letterbox", [0, 96])
def test_landmarks_survive_resizing_and_postprocessing(letterbox):
    transform = LandmarkTransform(96, 128, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], letterbox)
    points = torch.tensor([[[3.0, 4.0, 2.0], [40.0, 20.0, 1.0], [0.0, 0.0, 0.0]]])
    target = {"boxes": torch.tensor([[2.0, 3.0, 41.0, 22.0]]), "labels": torch.tensor([1]),
              "masks": torch.ones(1, 37, 50, dtype=torch.uint8), "landmarks": points}
    images, (resized,) = transform([torch.rand(3, 37, 50)], [target])
    # The landmarks keep their place relative to the box.
    box = resized["boxes"][0]
    relative = (resized["landmarks"][0, :2, :2] - box[:2]) / (box[2:] - box[:2])
    expected = (points[0, :2, :2] - target["boxes"][0, :2]) / torch.tensor([39.0, 19.0])
    assert torch.allclose(relative, expected, atol=1e-4)
    assert torch.equal(resized["landmarks"][..., 2], points[..., 2])
    transform.eval()
    detections = [{"boxes": resized["boxes"], "labels": torch.tensor([1]), "scores": torch.ones(1),
                   "masks": torch.zeros(1, 1, 28, 28), "landmarks": resized["landmarks"][:, :2]}]
    (out,) = transform.postprocess(detections, images.image_sizes, [(37, 50)])
    assert torch.allclose(out["landmarks"], points[:, :2], atol=1e-3)


@pytest.mark.parametrize("deconvolutions", [1, 2])
def test_the_landmark_predictor_computes_exactly_the_category_slots(deconvolutions):
    """Either head gives 4x heatmaps (28 from a 7x7 RoI, 56 from the paper's 14x14); the category's slots
    are those of the full 294-slot predictor."""
    torch.manual_seed(0)
    predictor = LandmarkPredictor(8, deconvolutions)
    full = KeypointRCNNPredictor(8, df2.NUM_SLOTS)
    full.load_state_dict({k: v for k, v in predictor.state_dict().items() if not k.startswith("hidden")})
    features = torch.randn(3, 8, 7, 7)
    labels = torch.tensor([1, 8, 1])  # torchvision labels = category ids
    logits = predictor(features, labels)
    assert logits.shape == (3, MAX_LANDMARKS, 28, 28)
    assert predictor(torch.randn(2, 8, 14, 14), labels[:2]).shape == (2, MAX_LANDMARKS, 56, 56)
    if deconvolutions == 1:  # torchvision's: deconvolution, then 2x bilinear upsampling
        expected = full(features)
    else:  # two stride-2 deconvolutions, no upsampling
        expected = full.kps_score_lowres(torch.relu(predictor.hidden(features)))
        assert not any(isinstance(m, torch.nn.Upsample) for m in predictor.modules())
    for row, category_id in enumerate(labels.tolist()):
        category = df2.CATEGORY_BY_ID[category_id]
        block = expected[row, category.first_slot : category.first_slot + category.landmarks]
        assert torch.allclose(logits[row, : category.landmarks], block, atol=1e-5)
        assert (logits[row, category.landmarks :] == 0).all()


def test_landmark_slots_compact_and_spread_back():
    landmarks = torch.rand(2, df2.NUM_SLOTS, 3) * 50
    landmarks[..., 2] = 2
    labels = torch.tensor([2, 9])  # long sleeved shirt, skirt
    compact = compact_landmarks(landmarks, labels)
    assert torch.equal(compact[0, :33], landmarks[0, 25:58]) and (compact[0, 33:, 2] == 0).all()
    assert torch.equal(compact[1, :8], landmarks[1, 182:190]) and (compact[1, 8:, 2] == 0).all()
    spread = spread_landmarks(compact, labels)
    assert torch.equal(spread[0, 25:58], landmarks[0, 25:58]) and spread[0, :25].abs().sum() == 0
    assert torch.equal(spread[1, 182:190], landmarks[1, 182:190]) and spread[1, 190:].abs().sum() == 0


def test_landmark_loss_reads_only_the_category_slots(tiny_config):
    images, targets = consumer_and_shop()
    torch.manual_seed(0)
    model = create_model(tiny_config)
    values = []
    # Other categories' slots filled with labelled garbage: no change; the shirt's own slots moved: a change.
    garbage = [{**t, "landmarks": t["landmarks"].clone()} for t in targets]
    for t in garbage:
        t["landmarks"][0, 25:] = torch.tensor([30.0, 40.0, 2.0])
        t["landmarks"][1, :168] = torch.tensor([80.0, 60.0, 2.0])
    moved = [{**t, "landmarks": t["landmarks"].clone()} for t in targets]
    for t in moved:
        t["landmarks"][0, :25, 1] += 20
    for batch in (targets, garbage, moved):
        torch.manual_seed(1)  # the same sampled RoIs
        values.append(train_losses(model, images, batch)["loss_landmarks"].item())
    assert values[0] > 0 and values[0] == values[1] and values[2] != values[0]


def test_pairs_are_consumer_shop_with_same_pair_id_and_style():
    shop = torch.tensor([False, False, True, True, True, False])
    pair_ids = torch.tensor([1, 1, 1, 1, 2, 2])
    styles = torch.tensor([1, 0, 1, 2, 1, 1])
    torch.manual_seed(0)
    consumer, shop_rows, labels = sample_pairs(shop, pair_ids, styles, negatives_per_positive=3)
    assert not shop[consumer].any() and shop[shop_rows].all()
    positives = {(c, s) for c, s, y in zip(consumer.tolist(), shop_rows.tolist(), labels.tolist()) if y == 1}
    assert positives == {(0, 2), (5, 4)}  # item 1 has style 0: in no pair
    assert len(labels) == 2 + 3 * 2 == 8  # all 9 consumer-shop pairs minus one negative
    _, _, labels = sample_pairs(shop, pair_ids, styles, negatives_per_positive=10)
    assert len(labels) == 9 and labels.sum() == 2


@pytest.mark.parametrize("network", ["published", "residual"])
def test_similarity_matrix_equals_the_pairwise_similarity_net(network):
    torch.manual_seed(0)
    head = MatchHead(16, 8, 4, network)
    with torch.no_grad():
        head.similarity.weight.normal_()  # free (published) or negative (residual) weights of either sign
    queries, gallery = torch.randn(5, 16), torch.randn(7, 16)
    matrix = head.logit_matrix(queries, gallery)
    pairwise = head.pair_logits(queries.repeat_interleave(7, 0), gallery.repeat(5, 1)).view(5, 7)
    assert torch.allclose(matrix, pairwise, atol=1e-4)
    ranked = rank_gallery(head.logit_matrix, queries.numpy(), gallery.numpy(), ranks=4, block=3)
    assert np.array_equal(ranked, torch.argsort(pairwise, dim=1, descending=True, stable=True)[:, :4].numpy())


def test_the_switch_builds_both_match_networks(tiny_config):
    """published: the fc's output, free weights on (a - b)^2; residual: the pooled feature plus the fc's
    output at unit length, weights held negative."""
    torch.manual_seed(0)
    features = torch.randn(5, tiny_config.fpn_channels, 7, 7)
    heads = {}
    for network in ("published", "residual"):
        model = create_model(dataclasses.replace(tiny_config, match_network=network))
        heads[network] = model.roi_heads.match_head
    published, residual = heads["published"], heads["residual"]
    assert not published.residual and residual.residual
    embedding = published(features)
    assert torch.allclose(embedding, published.embed(published.convs(features).mean(dim=(2, 3))))
    assert not torch.allclose(embedding.norm(dim=1), torch.ones(5))
    assert (published.distance_weights() > 0).any() and (published.distance_weights() < 0).any()
    assert torch.equal(published.distance_weights(), published.similarity.weight[0])
    assert torch.allclose(residual(features).norm(dim=1), torch.ones(5))
    assert (residual.distance_weights() < 0).all()
    with pytest.raises(ValueError, match="match_network must be one of"):
        dataclasses.replace(tiny_config, match_network="siamese")


def test_an_untrained_residual_embedding_is_the_pooled_roi_feature_at_unit_length():
    """The fc's residual starts at zero, so training starts from the distance between pooled features."""
    torch.manual_seed(0)
    head = MatchHead(16, 8, 4, "residual")
    features = torch.randn(5, 16, 7, 7)
    embeddings = head(features)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(5))
    assert torch.allclose(embeddings, torch.nn.functional.normalize(features.mean(dim=(2, 3)), dim=1))
    with torch.no_grad():
        head.embed.weight.normal_()
    assert not torch.allclose(head(features), embeddings)  # the residual counts once trained
    assert torch.allclose(head(features).norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("scale", [-3.0, 0.0, 3.0])
def test_residual_similarity_is_a_weighted_distance_whatever_the_weights(scale):
    """Whatever the fc's parameters, the logit falls as two items move apart in any dimension, so an
    item is its own best match."""
    torch.manual_seed(0)
    head = MatchHead(16, 8, 4, "residual")
    with torch.no_grad():
        head.similarity.weight.copy_(torch.randn(1, 16) * scale)
    items = torch.randn(9, 16)
    matrix = head.logit_matrix(items, items)
    assert torch.equal(matrix.argmax(dim=1), torch.arange(9))
    assert (head.distance_weights() < 0).all()
    moved = items.clone()
    moved[:, 3] += 1.0
    assert (head.pair_logits(items, moved) < head.pair_logits(items, items)).all()


@pytest.mark.parametrize("network", ["published", "residual"])
def test_pair_loss_decreases(tiny_config, network):
    """The match network alone on fixed pyramid features: BCE over the batch's consumer-shop pairs falls."""
    torch.manual_seed(0)
    heads = create_model(dataclasses.replace(tiny_config, match_network=network)).roi_heads
    channels = tiny_config.fpn_channels
    features = {name: torch.randn(2, channels, 32 // 2**k, 40 // 2**k) for k, name in enumerate(["0", "1", "2", "3"])}
    _, targets = consumer_and_shop()
    targets[1]["styles"] = torch.tensor([1, 2])  # two shop products: one match, one negative per consumer item
    optimizer = torch.optim.AdamW(heads.match_head.parameters(), lr=2e-3)  # train.lr
    values = []
    for _ in range(15):
        loss = heads._pair_loss(features, [(128, 160)] * 2, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.5 * values[0], values


def test_state_dict_round_trips_through_weights_only_load(tmp_path, tiny_config):
    assert_state_dict_round_trips(tmp_path, tiny_config)


def test_shipped_configs_round_trip_and_the_paper_setting_is_the_larger_model():
    """(test_shipped_configs builds every config; an `init` file is not read there or here.)"""
    lite0, r50 = (load_config(CONFIGS / f"match_rcnn_{name}.yaml") for name in ("lite0", "r50"))
    for config in (lite0, r50):
        assert config_from_mapping(to_mapping(config)) == config
    assert (r50.backbone, r50.min_size, r50.max_size, r50.landmark_head_layers, r50.mask_head_layers,
            r50.match_head_layers) == ("resnet50", 800, 1333, 8, 4, 4)
    sizes = [count_parameters(create_model(portable(config))) for config in (lite0, r50)]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("family: match_rcnn\nmin_size: 128\nlandmark_width: 3\n", "unknown config key 'landmark_width'", 3),
        ("family: match_rcnn\npair_loss_weight: heavy\n", "pair_loss_weight: expected float", 2),
        ("family: match_rcnn\nanchor_sizes: 16\n", "anchor_sizes: expected a list", 2),
        ("family: match_rcnn\nnum_classes: 46\n", "num_classes must be 13", 2),
        ("family: match_rcnn\npair_negatives_per_positive: 0\n", "pair_negatives_per_positive must be at least 1",
         2),
        ("family: match_rcnn\nmatch_network: siamese\n", "match_network must be one of", 2),
        ("family: match_rcnn\nlandmark_deconvolutions: 3\n", "landmark_deconvolutions must be 1 or 2", 2),
    ],
)
def test_bad_config_is_an_input_error_with_line(tmp_path, text, message, line):
    assert_bad_config_is_an_input_error(tmp_path, text, message, line)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("df2")
    split = tiny_df2(root, pairs=2, size=160)
    return root, split


def test_training_data_from_the_cache(tiny_cache):
    root, split = tiny_cache
    reader = Df2CacheReader(root / "train.h5")
    augment = AugmentConfig(image_size=160, scale_min=0.5, scale_max=1.5, hflip=0.0, color_jitter=0.0)
    dataset = Df2TrainDataset(reader, range(len(reader)), augment, seed=0)
    for position in range(len(dataset)):
        item = dataset[position]  # every synthetic image has a photo of the other source in its pair
        images, targets = collate([item])
        assert len(images) == 2 and targets[0]["shop"].ne(targets[1]["shop"]).all()
        assert targets[0]["pair_ids"].eq(targets[1]["pair_ids"][:1]).all()
        for image, target in zip(images, targets):
            assert image.shape == (3, 160, 160)
            m = len(target["boxes"])
            assert target["masks"].shape == (m, 160, 160) and target["landmarks"].shape == (m, df2.NUM_SLOTS, 3)
            for label, points, box in zip(target["labels"].tolist(), target["landmarks"], target["boxes"]):
                category = df2.CATEGORY_BY_ID[label + 1]
                labelled = torch.nonzero(points[:, 2] > 0)[:, 0]
                assert labelled.numel() and labelled.min() >= category.first_slot
                assert labelled.max() < category.first_slot + category.landmarks
                # Visible landmarks moved with the annotated box, which holds them (the occluded ones need not be).
                xy = points[points[:, 2] == 2, :2]
                assert (xy >= box[:2] - 1).all() and (xy <= box[2:] + 1).all()


class Shop:
    """A reader of one symmetric synthetic shop photo per category (`Df2TrainDataset` reads samples by index)."""

    def __init__(self, side: int):
        rng = np.random.default_rng(0)
        body = scene.Body(1.0, (0.2, 0.2), 0.06)  # both wrists alike: every garment is mirror-symmetric
        self.samples = []
        for category in df2.CATEGORIES:
            image, (item,) = scene.render_shop(rng, side, side, scene.random_product(rng, category.id), 1, body)
            rows, columns = np.nonzero(item.mask)
            box = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
            self.samples.append(Df2Sample(
                category.id, image, item.mask[None].astype(np.uint8), np.array([box], np.float32),
                np.array([category.id]), np.array([1]), [item.landmarks.astype(np.float32)], np.ones((1, 4), int),
                "shop", 1, (side, side)))

    def __getitem__(self, index):
        return self.samples[index]


def test_a_flipped_garment_has_each_landmark_on_its_mirrored_point():
    """A mirror-symmetric garment in the middle of the photo looks the same flipped, so every landmark of
    the flipped sample must land where the unflipped sample has that landmark (the image-left shoulder
    is again the image-left shoulder), its box and mask mirrored; reversing x without the mirror slots
    would put the left shoulder's slot on the right shoulder."""
    side = 160
    reader = Shop(side)
    augment = AugmentConfig(image_size=side, scale_min=1.0, scale_max=1.0, hflip=0.0, color_jitter=0.0)
    plain, flipped = (Df2TrainDataset(reader, range(13), dataclasses.replace(augment, hflip=p), seed=0,
                                      partners=False) for p in (0.0, 1.0))
    for index, category in enumerate(df2.CATEGORIES):
        (image, target), (mirror_image, mirror_target) = plain.sample(index, seed=5), flipped.sample(index, seed=5)
        assert torch.equal(mirror_image, image.flip(-1))
        assert torch.equal(mirror_target["masks"], target["masks"].flip(-1))
        assert torch.allclose(mirror_target["boxes"], target["boxes"], atol=1.0)
        block = slice(category.first_slot, category.first_slot + category.landmarks)
        points, mirrored = target["landmarks"][0, block], mirror_target["landmarks"][0, block]
        labelled = (points[:, 2] > 0) & (mirrored[:, 2] > 0)
        assert labelled.sum() >= category.landmarks - 1, category.name
        assert torch.allclose(mirrored[labelled, :2], points[labelled, :2], atol=1.5), category.name
        assert torch.equal(mirrored[:, 2], points[df2.mirror_order(category.id), 2])
        # x reversed without the mirror slots would be far off for the landmarks off the axis.
        assert (side - 2 * points[labelled, 0]).abs().max() > 10


def test_ground_truth_as_detections_scores_perfectly(tiny_cache, tmp_path):
    """The result writers and the ranking, fed the annotations as detections: AP 1 and top-1 1."""
    root, split = tiny_cache
    reader = Df2CacheReader(root / "train.h5")
    images = []
    for index in range(len(reader)):
        sample = reader[index]
        scale = torch.tensor([sample.image.shape[1] / sample.orig_size[1], sample.image.shape[0] / sample.orig_size[0]])
        annotation = df2.read_annotation(split / "annos" / f"{sample.image_id:06d}.json")
        boxes = torch.tensor([item.box for item in annotation.items], dtype=torch.float32) * scale.repeat(2)
        landmarks = torch.zeros(len(boxes), df2.NUM_SLOTS, 3)
        for row, item in enumerate(annotation.items):
            first = item.category.first_slot
            landmarks[row, first : first + item.category.landmarks, :2] = torch.from_numpy(
                item.landmarks[:, :2]).float() * scale
        # One embedding direction per product: (pair_id, style); style-0 items each their own.
        keys = [(sample.pair_id, s) if s else (sample.image_id, -k) for k, s in enumerate(sample.styles.tolist())]
        embeddings = torch.stack([torch.from_numpy(np.random.default_rng(abs(hash(key)) % 2**32).normal(size=16))
                                  for key in keys]).float()
        out = {"boxes": boxes, "scores": torch.linspace(0.9, 0.8, len(boxes)),
               "labels": torch.from_numpy(sample.category_ids - 1),
               "masks": torch.from_numpy(sample.masks[:, None]).float(), "landmarks": landmarks,
               "embeddings": embeddings}
        images.append(to_original(sample, out))
    results = detection_results(images)
    for task in ("bbox", "segm", "keypoints"):
        io.write_json(tmp_path / f"{task}.json", results[task])
        metrics = evaluate_detection(task, split / "annos", tmp_path / f"{task}.json")
        assert metrics["AP"] > (0.99 if task != "segm" else 0.9), (task, metrics["AP"])
    # Similarity: minus the squared distance, which the match head's form w . (a - b)^2 + bias covers.
    io.write_json(tmp_path / "retrieval.json",
                  retrieval_results(images, lambda q, g: -torch.cdist(q, g) ** 2))
    metrics = evaluate_retrieval(root / "query_gt.json", root / "gallery_gt.json", tmp_path / "retrieval.json")
    assert metrics["top1"] == 1.0 and metrics["queries"] > 0


@pytest.mark.slow  # minutes on 2 cores: make test-slow (CI runs it after make test)
def test_overfits_tiny_df2_set(tmp_path):
    """The issue's standard, through the engine, the result writers and the DF2 evaluator.

    9 images (2 outfits) of at most 160 px, one batch, 150 AdamW steps at lr 2e-3, random init, on the
    DAG's model (match_rcnn_lite0_192.yaml) with slimmer heads and fewer RoIs; one thread (two threads
    on 2 loaded cores took 1402 s at 192 px). 150 steps so that every score clears its threshold with a
    margin over torch seeds and CPUs (at 100 a CPU's rounding decided the verdict: docs/experiments.md).
    lr 0 scores 0 everywhere.
    """
    start = time.perf_counter()
    config = dataclasses.replace(load_config(CONFIGS / "match_rcnn_lite0_192.yaml"), init=None,
                                 roi_batch_size_per_image=32, rpn_proposals_train=100, landmark_head_layers=4,
                                 mask_head_layers=2, match_head_layers=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = overfit_and_score(tmp_path, config, steps=150, lr=2e-3, pairs=2, size=160)
    finally:
        torch.set_num_threads(threads)
    scores = {task: round(m["AP"] if "AP" in m else m["top1"], 3) for task, m in metrics.items()}
    print("match_rcnn overfit:", scores, f"in {time.perf_counter() - start:.0f} s")
    assert metrics["bbox"]["AP"] >= 0.7 and metrics["segm"]["AP"] >= 0.7, scores
    assert metrics["keypoints"]["AP"] >= 0.5, scores
    assert metrics["retrieval"]["top1"] >= 0.8, scores
