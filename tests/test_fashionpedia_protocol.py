"""The papers' protocol end to end: `make repro PROFILE=fashionpedia` on a tiny generated set in
Fashionpedia's layout trains on every training image, predicts, ensembles and scores val2020, and
its numbers are the official evaluators' on the same files."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from test_dvc_repro import MODEL, dvc, edit_params, ran, tiny

from pipeline import layout
from pipeline.evaluation.reference_runners import run_cocoeval, run_fpeval

DAG = "profiles/fashionpedia/dvc.yaml"
PAPERS = yaml.safe_load((ROOT / DAG).read_text())["stages"]
VAL = "data/fashionpedia/instances_attributes_val2020.json"


def make(project: Path, *args: str) -> str:
    """`make` in the copy with this interpreter's environment as its .venv, never reinstalled (-o)."""
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(["make", f"VENV={venv}", "-o", f"{venv}/.installed", *args], cwd=project, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def test_make_runs_a_profile_s_own_dag():
    def commands(*args):
        # --no-print-directory: under a parent make (CI's `make test`) make -n adds "Leaving directory" lines
        return subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "repro", *args],
                              cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()

    assert commands("PROFILE=fashionpedia")[-2:] == ["python -m pipeline profile fashionpedia", f"dvc repro {DAG}"]
    assert commands("PROFILE=real")[-1].strip() == "dvc repro"
    assert commands("PROFILE=real fashionpedia")[-2:] == ["python -m pipeline profile real fashionpedia",
                                                         f"dvc repro {DAG}"]
    assert commands()[-1].strip() == "dvc repro"


def test_papers_dag_paths_are_the_layout_module_s():
    models = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["models"]
    assert [str(layout.model_file("${item.model}", layout.ALL_FOLDS))] == list(PAPERS["train-all"]["outs"][0])
    assert [str(layout.all_predictions("${item.model}"))] == list(PAPERS["predict-all"]["outs"][0])
    assert sorted(d for d in PAPERS["ensemble-all"]["deps"] if d.startswith("predictions/")) == sorted(
        str(layout.all_predictions(m)) for m in models)  # by hand: one line per family of train.models
    assert list(PAPERS["ensemble-all"]["outs"][0]) == [str(layout.all_predictions(layout.ENSEMBLE))]
    assert list(PAPERS["score-all"]["metrics"][0]) == [str(layout.val_metrics("${item.model}"))]
    assert list(PAPERS["score-ensemble"]["metrics"][0]) == [str(layout.val_metrics(layout.ENSEMBLE))]
    assert all(stage["wdir"] == "../.." for stage in PAPERS.values())


def test_the_all_fold_predicts_and_ensembles_the_test_split_into_predictions_all(capsys):
    from argparse import Namespace

    from pipeline.cli import main
    from pipeline.errors import InputError
    from pipeline.settings.load import load_settings
    from pipeline.stages.ensemble import input_files

    settings = load_settings(ROOT / "params.yaml")
    args = Namespace(inputs=None, weights=None, split="test", fold=layout.ALL_FOLDS)
    assert input_files(settings, args) == [(layout.all_predictions(m), settings.ensemble.weight(m))
                                           for m in settings.train.models]
    with pytest.raises(InputError, match="test split only"):
        input_files(settings, Namespace(**{**vars(args), "split": "oof"}))
    assert main(["--params", str(ROOT / "params.yaml"), "predict", "--model", MODEL, "--fold", "all",
                 "--split", "oof"]) == 2
    assert "none is out of fold" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["folds"], ["report"], ["tune"]])
def test_cross_validation_refuses_the_fashionpedia_layout_in_one_line(command, capsys):
    from pipeline.cli import main

    assert main(["--params", str(ROOT / "params.yaml"), "--profile", str(ROOT / "profiles/fashionpedia.yaml"),
                 *command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "profiles/fashionpedia.yaml:" in err[0] and "train.csv" in err[0], err


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project with one family and the generated set at the profile's data.root."""
    project = tmp_path_factory.mktemp("papers") / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "Makefile"):
        shutil.copy(ROOT / name, project / name)
    for name in ("pipeline", "configs", "profiles"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "dvc.lock"))
    others = [m for m in yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["models"] if m != MODEL]
    text = (project / DAG).read_text().splitlines()
    (project / DAG).write_text("\n".join(l for l in text if not any(f"all/{m}.csv" in l for m in others)) + "\n")
    edit_params(project, tiny)
    edit_params(project, lambda p: p["train"].update(validate_every=4, validate_images=2))  # scored on val2020
    subprocess.run([sys.executable, "-m", "pipeline", "synth", "--layout", "fashionpedia", "--out", "data/fashionpedia",
                    "--train-images", "8", "--test-images", "3", "--min-size", "96", "--max-size", "160",
                    "--large-fraction", "0"], cwd=project, check=True, capture_output=True)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@local"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    dvc(project, "init", "-q")
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=project, check=True)  # `profile` merges over HEAD's
    return project


@pytest.mark.slow
def test_make_repro_fashionpedia_scores_val2020_as_the_official_evaluators(project):
    stages = ran(make(project, "repro", "PROFILE=fashionpedia"))
    papers = {f"{DAG}:{name}" for name in (f"train-all@{MODEL}", f"predict-all@{MODEL}", "ensemble-all",
                                            f"score-all@{MODEL}", "score-ensemble")}
    assert stages == {"weights", "cache"} | papers  # nothing of the Kaggle protocol (folds, OOF, tune, submit)
    assert (project / layout.model_file(MODEL, "all")).exists()
    for name in (MODEL, layout.ENSEMBLE):
        metrics = json.loads((project / layout.val_metrics(name)).read_text())
        assert metrics["images"] == 3
        if name == layout.ENSEMBLE:  # scored from the official results JSON the stage wrote
            results = project / "predictions/all/ensemble.json"
        else:
            results = project / "reference_results.json"
            assert subprocess.run([sys.executable, "-m", "pipeline", "fashionpedia-results", "--pred",
                                   str(layout.all_predictions(name)), "--images", VAL, "--out", str(results)],
                                  cwd=project, capture_output=True).returncode == 0
        load = lambda path: json.loads(path.read_text())  # noqa: E731  (each reference changes its input)
        assert load(results), "no prediction to score"
        coco, fpeval = run_cocoeval(load(project / VAL), load(results)), run_fpeval(load(project / VAL), load(results))
        assert metrics["ap_iou"] == pytest.approx(coco.stats[0], abs=1e-9)
        assert metrics["ap_iou_f1"] == pytest.approx(fpeval.results["AP"], abs=1e-9)
    assert ran(make(project, "repro", "PROFILE=fashionpedia")) == set()
    assert "up to date" in dvc(project, "status", DAG)
