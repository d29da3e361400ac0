import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
GT = (
    "ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
    "a,1 5 11 5,10,10,31,\"115,136\"\n"
    "a,51 10,10,10,23,\n"
    "b,1 3,4,4,0,\n"
)
PREDICTIONS = (
    "ImageId,EncodedPixels,ClassId,AttributesIds,Score\n"
    "a,1 5 11 5,31,\"115,136\",0.9\n"
    "a,51 10,23,,0.8\n"
    "b,1 3,0,,0.5\n"
)


def _files(tmp_path, gt=GT, predictions=PREDICTIONS):
    (tmp_path / "params.yaml").write_text("{}\n")  # the repository's params must not matter
    (tmp_path / "gt.csv").write_text(gt)
    (tmp_path / "pred.csv").write_text(predictions)
    return tmp_path / "gt.csv", tmp_path / "pred.csv"


def _evaluate(gt, pred, *extra):
    return main(["--params", str(gt.parent / "params.yaml"), "evaluate", "--gt", str(gt), "--pred", str(pred), *extra])


def _replace_line(text, line, new):
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_writes_metrics_json_and_prints_a_table(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gt, pred = _files(tmp_path)
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", "out/metrics.json"]) == 0
    metrics = json.loads((tmp_path / "out/metrics.json").read_text())
    for key in ("ap_iou", "ap_iou_f1", "ap_iou_f1_50", "kaggle"):
        assert metrics[key] == pytest.approx(1.0, abs=1e-12)
    assert set(metrics["supercategories"]) == {"outerwear", "accessory", "part"}
    assert metrics["categories"]["sleeve"] == {"id": 31, "gt": 1, "pred": 1, "ap_iou": pytest.approx(1.0), "ap_iou_f1": pytest.approx(1.0)}
    assert metrics["categories"]["hat"]["ap_iou"] == -1.0  # no ground truth: undefined, as in pycocotools
    out = capsys.readouterr().out
    assert "ap_iou_f1" in out and "sleeve" in out and "hat" not in out


def test_kaggle_options_from_flags_and_params(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # An extra shoe, among image a's rows: prediction files are sorted by ImageId.
    gt, pred = _files(tmp_path, predictions=PREDICTIONS.replace("b,1 3", "a,91 5,23,,0.1\nb,1 3"))
    scores = {}
    for name, extra in (("default", []), ("tp_fp", ["--kaggle-denominator", "tp_fp"])):
        assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", f"{name}.json", *extra]) == 0
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["kaggle_options"]
    assert scores["default"] == {"denominator": "tp_fp_fn", "thresholds": "strict"}
    assert scores["tp_fp"]["denominator"] == "tp_fp"
    (tmp_path / "params.yaml").write_text("evaluate:\n  kaggle_thresholds: inclusive\n")
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", "p.json"]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["kaggle_options"]["thresholds"] == "inclusive"
    (tmp_path / "params.yaml").write_text("evaluate:\n  kaggle_thresholds: loose\n")
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "params.yaml" in capsys.readouterr().err


def test_predictions_without_score_still_get_kaggle(tmp_path, capsys):
    no_score = "\n".join(line.rsplit(",", 1)[0] for line in PREDICTIONS.splitlines()) + "\n"
    gt, pred = _files(tmp_path, predictions=no_score)
    assert _evaluate(gt, pred, "--out", str(tmp_path / "m.json")) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["kaggle"] == 1.0 and metrics["ap_iou"] is None and metrics["ap_iou_f1"] is None
    assert "Score" in capsys.readouterr().err


def test_placeholder_rows_list_images_without_predictions(tmp_path):
    gt, pred = _files(tmp_path, predictions=PREDICTIONS.replace("b,1 3,0,,0.5\n", "b,,,,\n"))
    assert _evaluate(gt, pred, "--out", str(tmp_path / "m.json")) == 0
    assert json.loads((tmp_path / "m.json").read_text())["predictions"] == 2


BAD_PREDICTIONS = {
    "missing column": (1, "ImageId,EncodedPixels,AttributesIds,Score", "missing column(s) ClassId"),
    "odd RLE": (3, "a,51 10 60,23,,0.8", "odd number"),
    "RLE out of bounds": (3, "a,95 10,23,,0.8", "beyond 10x10"),
    "unordered RLE": (2, "a,11 5 1 5,31,,0.9", "out of order"),
    "class above 45": (3, "a,51 10,46,,0.8", "ClassId 46 outside 0..45"),
    "negative class": (3, "a,51 10,-1,,0.8", "ClassId -1 outside 0..45"),
    "unknown attribute": (2, "a,1 5,31,\"115,999\",0.9", "attribute id 999 is not in the ontology"),
    "image not in ground truth": (4, "c,1 3,0,,0.5", "image c is not in the ground truth"),
    "non-numeric score": (4, "b,1 3,0,,high", "Score 'high' is not a number"),
    "empty score": (4, "b,1 3,0,,", "Score '' is not a number"),
}


@pytest.mark.parametrize("case", BAD_PREDICTIONS, ids=str)
def test_bad_predictions_exit_2_naming_file_and_line(case, tmp_path, capsys):
    line, content, message = BAD_PREDICTIONS[case]
    gt, pred = _files(tmp_path, predictions=_replace_line(PREDICTIONS, line, content))
    assert _evaluate(gt, pred) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {pred}:{line}: ") and message in err


def test_ground_truth_sizes_that_disagree_within_an_image(tmp_path, capsys):
    gt, pred = _files(tmp_path, gt=_replace_line(GT, 3, "a,51 10,10,12,23,"))
    assert _evaluate(gt, pred) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {gt}:3: ") and "disagrees" in err and err.count("\n") == 1


def test_bad_input_prints_no_traceback(tmp_path):
    gt, pred = _files(tmp_path, predictions=_replace_line(PREDICTIONS, 2, "a,1 5 11,31,,0.9"))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", "--gt", str(gt), "--pred", str(pred)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {pred}:2: RLE has an odd number of values (3)"
    assert "Traceback" not in done.stderr


def test_ground_truth_is_read_in_chunks_and_scores_as_read_whole(tmp_path, capsys, monkeypatch):
    from pipeline.data import sorted_csv
    from pipeline.data.annotations import read_annotations
    from pipeline.scoring.evaluator import evaluate
    from pipeline.scoring.predictions import predictions_table
    from random_cases import ONTOLOGY, random_case

    records, frame = random_case(5, ONTOLOGY, images=12)
    rows = [(r.image_id, i.rle, r.height, r.width, i.class_id, ",".join(map(str, i.attributes)))
            for r in records[::-1] for i in r.instances]  # not in ImageId order: sorted runs are merged
    gt = tmp_path / "gt.csv"
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds"]).to_csv(
        gt, index=False)
    frame.sort_values("ImageId", kind="stable").to_csv(tmp_path / "pred.csv", index=False)
    (tmp_path / "params.yaml").write_text("{}\n")
    records, _ = read_annotations(gt, ONTOLOGY)
    whole = evaluate(records, predictions_table(frame, records, ONTOLOGY), ONTOLOGY).metrics()

    read, chunks = [], sorted_csv.chunks

    def two_rows_at_a_time(path, required, rows=sorted_csv.CHUNK_ROWS):
        for chunk in chunks(path, required, 2):
            read.append((Path(path).name, len(chunk)))
            yield chunk

    monkeypatch.setattr(sorted_csv, "chunks", two_rows_at_a_time)
    assert _evaluate(gt, tmp_path / "pred.csv", "--out", str(tmp_path / "metrics.json")) == 0
    got = json.loads((tmp_path / "metrics.json").read_text())
    assert got.pop("kaggle") == pytest.approx(whole.pop("kaggle"), abs=1e-12)
    assert got == json.loads(json.dumps(whole))
    assert sum(1 for name, _ in read if name == "gt.csv") >= len(rows) // 2  # every pass by 2 rows
    assert max(size for _, size in read) <= 2

    bad = tmp_path / "bad.csv"
    bad.write_text(gt.read_text() + f"{records[0].image_id},1 2 3,{records[0].height},{records[0].width},0,\n")
    capsys.readouterr()
    assert _evaluate(bad, tmp_path / "pred.csv") == 2
    err = capsys.readouterr().err
    assert err == f"error: {bad}:{len(rows) + 2}: RLE has an odd number of values (3)\n"
