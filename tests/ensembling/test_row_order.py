"""Prediction files in any row order (a Kaggle submission, another tool's output) give every stage
the results of the same rows sorted by ImageId: evaluate, ensemble --inputs, tune, report, submit
and validate-submission. Scores are distinct, so no tie depends on the order within an image."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline import parallel
from pipeline.cli import main
from pipeline.data import sorted_csv

from ensembling_cases import HEADER, noisy_copy, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("row_order")
    params = tiny_project(root, train_images=10)
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    for order in ("sorted", "shuffled"):
        (root / order / "oof").mkdir(parents=True)
    for model, seed in (("m1", 1), ("m2", 2)):
        frame = noisy_copy(gt, seed, false_positives=4)
        frame["AttributeScores"] = [" ".join(f"{a}:{rng.uniform(0.05, 1):.3f}" for a in ids.split(",") if a)
                                    for ids in frame.AttributesIds]
        write_both(root, f"oof/{model}.csv", frame, rng)
    test_ids = sorted(p.stem for p in (root / "data" / "test").glob("*.jpg"))
    rows = [(i, f"{1 + 40 * k} 30", str(k % 5), "", f"{rng.uniform(0.1, 0.9):.6f}", "") for i in test_ids
            for k in range(4)]
    write_both(root, "test.csv", pd.DataFrame(rows, columns=HEADER), rng)
    gt.sample(frac=1.0, random_state=3).to_csv(root / "train_shuffled.csv", index=False)
    assert not sorted_csv.in_image_id_order(root / "train_shuffled.csv")
    return root, params


def write_both(root, name: str, frame: pd.DataFrame, rng) -> None:
    """The rows sorted by ImageId (stable) under sorted/, shuffled under shuffled/."""
    ordered = frame.sort_values("ImageId", kind="stable")
    ordered.to_csv(root / "sorted" / name, index=False)
    shuffled = ordered.iloc[rng.permutation(len(ordered))]
    assert not shuffled.ImageId.is_monotonic_increasing
    shuffled.to_csv(root / "shuffled" / name, index=False)


def run(root, params, order: str, stage: str, monkeypatch) -> dict:
    """The outputs of `stage` on the `order` files (their contents, paths left out)."""
    monkeypatch.setattr(parallel, "available_cores", lambda: 1)
    folder, out = root / order, root / f"out-{order}-{stage}"
    argv = {
        "evaluate": ["evaluate", "--gt", str(root / "data" / "train.csv"), "--pred", str(folder / "oof" / "m1.csv"),
                     "--out", str(out / "metrics.json")],
        "evaluate-shuffled-gt": ["evaluate", "--gt", str(root / "train_shuffled.csv"), "--pred",
                                 str(folder / "oof" / "m1.csv"), "--out", str(out / "metrics.json"),
                                 "--labels", str(root / "data" / "label_descriptions.json")],
        "ensemble": ["ensemble", "--inputs", str(folder / "oof" / "m1.csv"), str(folder / "oof" / "m2.csv"),
                     "--weights", "1", "2", "--out", str(out / "ensemble.csv")],
        "tune": ["tune", "--predictions", str(folder / "oof" / "m2.csv"), "--out", str(out / "thresholds.json"),
                 "--report", str(out / "tuning.json")],
        "report": ["report", "--predictions-dir", str(folder / "oof"), "--out", str(out / "cv.json"),
                   "--plots", str(out / "plots")],
        "submit": ["submit", "--predictions", str(folder / "test.csv"), "--out", str(out / "submission.csv")],
    }[stage]
    assert main(["--params", str(params), *argv]) == 0
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.suffix in (".csv", ".json")):
        text = path.read_text()
        if path.name == "tuning.json":
            report = json.loads(text)
            report.pop("seconds")
            report.pop("predictions")
            text = report
        files[path.relative_to(out).as_posix()] = text
    return files


@pytest.mark.parametrize("stage", ["evaluate", "ensemble", "tune", "report", "submit"])
def test_a_shuffled_file_gives_what_the_sorted_file_gives(project, monkeypatch, stage):
    root, params = project
    expected = run(root, params, "sorted", stage, monkeypatch)
    assert expected and all(expected.values())
    assert run(root, params, "shuffled", stage, monkeypatch) == expected


def test_a_shuffled_ground_truth_scores_as_the_file_as_written(project, monkeypatch):
    root, params = project
    expected = run(root, params, "sorted", "evaluate", monkeypatch)
    assert run(root, params, "shuffled", "evaluate-shuffled-gt", monkeypatch) == expected


def test_a_submission_in_any_order_is_valid(project, monkeypatch):
    root, params = project
    submission = root / "out-sorted-submit" / "submission.csv"
    if not submission.exists():
        run(root, params, "sorted", "submit", monkeypatch)
    frame = pd.read_csv(submission, dtype=str, keep_default_na=False)
    shuffled = frame.iloc[np.random.default_rng(1).permutation(len(frame))]
    shuffled.to_csv(root / "submission_shuffled.csv", index=False)
    assert main(["--params", str(params), "validate-submission", str(root / "submission_shuffled.csv")]) == 0
