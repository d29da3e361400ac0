"""`python -m pipeline evaluate`: score a predictions CSV against a ground-truth CSV.

Writes the metrics JSON (see `Evaluation.metrics`) and prints a table. The predictions file comes in
any row order (one out of ImageId order is sorted on disk first); it and the ground truth are read
side by side and scored a chunk of images at a time by `workers` processes (params
`evaluate.workers`, default every core; `scoring.streamed`), so memory does not grow with either
file. The Kaggle score's two unknowns come from params.yaml's
`evaluate` section or the flags (`kaggle_score.kaggle_options`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import io, params
from pipeline.parallel import worker_count
from pipeline.scoring.kaggle_score import add_kaggle_arguments, kaggle_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground truth CSV in train.csv layout")
    parser.add_argument("--pred", required=True, help="predictions CSV: submission layout plus a Score column")
    parser.add_argument("--labels", help="label_descriptions.json (default: the project's copy)")
    parser.add_argument("--out", help="metrics JSON to write")
    add_kaggle_arguments(parser)


def run(args) -> int:
    # Imported here: `evaluate --help` and the commands that only borrow the flags above stay fast.
    from pipeline.data import ontology as ontology_lib

    options = kaggle_options(args)
    ontology = ontology_lib.load(args.labels)
    workers = worker_count(params.section(args, "evaluate", {"workers": None})["workers"], "evaluate", args.params)
    evaluation = evaluate_file(args.gt, args.pred, ontology, options, workers, progress=True)
    metrics = evaluation.metrics()
    if args.out:
        io.write_json(args.out, metrics)
    print(format_table(metrics))
    if not evaluation.has_ap:
        print(f"note: {args.pred} has no Score column: AP needs confidences, only kaggle was computed", file=sys.stderr)
    return 0


def evaluate_file(gt: str | Path, predictions: str | Path, ontology, options, workers: int = 1,
                  progress: bool = False):
    """The `Evaluation` of a predictions file (any row order) against a ground-truth file."""
    from pipeline.data.annotations import index_annotations, records_by_image_id
    from pipeline.scoring.evaluator import Accumulator
    from pipeline.scoring.streamed import score_file

    index = index_annotations(gt, ontology)
    accumulators, _ = score_file(predictions, records_by_image_id(index, ontology), ontology, options, workers=workers,
                                 progress=progress, images=len(index.image_ids))
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
