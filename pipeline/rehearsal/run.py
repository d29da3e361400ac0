"""`make rehearsal`: a profile's whole DAG (`dvc repro`) on the CPU at the real shapes, in a copy of the project.

What differs from the real run: the data are generated, shaped like the real sets (`real_shaped`
Fashionpedia-like photos up to `max_size` px, DeepFashion2-like ones up to 1300 px); every training
run ends after `step_cap` optimizer steps (`train.step_cap`, set with `--set` over the profile, never
in it: model files and train.json say they are capped); pretrained starts are random tensors planted in
each library's cache (`pipeline.models.planting`) in a temporary TORCH_HOME and HF_HOME; the network
is blocked in every command (connections off this host refused and recorded). Everything else is the
profile as `make repro PROFILE=...` runs it: `python -m pipeline profile`, then `dvc repro`, then the
Kaggle notebook on the model files and test images. Each command's seconds and peak memory, carried
over to the real sets' sizes (`extrapolate`), go into a table and a JSON report.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from pipeline import io
from pipeline.data.deepfashion2.annotations import read_annotations
from pipeline.errors import InputError
from pipeline.models.factory import load_config
from pipeline.models.planting import plant
from pipeline.models.starts import named_start
from pipeline.rehearsal import extrapolate, notebook
from pipeline.rehearsal.measure import Usage, measured, read_log, write_shim
from pipeline.settings.load import GENERATED, load_settings
from pipeline.synthetic import fashionpedia
from pipeline.synthetic.config import Df2SynthConfig, SynthConfig
from pipeline.synthetic.deepfashion2 import dataset as df2_dataset
from pipeline.training.engine import total_steps

# What the rehearsal's own commands' rows say.
OWN = {"profile": "the profile with the rehearsal's keys set over it, into params.yaml: not extrapolated",
       "dvc init": "DVC's own: not extrapolated",
       "dvc repro": "every stage above and DVC's bookkeeping: not extrapolated",
       "notebook": "linear in test images (start-up included: an upper bound)"}
COPIED = ("dvc.yaml", "params.yaml", ".dvcignore", "pipeline", "configs", "profiles", "notebooks")
DF2_SIZES = (300, 1300)  # DeepFashion2's photos: longest side up to about 1300 px
# Every command of the rehearsal runs with this as sitecustomize: connections off this host are refused
# and written down (the kernel of the notebook talks to it over loopback).
BLOCK_NETWORK = '''
import ipaddress, os, socket

_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo

def _local(host):
    if host in (None, "", "localhost") or str(host).startswith("/"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False

def _refuse(what):
    with open({log!r}, "a") as stream:
        stream.write(f"{{os.getpid()}} {{what}}\\n")
    raise OSError(f"network blocked in a rehearsal: {{what}}")

def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect {{address}}")
    return _connect(self, address)

def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        _refuse(f"getaddrinfo {{host}}")
    return _getaddrinfo(host, *args, **kwargs)

socket.socket.connect = _guarded_connect
socket.getaddrinfo = _guarded_getaddrinfo
'''


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to rehearse: the profile, the cap and the sizes of the generated sets."""

    profile: str = "real"
    step_cap: int = 1
    folds: int | None = None  # train (and predict) the first N of the profile's folds; None: all of them
    train_images: int = 5
    test_images: int = 1
    max_size: int = 5000     # longest side of the largest photo (the first of each split)
    df2_pairs: int = 1       # outfits in each DeepFashion2 split
    seed: int = 0
    notebook: bool = True


def rehearse(root: Path, folder: Path, plan: Plan, out: Path) -> int:
    """Rehearse `plan` for the project at `root` in `folder`; the table printed, the JSON written to
    `out`; 0 when every command succeeded and nothing tried the network, else 1."""
    start, load_before = time.perf_counter(), os.getloadavg()
    project, log, network = folder / "project", folder / "commands.jsonl", folder / "network.log"
    copy_project(root, project)
    env = environment(folder, project, log, network)
    keys = overrides(project, plan)
    steps = {"profile": measured([sys.executable, "-m", "pipeline", "profile", plan.profile, *keys], env, project)}
    settings = load_settings(project / "params.yaml")
    prepared = prepare(project, settings, plan, env)
    if steps["profile"].returncode == 0:
        steps["dvc init"] = measured([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], env, project)
        steps["dvc repro"] = measured([sys.executable, "-m", "dvc", "repro"], env, project)
    counts = data_counts(project, settings)
    if plan.notebook and all(s.returncode == 0 for s in steps.values()):
        steps["notebook"] = run_notebook(folder, project, settings, env)
    steps_of_real_run = real_steps(settings)
    rows = [*prepared, *(extrapolate.row(u, counts, steps_of_real_run) for u in read_log(log))]
    rows += [extrapolate.Row(name, u.returncode, u.seconds, u.cpu_seconds, u.peak_rss_mb,
                             *notebook_images(name, counts), OWN[name]) for name, u in steps.items()]
    attempts = network.read_text().splitlines() if network.exists() else []
    failed = [r.stage for r in rows if r.returncode != 0] + (["network"] if attempts else [])
    report = summary(plan, rows, counts, attempts, failed, time.perf_counter() - start, load_before)
    report["set_over_the_profile"] = keys[1::2]
    io.write_json(out, report)
    print(extrapolate.table(rows))
    print(f"\nrehearsal of profile {plan.profile} ({', '.join(keys[1::2])}): "
          f"{report['total_minutes']} min, "
          f"load average {load_before[0]:.1f} before, {report['load_after'][0]:.1f} after, {os.cpu_count()} CPUs; "
          f"{'FAILED: ' + ', '.join(failed) if failed else 'every stage ran'} -> {out}")
    for line in attempts[:5]:
        print(f"network attempt: {line}")
    return 1 if failed else 0


def overrides(project: Path, plan: Plan) -> list[str]:
    """The keys set over the profile: the step cap, and with `plan.folds` the folds trained."""
    keys = ["--set", f"train.step_cap={plan.step_cap}"]
    if plan.folds is not None:
        folds = load_settings(project / "params.yaml", plan.profile).trained_folds()[:plan.folds]
        keys += ["--set", f"train.folds={folds}"]
    return keys


def copy_project(root: Path, project: Path) -> None:
    """The files the DAG reads, a committed params.yaml where the working one is a generated profile."""
    project.mkdir(parents=True)
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, project / name)
    if (project / "params.yaml").read_text().startswith(GENERATED):
        raise InputError("is a generated profile, not the base a rehearsal merges over: `git checkout params.yaml`",
                         root / "params.yaml")


def environment(folder: Path, project: Path, log: Path, network: Path) -> dict:
    """The commands' environment: the measuring `python` first on PATH, empty library caches but for the
    planted starts, the network blocked, the copy's package importable."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK.format(log=str(network)))
    shim = write_shim(folder / "bin", log)
    env = {**os.environ, "PATH": os.pathsep.join([str(shim.parent), os.path.dirname(sys.executable),
                                                  os.environ.get("PATH", "")]),
           "PYTHONPATH": os.pathsep.join([str(site), str(project)]), "TORCH_HOME": str(folder / "torch"),
           "HF_HOME": str(folder / "hf"), "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        env.pop(name, None)
    return env


def prepare(project: Path, settings, plan: Plan, env: dict) -> list[extrapolate.Row]:
    """The rehearsal's own steps before the DAG, timed: plant the starts, generate the data."""
    begin = time.perf_counter()
    planted = plant_starts(project, settings, env)
    rows = [extrapolate.Row("plant starts", 0, round(time.perf_counter() - begin, 1), 0, 0, None, None,
                            f"rehearsal only: {len(planted)} random checkpoints in published layouts")]
    begin = time.perf_counter()
    generate(project, settings, plan)
    rows.append(extrapolate.Row("generate data", 0, round(time.perf_counter() - begin, 1), 0, 0, None, None,
                                "rehearsal only: the real-shaped sets in place of the downloaded ones"))
    return rows


def plant_starts(project: Path, settings, env: dict) -> list[str]:
    """A random checkpoint of every named start the trained models name, in the commands' library caches."""
    names = [*settings.train.models, *[settings.df2.model] * bool(settings.df2.model)]
    inits = sorted({load_config(project / settings.model(name).config).init for name in names} - {None})
    saved = {name: os.environ.get(name) for name in ("TORCH_HOME", "HF_HOME")}
    os.environ.update(TORCH_HOME=env["TORCH_HOME"], HF_HOME=env["HF_HOME"])
    try:
        return [str(plant(init, project / "weights")) for init in inits if named_start(init) is not None]
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.update({name: value})


def generate(project: Path, settings, plan: Plan) -> None:
    """The real-shaped sets where the profile reads the downloaded ones (`data.root`, `df2.root`)."""
    fashionpedia.build(project / settings.data.root, SynthConfig(
        plan.train_images, plan.test_images, plan.seed, min_size=320, max_size=plan.max_size, real_shaped=True))
    if settings.df2.model:
        df2_dataset.build(project / settings.df2.root, Df2SynthConfig(
            plan.df2_pairs, plan.df2_pairs, plan.seed, min_size=DF2_SIZES[0], max_size=DF2_SIZES[1]))


def data_counts(project: Path, settings) -> extrapolate.Counts:
    folds_file = project / settings.folds.out
    held_out = pd.read_csv(folds_file)["fold"].value_counts().to_dict() if folds_file.exists() else {}
    root, df2 = project / settings.data.root, project / settings.df2.root
    df2_images = {split: len(read_annotations(df2 / split / "annos")) if (df2 / split).exists() else 0
                  for split in ("train", "validation")}
    return extrapolate.Counts(len(list((root / "train").glob("*.jpg"))), len(list((root / "test").glob("*.jpg"))),
                              df2_images["train"], df2_images["validation"],
                              held_out, settings.folds.k)


def real_steps(settings) -> dict[str, int]:
    """The optimizer steps each training stage takes in the real run (on the real sets' images): the
    recipe's `steps` at the run's global batch, or its epochs (a DeepFashion2 image counted as one item)."""
    steps = {}
    train_images = extrapolate.REAL_IMAGES["train"]
    for name in settings.train.models:
        train = settings.model(name).train
        per_fold = train_images - train_images // settings.folds.k
        for fold in settings.trained_folds():
            steps[f"train@{name}-{fold}"] = total_steps(train, per_fold, train.processes)
    if settings.df2.model:
        train = settings.model(settings.df2.model).train
        steps["train-df2"] = total_steps(train, extrapolate.REAL_IMAGES["df2_train"], train.processes)
    return steps


def run_notebook(folder: Path, project: Path, settings, env: dict) -> Usage:
    """The Kaggle notebook on every fold's model.pt and the test images, measured as one command."""
    models = {name: [project / "models" / name / f"fold{k}" / "model.pt" for k in settings.trained_folds()]
              for name in settings.train.models}
    work = folder / "kaggle" / "working"
    work.mkdir(parents=True, exist_ok=True)  # a kernel's cwd and working folder exist before it starts
    spec = {"notebook": str(project / notebook.NOTEBOOK), "cwd": str(folder / "kaggle"),
            "parameters": notebook.parameters(project, settings, work, models)}
    io.write_json(folder / "notebook.json", spec)
    return measured([sys.executable, "-m", "pipeline.rehearsal.notebook", str(folder / "notebook.json")], env,
                    folder / "kaggle")


def notebook_images(name: str, counts) -> tuple[int | None, int | None]:
    if name != "notebook":
        return None, None
    return counts.test, extrapolate.REAL_IMAGES["test"]


def summary(plan: Plan, rows, counts, attempts, failed, seconds: float, load_before) -> dict:
    return {
        "plan": dataclasses.asdict(plan), "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()], "total_minutes": round(seconds / 60, 1),
        "data": dataclasses.asdict(counts), "real_images": extrapolate.REAL_IMAGES,
        "rows": [{**dataclasses.asdict(r), "real_hours": r.real_hours} for r in rows],
        "network_attempts": attempts, "failed": failed,
    }
