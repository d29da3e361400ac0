"""Every post-processing stage writes the same files with several worker processes as with one:
the images go out in chunks and their results come back, and are pooled, in order."""
import json

import pandas as pd
import pytest
import yaml

from pipeline import parallel
from pipeline.cli import main
from pipeline.ensembling import ensemble
from pipeline.scoring import predictions

from ensembling_cases import noisy_copy, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    params = tiny_project(root, train_images=12)
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    for model, seed in (("m1", 1), ("m2", 2)):
        (root / "predictions" / "oof").mkdir(parents=True, exist_ok=True)
        noisy_copy(gt, seed, false_positives=4).to_csv(root / "predictions" / "oof" / f"{model}.csv", index=False)
    return root, params


def outputs(root, params, workers: int, stage: str) -> dict:
    """The files `stage` writes with `workers` processes (params of every section)."""
    config = yaml.safe_load(params.read_text())
    for section in ("ensemble", "evaluate", "report", "tune"):
        config[section] = {**(config.get(section) or {}), "workers": workers}
    run_params = root / f"params-{workers}.yaml"
    run_params.write_text(yaml.safe_dump(config))
    out = root / f"out-{stage}-{workers}"
    oof = root / "predictions" / "oof"
    argv = {
        "ensemble": ["ensemble", "--inputs", str(oof / "m1.csv"), str(oof / "m2.csv"), "--out", str(out / "e.csv")],
        "evaluate": ["evaluate", "--gt", str(root / "data" / "train.csv"), "--pred", str(oof / "m1.csv"),
                     "--out", str(out / "metrics.json")],
        "report": ["report", "--predictions-dir", str(oof), "--out", str(out / "cv.json"), "--plots", str(out / "plots")],
        "tune": ["tune", "--predictions", str(oof / "m1.csv"), "--metric", "ap_iou_f1", "--out", str(out / "t.json"),
                 "--report", str(out / "tuning.json")],
    }[stage]
    assert main(["--params", str(run_params), *argv]) == 0
    files = {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*.json")) if p.is_file()}
    files.update({p.name: p.read_text() for p in out.glob("*.csv")})
    if "tuning.json" in files:  # the seconds it took differ
        report = json.loads(files["tuning.json"])
        report.pop("seconds")
        files["tuning.json"] = report
    return files


@pytest.mark.parametrize("stage", ["ensemble", "evaluate", "report", "tune"])
def test_several_workers_write_what_one_writes(project, monkeypatch, stage):
    root, params = project
    # Small chunks, so that three workers share the twelve images.
    monkeypatch.setattr(predictions, "CHUNK_IMAGES", 2)
    monkeypatch.setattr(ensemble, "CHUNK_IMAGES", 2)
    one = outputs(root, params, 1, stage)
    assert one
    assert outputs(root, params, 3, stage) == one


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
    submitted = []

    def tasks():
        for k in range(20):
            submitted.append(k)
            yield k

    results = []
    for result in parallel.ordered_map(_square_plus, tasks(), 100, workers=2):
        # Never more than IN_FLIGHT tasks per worker ahead of the result being read.
        assert len(submitted) <= len(results) + 1 + 2 * parallel.IN_FLIGHT
        results.append(result)
    assert results == [k * k + 100 for k in range(20)]
    assert list(parallel.ordered_map(_square_plus, range(5), 1, workers=0)) == [k * k + 1 for k in range(5)]


def _square_plus(context, k):
    return k * k + context


def test_an_input_error_in_a_worker_reaches_the_caller_whole():
    from pipeline.errors import InputError

    with pytest.raises(InputError) as error:
        list(parallel.ordered_map(_fail, range(3), None, workers=2))
    assert (error.value.message, error.value.path, error.value.line) == ("bad row", "f.csv", 7)


def _fail(context, k):
    from pipeline.errors import InputError

    raise InputError("bad row", "f.csv", 7)


@pytest.mark.parametrize("value, expected", [(None, "cores"), (0, 1), (1, 1), (4, 4)])
def test_worker_count(monkeypatch, value, expected):
    monkeypatch.setattr(parallel, "available_cores", lambda: 6)
    assert parallel.worker_count(value) == (6 if expected == "cores" else expected)


@pytest.mark.parametrize("section", ["ensemble", "evaluate", "report", "tune"])
@pytest.mark.parametrize("value", [-1, 1.5, "all", True])
def test_a_bad_worker_count_names_its_params_line(tmp_path, section, value):
    from pipeline.errors import InputError
    from pipeline.settings.load import load_settings

    params = tmp_path / "params.yaml"
    params.write_text(f"{section}:\n  workers: {json.dumps(value)}\n")
    with pytest.raises(InputError) as error:
        load_settings(params)
    assert error.value.path == str(params) and error.value.line == 2
    assert error.value.message.startswith(section) and "workers" in error.value.message


@pytest.mark.parametrize("stage", ["evaluate", "report", "tune"])
@pytest.mark.parametrize("sorted_gt", [True, False])
def test_files_walked_without_parsing_score_as_parsed_ones(project, monkeypatch, stage, sorted_gt):
    """Sorted, simple files go to the workers as byte spans, parsed there (the ground truth's too,
    when sorted); the same files read and parsed by the parent give the same outputs."""
    from pipeline.data import sorted_csv

    root, params = project
    monkeypatch.setattr(predictions, "CHUNK_IMAGES", 2)
    gt = root / "data" / "train.csv"
    frame = pd.read_csv(gt, dtype=str, keep_default_na=False)
    ordered = frame.sort_values("ImageId", kind="stable") if sorted_gt else frame.iloc[::-1]
    ordered.to_csv(gt, index=False)
    assert (sorted_csv.image_spans(gt, ("ImageId",)) is not None) == sorted_gt
    assert sorted_csv.image_spans(root / "predictions" / "oof" / "m1.csv", ("ImageId",)) is not None
    walked = outputs(root, params, 3, stage)
    monkeypatch.setattr(sorted_csv, "image_spans", lambda *args: None)
    monkeypatch.setattr(predictions, "image_spans", lambda *args: None)
    assert outputs(root, params, 1, stage) == walked
    frame.to_csv(gt, index=False)
