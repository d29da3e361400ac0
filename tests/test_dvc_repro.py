"""`dvc repro` itself on a tiny copy of the project: a second run does nothing, knobs that cannot change
the weights retrain nothing and rerun nothing downstream, a comment in the training or cache code
reruns no downstream stage, a new fold runs only its own stages and what reads them, and a clone that
pulls the trained models from a DVC remote trains and predicts nothing."""
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

MODEL = "attribute_mask_rcnn"
DOWNSTREAM = ("predict-oof", "predict-test", "gather", "report", "ensemble-oof", "ensemble-test", "tune", "submit")


def dvc(project, *args) -> str:
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
           "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


# What a clone of the project's git repository holds: code, configs, params and the lock, no outputs.
TRACKED = ("dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore", "pipeline", "configs", ".dvc/config")


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def edit_params(project, change) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    change(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def tiny(params: dict) -> None:
    params["synth"].update(train_images=9, test_images=2, min_size=96, max_size=160, large_fraction=0)
    params["cache"].update(max_size=128, workers=1)
    params["folds"]["k"] = 3
    params["train"].update(models=[MODEL], folds=[0, 1], processes=1, epochs=1, warmup_steps=1)
    params["train"]["augment"]["image_size"] = 128
    params["models"] = {MODEL: {"config": params["models"][MODEL]["config"], "train": {}}}
    params["tune"]["score_candidates"] = 2
    params["df2"]["synth"].update(train_pairs=1, validation_pairs=1, min_size=96, max_size=128)
    params["df2"].update(cache_max_size=128, train={"epochs": 1, "augment": {"image_size": 128, "hflip": 0.0}})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project that trains one family on 2 of 3 folds of 9 small images, reproduced once."""
    project = tmp_path_factory.mktemp("dvc") / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    for name in ("pipeline", "configs"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    dvc_yaml = (project / "dvc.yaml").read_text()
    others = [m for m in yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["models"] if m != MODEL]
    lines = [line for line in dvc_yaml.splitlines() if not any(f"predictions/{split}/{m}" in line
                                                               for m in others for split in ("oof", "test"))]
    (project / "dvc.yaml").write_text("\n".join(lines) + "\n")
    edit_params(project, tiny)
    dvc(project, "init", "--no-scm", "-q")
    first = dvc(project, "repro")
    assert {"synth", "cache", "folds", f"train@{MODEL}-0", "submit", "synth-df2", "train-df2", "report-df2"} <= ran(first)
    return project


TRAINING = {f"train@{MODEL}-0", f"train@{MODEL}-1", "train-df2"}


def test_dvc_reruns_only_what_changed(project):
    """One scenario, in order: each step starts from the state the one before left."""
    assert ran(dvc(project, "repro")) == set()
    assert "up to date" in dvc(project, "status")

    # The train stages read whole sections: a knob outside the run key reruns them, they write nothing,
    # and nothing downstream reruns.
    edit_params(project, lambda p: p["train"].update(log_every=3, workers=1, checkpoint_every=7, threads=2))
    output = dvc(project, "repro")
    assert ran(output) == TRAINING and output.count("already trained") == len(TRAINING)

    for path in ("pipeline/models/losses.py", "pipeline/data/rle.py"):
        with open(project / path, "a") as stream:
            stream.write("\n# a comment changes the file's hash, not what the code does\n")
    output = dvc(project, "repro")
    assert ran(output) <= {"synth", "cache", f"train@{MODEL}-0", f"train@{MODEL}-1",  # synth: rle.py
                           "cache-df2@train", "cache-df2@validation", "train-df2"}
    assert output.count("already trained") == 3 and "up to date" in output

    # A new fold: its stages and what reads them; the other folds' train stages rerun (train.folds is in
    # their `train` section) and write nothing.
    edit_params(project, lambda p: p["train"].update(folds=[0, 1, 2]))
    output = dvc(project, "repro")
    stages = ran(output)
    assert {f"train@{MODEL}-2", f"predict-oof@{MODEL}-2", f"predict-test@{MODEL}-2"} <= stages
    assert not any(stage.endswith(("-0", "-1")) for stage in stages - TRAINING), stages  # trained ones: no-ops
    assert not {"synth", "cache", "folds"} & stages
    assert {stage.split("@")[0] for stage in stages} - {"train", "train-df2"} <= set(DOWNSTREAM)


def test_a_clone_that_pulls_from_a_remote_trains_and_predicts_nothing(project, tmp_path):
    """model.pt files and the predictions made with them are in DVC's cache: pushed from one clone,
    pulled into another, they match its dvc.lock and `dvc repro` there rebuilds the cheap stages only."""
    dvc(project, "remote", "add", "-d", "team", str(tmp_path / "remote"))
    dvc(project, "push")
    clone = tmp_path / "clone"
    for name in TRACKED:
        copy = shutil.copytree if (project / name).is_dir() else shutil.copy
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        copy(project / name, clone / name)
    dvc(clone, "pull")
    models = sorted(p.relative_to(project) for p in (project / "models").rglob("model.pt"))
    folds = yaml.safe_load((project / "params.yaml").read_text())["train"]["folds"]
    assert len(models) == len(folds) + 1  # and the DeepFashion2 model
    assert all(filecmp.cmp(project / model, clone / model, shallow=False) for model in models)

    changed = json.loads(dvc(clone, "status", "--json"))
    pulled = [stage for stage in changed if stage.startswith(("train", "predict", "retrieve"))]
    assert pulled and all("changed outs" not in change for stage in pulled for change in changed[stage])

    stages = ran(dvc(clone, "repro"))
    assert {"synth", "cache", "gather@" + MODEL, "submit", "report-df2"} <= stages  # not in DVC's cache
    assert not any(stage.startswith(("train", "predict", "retrieve")) for stage in stages), stages
    assert "up to date" in dvc(clone, "status")

    # A train stage that runs anyway finds the pulled model.pt's run key its own: it writes nothing.
    output = dvc(clone, "repro", "--force", "--single-item", f"train@{MODEL}-0")
    assert "already trained" in output
    assert filecmp.cmp(project / models[0], clone / models[0], shallow=False)
    assert "up to date" in dvc(clone, "status")
