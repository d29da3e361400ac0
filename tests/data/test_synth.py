"""The embedded synthetic dataset: Kaggle layout, valid and learnable annotations, determinism, atomicity."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pipeline import cli
from pipeline.cli import main
from pipeline.data import ontology, rle
from pipeline.synthetic import fashionpedia as synth
from pipeline.synthetic.scene.real_shaped import RARE
from pipeline.data.annotations import read_annotations
from pipeline.errors import InputError

SMALL = {"min_size": 160, "max_size": 260, "large_fraction": 0.0}
LABELS = ontology.load()


def make(path: Path, train: int = 8, test: int = 2, seed: int = 0, **sizes) -> Path:
    return synth.generate(path, train, test, seed, **{**SMALL, **sizes})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make(tmp_path_factory.mktemp("synth") / "data", train=10, test=3)


@pytest.fixture(scope="module")
def records(dataset):
    records, errors = read_annotations(dataset / "train.csv", LABELS)
    assert errors == []
    return records


def masks_of(dataset: Path, record):
    return [rle.decode(i.rle, record.height, record.width).astype(bool) for i in record.instances]


def test_kaggle_layout_is_complete(dataset, records):
    assert sorted(p.name for p in dataset.iterdir()) == [
        "label_descriptions.json", "sample_submission.csv", "test", "train", "train.csv"]
    assert json.loads((dataset / "label_descriptions.json").read_text()) == json.loads(
        ontology.DEFAULT_PATH.read_text())
    assert len(list((dataset / "train").glob("*.jpg"))) == 10
    test_ids = sorted(p.stem for p in (dataset / "test").glob("*.jpg"))
    assert len(test_ids) == 3
    submission = pd.read_csv(dataset / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["ImageId", "EncodedPixels", "ClassId", "AttributesIds"]
    assert sorted(submission["ImageId"]) == test_ids
    assert len({r.image_id for r in records}) == 10
    for record in records:
        assert len(record.image_id) == 32 and int(record.image_id, 16) >= 0


def test_jpeg_sizes_match_the_csv(dataset, records):
    for record in records:
        with Image.open(dataset / "train" / f"{record.image_id}.jpg") as image:
            assert image.size == (record.width, record.height)
            assert image.mode == "RGB"


def test_attributes_sorted_in_the_csv(dataset):
    frame = pd.read_csv(dataset / "train.csv", dtype=str, keep_default_na=False)
    for cell in frame["AttributesIds"]:
        ids = [int(a) for a in cell.split(",")] if cell else []
        assert ids == sorted(set(ids))


def test_parts_lie_inside_a_garment_and_garments_do_not_overlap(dataset, records):
    parts_checked = 0
    for record in records:
        masks = masks_of(dataset, record)
        groups = [LABELS.category_group(i.class_id) for i in record.instances]
        wholes = [m for m, g in zip(masks, groups) if g != "part"]
        for mask, group in zip(masks, groups):
            assert mask.any()
            if group == "part":
                parts_checked += 1
                assert any(not (mask & ~whole).any() for whole in wholes)
        # occlusion: what is in front hides what is behind, so visible garments are disjoint
        coverage = np.sum(wholes, axis=0)
        assert coverage.max() <= 1
    assert parts_checked > 10


def test_variety_of_classes_instances_and_attributes(records):
    instances = [i for r in records for i in r.instances]
    classes = Counter(i.class_id for i in instances)
    assert len(classes) >= 10
    shoe, sleeve = (next(c.id for c in LABELS.categories if c.name == n) for n in ("shoe", "sleeve"))
    assert any(Counter(r.class_ids)[shoe] >= 2 for r in records)
    assert any(Counter(r.class_ids)[sleeve] >= 2 for r in records)
    with_attributes = [i for i in instances if i.class_id in ontology.CATEGORIES_WITH_ATTRIBUTES]
    assert any(i.attributes for i in with_attributes)
    assert any(not i.attributes for i in with_attributes)
    assert all(not i.attributes for i in instances if i.class_id not in ontology.CATEGORIES_WITH_ATTRIBUTES)
    patterns = set(LABELS.attributes_of_supercategory("textile pattern"))
    assert len({a for i in instances for a in i.attributes} & patterns) >= 3


def test_no_tiny_instances(dataset, records):
    for record in records:
        for mask in masks_of(dataset, record):
            assert mask.sum() >= max(synth.MIN_AREA_PIXELS, synth.MIN_AREA_FRACTION * mask.size)


def test_same_seed_same_bytes_other_seed_different(dataset, tmp_path):
    again = make(tmp_path / "again", train=10, test=3)
    for name in ("train.csv", "sample_submission.csv"):
        assert (again / name).read_bytes() == (dataset / name).read_bytes()
    for image in (dataset / "train").iterdir():
        assert (again / "train" / image.name).read_bytes() == image.read_bytes()
    other = make(tmp_path / "other", train=2, test=0, seed=1)
    assert set(p.name for p in (other / "train").iterdir()).isdisjoint(p.name for p in (dataset / "train").iterdir())
    assert (other / "train.csv").read_bytes() != (dataset / "train.csv").read_bytes()


def test_large_images_over_2000_px(tmp_path):
    path = make(tmp_path / "large", train=1, test=0, large_fraction=1.0)
    (record,), _ = read_annotations(path / "train.csv", LABELS)
    assert max(record.height, record.width) > 2000
    with Image.open(path / "train" / f"{record.image_id}.jpg") as image:
        assert image.size == (record.width, record.height)


def test_sizes_follow_the_config(records):
    assert all(SMALL["min_size"] - 1 <= max(r.height, r.width) <= SMALL["max_size"] + 1 for r in records)


class Interrupted(Exception):
    pass


def fail_on_third_image(monkeypatch):
    calls = []
    real = synth.write_jpeg

    def failing(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise Interrupted
        real(path, image)

    monkeypatch.setattr(synth, "write_jpeg", failing)


def test_failed_run_leaves_no_output(tmp_path, monkeypatch):
    fail_on_third_image(monkeypatch)
    with pytest.raises(Interrupted):
        make(tmp_path / "data", train=4, test=1)
    assert list(tmp_path.iterdir()) == []


def test_failed_run_keeps_the_previous_dataset(tmp_path, monkeypatch):
    out = make(tmp_path / "data", train=2, test=1)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    fail_on_third_image(monkeypatch)
    with pytest.raises(Interrupted):
        make(out, train=4, test=1, seed=5)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_rerun_replaces_the_previous_dataset(tmp_path):
    out = make(tmp_path / "data", train=3, test=1)
    make(out, train=2, test=0, seed=1)
    assert len(list((out / "train").iterdir())) == 2
    assert list((out / "test").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_refuses_to_replace_an_unrelated_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing"):
        make(tmp_path, train=1, test=0)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("bad", [
    {"train_images": 0}, {"test_images": -1}, {"seed": -2}, {"min_size": 10},
    {"min_size": 500, "max_size": 400}, {"large_fraction": 1.5}, {"train_images": 2.5},
])
def test_bad_config_is_an_input_error_naming_its_line(tmp_path, bad, capsys):
    config = {"train_images": 1, "test_images": 0, "seed": 0, **SMALL, **bad}
    with pytest.raises((ValueError, TypeError)):
        synth.build(tmp_path / "data", synth.SynthConfig(**config))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"synth": {"out": str(tmp_path / "data"), **config}}, sort_keys=False))
    assert main(["--params", str(params), "synth"]) == 2
    error = capsys.readouterr().err
    lines = {3 + list(config).index(key) for key in bad}  # `synth:` is line 1, `out:` line 2
    assert any(f"params.yaml:{line}: synth" in error for line in lines), error
    assert not (tmp_path / "data").exists()


def test_cli_flags_override_params_and_print_a_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("synth:\n  out: from_params\n  train_images: 1\n  test_images: 1\n"
                                   "  seed: 0\n  min_size: 128\n  max_size: 200\n  large_fraction: 0.0\n")
    assert cli.main(["synth", "--train-images", "2", "--out", "flagged"]) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("synth: 2 train + 1 test images, ") and summary.endswith("-> flagged")
    assert len(list(Path("flagged/train").iterdir())) == 2
    assert not Path("from_params").exists()


def test_cli_bad_arguments_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["synth", "--out", "x", "--train-images", "-3"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "train_images must be >= 1" in error
    assert len(error.strip().splitlines()) == 1
    assert not Path("x").exists()


def test_fashionpedia_layout_holds_the_same_images_and_instances(dataset, records, tmp_path):
    """The same seed in Fashionpedia's files: train2020's instances are train.csv's; the test images are
    val2020, annotated; a real Fashionpedia folder (no synthetic.json) is never replaced."""
    from pipeline.data.fashionpedia import load_instances

    out = synth.build(tmp_path / "fp", synth.SynthConfig(10, 3, 0, layout="fashionpedia", **SMALL)).path
    assert sorted(p.name for p in out.iterdir()) == [
        "instances_attributes_train2020.json", "instances_attributes_val2020.json", "synthetic.json", "test", "train"]
    for split in ("train", "test"):
        assert sorted(p.read_bytes() for p in (out / split).iterdir()) == sorted(
            p.read_bytes() for p in (dataset / split).iterdir())
    train, skipped = load_instances(out / "instances_attributes_train2020.json", LABELS)
    assert not skipped
    content = lambda r: (r.image_id, r.height, r.width, [(i.class_id, i.rle, i.attributes) for i in r.instances])  # noqa: E731
    ours = [train.record(image) for image in train.annotated()]
    assert [content(r) for r in ours] == [content(r) for r in records]
    assert all(i.area == rle.decode(i.rle, r.height, r.width).sum() for r in ours for i in r.instances)
    val, _ = load_instances(out / "instances_attributes_val2020.json", LABELS)
    assert sorted(image.image_id for image in val.images) == sorted(p.stem for p in (dataset / "test").iterdir())
    assert len(val.annotations) > 3
    real = tmp_path / "real"
    real.mkdir()
    (real / "instances_attributes_train2020.json").write_text("{}")
    with pytest.raises(InputError, match="holds no synthetic.json"):
        synth.build(real, synth.SynthConfig(1, 1, layout="fashionpedia", **SMALL))


def test_real_shaped_sizes_spread_like_fashionpedias_up_to_max_size():
    """Megapixels log-normal around 0.75 MP with a tail of large phone photos; each split's first image at
    max_size, so a rehearsal's few images hold the worst case."""
    config = synth.SynthConfig(train_images=1, test_images=1, min_size=320, max_size=5000, real_shaped=True)
    sizes = np.array([synth.image_size(np.random.default_rng([0, 0, i]), config, i == 0) for i in range(2000)])
    longest, megapixels = sizes.max(1), sizes.prod(1) / 1e6
    assert longest[0] == 5000 and longest.min() >= 320 and longest.max() == 5000
    assert 0.5 <= np.median(megapixels) <= 1.0
    assert 0.01 <= (megapixels > 4).mean() <= 0.1 and (longest[1:] > 3000).any()
    assert (sizes[:, 0] > sizes[:, 1]).mean() > 0.6  # mostly portrait


def test_real_shaped_scenes_have_about_seven_instances_of_a_long_tail_of_categories(tmp_path):
    data = make(tmp_path / "data", train=80, test=0, min_size=120, max_size=240, real_shaped=True)
    records, errors = read_annotations(data / "train.csv", LABELS)
    assert errors == []
    per_image = [len(r.instances) for r in records]
    counts = Counter(i.class_id for r in records for i in r.instances)
    assert 6 <= np.mean(per_image) <= 9.5
    assert len(counts) >= 30  # of 46; the embedded scenes draw 20
    rare = {c.id for c in LABELS.categories if c.name in RARE}
    assert len(set(counts) & rare) >= 10
    common = sum(n for _, n in counts.most_common(5))
    assert common >= 0.5 * sum(counts.values())  # a few categories hold most instances ...
    assert sum(n <= 2 for n in counts.values()) >= 8  # ... and many are rare
    with_attributes = [i for r in records for i in r.instances if i.class_id in ontology.CATEGORIES_WITH_ATTRIBUTES]
    assert np.mean([len(i.attributes) > 0 for i in with_attributes]) > 0.5
