"""DeepFashion2 evaluation: the shared worked example, pycocotools on random cases, bad files."""
import copy
import json

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from pipeline.cli import main
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data.images import image_size
from pipeline.evaluation.deepfashion2 import reference as df2_reference
from pipeline.evaluation.deepfashion2 import metrics as deepfashion2
from df2_cases import in_branch, random_case

TASKS_OF_BRANCH = {"bbox": ("bbox", "segm", "keypoints"), "segmentation": ("bbox", "segm", "keypoints"),
                   "keypoints": ("bbox", "keypoints")}


@pytest.fixture(scope="session")
def example(shared_dir):
    return shared_dir / "data" / "deepfashion2_example"


def run_cli(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("task", ["bbox", "segm", "keypoints", "retrieval"])
def test_example_equals_the_official_numbers(example, task, capsys):
    reference = json.loads((example / "reference_metrics.json").read_text())[task]
    if task == "retrieval":
        argv = ["evaluate-df2", "--task", task, "--query-gt", str(example / "query_gt.json"),
                "--gallery-gt", str(example / "gallery_gt.json"), "--results", str(example / "retrieval_results.json")]
    else:
        argv = ["evaluate-df2", "--task", task, "--annos", str(example / "annos"),
                "--results", str(example / f"{task}_results.json")]
    status, out, _ = run_cli(argv, capsys)
    assert status == 0
    metrics = json.loads(out)
    for key, value in reference.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_example_breakdowns_are_complete(example, capsys):
    status, out, _ = run_cli(["evaluate-df2", "--task", "segm", "--annos", str(example / "annos"),
                              "--results", str(example / "segm_results.json")], capsys)
    metrics = json.loads(out)
    assert set(metrics["categories"]) == {c.name for c in df2.CATEGORIES}
    assert metrics["categories"]["vest"]["AP"] == -1  # no ground truth
    for label, values in df2.DIFFICULTIES.items():
        assert set(metrics[label]) == set(values)
    # Every example item is scale 2 (moderate): that subset is the whole set, the others are empty.
    annotations = df2.read_annotations(example / "annos")
    assert {item.difficulty[0] for a in annotations for item in a.items} == {2}
    assert metrics["scale"]["moderate"] == {k: metrics[k] for k in ("AP", "AP50", "AP75")}
    assert metrics["scale"]["small"]["AP"] == -1


def test_conversion_equals_the_official_gt_coco(example):
    annotations = df2.read_annotations(example / "annos")
    sizes = [image_size(df2.image_path(example / "image", a.image_id)) for a in annotations]
    converted = json.loads(json.dumps(df2.to_coco(annotations, sizes)))
    assert converted == json.loads((example / "gt_coco.json").read_text())


def test_sigmas_table():
    assert deepfashion2.SIGMAS.size == 294
    # The one left/right asymmetry of the official table: long_sleeved_dress landmarks 15 and 29.
    first = df2.CATEGORY_BY_ID[11].first_slot
    assert deepfashion2.SIGMAS[first + 14] == 0.0455 and deepfashion2.SIGMAS[first + 28] == 0.0486


@pytest.mark.parametrize("task", deepfashion2.TASKS)
def test_no_result_scores_zero_where_there_is_ground_truth(example, tmp_path, capsys, task):
    # The official script fails on an empty list (loadRes reads the first entry): here AP is 0.
    path = tmp_path / "results.json"
    path.write_text("[]")
    status, out, _ = run_cli(["evaluate-df2", "--task", task, "--annos", str(example / "annos"),
                              "--results", str(path)], capsys)
    metrics = json.loads(out)
    assert status == 0 and (metrics["AP"], metrics["AP50"], metrics["results"]) == (0.0, 0.0, 0)
    assert metrics["categories"]["trousers"]["AP"] == 0.0 and metrics["categories"]["vest"]["AP"] == -1


def test_usage_errors(example, capsys):
    status, _, err = run_cli(["evaluate-df2", "--task", "retrieval", "--results", "r.json"], capsys)
    assert status == 2 and "needs --query-gt and --gallery-gt" in err
    status, _, err = run_cli(["evaluate-df2", "--task", "segm", "--results", "r.json"], capsys)
    assert status == 2 and "needs --annos" in err
    status, _, err = run_cli(["evaluate-df2", "--task", "bbox", "--annos", str(example / "annos"),
                              "--results", str(example / "missing.json")], capsys)
    assert status == 2 and "missing.json: file not found" in err


def _ours(annotations, sizes, results, task):
    ground_truth = deepfashion2.GroundTruth.from_annotations(annotations, sizes)
    return deepfashion2.evaluate(ground_truth, deepfashion2.read_results(results, "r.json", ground_truth, task), task)


def _category_ap(evaluator, category_id):
    precision = evaluator.eval["precision"][:, :, category_id - 1, 0, -1]
    defined = precision[precision > -1]
    return float(np.mean(defined)) if defined.size else -1.0


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_equal_pycocotools(seed):
    annotations, sizes, results = random_case(seed)
    branch = ("bbox", "segmentation", "keypoints")[seed % 3]
    results = in_branch(results, branch)
    ground_truth = df2.to_coco(annotations, [(h, w) for h, w in sizes])
    for task in TASKS_OF_BRANCH[branch]:
        ours = _ours(annotations, sizes, copy.deepcopy(results), task)
        reference = df2_reference.run_official(df2_reference.load_ground_truth(copy.deepcopy(ground_truth)),
                                               copy.deepcopy(results), task)
        metrics = ours.metrics()
        assert [metrics["AP"], metrics["AP50"], metrics["AP75"]] == list(reference.stats[:3]), task
        for category in df2.CATEGORIES:
            assert metrics["categories"][category.name]["AP"] == _category_ap(reference, category.id), task


@pytest.mark.parametrize("seed", range(3))
def test_visible_only_landmarks_equal_pycocotools_on_the_visible_only_conversion(seed):
    annotations, sizes, results = random_case(200 + seed)
    results = in_branch(results, "keypoints")
    ground_truth = deepfashion2.GroundTruth.from_annotations(annotations, sizes, visible_only=True)
    ours = deepfashion2.evaluate(ground_truth, deepfashion2.read_results(copy.deepcopy(results), "r.json", ground_truth,
                                                                        "keypoints"), "keypoints").metrics()
    coco = df2.to_coco(annotations, sizes, visible_only=True)
    reference = df2_reference.run_official(df2_reference.load_ground_truth(coco), results, "keypoints")
    assert [ours["AP"], ours["AP50"], ours["AP75"]] == list(reference.stats[:3])
    assert ours["AP"] != _ours(annotations, sizes, copy.deepcopy(results), "keypoints").metrics()["AP"]


class SubsetCOCOeval(COCOeval):
    """COCOeval with the ground truth outside one difficulty subset ignored (an independent
    statement of the breakdowns' definition, on pycocotools' own matching)."""

    subset: tuple[int, int] = (0, 1)  # (difficulty column, value)

    def _prepare(self):
        super()._prepare()
        column, value = self.subset
        for gts in self._gts.values():
            for gt in gts:
                gt["ignore"] = gt["ignore"] or gt["difficulty"][column] != value


@pytest.mark.parametrize("seed", range(4))
def test_difficulty_subsets_equal_pycocotools_with_the_others_ignored(seed):
    annotations, sizes, results = random_case(100 + seed)
    results = in_branch(results, "bbox")
    ground_truth = df2.to_coco(annotations, sizes)
    items = [item for a in annotations for item in a.items]
    for annotation, item in zip(ground_truth["annotations"], items):
        annotation["difficulty"] = item.difficulty
    task = ("bbox", "segm", "keypoints", "bbox")[seed]
    ours = _ours(annotations, sizes, copy.deepcopy(results), task).metrics()
    for column, (label, values) in enumerate(df2.DIFFICULTIES.items()):
        for value_index, value in enumerate(values, 1):
            SubsetCOCOeval.subset = (column, value_index)
            reference = df2_reference.run_official(df2_reference.load_ground_truth(copy.deepcopy(ground_truth)),
                                                   copy.deepcopy(results), task, SubsetCOCOeval)
            assert [ours[label][value][k] for k in ("AP", "AP50", "AP75")] == list(reference.stats[:3]), (label, value)


def test_keypoints_keep_only_the_20_best_per_image_and_category():
    annotations, sizes, results = random_case(3)
    results = in_branch(results, "keypoints")
    ground_truth = deepfashion2.GroundTruth.from_annotations(annotations, sizes)
    table = deepfashion2.read_results(results, "r.json", ground_truth, "keypoints")
    groups = table.image * deepfashion2.NUM_CLASSES + table.category
    assert np.bincount(groups).max() > 20  # the case exercises the cut


@pytest.mark.parametrize(
    "content, expected",
    [
        ("[{\"image_id\": 1,", "not valid JSON"),
        ('{"image_id": 1}', "results must be a JSON list"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]', "entry 1: missing key 'score'"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1},'
         ' {"image_id": "2", "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1}]', "entry 2: image_id must be an integer"),
        ('[{"image_id": 1, "category_id": 14, "bbox": [0, 0, 5, 5], "score": 1}]', "entry 1: category_id 14 is not"),
        ('[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1}]', "entry 1: image_id 9 is not in the"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5], "score": 1}]', "entry 1: bbox must be 4 numbers"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1},'
         ' {"image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4, 5, 6]], "score": 1}]',
         "entry 2: missing key 'bbox'"),
    ],
)
def test_a_bad_result_file_is_one_line_naming_file_and_entry(example, tmp_path, capsys, content, expected):
    path = tmp_path / "results.json"
    path.write_text(content)
    status, out, err = run_cli(["evaluate-df2", "--task", "bbox", "--annos", str(example / "annos"),
                                "--results", str(path)], capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {path}") and expected in err


@pytest.mark.parametrize(
    "task, entry, expected",
    [
        ("keypoints", {"keypoints": [1.0] * 881}, "keypoints must be 3*294 = 882 numbers, got 881"),
        ("segm", {"segmentation": {"size": [10, 10], "counts": "abc"}}, "segmentation size [10, 10] is not the image's"),
        ("segm", {"segmentation": {"size": [300, 200], "counts": [1, 2]}}, "segmentation must be a COCO RLE"),
        ("segm", {"segmentation": {"size": 5, "counts": "a"}}, "segmentation size must be a list of numbers"),
        ("segm", {"segmentation": {"size": [300.5, 200], "counts": "a"}}, "segmentation size must be two integers"),
    ],
)
def test_bad_task_fields(example, tmp_path, capsys, task, entry, expected):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5, **entry}]))
    status, _, err = run_cli(["evaluate-df2", "--task", task, "--annos", str(example / "annos"),
                              "--results", str(path)], capsys)
    assert status == 2 and expected in err and "entry 1" in err
