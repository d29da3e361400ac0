"""The rehearsal's pieces (`make rehearsal` runs the whole; CI runs it after the tests): the measuring
`python`, stage names, the extrapolation's arithmetic and the real run's steps."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from pipeline.rehearsal import extrapolate
from pipeline.rehearsal.extrapolate import Counts, Row, row, stage_name, table
from pipeline.rehearsal.measure import Usage, measured, read_log, write_shim
from pipeline.rehearsal.run import real_steps
from pipeline.settings.load import load_settings

COUNTS = Counts(train=5, test=1, df2_train=4, df2_validation=3, held_out={0: 1, 1: 1, 2: 2, 3: 1, 4: 0}, folds=5)


def usage(*words, seconds=10.0, rc=0) -> Usage:
    return Usage(("-m", "pipeline", *words), rc, seconds, seconds / 2, 100.0)


def test_the_shim_runs_the_command_as_python_would_and_logs_its_seconds_and_memory(tmp_path):
    """A child holding 200 MB for a moment: the shim's exit status is the child's, its peak memory is seen."""
    log = tmp_path / "log.jsonl"
    shim = write_shim(tmp_path / "bin", log)
    code = "import sys, time; block = bytearray(200 * 2**20); block[::4096] = b'x' * len(block[::4096]); " \
           "time.sleep(0.6); print('hello'); sys.exit(3)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(shim), "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout == "hello\n"
    (logged,) = read_log(log)
    assert logged.argv == ("-c", code) and logged.returncode == 3
    assert 200 <= logged.peak_rss_mb < 400 and logged.seconds >= 0.6 and logged.cpu_seconds > 0


def test_measured_reports_a_failure_and_the_working_directory(tmp_path):
    result = measured([sys.executable, "-c", "import os, sys; open('here', 'w'); sys.exit(2)"], cwd=tmp_path)
    assert result.returncode == 2 and (tmp_path / "here").exists()


@pytest.mark.parametrize("words, stage", [
    (("train", "--model", "effdet_mask", "--fold", "3", "--no-progress"), "train@effdet_mask-3"),
    (("train", "--model", "match_rcnn", "--no-progress"), "train-df2"),
    (("predict", "--model", "fashionformer", "--fold", "0", "--split", "oof"), "predict-oof@fashionformer-0"),
    (("gather", "--model", "fashionformer"), "gather@fashionformer"),
    (("ensemble", "--split", "test"), "ensemble-test"),
    (("cache-df2", "--split", "validation"), "cache-df2@validation"),
    (("--params", "p.yaml", "cache", "--split", "all"), "cache"),
    (("validate-submission", "submissions/submission.csv"), "validate-submission"),
])
def test_each_command_is_named_as_its_dvc_stage(words, stage):
    assert stage_name(("-m", "pipeline", *words)) == stage


def test_a_linear_stage_carries_seconds_per_image_over_to_the_real_set():
    test = row(usage("predict", "--model", "m", "--fold", "1", "--split", "test", seconds=36.0), COUNTS, {})
    assert (test.images, test.real_images) == (1, 3_200) and test.real_hours == 32.0  # 36 s x 3,200 / 3,600
    oof = row(usage("predict", "--model", "m", "--fold", "2", "--split", "oof", seconds=20.0), COUNTS, {})
    # fold 2 holds 2 of the 5 images out; in the real run a fold holds a fifth of 45,623
    assert (oof.images, oof.real_images) == (2, 9_125) and oof.real_hours == round(10 * 9_125 / 3600, 2)
    cache = row(usage("cache", "--split", "all", seconds=60.0), COUNTS, {})
    assert (cache.images, cache.real_images) == (6, 48_823)
    df2 = row(usage("cache-df2", "--split", "train", seconds=8.0), COUNTS, {})
    assert (df2.images, df2.real_images) == (4, 191_961)


def test_capped_fixed_and_quadratic_stages_are_not_extrapolated():
    train = row(usage("train", "--model", "m", "--fold", "0"), COUNTS, {"train@m-0": 109_476})
    assert train.real_hours is None and "109,476 optimizer steps" in train.assumes and "capped" in train.assumes
    for words in (("weights",), ("synth",), ("retrieve",)):
        assert row(usage(*words), COUNTS, {}).real_hours is None
    assert row(usage("predict", "--model", "m", "--fold", "4", "--split", "oof"), COUNTS, {}).real_hours is None


def test_the_table_lists_every_row_with_its_assumption_and_failures_show():
    rows = [row(usage("folds", seconds=5.0), COUNTS, {}), row(usage("tune", rc=2), COUNTS, {})]
    text = table(rows).splitlines()
    assert text[0].split()[:4] == ["stage", "rc", "seconds", "CPU"] and len(text) == 3
    assert text[1].startswith("folds") and "45,623" in text[1] and text[1].endswith("an upper bound)")
    assert text[2].split()[1] == "2"
    assert json.dumps([r.real_hours for r in rows])  # plain numbers for the JSON report


def test_the_real_runs_steps_follow_the_profiles_batches_and_epochs():
    """Mask R-CNN: Detectron2's 90k iterations of 16 images at 4 images per step; EfficientDet: its
    20,833 steps of 24 images at 12 x 2 per step; Match R-CNN: 12 epochs at 4 images per step."""
    settings = load_settings(ROOT / "params.yaml", str(ROOT / "profiles" / "real.yaml"))
    steps = real_steps(settings)
    assert steps["train@attribute_mask_rcnn-0"] == 90_000 * 16 // 4
    assert steps["train@effdet_mask-4"] == 20_833
    assert steps["train-df2"] == 12 * -(-extrapolate.REAL_IMAGES["df2_train"] // 4)
    assert len(steps) == 3 * 5 + 1
