"""`evaluate` on Fashionpedia's instances JSON and the official results JSON, against the official
evaluator (FPEval) and pycocotools' COCOeval run on the same files."""
import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from pipeline.cli import main
from pipeline.data import ontology as ontology_lib
from pipeline.data import rle
from pipeline.data.annotations import read_annotations
from pipeline.data.fashionpedia import read_images
from pipeline.evaluation.evaluate import evaluate_files
from pipeline.evaluation.reference_runners import run_cocoeval, run_fpeval
from pipeline.scoring.results_json import write_results
from pipeline.scoring.kaggle_options import KaggleOptions

from fashionpedia_layout import ONTOLOGY, write_layouts, write_predictions
from test_against_references import _assert_matches_cocoeval, _assert_matches_fpeval

VAL_JSON = "instances_attributes_val2020.json"
TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=[0, 1, 2])
def generated(request, tmp_path_factory):
    """(ground-truth JSON, predictions CSV, the same predictions as results JSON)."""
    root = tmp_path_factory.mktemp(f"generated{request.param}")
    fp_root, _ = write_layouts(root, train_images=1, val_images=10, seed=request.param)
    gt = fp_root / VAL_JSON
    predictions = write_predictions(fp_root, root / "predictions.csv", seed=request.param)
    results = root / "results.json"
    write_results(predictions, read_images(gt), ONTOLOGY, results)
    return gt, predictions, results


def _references(gt, results):
    """Both references on the files as they are on disk (each modifies what it is given)."""
    load = lambda path: json.loads(path.read_text())  # noqa: E731
    return run_cocoeval(load(gt), load(results)), run_fpeval(load(gt), load(results))


def test_json_ground_truth_and_results_match_both_references(generated):
    gt, _, results = generated
    data = json.loads(gt.read_text())
    assert {type(a["segmentation"]).__name__ for a in data["annotations"]} == {"list", "dict"}
    assert len(json.loads(results.read_text())) > 20
    ours = evaluate_files(gt, results, ONTOLOGY, KaggleOptions())
    coco, fpeval = _references(gt, results)
    _assert_matches_cocoeval(ours, coco, ONTOLOGY.num_classes)
    _assert_matches_fpeval(ours, fpeval, ONTOLOGY.num_classes)
    assert ours.images == len(data["images"])


def test_the_predictions_csv_scores_as_its_results_json(generated):
    gt, predictions, results = generated
    from_csv, from_json = (evaluate_files(gt, p, ONTOLOGY, KaggleOptions()).metrics() for p in (predictions, results))
    # The Kaggle score sums its images in the order read (ImageId, or id): the last bits may differ.
    assert from_csv.pop("kaggle") == pytest.approx(from_json.pop("kaggle"), abs=1e-12)
    assert from_csv == from_json


def test_areas_come_from_boxes_when_the_first_result_has_one(generated, tmp_path):
    """Both references' loadRes then take every result's area from its box: so do we."""
    gt, _, results = generated
    items = json.loads(results.read_text())
    rng = np.random.default_rng(0)
    for item in items:
        item["bbox"] = [0.0, 0.0, float(rng.uniform(5, 120)), float(rng.uniform(5, 120))]
    boxed = tmp_path / "boxed.json"
    boxed.write_text(json.dumps(items))
    ours = evaluate_files(gt, boxed, ONTOLOGY, KaggleOptions())
    coco, fpeval = _references(gt, boxed)
    _assert_matches_cocoeval(ours, coco, ONTOLOGY.num_classes)
    _assert_matches_fpeval(ours, fpeval, ONTOLOGY.num_classes)
    by_mask = evaluate_files(gt, results, ONTOLOGY, KaggleOptions())
    assert ours.ap_iou() == by_mask.ap_iou()
    assert [ours.ap_iou(a) for a in ("small", "medium", "large")] != \
        [by_mask.ap_iou(a) for a in ("small", "medium", "large")]


def _sample_as_json(sample, out):
    """The shared sample's train.csv as an instances JSON: ids in the CSV's image order but not
    1..N, masks as compressed and as uncompressed RLE, areas as the masks' pixel counts."""
    ontology = ontology_lib.load_for_dataset(sample)
    records, _ = read_annotations(sample / "train.csv", ontology)
    images, annotations = [], []
    for k, record in enumerate(records):
        images.append({"id": 40 + 7 * k, "file_name": f"{record.image_id}.jpg", "height": record.height,
                       "width": record.width})
        for instance in record.instances:
            mask = rle.decode(instance.rle, record.height, record.width)
            if len(annotations) % 2:
                counts = coco_mask.encode(np.asfortranarray(mask))["counts"].decode("ascii")
            else:
                counts = rle.mask_to_counts(mask).tolist()
            annotations.append({"id": 900 + len(annotations), "image_id": images[-1]["id"],
                                "category_id": instance.class_id, "attribute_ids": list(instance.attributes),
                                "segmentation": {"size": [record.height, record.width], "counts": counts},
                                "area": int(mask.sum()), "iscrowd": 0})
    out.write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in ontology.categories],
        "attributes": [{"id": a.id, "name": a.name, "supercategory": a.supercategory} for a in ontology.attributes],
    }))
    return out


def test_shared_sample_in_the_papers_formats_gives_the_official_numbers(fashionpedia_sample, tmp_path, capsys):
    gt = _sample_as_json(fashionpedia_sample, tmp_path / VAL_JSON)
    labels = fashionpedia_sample / "label_descriptions.json"
    (tmp_path / "params.yaml").write_text("{}\n")
    common = ["--params", str(tmp_path / "params.yaml")]
    assert main([*common, "fashionpedia-results", "--pred", str(fashionpedia_sample / "predictions.csv"),
                 "--images", str(gt), "--out", str(tmp_path / "results.json"), "--labels", str(labels)]) == 0
    assert "12 results ->" in capsys.readouterr().out
    expected = json.loads((fashionpedia_sample / "reference_metrics.json").read_text())
    fpeval = _references(gt, tmp_path / "results.json")[1]
    for pred in (tmp_path / "results.json", fashionpedia_sample / "predictions.csv"):
        out = tmp_path / f"{pred.stem}.metrics.json"
        assert main([*common, "evaluate", "--gt", str(gt), "--pred", str(pred), "--labels", str(labels),
                     "--out", str(out)]) == 0
        metrics = json.loads(out.read_text())
        for key in ("ap_iou", "ap_iou_f1", "ap_iou_f1_50", "ap_iou_50", "ap_iou_75"):
            assert metrics[key] == pytest.approx(expected[key], abs=TOLERANCE), key
        assert metrics["ap_iou_f1"] == pytest.approx(fpeval.results["AP"], abs=TOLERANCE)
        assert metrics["ap_iou_f1_50"] == pytest.approx(fpeval.results["AP_IOU50"], abs=TOLERANCE)
    printed = capsys.readouterr().out
    assert f"{expected['ap_iou_f1']:.4f}" in printed and f"{expected['ap_iou']:.4f}" in printed


def _cli(tmp_path, gt, pred):
    (tmp_path / "params.yaml").write_text("{}\n")
    return main(["--params", str(tmp_path / "params.yaml"), "evaluate", "--gt", str(gt), "--pred", str(pred)])


def test_a_bad_ground_truth_annotation_exits_2_naming_file_and_annotation(generated, tmp_path, capsys):
    gt, _, results = generated
    data = json.loads(gt.read_text())
    data["annotations"][2]["attribute_ids"] = [1, 2, 1000]
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(data))
    assert _cli(tmp_path, bad, results) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {bad}: annotation {data['annotations'][2]['id']}: attribute id 1000 is not in the ontology")


@pytest.mark.parametrize("change, message", [
    (lambda items: items[3].update(image_id=-1), "result 3: image_id -1 is not an image of the ground truth"),
    (lambda items: items[0].update(score="high"), "score 'high' is not a finite number"),
    (lambda items: items[0].update(category_id=46), "ClassId 46 outside 0..45"),
    (lambda items: items[0].update(category_id="3"), "category_id '3' is not an integer"),
    (lambda items: items[0].pop("attribute_ids"), "attribute_ids must be a list of integers"),
    (lambda items: items[0]["segmentation"].update(counts=[1, 2]), "segmentation must be compressed RLE"),
    (lambda items: items[0]["segmentation"].update(size=[1, 1]), "RLE size [1, 1] is not the image's"),
    (lambda items: items[0]["segmentation"].update(counts="0"), "RLE counts do not cover the image's"),
    (lambda items: items[1].update(bbox=[1, 2, 3, 4]), None),  # a box on a later result only: areas from masks
    (lambda items: items[0].update(bbox=[1, 2, 3, 4]), "no bbox [x, y, w, h], which the first result has"),
])
def test_bad_results_exit_2_naming_the_result(generated, tmp_path, capsys, change, message):
    gt, _, results = generated
    items = json.loads(results.read_text())
    change(items)
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(items))
    assert _cli(tmp_path, gt, bad) == (0 if message is None else 2)
    err = capsys.readouterr().err.strip()
    if message is not None:
        assert err.startswith(f"error: {bad}: result ") and message in err and "\n" not in err, err


def test_results_json_needs_an_instances_json_as_ground_truth(fashionpedia_sample, tmp_path, capsys):
    (tmp_path / "results.json").write_text("[]")
    assert _cli(tmp_path, fashionpedia_sample / "train.csv", tmp_path / "results.json") == 2
    assert "score it against the instances JSON" in capsys.readouterr().err


def test_writer_refuses_rows_it_cannot_place(generated, tmp_path, capsys):
    gt, predictions, _ = generated
    text = predictions.read_text().splitlines()
    text[2] = "nosuchimage," + text[2].split(",", 1)[1]
    bad = tmp_path / "predictions.csv"
    bad.write_text("\n".join(text) + "\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    command = ["--params", str(tmp_path / "params.yaml"), "fashionpedia-results", "--pred", str(bad),
               "--images", str(gt), "--out", str(tmp_path / "out.json")]
    assert main(command) == 2
    assert capsys.readouterr().err.strip() == f"error: {bad}:3: image 'nosuchimage' is not in the images file"
    assert not (tmp_path / "out.json").exists()
    no_score = tmp_path / "no_score.csv"
    no_score.write_text("ImageId,EncodedPixels,ClassId,AttributesIds\n")
    assert main([*command[:4], str(no_score), *command[5:]]) == 2
    assert "missing column(s) Score" in capsys.readouterr().err
