"""Score predictions against ground truth (the `evaluate` command).

Ground truth: a Kaggle train.csv, or a Fashionpedia instances JSON (instances_attributes_val2020.json,
the papers' protocol). Predictions: the pipeline's CSV (submission layout plus Score), or the
official results JSON (`python -m pipeline fashionpedia-results` writes one from a CSV). The format
is told by the file's suffix (`.json`); `pipeline.scoring.sources` has the readers.

`Evaluation.metrics` gives the metrics JSON, `format_table` the printed table: ap_iou is the papers'
AP_IoU^mask (COCOeval), ap_iou_f1 their AP_IoU+F1^mask (FPEval). A predictions CSV comes in any
row order (one out of ImageId order is sorted on disk first); it and the ground truth are read side
by side and scored a chunk of images at a time by `workers` processes (`scoring.streamed`), so
memory does not grow with either file beyond what a JSON file needs parsed.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.data.ontology import Ontology
from pipeline.scoring.evaluator import Accumulator, Evaluation
from pipeline.parallel import worker_count
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.scoring.sources import ground_truth_stream, is_json, results_json_chunks
from pipeline.scoring.streamed import score_file


def evaluate_files(gt: str | Path, predictions: str | Path, ontology: Ontology, options: KaggleOptions,
                   workers: int | None = 1, progress: bool = False) -> Evaluation:
    """Score a predictions file against a ground-truth file, in any accepted format, a chunk of
    images at a time; a CSV's chunks on `workers` processes (None: every core)."""
    if is_json(predictions):
        accumulator = Accumulator(ontology, options)
        for images, records, table in results_json_chunks(gt, predictions, ontology):
            accumulator.add(records, table, image_index=images, position=table.line)
        return accumulator.result()
    workers = worker_count(workers)
    accumulators, _ = score_file(predictions, ground_truth_stream(gt, ontology, workers), ontology, options,
                                 workers=workers, progress=progress)
    return accumulators.get(0, Accumulator(ontology, options)).result()


def format_table(metrics: dict) -> str:
    """Headline scores, then per supercategory and per category with ground truth or predictions."""
    lines = [f"{metrics['images']} images, {metrics['gt_instances']} ground-truth instances, "
             f"{metrics['predictions']} predictions"]
    options = metrics["kaggle_options"]
    lines.append(f"{'kaggle':<16}{metrics['kaggle']:.4f}  ({options['denominator']}, {options['thresholds']})")
    if metrics["ap_iou"] is None:
        return "\n".join(lines)
    lines.append(f"{'':<16}{'AP':>8}{'AP50':>8}{'AP75':>8}{'APs':>8}{'APm':>8}{'APl':>8}")
    for name in ("ap_iou", "ap_iou_f1"):
        values = [metrics[name + suffix] for suffix in ("", "_50", "_75", "_small", "_medium", "_large")]
        lines.append(f"{name:<16}" + "".join(_cell(v) for v in values))
    lines.append("")
    lines.append(f"{'supercategory':<44}{'ap_iou':>10}{'ap_iou_f1':>10}")
    for group, scores in metrics["supercategories"].items():
        lines.append(f"{group:<44}{_cell(scores['ap_iou'], 10)}{_cell(scores['ap_iou_f1'], 10)}")
    lines.append("")
    lines.append(f"{'category':<44}{'gt':>6}{'pred':>6}{'ap_iou':>10}{'ap_iou_f1':>10}")
    for name, scores in metrics["categories"].items():
        if scores["gt"] or scores["pred"]:
            lines.append(f"{name[:43]:<44}{scores['gt']:>6}{scores['pred']:>6}"
                         f"{_cell(scores['ap_iou'], 10)}{_cell(scores['ap_iou_f1'], 10)}")
    return "\n".join(lines)


def _cell(value: float, width: int = 8) -> str:
    """-1 (undefined: no ground truth) shows as a dash."""
    return f"{'-':>{width}}" if value < 0 else f"{value:>{width}.4f}"
