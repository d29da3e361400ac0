"""`python -m pipeline bench scale`: the post-processing stages at the real workload's image sizes,
at growing numbers of images and at 1 and more worker processes.

Per size profile (`scale_data.SIZE_PROFILES`: the embedded data's image sizes, and the same at a
1 MP median) a synthetic dataset of `--images` training and `--test-images` test images is drawn,
with each family's predictions at the models' density (`--detections-per-image` rows per image and
family; `scale_data`). It is copied R times under new ImageIds (`<id>_r<k>`, JPEGs hard-linked,
folds kept) for every R of `--repeats`, and at each R the stages run as the DAG runs them, each a
`python -m pipeline` subprocess, once per `--workers` count (params `workers` of ensemble,
evaluate, report and tune): gather (per family), ensemble --split oof, evaluate (the ensemble),
report, tune (once per `--metrics`), ensemble --split test (families x folds files), submit,
validate-submission. Per stage the JSON gives wall seconds, CPU seconds (the stage's and its
workers'), the 1-minute load average when it ended (the machine may be shared: wall seconds mean
little under a load above its cores), the stage process's peak RSS (VmHWM) and its workers' (the
largest child's ru_maxrss, which counts the pages a forked worker shares with its parent: an upper
bound). From the two largest runs: the growth exponent, seconds and RSS
extrapolated linearly to `--target-oof` OOF or `--target-test` test images, the speed-up of each
worker count over one (at the largest run, and at the target size, where start-up costs weigh
nothing), the pixels per image measured, and the issue's goals checked.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.benchmarks import scale_data
from pipeline.data import ontology as ontology_lib
from pipeline.data.images import image_size
from pipeline.synthetic.fashionpedia import generate

OOF_STAGES = ("gather", "ensemble-oof", "evaluate", "report", "tune")  # tune: tune-<metric> per metric
TEST_STAGES = ("ensemble-test", "submit", "validate")
GOALS = {"oof_hours": 1.0, "tune_ap_iou_f1_hours": 2.0, "test_minutes": 15.0, "rss_mb_per_process": 4096}


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=32, help="training images of the base dataset")
    parser.add_argument("--test-images", type=int, default=8, help="test images of the base dataset")
    parser.add_argument("--repeats", type=int, nargs="+", default=[2, 8], help="copies of the dataset, R")
    parser.add_argument("--sizes", nargs="+", default=list(scale_data.SIZE_PROFILES),
                        choices=list(scale_data.SIZE_PROFILES), help="image size profiles measured")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts measured")
    parser.add_argument("--families", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--detections-per-image", type=int, default=70,
                        help="prediction rows per image and family (the models write up to 100)")
    parser.add_argument("--metrics", nargs="+", default=["kaggle", "ap_iou_f1"], help="tune's metrics, one run each")
    parser.add_argument("--target-oof", type=int, default=45623)
    parser.add_argument("--target-test", type=int, default=3200)
    parser.add_argument("--seed", type=int, default=0)


class Workload:
    """A profile's base dataset and predictions, written at R copies by `write`."""

    def __init__(self, base: Path, args):
        self.base, self.args = base, args
        rng = np.random.default_rng(args.seed)
        attribute_ids = np.asarray(ontology_lib.load_for_dataset(base).attribute_ids)
        self.gt = pd.read_csv(base / "train.csv", dtype=str, keep_default_na=False)
        train = [(image_id, int(rows.Height.iat[0]), int(rows.Width.iat[0]), scale_data.ground_truth_objects(rows, rng))
                 for image_id, rows in self.gt.groupby("ImageId", sort=True)]
        test = [(p.stem, *image_size(p)) for p in sorted((base / "test").glob("*.jpg"))]
        test = [(i, h, w, scale_data.ellipse_objects(h, w, rng, attribute_ids)) for i, h, w in test]
        self.ids = [image_id for image_id, *_ in train]
        self.fold_of = {image_id: k % args.folds for k, image_id in enumerate(self.ids)}
        per_image = args.detections_per_image
        self.oof = [scale_data.predictions(train, per_image, rng, attribute_ids) for _ in range(args.families)]
        self.test = [[scale_data.predictions(test, per_image, rng, attribute_ids) for _ in range(args.folds)]
                     for _ in range(args.families)]
        self.pixels = {"oof": scale_data.pixels([(h, w) for _, h, w, _ in train]),
                       "test": scale_data.pixels([(h, w) for _, h, w, _ in test])}

    def write(self, work: Path, repeats: int) -> None:
        """The dataset, folds and per-fold OOF and test predictions of R copies under `work`."""
        data = work / "data"
        for split in ("train", "test"):
            (data / split).mkdir(parents=True)
            for image in (self.base / split).glob("*.jpg"):
                for k in range(repeats):
                    os.link(image, data / split / f"{image.stem}_r{k}.jpg")
        scale_data.replicate(self.gt, repeats).to_csv(data / "train.csv", index=False)
        shutil.copy(self.base / "label_descriptions.json", data / "label_descriptions.json")
        folds = pd.DataFrame({"ImageId": self.ids, "fold": [self.fold_of[i] for i in self.ids]})
        scale_data.replicate(folds, repeats).to_csv(work / "folds.csv", index=False)
        for f, oof in enumerate(self.oof):
            fold = oof.ImageId.map(self.fold_of)
            for k in range(self.args.folds):
                write_csv(scale_data.replicate(oof[fold == k], repeats), work / "predictions/oof" / f"m{f}/fold{k}.csv")
                write_csv(scale_data.replicate(self.test[f][k], repeats), work / "predictions/test" / f"m{f}/fold{k}.csv")

    def params(self, work: Path, workers: int) -> None:
        args = self.args
        params = {"data": {"root": str(work / "data")}, "folds": {"k": args.folds, "out": str(work / "folds.csv")},
                  "train": {"models": [f"m{f}" for f in range(args.families)], "folds": list(range(args.folds))},
                  **{section: {"workers": workers} for section in ("ensemble", "evaluate", "report", "tune")}}
        (work / "params.yaml").write_text(yaml.safe_dump(params))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def commands(args) -> list[tuple[str, list[str]]]:
    """(stage, arguments after `python -m pipeline --params params.yaml`) in the DAG's order."""
    gather = [("gather", ["gather", "--model", f"m{f}"]) for f in range(args.families)]
    tune = [(f"tune-{m}", ["tune", "--metric", m, "--out", f"tuning/{m}.json", "--report", f"reports/tuning-{m}.json"])
            for m in args.metrics]
    return gather + [
        ("ensemble-oof", ["ensemble", "--split", "oof"]),
        ("evaluate", ["evaluate", "--gt", "data/train.csv", "--pred", "predictions/oof/ensemble.csv",
                      "--labels", "data/label_descriptions.json"]),
        ("report", ["report"]),
        *tune,
        ("ensemble-test", ["ensemble", "--split", "test"]),
        ("submit", ["submit", "--thresholds", f"tuning/{args.metrics[0]}.json"]),
        ("validate", ["validate-submission", "submissions/submission.csv"]),
    ]


# The child reports its own peak: the kernel's VmHWM of the process image after exec (its rusage
# would not do: Linux carries a forked child's max RSS over from the parent, the benchmark itself),
# and its children's (worker processes) largest ru_maxrss.
CHILD = ("import resource, sys\nfrom pipeline.cli import main\ncode = main(sys.argv[1:])\n"
         "status = open('/proc/self/status').read()\n"
         "print('peak_rss_kb', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
         "mine, workers = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
         "print('children_peak_rss_kb', workers.ru_maxrss, file=sys.stderr)\n"
         "print('cpu_seconds', sum(r.ru_utime + r.ru_stime for r in (mine, workers)), file=sys.stderr)\n"
         "sys.exit(code)")


def timed(argv: list[str], cwd: Path) -> dict:
    """Wall seconds, peak RSS and the workers' peak RSS (MB) of one `python -m pipeline` command."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "--params", "params.yaml", *argv], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = dict(line.split() for line in done.stderr.splitlines()
                 if line.startswith(("peak_rss_kb ", "children_peak_rss_kb ", "cpu_seconds ")))
    return {"seconds": seconds, "cpu_seconds": float(found["cpu_seconds"]), "peak_rss_mb": int(found["peak_rss_kb"]) / 1024,
            "worker_peak_rss_mb": int(found["children_peak_rss_kb"]) / 1024, "load_average": os.getloadavg()[0]}


def measure(workload: Workload, work: Path, workers: int) -> dict:
    """Every stage of one R at one worker count (gather: the families together)."""
    workload.params(work, workers)
    stages = {}
    for stage, argv in commands(workload.args):
        result = timed(argv, work)
        if stage in stages:
            result = {**{k: stages[stage][k] + result[k] for k in ("seconds", "cpu_seconds")},
                      **{k: max(stages[stage][k], result[k]) for k in ("peak_rss_mb", "worker_peak_rss_mb", "load_average")}}
        stages[stage] = result
    for name in ("tuning", "reports", "submissions"):
        shutil.rmtree(work / name, ignore_errors=True)
    return {s: {k: round(v, 2 if "seconds" in k else 1) for k, v in r.items()} for s, r in stages.items()}


def run(args, settings) -> dict:
    profiles = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.sizes:
            base = generate(Path(tmp) / profile, args.images, args.test_images, args.seed,
                            **scale_data.SIZE_PROFILES[profile])
            workload = Workload(base, args)
            runs = {}
            for repeats in args.repeats:
                work = Path(tmp) / f"{profile}-r{repeats}"
                workload.write(work, repeats)
                runs[repeats] = {"oof_images": args.images * repeats, "test_images": args.test_images * repeats,
                                 "workers": {w: measure(workload, work, w) for w in args.workers}}
                runs[repeats]["ensemble_rows_per_image"] = round(
                    len(pd.read_csv(work / "predictions/oof/ensemble.csv", usecols=["ImageId"])) / (args.images * repeats), 1)
                shutil.rmtree(work)
            fitted = {w: fits(runs, w, args) for w in args.workers}
            speedups_at_target(fitted)
            profiles[profile] = {"pixels_per_image": workload.pixels, "runs": runs, "fits": fitted,
                                 "goals": goals(fitted, runs, args)}
    return {"families": args.families, "folds": args.folds, "detections_per_image_per_family": args.detections_per_image,
            "test_files": args.families * args.folds, "metrics": args.metrics, "cpu_count": os.cpu_count(),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()], "profiles": profiles,
            "summary": summary(profiles, args)}


def stage_names(args) -> list[str]:
    return [s for s, _ in commands(args)[args.families - 1:]]


def fits(runs: dict, workers: int, args) -> dict:
    """Per stage, from the two largest runs at `workers`: the growth exponent of seconds (log-log
    slope), seconds per image (the slope) and seconds and peak RSS extrapolated linearly to the
    target size, and the speed-up over one worker at the largest run."""
    result = {}
    sizes = sorted(runs)
    if len(sizes) < 2:
        return result
    small, large = runs[sizes[-2]], runs[sizes[-1]]
    for stage in stage_names(args):
        key, target = ("test_images", args.target_test) if stage in TEST_STAGES else ("oof_images", args.target_oof)
        (n0, n1), (a, b) = (small[key], large[key]), (small["workers"][workers][stage], large["workers"][workers][stage])
        t0, t1 = max(a["seconds"], 1e-3), max(b["seconds"], 1e-3)
        per_image = (t1 - t0) / (n1 - n0)
        cpu_per_image = (b["cpu_seconds"] - a["cpu_seconds"]) / (n1 - n0)
        rss = max(b["peak_rss_mb"], b["worker_peak_rss_mb"]), max(a["peak_rss_mb"], a["worker_peak_rss_mb"])
        result[stage] = {
            "exponent": round(float(np.log(t1 / t0) / np.log(n1 / n0)), 3),
            "seconds_per_image": round(per_image, 4),
            "target_images": target,
            "seconds_at_target": round(t1 + per_image * (target - n1), 1),
            "cpu_seconds_per_image": round(cpu_per_image, 4),
            "cpu_seconds_at_target": round(b["cpu_seconds"] + cpu_per_image * (target - n1), 1),
            "peak_rss_mb_at_target": round(rss[0] + (rss[0] - rss[1]) / (n1 - n0) * (target - n1), 1),
        }
        one = large["workers"].get(1, {}).get(stage)
        if one:
            result[stage]["speedup_over_1_worker"] = round(one["seconds"] / t1, 2)
    return result


def speedups_at_target(fitted: dict) -> None:
    """Each stage's speed-up over one worker at the target size (seconds at target, one worker's over
    this count's), where the costs that do not grow with the images (start-up, imports, plots)
    weigh nothing, unlike at the largest run measured."""
    one = fitted.get(1, {})
    for stages in fitted.values():
        for stage, fit in stages.items():
            if stage in one:  # None where a noisy slope extrapolates to no time at all
                base, this = one[stage]["seconds_at_target"], fit["seconds_at_target"]
                fit["speedup_at_target"] = round(base / this, 2) if base > 0 and this > 0 else None


def goals(fitted: dict, runs: dict, args) -> dict:
    """The issue's goals at each worker count, from the extrapolations."""
    result = {}
    for workers, stages in fitted.items():
        if not stages:
            continue
        oof_stages = ("ensemble-oof", "report", f"tune-{args.metrics[0]}")
        oof = sum(stages[s]["seconds_at_target"] for s in oof_stages)
        test_files = args.families * args.folds
        test = sum(stages[s]["seconds_at_target"] for s in TEST_STAGES)
        rss = max(v["peak_rss_mb_at_target"] for v in stages.values())
        result[workers] = {
            f"oof_ensemble_report_tune_{args.metrics[0]}_hours": round(oof / 3600, 3),
            "oof_cpu_hours": round(sum(stages[s]["cpu_seconds_at_target"] for s in oof_stages) / 3600, 3),
            "test_ensemble_submit_validate_minutes": round(test / 60, 2),
            "test_files": test_files,
            "peak_rss_mb_per_process_at_target": rss,
            "met": {"oof_1h": oof <= GOALS["oof_hours"] * 3600, "test_15min": test <= GOALS["test_minutes"] * 60,
                    "rss_4gb": rss <= GOALS["rss_mb_per_process"]},
        }
        if "tune-ap_iou_f1" in stages:
            hours = stages["tune-ap_iou_f1"]["seconds_at_target"] / 3600
            result[workers]["tune_ap_iou_f1_hours"] = round(hours, 3)
            result[workers]["met"]["tune_ap_iou_f1_2h"] = hours <= GOALS["tune_ap_iou_f1_hours"]
    return result


def summary(profiles: dict, args) -> list[str]:
    """One line per profile, stage and worker count: the table of the note."""
    lines = ["profile | stage | workers | seconds (largest run) | s/image | CPU s/image | peak RSS MB (stage, workers) | "
             "s at target | speed-up over 1 (largest run, at target) | load average"]
    for profile, result in profiles.items():
        largest = result["runs"][max(result["runs"])]
        for stage in stage_names(args):
            for workers, fitted in result["fits"].items():
                measured, fit = largest["workers"][workers][stage], fitted.get(stage, {})
                lines.append(f"{profile} | {stage} | {workers} | {measured['seconds']} | {fit.get('seconds_per_image')} | "
                             f"{fit.get('cpu_seconds_per_image')} | {measured['peak_rss_mb']}, "
                             f"{measured['worker_peak_rss_mb']} | {fit.get('seconds_at_target')} | "
                             f"{fit.get('speedup_over_1_worker')}, {fit.get('speedup_at_target')} | {measured['load_average']}")
    return lines
