"""Schedules as their sources state them: a length in iterations of a stated global batch (`steps` with
`lr_reference_batch`) or in epochs, milestones as shares of the whole run, warm-up in the same images,
DeepFashion2's items counted as the images they hold, and `sync_bn` refused where nothing synchronises."""
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import tiny_df2, write_tiny_project
from pipeline.cli import main
from pipeline.data.deepfashion2.cache import Df2CacheReader
from pipeline.errors import InputError
from pipeline.settings.load import load_settings
from pipeline.training import engine
from pipeline.training.config import AugmentConfig, TrainConfig
from pipeline.training.deepfashion2 import Df2TrainDataset

ROOT = Path(__file__).resolve().parents[2]
REAL = load_settings(ROOT / "params.yaml", str(ROOT / "profiles" / "real.yaml"))


def drops(total: int, warmup: int, cfg: TrainConfig) -> list[int]:
    """The steps at which the lr factor falls."""
    factors = [engine.lr_factor(s, total, warmup, cfg) for s in range(total)]
    return [s for s in range(warmup + 1, total) if factors[s] < factors[s - 1]]


def test_steps_are_iterations_of_the_reference_batch_converted_to_the_run_s_global_batch():
    d2 = TrainConfig(epochs=None, steps=90000, lr=0.02, lr_reference_batch=16, batch_size=4, warmup_steps=1000,
                     schedule="step", step_milestones=(0.666667, 0.888889))
    # four processes of 4 images: Detectron2's 1x exactly; one process: four times the steps at a quarter of the lr
    assert engine.total_steps(d2, items=36_000, world=4) == 90000 and d2.run_steps(1000, world=4) == 1000
    assert engine.total_steps(d2, items=36_000, world=1) == 360000 and d2.run_steps(1000, world=1) == 4000
    assert d2.scaled_lr(world=1) == pytest.approx(0.005)
    assert drops(90000, 1000, d2) == [60000, 80000]  # STEPS (60000, 80000): shares of all iterations
    # without a reference batch, steps are the run's own
    assert engine.total_steps(dataclasses.replace(d2, lr_reference_batch=0), items=10, world=3) == 90000


def test_epochs_and_steps_are_exclusive():
    for both_or_neither in ({"epochs": 12, "steps": 100}, {"epochs": None, "steps": None}):
        with pytest.raises(ValueError, match="one of epochs and steps"):
            TrainConfig(**both_or_neither)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        TrainConfig(epochs=None, steps=0)
    knobs = TrainConfig(epochs=None, steps=500).weight_knobs()
    assert knobs["steps"] == 500 and knobs["epochs"] is None


def test_a_params_file_setting_both_names_its_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 3\n  steps: 100\n")
    with pytest.raises(InputError, match=r"params.yaml:\d: train: set one of epochs and steps"):
        load_settings(path)


def test_warm_up_and_milestones_of_the_real_recipes_fall_where_their_sources_put_them():
    mask_rcnn = REAL.model("attribute_mask_rcnn").train
    world = 16 // (mask_rcnn.batch_size * mask_rcnn.accumulate)  # the source's global batch of 16
    total = engine.total_steps(mask_rcnn, items=36_498, world=world)
    assert (total, mask_rcnn.run_steps(mask_rcnn.warmup_steps, world)) == (90000, 1000)
    assert drops(total, 1000, mask_rcnn) == [60000, 80000]
    effdet = REAL.model("effdet_mask").train
    assert effdet.global_batch(world=1) == effdet.lr_reference_batch == 24
    assert engine.total_steps(effdet, items=36_498, world=1) == 20833  # 50 epochs of 10k images at 24
    assert drops(20833, 0, effdet) == [round(20833 * m) for m in (0.2, 0.4, 0.6, 0.8)]
    fashionformer = REAL.model("fashionformer").train
    per_epoch = engine.steps_per_epoch(36_496, 16 // fashionformer.batch_size, fashionformer)  # 2281 steps of 16
    total = engine.total_steps(fashionformer, items=36_496, world=16 // fashionformer.batch_size)
    assert total == 12 * per_epoch and drops(total, 1000, fashionformer) == [8 * per_epoch, 11 * per_epoch]


def test_no_real_recipe_asks_for_synchronised_batch_norms_of_one_process():
    for name in [*REAL.models, REAL.df2.model]:
        train = REAL.model(name).train
        assert not (train.sync_bn and train.processes == 1), name


def test_deepfashion2_items_count_as_the_images_they_hold(tmp_path):
    tiny_df2(tmp_path, pairs=2, size=128)
    reader = Df2CacheReader(tmp_path / "train.h5")
    augment = AugmentConfig(image_size=128, scale_min=1.0, scale_max=1.0, hflip=0.0, color_jitter=0.0)
    paired = Df2TrainDataset(reader, range(len(reader)), augment, seed=0)
    with_partner = sum(map(bool, paired.partners))
    assert 0 < with_partner and paired.images_per_item == pytest.approx(1 + with_partner / len(reader))
    assert Df2TrainDataset(reader, range(len(reader)), augment, seed=0, partners=False).images_per_item == 1
    # Match R-CNN's paper: 16 images per step at lr 0.02; 4 items of an image and its partner are 8 images
    cfg = TrainConfig(epochs=12, lr=0.02, lr_reference_batch=16, batch_size=4)
    two = SimpleNamespace(images_per_item=2.0)
    assert cfg.scaled_lr(world=1, images_per_item=engine.images_per_item(two)) == pytest.approx(0.01)
    # an epoch is a pass over the images: 1000 images in items of two are 500 items, 125 steps of 4 items
    assert engine.total_steps(cfg, items=1000, world=1, per_item=2.0) == 12 * 125
    assert engine.total_steps(cfg, items=1000, world=1) == 12 * 250


def test_sync_bn_with_one_process_is_refused_in_one_line_naming_its_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = write_tiny_project(tmp_path, train_images=2, test_images=1, image_size=128)
    values = yaml.safe_load(params.read_text())
    values["models"]["attribute_mask_rcnn"]["train"] = {"sync_bn": True}
    params.write_text(yaml.safe_dump(values))
    line = next(n for n, text in enumerate(params.read_text().splitlines(), 1) if "sync_bn: true" in text)
    code = main(["--params", str(params), "train", "--model", "attribute_mask_rcnn", "--fold", "0", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"params.yaml:{line}: train.sync_bn needs more than one training process" in err
    assert not (tmp_path / "models").exists()
