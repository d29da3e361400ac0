"""Our inputs for the reference evaluators, pycocotools' COCOeval (segm) and Fashionpedia's FPEval
(`reference_runners` runs them).

Used by the tests (to check the evaluator number for number) and by `bench evaluate`. The
conversion fixes what the CSV layout leaves open: image ids 1..N in the ground truth's image order,
annotation and result ids in file order, areas as mask pixel counts, all 46 categories and all
ontology attributes declared. Neither reference accepts an empty result list.
"""
from __future__ import annotations

from pycocotools import mask as coco_mask

from pipeline.data.annotations import ImageRecord
from pipeline.data.ontology import Ontology
from pipeline.scoring.instances import InstanceTable, ground_truth_table
from pipeline.scoring.masks import coco_rles


def coco_inputs(records: list[ImageRecord], predictions: InstanceTable, ontology: Ontology) -> tuple[dict, list]:
    """(ground-truth dataset dict, results list) in the Fashionpedia flavour of the COCO format."""
    gt = ground_truth_table(records)
    dataset = {
        "images": [
            {"id": i + 1, "file_name": f"{r.image_id}.jpg", "height": r.height, "width": r.width}
            for i, r in enumerate(records)
        ],
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in ontology.categories],
        "attributes": [
            {"id": a.id, "name": a.name, "supercategory": a.supercategory, "level": a.level}
            for a in ontology.attributes
        ],
        "annotations": [
            {**_annotation(gt, row, records), "id": row + 1, "area": int(gt.area[row]), "iscrowd": 0}
            for row in range(len(gt))
        ],
    }
    for annotation in dataset["annotations"]:
        annotation["bbox"] = coco_mask.toBbox(annotation["segmentation"]).tolist()
    results = [
        {**_annotation(predictions, row, records), "score": float(predictions.score[row])}
        for row in range(len(predictions))
    ]
    for item in dataset["annotations"] + results:
        item["segmentation"]["counts"] = item["segmentation"]["counts"].decode("ascii")
    return dataset, results


def _annotation(table: InstanceTable, row: int, records: list[ImageRecord]) -> dict:
    record = records[table.image[row]]
    return {
        "image_id": int(table.image[row]) + 1,
        "category_id": int(table.class_id[row]),
        "segmentation": coco_rles(table, [row], record.height, record.width)[0],
        "attribute_ids": list(table.attributes[row]),
    }
