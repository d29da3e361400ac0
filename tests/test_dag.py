"""dvc.yaml against params.yaml and the CLI: the DAG names what the stages really read and run."""
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_ensemble_stages_list_every_trained_family():
    """DVC cannot read a dependency list from params: the lines must follow train.models by hand."""
    models = PARAMS["train"]["models"]
    assert sorted(d for d in DVC["ensemble-oof"]["deps"] if d.startswith("predictions/")) == sorted(
        f"predictions/oof/{m}.csv" for m in models)
    assert sorted(d for d in DVC["ensemble-test"]["deps"] if d.startswith("predictions/")) == sorted(
        f"predictions/test/{m}" for m in models)


def test_every_stage_runs_a_pipeline_subcommand():
    names = {name for name, _, _ in COMMANDS}
    for stage, spec in DVC.items():
        for command in spec["cmd"].split("&&"):
            words = shlex.split(command)
            assert words[:3] == ["python", "-m", "pipeline"], stage
            assert words[3] in names, (stage, words[3])


def test_dag_order_from_cache_to_submission():
    """`dvc dag` resolves the file: each stage's inputs come out of the stage before it."""
    out = subprocess.run([sys.executable, "-m", "dvc", "dag", "--outs", "--dot"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    edges = {tuple(part.strip().strip('"') for part in line.rstrip(";").split("->"))
             for line in out.splitlines() if "->" in line}
    chain = ["predictions/oof/attribute_mask_rcnn.csv", "predictions/oof/ensemble.csv", "tuning/thresholds.json",
             "submissions/submission.csv"]
    for upstream, downstream in zip(chain, chain[1:]):
        assert (upstream, downstream) in edges, (upstream, downstream, sorted(edges))
