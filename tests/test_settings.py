"""The settings tree: params.yaml, a profile over it and the flags, read once, checked once, with lines."""
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, write_tiny_project
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.settings.load import load_settings, merged_params, parse_set
from pipeline.settings.sections import Settings


def test_defaults_without_a_params_file_and_every_section_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings == Settings() and settings.train.models == () and settings.df2.model == ""


def test_a_profile_merges_key_by_key_and_keeps_the_rest(tmp_path):
    base, profile = tmp_path / "params.yaml", tmp_path / "p.yaml"
    base.write_text("train:\n  epochs: 3\n  augment: {image_size: 128, hflip: 0.5}\n"
                    "models:\n  m: {config: a.yaml, train: {lr: 0.1}}\n")
    profile.write_text("train:\n  augment: {hflip: 0.0}\nmodels:\n  m: {train: {epochs: 7}}\n"
                       "  n: {config: b.yaml}\n")
    settings = load_settings(base, str(profile))
    assert settings.train.epochs == 3 and settings.train.augment.image_size == 128
    assert settings.train.augment.hflip == 0.0
    entry = settings.model("m")
    assert (entry.train.lr, entry.train.epochs, str(entry.config)) == (0.1, 7, "a.yaml")
    assert settings.model("n").train.epochs == 3  # a new model entry takes `train` as it is


def test_several_profiles_merge_in_order(tmp_path):
    base, first, second = tmp_path / "params.yaml", tmp_path / "a.yaml", tmp_path / "b.yaml"
    base.write_text("train:\n  epochs: 3\n  lr: 0.1\n")
    first.write_text("train:\n  epochs: 5\n  lr: 0.2\n")
    second.write_text("train:\n  epochs: 7\n")
    for profile in ([str(first), str(second)], f"{first} {second}", f"{first},{second}"):
        settings = load_settings(base, profile)
        assert (settings.train.epochs, settings.train.lr) == (7, 0.2)
    second.write_text("train:\n  epochs: x\n")
    with pytest.raises(InputError, match=r"b.yaml:2: train.epochs: expected int"):
        load_settings(base, [str(first), str(second)])


def test_errors_name_the_file_and_line_that_set_the_value(tmp_path):
    base, profile = tmp_path / "params.yaml", tmp_path / "p.yaml"
    base.write_text("folds:\n  k: 2\ntrain:\n  epochs: 3\n  folds: [0, 1]\n")
    profile.write_text("train:\n  folds: [0, 3]\n")
    with pytest.raises(InputError, match=r"p.yaml:2: train.folds must be fold numbers within 0..1"):
        load_settings(base, str(profile))
    base.write_text("models:\n  m:\n    config: a.yaml\n    train:\n      optimzer: sgd\n")
    with pytest.raises(InputError, match=r"params.yaml:5: unknown config key 'optimzer'"):
        load_settings(base)
    base.write_text("train:\n  optimizer: rmsprop\n")
    with pytest.raises(InputError, match=r"params.yaml:2: train: optimizer must be adamw or sgd"):
        load_settings(base)


def test_flags_and_set_override_the_files_and_name_themselves(tmp_path):
    base = tmp_path / "params.yaml"
    base.write_text("cache:\n  max_size: 512\n")
    assert load_settings(base, None, [(("cache", "max_size"), 300, "--max-size")]).cache.max_size == 300
    assert load_settings(base, None, [parse_set("train.augment.hflip=0")]).train.augment.hflip == 0.0
    with pytest.raises(InputError, match=r"^--set: train.epochs: expected int, got 'many'"):
        load_settings(base, None, [parse_set("train.epochs=many")])
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        parse_set("train.epochs")


def test_the_command_line_builds_the_settings_with_its_flags(tmp_path, capsys):
    base = tmp_path / "params.yaml"
    base.write_text("folds:\n  k: 2\n")
    assert main(["--params", str(base), "--set", "folds.k=1", "folds"]) == 2
    assert "--set: folds: k must be at least 2, got 1" in capsys.readouterr().err
    assert main(["--params", str(base), "folds", "--k", "1"]) == 2
    assert "--k: folds: k must be at least 2, got 1" in capsys.readouterr().err


def test_the_real_profile_changes_what_it_names_and_keeps_the_rest():
    values, _ = merged_params(ROOT / "params.yaml", str(ROOT / "profiles" / "real.yaml"))
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert values["cache"]["max_size"] == 1024 and values["report"] == base["report"]


def test_params_yaml_is_read_once_by_a_training_command(tmp_path, monkeypatch):
    """A training run with held-out validation used to read params.yaml 8 times; settings travel instead."""
    params = write_tiny_project(tmp_path, train_images=4, test_images=1, image_size=128,
                                train={"epochs": 1, "batch_size": 2, "validate_every": 1, "validate_images": 1})
    monkeypatch.chdir(tmp_path)
    reads, read_text, resolved = [], Path.read_text, params.resolve()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
        reads.append(self) if self.resolve() == resolved else None) or read_text(self, *a, **k))
    assert main(["--params", str(params), "train", "--model", "attribute_mask_rcnn", "--fold", "0",
                 "--no-progress", "--max-steps", "1"]) == 0
    assert len(reads) == 1


def test_the_profile_command_writes_set_keys_over_the_profile(tmp_path, monkeypatch, capsys):
    """`profile real --set train.step_cap=1`: the rehearsal's params.yaml, said so in its header."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "real", "--set", "train.step_cap=1"]) == 0
    text = (tmp_path / "params.yaml").read_text()
    assert text.splitlines()[0].endswith("profile real --set train.step_cap=1`: params.yaml with "
                                         "profiles/real.yaml merged over it and those keys set.")
    merged, _ = merged_params(ROOT / "params.yaml", str(ROOT / "profiles" / "real.yaml"))
    merged["train"]["step_cap"] = 1
    assert yaml.safe_load(text) == merged
    assert main(["profile", "real", "--set", "train.step_cap=0"]) == 2
    assert "--set: train: step_cap must be at least 1 (or null), not 0" in capsys.readouterr().err
