"""`evaluate-df2` against the official way (pycocotools with the 294 sigmas), side by side.

Builds a DeepFashion2-like set on disk: `image/` (plain JPEGs, 500-800 px sides), `annos/`
(1-3 items per image, the 13 categories, octagon polygons, every landmark of the category), its
official COCO conversion, and one combined result file (bbox, RLE segmentation and all 294
keypoint slots per entry, as the official example): 1-2 jittered copies of each item, sometimes
in the wrong category, and 2-6 unrelated detections per image, random scores.

Timed: ours is the whole `evaluate-df2` command per task, from the annos folder and the result
file to the printed JSON (the difficulty breakdowns included), so the three tasks read the files
three times. The reference is timed as `deepfashion2_test.py` runs: the converted gt_coco.json
and the results loaded once (loadRes), then COCOeval evaluate / accumulate / summarize per task.
The conversion to COCO it needs first is not counted, which favours it. `speedup_total` compares
the three tasks; `speedup_per_task` one task alone (the reference's loading plus that task).
`max_abs_difference` is over the AP, AP50, AP75 both print.
"""
from __future__ import annotations

import contextlib
import io as std_io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from pipeline.cli import main
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data.images import image_size
from pipeline.evaluation.deepfashion2 import reference as df2_reference


TASKS = ("bbox", "segm", "keypoints")


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=1000,
                        help="images (default: %(default)s; DeepFashion2 validation has 32,153)")
    parser.add_argument("--seed", type=int, default=0)


def octagon(box) -> list[float]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    xs = np.array([0.25, 0.75, 1, 1, 0.75, 0.25, 0, 0]) * w + x1
    ys = np.array([0, 0, 0.25, 0.75, 1, 1, 0.75, 0.25]) * h + y1
    return np.round(np.stack([xs, ys], 1).ravel(), 1).tolist()


def random_item(rng, height: int, width: int) -> dict:
    category = df2.CATEGORIES[int(rng.integers(0, len(df2.CATEGORIES)))]
    w, h = rng.uniform(0.2, 0.7) * width, rng.uniform(0.2, 0.7) * height
    x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    box = [round(x1, 1), round(y1, 1), round(x1 + w, 1), round(y1 + h, 1)]
    landmarks = np.zeros((category.landmarks, 3))
    landmarks[:, 0] = rng.uniform(box[0], box[2], category.landmarks).round(1)
    landmarks[:, 1] = rng.uniform(box[1], box[3], category.landmarks).round(1)
    landmarks[:, 2] = rng.choice((0, 1, 2), category.landmarks, p=(0.1, 0.3, 0.6))
    landmarks[landmarks[:, 2] == 0, :2] = 0
    return {"category_name": category.name, "category_id": category.id, "style": int(rng.integers(0, 3)),
            "bounding_box": box, "landmarks": landmarks.ravel().tolist(), "segmentation": [octagon(box)],
            "scale": int(rng.integers(1, 4)), "occlusion": int(rng.integers(1, 4)),
            "zoom_in": int(rng.integers(1, 4)), "viewpoint": int(rng.integers(1, 4))}


def result_near(rng, image_id: int, item: dict, height: int, width: int, spread: float) -> dict:
    category = df2.CATEGORY_BY_ID[item["category_id"]]
    if rng.random() < 0.1:
        category = df2.CATEGORIES[int(rng.integers(0, len(df2.CATEGORIES)))]
    x1, y1, x2, y2 = np.array(item["bounding_box"]) + rng.normal(0, spread, 4)
    rle = mask_utils.frPyObjects([octagon((x1, y1, x2, y2))], height, width)[0]
    keypoints = rng.uniform(0, 1, (df2.NUM_SLOTS, 3)) * (width, height, 0) + (0, 0, 1)
    first = df2.CATEGORY_BY_ID[item["category_id"]].first_slot
    landmarks = np.array(item["landmarks"]).reshape(-1, 3)[:, :2]
    keypoints[first : first + len(landmarks), :2] = landmarks + rng.normal(0, spread / 2, landmarks.shape)
    return {"image_id": image_id, "category_id": category.id,
            "bbox": np.round([x1, y1, x2 - x1, y2 - y1], 2).tolist(),
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "keypoints": np.round(keypoints, 2).ravel().tolist(), "score": round(float(rng.random()), 4)}


def write_set(root: Path, images: int, seed: int) -> tuple[Path, Path, Path]:
    """(annos folder, gt_coco.json, combined results.json) of a fresh random set under `root`."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir()
    (root / "annos").mkdir()
    results = []
    for image_id in range(1, images + 1):
        height, width = int(rng.integers(500, 801)), int(rng.integers(500, 801))
        Image.new("RGB", (width, height), (128, 128, 128)).save(root / "image" / f"{image_id:06d}.jpg")
        items = [random_item(rng, height, width) for _ in range(int(rng.integers(1, 4)))]
        anno = {"source": "user", "pair_id": image_id, **{f"item{k}": item for k, item in enumerate(items, 1)}}
        (root / "annos" / f"{image_id:06d}.json").write_text(json.dumps(anno))
        for item in items:
            for _ in range(int(rng.integers(1, 3))):
                results.append(result_near(rng, image_id, item, height, width, float(rng.choice((2, 8, 20)))))
        for _ in range(int(rng.integers(2, 7))):
            results.append(result_near(rng, image_id, random_item(rng, height, width), height, width, 30))
    annotations = df2.read_annotations(root / "annos")
    sizes = [image_size(df2.image_path(root / "image", a.image_id)) for a in annotations]
    (root / "gt_coco.json").write_text(json.dumps(df2.to_coco(annotations, sizes)))
    (root / "results.json").write_text(json.dumps(results))
    return root / "annos", root / "gt_coco.json", root / "results.json"


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def _load_official(gt_json: Path, results_json: Path):
    ground_truth = df2_reference.load_ground_truth(json.loads(gt_json.read_text()))
    return ground_truth, df2_reference.load_results(ground_truth, json.loads(results_json.read_text()))


def _official(gt_json: Path, results_json: Path) -> dict:
    """deepfashion2_test.py: both files loaded once (loadRes included), then the three evaluations."""
    (ground_truth, detections), load_seconds = _timed(lambda: _load_official(gt_json, results_json))
    stats, seconds = {}, {"loading": load_seconds}
    for task in ("bbox", "keypoints", "segm"):  # the official order
        evaluator, seconds[task] = _timed(lambda: df2_reference.run_official(ground_truth, detections, task))
        stats[task] = evaluator.stats[:3].tolist()
    return {"stats": stats, "seconds": seconds}


def run(args, settings) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        annos, gt_json, results_json = write_set(Path(tmp), args.images, args.seed)
        items = sum(len(a.items) for a in df2.read_annotations(annos))
        entries = len(json.loads(results_json.read_text()))
        reference = _official(gt_json, results_json)
        ours_seconds, ours_stats = {}, {}
        for task in TASKS:
            out = Path(tmp) / f"{task}.json"
            argv = ["evaluate-df2", "--task", task, "--annos", str(annos), "--results", str(results_json),
                    "--out", str(out)]
            with contextlib.redirect_stdout(std_io.StringIO()):
                status, ours_seconds[task] = _timed(lambda: main(argv))
            assert status == 0
            metrics = json.loads(out.read_text())
            ours_stats[task] = [metrics["AP"], metrics["AP50"], metrics["AP75"]]
    official_total = sum(reference["seconds"].values())
    ours_total = sum(ours_seconds.values())
    return {
        "images": args.images,
        "gt_items": items,
        "result_entries": entries,
        "seconds": {
            "ours": {**ours_seconds, "total": ours_total},
            "official": {**reference["seconds"], "total": official_total},
        },
        "speedup_total": official_total / ours_total,
        # One task alone, as a user runs it: the official loading plus that task against our command.
        "speedup_per_task": {task: (reference["seconds"]["loading"] + reference["seconds"][task]) / ours_seconds[task]
                             for task in TASKS},
        "ap_ap50_ap75": {"ours": ours_stats, "official": reference["stats"]},
        "max_abs_difference": max(abs(a - b) for task in TASKS
                                  for a, b in zip(ours_stats[task], reference["stats"][task])),
    }
