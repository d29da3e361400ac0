"""Seeded model quality: the out-of-fold protocol over N seeds, mean and standard deviation.

For every model and variant, each seed runs the pipeline's own stages as subprocesses in a folder
of its own (`<out-dir>/<model>/<variant>/seed<S>`): `train` on every fold but the scored one,
`predict --split oof` of the scored fold's images, `gather`, and `evaluate` (the project's
evaluator) against the ground truth of the scored folds' images.
The default scores fold 0 (`--folds 0`); `--folds 0 1` trains and scores each fold and pools them.

A variant is a name and overrides, KEY=VALUE with VALUE read as YAML:
  `config.KEY`  a key of the model's config YAML (e.g. config.num_stages=6),
  `train.KEY`   a training knob of this model (params `models.<model>.train`, e.g. train.lr=0.001),
  otherwise     a dotted params path (e.g. predict.tta.hflip=true).
`--set` overrides apply to every variant, before the variant's own. The repository's params.yaml
and configs are only read: each run gets its own params file and config copy, paths made absolute.

The protocol (before any override): one training process with the params' global batch
(processes x batch_size), torch threads 1, no DataLoader workers; prediction without TTA on one
thread; evaluation in one process. A seed sets `train.seed`, which seeds the new layers' initialisation, the data order and
the augmentation. Data, cache, folds and weights must exist (`dvc repro weights folds`).
A seed folder that already holds the finished run is not trained again.

Per seed the JSON has ap_iou, ap_iou_f1 and kaggle (the scored folds' images pooled), the
optimizer steps, `train_seconds` (the training loop's wall time, from runs.jsonl),
`train_cpu_seconds` (the train commands' user + system CPU time, start-up included: on a shared
CPU the steadier measure), `predict_seconds` (the predict commands' wall time) and the last logged
training loss; per variant their mean and sample standard deviation (null for a single seed).
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.errors import InputError
from pipeline.models.starts import named_start

SCORES = ("ap_iou", "ap_iou_f1", "kaggle")
SUMMARISED = (*SCORES, "steps", "train_seconds", "train_cpu_seconds", "predict_seconds")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `pipeline`, for the subprocesses


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", help="params `models` names (default: params train.models)")
    parser.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
                        help="a variant: its name, then overrides (repeatable; default: one variant 'default')")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="overrides for every variant")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default: %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed+1, ...")
    parser.add_argument("--folds", type=int, nargs="+", default=[0], help="folds scored (default: 0)")
    parser.add_argument("--tta", action="store_true", help="predict with params' predict.tta (default: none)")
    parser.add_argument("--out-dir", help="run folder, kept (default: a temporary folder, removed)")


def parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"override {text!r} is not KEY=VALUE")
    return key, yaml.safe_load(value)


def variants(args) -> dict[str, dict]:
    """{name: {key: value}}: the --set overrides, then each variant's own."""
    common = dict(parse_override(text) for text in args.overrides)
    given = args.variant or [["default"]]
    names = [words[0] for words in given]
    if len(set(names)) != len(names) or any("=" in name or "/" in name for name in names):
        raise InputError(f"variant names must be unique words without '=' or '/', got {names}")
    return {words[0]: {**common, **dict(parse_override(text) for text in words[1:])} for words in given}


def set_path(mapping: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        mapping = mapping.setdefault(key, {})
        if not isinstance(mapping, dict):
            raise InputError(f"override {dotted}: {key} is not a mapping")
    mapping[last] = value


def absolute(path: str | Path) -> str:
    return str(Path(path).resolve())


def protocol(settings: dict) -> dict:
    """The params with the protocol's training and prediction layout and absolute data paths."""
    settings = copy.deepcopy(settings)
    train = settings.setdefault("train", {})
    train.update(batch_size=int(train.get("processes", 1)) * int(train.get("batch_size", 2)), processes=1,
                 threads=1, workers=0, checkpoint_every=10**6, validate_every=0)
    predict = settings.setdefault("predict", {})
    predict["threads"] = 1
    settings.setdefault("evaluate", {})["workers"] = 1  # one process, as training and prediction
    settings["data"]["root"] = absolute(settings["data"]["root"])
    settings["cache"]["dir"] = absolute(settings["cache"]["dir"])
    settings["folds"].update(out=absolute(settings["folds"]["out"]), report=absolute(settings["folds"]["report"]))
    return settings


def run_settings(settings: dict, model: str, overrides: dict, seed: int, tta: bool, config_path: Path) -> dict:
    """One run's params: the protocol, this model's config copy, the seed, then the overrides."""
    settings = copy.deepcopy(settings)
    if not tta:
        settings.setdefault("predict", {})["tta"] = {"hflip": False, "scales": [1.0]}
    settings["train"]["seed"] = seed
    entry = settings["models"][model]
    entry["config"] = str(config_path)
    entry["train"] = dict(entry.get("train") or {})
    for key, value in overrides.items():
        if key.startswith("train."):
            set_path(entry["train"], key.removeprefix("train."), value)
        elif not key.startswith("config."):
            set_path(settings, key, value)
    return settings


def model_config(path: str | Path, overrides: dict) -> dict:
    """The model's config YAML with the `config.` overrides and its `init` file made absolute."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    for key, value in overrides.items():
        if key.startswith("config."):
            config[key.removeprefix("config.")] = value
    if config.get("init") and named_start(config["init"]) is None:  # a file (made by then); timm:... stays
        config["init"] = absolute(config["init"])
    return config


def labels_file(settings: dict) -> Path:
    """The dataset's label_descriptions.json, as the stages find it (`ontology.load_for_dataset`)."""
    from pipeline.data.ontology import DEFAULT_PATH

    path = Path(settings["data"]["root"]) / "label_descriptions.json"
    return path if path.exists() else DEFAULT_PATH


def check_inputs(settings: dict, params_path: str) -> None:
    needed = [Path(settings["data"]["root"]) / "train.csv", Path(settings["cache"]["dir"]) / "train.h5",
              Path(settings["folds"]["out"])]
    for path in needed:
        if not path.exists():
            raise InputError(f"{path} not found: run `dvc repro weights folds` (or the commands `python -m "
                             "pipeline weights`, `synth`, `cache --split all`, `folds`) first", params_path)


def stage(folder: Path, *words: str) -> tuple[float, float]:
    """`python -m pipeline --params params.yaml <words>` in `folder`; its wall and CPU seconds (user +
    system: on a CPU shared with other jobs the wall time says more about them than about the run)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
    start, used = time.perf_counter(), cpu_seconds()
    done = subprocess.run([sys.executable, "-m", "pipeline", "--params", "params.yaml", *words], cwd=folder,
                          env=env, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(words)} failed in {folder} (exit {done.returncode}):\n{tail}")
    return time.perf_counter() - start, cpu_seconds() - used


def cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scored_ground_truth(settings: dict, folds: list[int], out: Path) -> Path:
    """The rows of train.csv whose image is in `folds`, streamed into `out`: every scored image
    counts, also one the model finds nothing in."""
    assigned = {row["ImageId"]: int(row["fold"]) for row in csv.DictReader(open(settings["folds"]["out"]))}
    with open(Path(settings["data"]["root"]) / "train.csv", newline="") as source, \
            open(out, "w", newline="") as target:
        reader = csv.reader(source)
        writer = csv.writer(target)
        header = next(reader)
        writer.writerow(header)
        column = header.index("ImageId")
        writer.writerows(row for row in reader if assigned.get(row[column]) in folds)
    return out


def one_seed(folder: Path, model: str, folds: list[int], ground_truth: Path) -> dict:
    """Train, predict, gather and evaluate one seed's run in `folder` (its params.yaml is there)."""
    steps, train_seconds, train_cpu, predict_seconds, loss = 0, 0.0, 0.0, 0.0, 0.0
    for fold in folds:
        train_cpu += stage(folder, "train", "--model", model, "--fold", str(fold), "--no-progress")[1]
        run_dir = folder / "models" / model / f"fold{fold}"
        summary = json.loads((run_dir / "train.json").read_text())
        runs = [json.loads(line) for line in (run_dir / "runs.jsonl").read_text().splitlines()]
        steps += summary["steps"]
        train_seconds += sum(run["seconds"] for run in runs)
        loss += summary["final_losses"]["loss"] / len(folds)
        predict_seconds += stage(folder, "predict", "--model", model, "--fold", str(fold), "--split", "oof")[0]
    stage(folder, "gather", "--model", model, "--folds", *map(str, folds))
    labels = ground_truth.parent / "label_descriptions.json"
    stage(folder, "evaluate", "--gt", str(ground_truth), "--pred", str(Path("predictions", "oof", f"{model}.csv")),
          "--labels", str(labels), "--out", "metrics.json")
    metrics = json.loads((folder / "metrics.json").read_text())
    return {**{key: metrics[key] for key in SCORES}, "images": metrics["images"], "steps": steps,
            "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu, 1),
            "predict_seconds": round(predict_seconds, 1),
            "final_loss": loss}


def summary(rows: list[dict]) -> tuple[dict, dict]:
    """Mean and sample standard deviation (None for one seed) of each summarised number."""
    mean = {key: statistics.fmean(row[key] for row in rows) for key in SUMMARISED}
    std = {key: statistics.stdev(row[key] for row in rows) if len(rows) > 1 else None for key in SUMMARISED}
    return mean, std


def run_variant(root: Path, settings: dict, model: str, name: str, overrides: dict, args,
                ground_truth: Path) -> dict:
    folder = root / model / name
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{model}.yaml"
    config_path.write_text(yaml.safe_dump(model_config(settings["models"][model]["config"], overrides)))
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        seed_dir = folder / f"seed{seed}"
        seed_dir.mkdir(exist_ok=True)
        seed_settings = run_settings(settings, model, overrides, seed, args.tta, config_path)
        (seed_dir / "params.yaml").write_text(yaml.safe_dump(seed_settings, sort_keys=False))
        rows.append({"seed": seed, **one_seed(seed_dir, model, args.folds, ground_truth)})
        print(f"{model} {name} seed {seed}: " + ", ".join(f"{k} {rows[-1][k]:.4f}" for k in SCORES),
              file=sys.stderr, flush=True)
    mean, std = summary(rows)
    return {"overrides": overrides, "seeds": rows, "mean": mean, "std": std}


def plain(value):
    """The settings tree as the mapping a params.yaml holds (it builds the same tree back)."""
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def run(args, settings) -> dict:
    params_path = settings.origins.default or "params.yaml"
    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, not {args.seeds}")
    models = args.models or list(settings.train.models)
    unknown = [m for m in models if m not in settings.models]
    if unknown:
        raise settings.error(f"models {unknown} are not in params `models`", "models")
    settings = protocol(plain(settings))
    check_inputs(settings, params_path)
    chosen = variants(args)
    # absolute: each seed's commands run in the seed's folder and read their config by this path
    root = Path(args.out_dir).resolve() if args.out_dir else Path(tempfile.mkdtemp(prefix="bench_quality_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        (root / "ground_truth").mkdir(exist_ok=True)
        ground_truth = scored_ground_truth(settings, args.folds, root / "ground_truth" / "train.csv")
        shutil.copy(labels_file(settings), root / "ground_truth" / "label_descriptions.json")
        results = {model: {name: run_variant(root, settings, model, name, overrides, args, ground_truth)
                           for name, overrides in chosen.items()} for model in models}
    finally:
        if not args.out_dir:
            shutil.rmtree(root, ignore_errors=True)
    return {"folds": args.folds, "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
            "tta": args.tta, "global_batch": settings["train"]["batch_size"], "out_dir": args.out_dir,
            "models": results}
