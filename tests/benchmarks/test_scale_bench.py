import json

import numpy as np
import pandas as pd

from pipeline.benchmarks import scale_data
from pipeline.cli import main
from pipeline.data import rle


def test_bench_scale_runs_every_stage_at_each_size_and_worker_count(capsys):
    assert main(["bench", "scale", "--images", "4", "--test-images", "2", "--repeats", "1", "2", "--sizes", "embedded",
                 "--workers", "1", "2", "--families", "2", "--folds", "2", "--detections-per-image", "5",
                 "--metrics", "kaggle"]) == 0
    result = json.loads(capsys.readouterr().out)
    stages = {"gather", "ensemble-oof", "evaluate", "report", "tune-kaggle", "ensemble-test", "submit", "validate"}
    profile = result["profiles"]["embedded"]
    assert [r["oof_images"] for r in profile["runs"].values()] == [4, 8]
    for run in profile["runs"].values():
        for workers in ("1", "2"):
            assert set(run["workers"][workers]) == stages
            assert all(s["seconds"] > 0 and s["cpu_seconds"] > 0 and s["peak_rss_mb"] > 0
                       for s in run["workers"][workers].values())
    assert set(profile["fits"]["2"]) == stages
    assert profile["fits"]["2"]["tune-kaggle"]["target_images"] == 45623
    assert profile["fits"]["2"]["submit"]["target_images"] == 3200
    for stage, fit in profile["fits"]["2"].items():
        one, two = profile["fits"]["1"][stage]["seconds_at_target"], fit["seconds_at_target"]
        assert fit["speedup_at_target"] == (round(one / two, 2) if one > 0 and two > 0 else None)
    assert all(fit["speedup_at_target"] in (1.0, None) for fit in profile["fits"]["1"].values())
    assert profile["pixels_per_image"]["oof"]["images"] == 4
    assert set(profile["goals"]["2"]["met"]) == {"oof_1h", "test_15min", "rss_4gb"}
    assert result["test_files"] == 4


def test_a_family_writes_the_detections_asked_for_near_the_objects():
    rng = np.random.default_rng(0)
    height, width = 300, 200
    mask = np.zeros((height, width), np.uint8)
    mask[50:150, 40:120] = 1
    rows = pd.DataFrame({"EncodedPixels": [rle.encode(mask)], "Height": [height], "Width": [width], "ClassId": [3],
                         "AttributesIds": ["115,136"]})
    objects = scale_data.ground_truth_objects(rows, rng)
    attribute_ids = np.arange(100, 200)
    written = scale_data.family_rows("a", height, width, objects, 30, rng, attribute_ids)
    assert len(written) == 30
    found = [r for r in written if r[4] >= 0.5]  # the object found again: its class, its attributes likely
    assert len(found) <= 1 and all(r[2] == 3 for r in found)
    classes = {r[2] for r in written}
    assert classes <= {3, *objects[0].confusions}
    for _, encoded, _, ids, score, scores in written:
        pixels = rle.decode(encoded, height, width)
        assert 0.5 * mask.sum() <= pixels.sum() <= mask.sum()  # the object's size, shifted (clipped at the edge)
        assert ids == ",".join(p.split(":")[0] for p in scores.split() if float(p.split(":")[1]) >= 0.5)


def test_pixels_per_image():
    stats = scale_data.pixels([(1000, 500), (2100, 1000), (600, 500)])
    assert stats == {"images": 3, "median_mp": 0.5, "mean_mp": 0.967, "max_mp": 2.1, "share_over_2000px": 0.333}
