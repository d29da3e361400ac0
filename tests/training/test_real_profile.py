"""The real-data profile (profiles/real.yaml): an overlay of params.yaml holding only what differs; every
section and config file parses through the project's loaders, and `make repro PROFILE=real` writes the
merge as the params.yaml DVC reads."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.errors import InputError
from pipeline.models.config import portable
from pipeline.models.factory import create_model, load_config
from pipeline.settings.load import load_settings, merged_params
from pipeline.training.config import training_augment

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
PROFILE = ROOT / "profiles" / "real.yaml"
REAL = load_settings(PARAMS, str(PROFILE))
EMBEDDED = yaml.safe_load(PARAMS.read_text())


def leaves(mapping: dict, prefix: tuple = ()) -> dict:
    found = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            found.update(leaves(value, (*prefix, key)))
        else:
            found[(*prefix, key)] = value
    return found


def test_the_profile_holds_only_what_differs_from_params_yaml():
    embedded = leaves(EMBEDDED)
    same = [key for key, value in leaves(yaml.safe_load(PROFILE.read_text())).items() if key in embedded and embedded[key] == value]
    assert same == []


def test_a_key_params_yaml_does_not_have_is_an_error_naming_the_profile_line(tmp_path):
    profile = tmp_path / "typo.yaml"
    profile.write_text("train:\n  epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(InputError, match="typo.yaml:3: unknown config key 'train.learning_rate'"):
        load_settings(PARAMS, str(profile))
    profile.write_text("cache:\n  max_size: big\n")
    with pytest.raises(InputError, match="typo.yaml:2: cache.max_size: expected int"):
        load_settings(PARAMS, str(profile))


@pytest.mark.parametrize("name", sorted(REAL.models))
def test_each_family_loads_with_its_own_crop_and_recipe(name):
    entry = REAL.model(name)
    assert (ROOT / entry.config).is_file() and entry.config.parts[:2] == ("configs", "real")
    config = load_config(ROOT / entry.config)
    assert config.family == name or (name, config.family) == ("layered_attention", "fashionformer")
    augment = training_augment(entry.train, config.crop_side)
    assert augment.image_size == (512 if name == "effdet_mask" else 1024)
    assert entry.train.lr_reference_batch > 0 and entry.train.schedule == "step"


def test_sections_hold_real_data_values():
    entries = {name: REAL.model(name) for name in REAL.models}
    assert set(REAL.train.models) <= set(entries)
    assert REAL.cache.max_size >= 1024 and REAL.folds.k == 5
    assert sorted(REAL.train.folds) == list(range(REAL.folds.k))
    for entry in entries.values():
        assert entry.train.workers > 0 and entry.train.checkpoint_every >= 1000 and entry.train.validate_every > 0
    assert entries["attribute_mask_rcnn"].train.optimizer == "sgd"
    assert entries["fashionformer"].train.optimizer == "adamw"
    assert entries["fashionformer"].train.backbone_lr_multiplier < 1
    assert load_config(ROOT / entries["fashionformer"].config).mask_loss == "bce"
    assert load_config(ROOT / entries["effdet_mask"].config).mask_head_channels == 256


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "real").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_real_config_builds(path):
    config = load_config(path)
    assert path.stem.startswith(config.family)
    assert sum(p.numel() for p in create_model(portable(config)).parameters()) > 0


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_make_profile_switch_merges_the_profile_and_keeps_local_edits(tmp_path):
    for name in ("Makefile", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # make's venv target finds it installed
    shutil.copy2(ROOT / "requirements.txt", tmp_path / "requirements.txt")  # older than the venv's stamp
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "start")
    make = ["make", "--no-print-directory", "profile", f"PYTHONPATH={ROOT}"]

    assert subprocess.run(make, cwd=tmp_path).returncode == 0  # no PROFILE: params.yaml untouched
    assert (tmp_path / "params.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes()
    edited = (tmp_path / "params.yaml").read_text() + "# a local edit\n"
    (tmp_path / "params.yaml").write_text(edited)
    refused = subprocess.run([*make, "PROFILE=real"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode != 0 and "uncommitted changes" in refused.stderr
    assert (tmp_path / "params.yaml").read_text() == edited
    git(tmp_path, "checkout", "params.yaml")
    merged, _ = merged_params(PARAMS, str(PROFILE))
    for _ in range(2):  # the second time params.yaml already is the profile
        assert subprocess.run([*make, "PROFILE=real"], cwd=tmp_path, capture_output=True).returncode == 0
        assert yaml.safe_load((tmp_path / "params.yaml").read_text()) == merged
    assert load_settings(tmp_path / "params.yaml") == REAL
    missing = subprocess.run([*make, "PROFILE=nope"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "no such profile" in missing.stderr



def test_the_df2_model_trains_without_held_out_scores_when_the_shared_section_asks_for_them(capsys):
    """validate_every is in the shared `train` section; the DeepFashion2 model has no Fashionpedia fold."""
    from argparse import Namespace

    from pipeline.settings.load import parse_set
    from pipeline.stages.train import validation

    settings = load_settings(PARAMS, None, [parse_set("train.validate_every=5")])
    entry = settings.model(settings.df2.model)
    assert entry.train.validate_every == 5
    assert validation(settings, Namespace(model=entry.name, fold=None), entry, None, "deepfashion2") is None
    assert "no held-out scores during training" in capsys.readouterr().out
