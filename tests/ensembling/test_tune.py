"""Threshold tuning: it removes low-score false positives, cross-fits over held-out folds, and its
file round-trips into `apply_thresholds`."""
import json

import pandas as pd
import pytest

from pipeline import parallel
from pipeline.ensembling.config import TuneConfig
from pipeline.cli import main
from pipeline.data.annotations import read_annotations
from pipeline.ensembling import tune as tune_module
from pipeline.ensembling.thresholds import Thresholds, apply_thresholds, load, save
from pipeline.scoring.evaluator import evaluate_frames

from ensembling_cases import HEADER, LABELS, noisy_copy, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    params = tiny_project(root)
    gt = pd.read_csv(root / "data" / "train.csv", dtype=str, keep_default_na=False)
    noisy_copy(gt, seed=1, drop=0.0, false_positives=6).to_csv(root / "oof.csv", index=False)
    return root, params


def run_tune(root, params, *extra):
    return main(["--params", str(params), "tune", "--predictions", str(root / "oof.csv"),
                 "--out", str(root / "thresholds.json"), "--report", str(root / "report.json"), *extra])


def test_tune_removes_low_score_false_positives(project):
    root, params = project
    assert run_tune(root, params) == 0
    report = json.loads((root / "report.json").read_text())
    crossed = report["cross_fitted"]
    assert crossed["after"]["kaggle"] > crossed["before"]["kaggle"]
    assert report["all_data"]["in_sample_after"]["kaggle"] > report["all_data"]["in_sample_before"]["kaggle"]
    thresholds = load(root / "thresholds.json")
    # False positives score 0.05..0.3, true ones 0.5..1: the cut-off (a score quantile) is above
    # every false positive and near the lowest true ones.
    assert 0.3 < thresholds.score < 0.6


def test_cross_fitting_tunes_on_the_other_folds_only(project, monkeypatch):
    root, params = project
    tuned_on = []
    original = tune_module.tune

    def recording(scorer, cfg):
        tuned_on.append({r.image_id for r in scorer.records})
        return original(scorer, cfg)

    monkeypatch.setattr(tune_module, "tune", recording)
    monkeypatch.setattr(parallel, "available_cores", lambda: 1)  # sweeps in this process, where they are recorded
    assert run_tune(root, params) == 0
    folds = pd.read_csv(root / "folds.csv", dtype={"ImageId": str})
    by_fold = {f: set(group.ImageId) for f, group in folds.groupby("fold")}
    assert tuned_on == [by_fold[1], by_fold[0], by_fold[0] | by_fold[1]]  # fold 0 held out, fold 1, then all
    report = json.loads((root / "report.json").read_text())
    assert [(f["fold"], f["images"], f["tuned_on_images"]) for f in report["cross_fitted"]["folds"]] == [
        (0, len(by_fold[0]), len(by_fold[1])), (1, len(by_fold[1]), len(by_fold[0]))]



def test_one_fold_of_predictions_is_tuned_but_not_cross_fitted(project, capsys):
    """A one-fold run (train.folds: [0]) still gets thresholds for test; no held-out score is claimed."""
    root, params = project
    folds = pd.read_csv(root / "folds.csv", dtype={"ImageId": str})
    oof = pd.read_csv(root / "oof.csv", dtype=str, keep_default_na=False)
    oof[oof.ImageId.isin(folds[folds.fold == 0].ImageId)].to_csv(root / "oof0.csv", index=False)
    assert main(["--params", str(params), "tune", "--predictions", str(root / "oof0.csv"),
                 "--out", str(root / "thresholds0.json"), "--report", str(root / "report0.json")]) == 0
    assert "not cross-fitted (one fold)" in capsys.readouterr().out
    report = json.loads((root / "report0.json").read_text())
    assert "after" not in report["cross_fitted"]
    assert report["all_data"]["images"] == (folds.fold == 0).sum()
    assert load(root / "thresholds0.json").score > 0


def test_a_file_without_predictions_is_tuned_to_no_thresholds(project):
    """An undertrained model may predict nothing: tune still writes its files (nothing to learn)."""
    root, params = project
    (root / "empty.csv").write_text(",".join(HEADER) + "\n")
    assert main(["--params", str(params), "tune", "--predictions", str(root / "empty.csv"),
                 "--out", str(root / "thresholds_empty.json"), "--report", str(root / "report_empty.json")]) == 0
    report = json.loads((root / "report_empty.json").read_text())
    assert report["all_data"]["images"] == 0 and "after" not in report["cross_fitted"]
    assert load(root / "thresholds_empty.json").attributes == {}


def test_scorer_agrees_with_apply_thresholds_through_the_evaluator(project):
    root, params = project
    assert run_tune(root, params, "--metric", "ap_iou_f1") == 0
    thresholds = load(root / "thresholds.json")
    records, _ = read_annotations(root / "data" / "train.csv", LABELS)
    frame = pd.read_csv(root / "oof.csv", dtype=str, keep_default_na=False)
    report = json.loads((root / "report.json").read_text())
    after = evaluate_frames(records, apply_thresholds(frame, thresholds), LABELS)
    assert after["ap_iou_f1"] == pytest.approx(report["all_data"]["in_sample_after"]["ap_iou_f1"])


def test_thresholds_round_trip_and_apply(tmp_path):
    thresholds = Thresholds("kaggle", 0.3, {5: 0.6}, 0.5, {115: 0.2, 136: 0.95})
    save(tmp_path / "t.json", thresholds)
    assert load(tmp_path / "t.json") == thresholds
    frame = pd.DataFrame([
        ("a", "1 3", "1", "", "0.35", "115:0.250 136:0.900"),  # kept: 0.35 >= 0.3
        ("a", "1 3", "5", "115", "0.5", "115:0.600"),          # dropped: class 5 needs 0.6
        ("a", "1 3", "2", "", "0.2", ""),                      # dropped: under the global 0.3
        ("b", "1 3", "2", "136,143", "0.9", ""),               # kept, no scores: AttributesIds stay
        ("c", "", "", "", "", ""),                             # blank row of an image without predictions
    ], columns=HEADER)
    result = apply_thresholds(frame, thresholds)
    assert result["ImageId"].tolist() == ["a", "b", "c"]
    assert result["AttributesIds"].tolist() == ["115", "136,143", ""]


def test_bad_thresholds_and_scores_are_input_errors(tmp_path):
    from pipeline.errors import InputError

    (tmp_path / "t.json").write_text('{"score": 0.1}')
    with pytest.raises(InputError, match="t.json"):
        load(tmp_path / "t.json")
    frame = pd.DataFrame([("a", "1 3", "1", "", "0.5", ""), ("a", "1 3", "1", "", "high", "")], columns=HEADER)
    with pytest.raises(InputError, match=r"pred.csv:3"):
        apply_thresholds(frame, Thresholds(), "pred.csv")


def test_submit_applies_thresholds_and_keeps_line_numbers(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "test").mkdir()
    for image_id in ("a", "b"):
        Image.new("RGB", (10, 10)).save(tmp_path / "test" / f"{image_id}.jpg")
    (tmp_path / "params.yaml").write_text("{}\n")
    save(tmp_path / "t.json", Thresholds("kaggle", 0.3, {}, 0.5, {115: 0.2}))
    rows = [("a", "1 3", "1", "", "0.9", "115:0.250"), ("a", "21 3", "2", "", "0.1", ""),
            ("a", "11 3", "4", "", "0.8", "")]
    pd.DataFrame(rows, columns=HEADER).to_csv(tmp_path / "pred.csv", index=False)

    def submit(*extra):
        return main(["--params", str(tmp_path / "params.yaml"), "submit", "--data", str(tmp_path), "--predictions",
                     str(tmp_path / "pred.csv"), "--out", str(tmp_path / "sub.csv"), *extra])

    assert submit("--thresholds", str(tmp_path / "t.json")) == 0
    written = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    assert written.values.tolist() == [["a", "1 3", "1", "115"], ["a", "11 3", "4", ""], ["b", "", "", ""]]
    rows[2] = ("a", "11 300", "4", "", "0.8", "")  # beyond the 10x10 image, after a dropped row
    pd.DataFrame(rows, columns=HEADER).to_csv(tmp_path / "pred.csv", index=False)
    assert submit("--thresholds", str(tmp_path / "t.json")) == 2
    assert "pred.csv:4: RLE run ends" in capsys.readouterr().err


class FullEvaluationScorer:
    """Yesterday's scorer, kept as the reference: one whole evaluator call per candidate."""

    def __init__(self, records, table, probs, ontology, metric, options):
        from pipeline.scoring import coco_ap
        from pipeline.scoring.instances import ground_truth_table
        from pipeline.scoring.masks import overlapping_pairs

        self.records, self.table, self.probs, self.ontology, self.metric, self.options = (
            records, table, probs, ontology, metric, options)
        self.gt = ground_truth_table(records)
        self.pairs = overlapping_pairs(self.gt, table, [(r.height, r.width) for r in records],
                                       coco_ap.IOU_THRESHOLDS[0])

    def commit(self, keep, attribute_cutoffs):
        pass

    def __call__(self, keep, attribute_cutoffs):
        import numpy as np

        from pipeline.scoring.evaluator import evaluate
        from pipeline.scoring.instances import InstanceTable

        rows = np.flatnonzero(keep)
        renumber = np.full(len(self.table), -1)
        renumber[rows] = np.arange(rows.size)
        pairs = self.pairs.select(keep[self.pairs.pred])
        pairs.pred = renumber[pairs.pred]
        ids = self.ontology.attribute_ids
        table = InstanceTable(self.table.image[rows], self.table.class_id[rows],
                              [tuple(ids[c].tolist()) for c in self.probs[rows] >= attribute_cutoffs],
                              [self.table.runs[r] for r in rows], self.table.area[rows],
                              None if self.metric == "kaggle" else self.table.score[rows])
        return float(evaluate(self.records, table, self.ontology, self.options, gt=self.gt,
                              pairs=pairs).metrics()[self.metric])


@pytest.mark.parametrize("metric", ["kaggle", "ap_iou_f1"])
def test_incremental_scorer_tunes_as_a_whole_evaluation_per_candidate(project, metric):
    """Same thresholds, and the same metric for every candidate state, as the full evaluator."""
    import numpy as np

    from pipeline.ensembling.inputs import attribute_vector
    from pipeline.scoring.kaggle_options import KaggleOptions
    from pipeline.scoring.predictions import predictions_table

    root, _ = project
    records, _ = read_annotations(root / "data" / "train.csv", LABELS)
    frame = pd.read_csv(root / "oof.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(5)
    # Attribute probabilities worth tuning: the true ones at random heights, plus random wrong ones.
    frame["AttributeScores"] = [
        " ".join(sorted({f"{a}:{rng.uniform(0.1, 1):.3f}" for a in ids.split(",") if a}
                        | {f"{a}:{rng.uniform(0.05, 0.6):.3f}" for a in rng.choice([115, 136, 143, 160], 2, False)},
                        key=lambda pair: int(pair.split(":")[0])))
        for ids in frame.AttributesIds]
    frame["AttributeScores"] = [" ".join(dict((p.split(":")[0], p) for p in t.split()).values())
                                for t in frame.AttributeScores]
    table = predictions_table(frame, records, LABELS)
    probs = np.array([attribute_vector(frame.AttributeScores.iat[line - 2], a, LABELS, "oof", int(line))
                      for line, a in zip(table.line, table.attributes)], np.float32)
    cfg = TuneConfig(metric=metric, min_class_instances=3, min_attribute_positives=3)
    options = KaggleOptions()
    reference = FullEvaluationScorer(records, table, probs, LABELS, metric, options)
    incremental = tune_module.Scorer(records, table, probs, LABELS, metric, options)
    expected, tuned = tune_module.tune(reference, cfg), tune_module.tune(incremental, cfg)
    assert tuned == expected
    assert tuned.attributes or tuned.class_scores  # something was tuned apart from the defaults
    for seed in range(5):  # random states, each against a fresh reference call
        state = np.random.default_rng(seed)
        keep = state.random(len(table)) > 0.3
        cutoffs = state.choice([0.1, 0.5, 0.9], LABELS.num_attributes)
        assert incremental(keep, cutoffs) == pytest.approx(reference(keep, cutoffs), abs=1e-12)
