"""`python -m pipeline bench scale`: the post-processing stages at growing numbers of images.

A small synthetic dataset and predictions made from its ground truth (each family a noisy copy:
instances missed, scores jittered, low-score false positives; test predictions likewise made of
random boxes) are copied R times under new ImageIds (`<id>_r<k>`, the JPEGs hard-linked, the folds
kept), for every R of `--repeats`. At each R the stages run as the DAG runs them, each a
`python -m pipeline` subprocess: gather (per family), ensemble --split oof, report, tune, ensemble
--split test, submit, validate-submission. Per stage and R the JSON gives wall seconds and the
child's peak RSS (VmHWM), then from the two largest runs the growth exponent b of seconds = a *
images^b, the RSS added per image, and both extrapolated to `--target-oof` OOF images (gather,
ensemble-oof, report, tune) or `--target-test` test images (the test stages), at the detections per
image and the numbers of families and folds of the run (the JSON says which).
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

from pipeline.data import rle
from pipeline.data.images import image_size
from pipeline.synthetic.fashionpedia import generate


HEADER = ["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score", "AttributeScores"]
OOF_STAGES = ("gather", "ensemble-oof", "report", "tune")
TEST_STAGES = ("ensemble-test", "submit", "validate")


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=24, help="training images of the base dataset")
    parser.add_argument("--test-images", type=int, default=8, help="test images of the base dataset")
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 4], help="copies of the dataset, R")
    parser.add_argument("--families", type=int, default=3)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--false-positives", type=int, default=20, help="extra detections per image and family")
    parser.add_argument("--detections-per-image", type=int,
                        help="detections per image and family, false positives filling up to it (the models "
                             "write up to 100); default: the kept ground truth plus --false-positives")
    parser.add_argument("--metric", default="kaggle", help="tune's metric")
    parser.add_argument("--target-oof", type=int, default=45623)
    parser.add_argument("--target-test", type=int, default=3200)


def noisy_predictions(gt: pd.DataFrame, rng, false_positives: int, per_image: int | None = None) -> pd.DataFrame:
    """Ground truth as one family's predictions, rows sorted by ImageId: each image gets
    `false_positives` random boxes or, with `per_image`, exactly `per_image` rows (true ones first)."""
    kept = gt[rng.random(len(gt)) >= 0.3]
    if per_image is not None:  # a model writes at most its detections_per_image
        kept = kept.groupby("ImageId", sort=False).head(per_image)
    kept_per_image = kept.ImageId.value_counts()
    rows = [(r.ImageId, r.EncodedPixels, r.ClassId, r.AttributesIds, round(rng.uniform(0.5, 1.0), 4),
             " ".join(f"{a}:{rng.uniform(0.3, 1.0):.3f}" for a in r.AttributesIds.split(",") if a))
            for r in kept.itertuples()]
    for image_id, image in gt.groupby("ImageId"):
        count = false_positives if per_image is None else max(per_image - int(kept_per_image.get(image_id, 0)), 0)
        rows += random_boxes(image_id, int(image.Height.iat[0]), int(image.Width.iat[0]), rng, count)
    return pd.DataFrame(rows, columns=HEADER).sort_values("ImageId", kind="stable")


def random_boxes(image_id: str, height: int, width: int, rng, count: int) -> list[tuple]:
    rows = []
    for _ in range(count):
        top, left = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
        mask = np.zeros((height, width), np.uint8)
        mask[top:top + height // 4, left:left + width // 4] = 1
        rows.append((image_id, rle.encode(mask), int(rng.integers(0, 46)), "", round(rng.uniform(0.05, 0.5), 4), ""))
    return rows


def replicate(frame: pd.DataFrame, repeats: int) -> pd.DataFrame:
    """`repeats` copies under ImageIds `<id>_r<k>`, sorted by ImageId (stable within an image)."""
    copies = [frame.assign(ImageId=frame.ImageId + f"_r{k}") for k in range(repeats)]
    return pd.concat(copies).sort_values("ImageId", kind="stable")


def build(base: Path, work: Path, repeats: int, args, rng_seed: int = 0) -> None:
    """The dataset, folds, per-fold OOF and test predictions of R copies under `work`."""
    rng = np.random.default_rng(rng_seed)
    data = work / "data"
    for split in ("train", "test"):
        (data / split).mkdir(parents=True)
        for image in (base / split).glob("*.jpg"):
            for k in range(repeats):
                os.link(image, data / split / f"{image.stem}_r{k}.jpg")
    gt = pd.read_csv(base / "train.csv", dtype=str, keep_default_na=False)
    replicate(gt, repeats).to_csv(data / "train.csv", index=False)
    shutil.copy(base / "label_descriptions.json", data / "label_descriptions.json")
    ids = gt.ImageId.drop_duplicates().tolist()
    folds = pd.DataFrame({"ImageId": ids, "fold": [i % args.folds for i in range(len(ids))]})
    replicate(folds, repeats).to_csv(work / "folds.csv", index=False)
    fold_of = dict(zip(folds.ImageId, folds.fold))
    test_ids = sorted(p.stem for p in (base / "test").glob("*.jpg"))
    test_sizes = {i: gt_size(base / "test" / f"{i}.jpg") for i in test_ids}
    models = [f"m{f}" for f in range(args.families)]
    for model in models:
        oof = noisy_predictions(gt, rng, args.false_positives, args.detections_per_image)
        for fold in range(args.folds):
            part = oof[oof.ImageId.map(fold_of) == fold]
            write_sorted(replicate(part, repeats), work / "predictions" / "oof" / model / f"fold{fold}.csv")
            per_test_image = args.detections_per_image or args.false_positives
            rows = [row for i in test_ids for row in random_boxes(i, *test_sizes[i], rng, per_test_image)]
            write_sorted(replicate(pd.DataFrame(rows, columns=HEADER), repeats),
                         work / "predictions" / "test" / model / f"fold{fold}.csv")
    params = {"data": {"root": str(data)}, "folds": {"k": args.folds, "out": str(work / "folds.csv")},
              "train": {"models": models, "folds": list(range(args.folds))},
              "tune": {"metric": args.metric}}
    (work / "params.yaml").write_text(yaml.safe_dump(params))


def gt_size(path: Path) -> tuple[int, int]:
    return image_size(path)


def write_sorted(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def commands(args) -> list[tuple[str, list[str]]]:
    """(stage, arguments after `python -m pipeline --params params.yaml`) in the DAG's order."""
    gather = [("gather", ["gather", "--model", f"m{f}"]) for f in range(args.families)]
    return gather + [
        ("ensemble-oof", ["ensemble", "--split", "oof"]),
        ("report", ["report"]),
        ("tune", ["tune"]),
        ("ensemble-test", ["ensemble", "--split", "test"]),
        ("submit", ["submit", "--thresholds", "tuning/thresholds.json"]),
        ("validate", ["validate-submission", "submissions/submission.csv"]),
    ]


# The child reports its own peak: the kernel's VmHWM of the process image after exec. (Its rusage
# would not do: Linux carries a forked child's max RSS over from the parent, the benchmark itself.)
CHILD = ("import sys\nfrom pipeline.cli import main\ncode = main(sys.argv[1:])\n"
         "status = open('/proc/self/status').read()\n"
         "print('peak_rss_kb', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\nsys.exit(code)")


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `python -m pipeline` command run in a subprocess."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "--params", "params.yaml", *argv], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    peak = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak_rss_kb ")]
    return seconds, int(peak[-1]) / 1024


def run(args, settings) -> dict:
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = generate(Path(tmp) / "base", args.images, args.test_images, 0, min_size=200, max_size=400,
                        large_fraction=0)
        for repeats in args.repeats:
            work = Path(tmp) / f"r{repeats}"
            build(base, work, repeats, args)
            stages = {}
            for stage, argv in commands(args):
                seconds, rss = timed(argv, work)
                previous = stages.get(stage, (0.0, 0.0))
                stages[stage] = (previous[0] + seconds, max(previous[1], rss))  # gather: all families
            detections = sum(len(pd.read_csv(p, usecols=["ImageId"]))
                             for p in (work / "predictions" / "oof").glob("m*.csv"))
            per_image = detections / (args.images * repeats * args.families)
            runs[repeats] = {"oof_images": args.images * repeats, "test_images": args.test_images * repeats,
                             "oof_detections_per_image_per_family": round(per_image, 1),
                             "stages": {s: {"seconds": round(t, 2), "peak_rss_mb": round(m, 1)}
                                        for s, (t, m) in stages.items()}}
            shutil.rmtree(work)
    return {"families": args.families, "folds": args.folds, "metric": args.metric,
            "detections_per_image": args.detections_per_image, "runs": runs,
            "fits": fits(runs, args)}


def fits(runs: dict, args) -> dict:
    """Per stage, from the two largest runs: the growth exponent of seconds (log-log slope), seconds
    and peak RSS extrapolated to the target size, linearly (slope per image) and, for seconds, along
    the power law; plus the exponent fitted over all runs (start-up costs flatten it at small sizes)."""
    result = {}
    for stage in (*OOF_STAGES, *TEST_STAGES):
        key, target = ("oof_images", args.target_oof) if stage in OOF_STAGES else ("test_images", args.target_test)
        images = np.array([r[key] for r in runs.values()], float)
        seconds = np.array([max(r["stages"][stage]["seconds"], 1e-3) for r in runs.values()])
        rss = np.array([r["stages"][stage]["peak_rss_mb"] for r in runs.values()])
        if images.size < 2:
            continue
        (n0, n1), (t0, t1), (m0, m1) = images[-2:], seconds[-2:], rss[-2:]
        exponent = np.log(t1 / t0) / np.log(n1 / n0)
        result[stage] = {
            "exponent": round(float(exponent), 3),
            "exponent_all_runs": round(float(np.polyfit(np.log(images), np.log(seconds), 1)[0]), 3),
            "target_images": target,
            "seconds_at_target_linear": round(float(t1 + (t1 - t0) / (n1 - n0) * (target - n1)), 1),
            "seconds_at_target_power": round(float(t1 * (target / n1) ** exponent), 1),
            "rss_mb_per_image": round(float((m1 - m0) / (n1 - n0)), 4),
            "peak_rss_mb_at_target": round(float(m1 + (m1 - m0) / (n1 - n0) * (target - n1)), 1),
        }
    return result
