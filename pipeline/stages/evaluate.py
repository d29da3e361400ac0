"""`python -m pipeline evaluate --gt GT --pred PRED`: AP_IoU, AP_IoU+F1 and the Kaggle score of a file.

GT: train.csv layout or a Fashionpedia instances JSON; PRED: the pipeline's predictions CSV or the
official results JSON (`pipeline.evaluation.evaluate`)."""
from __future__ import annotations

import sys

from pipeline.scoring.kaggle_options import DENOMINATORS, THRESHOLD_RULES


def add_kaggle_arguments(parser) -> None:
    """The flags of every command that scores (evaluate, report, tune)."""
    parser.add_argument("--kaggle-denominator", dest="evaluate.kaggle_denominator", choices=DENOMINATORS,
                        help="Kaggle score per threshold: TP/(TP+FP+FN) or TP/(TP+FP) (default: params evaluate)")
    parser.add_argument("--kaggle-thresholds", dest="evaluate.kaggle_thresholds", choices=THRESHOLD_RULES,
                        help="hits need IoU/F1 > t (strict) or >= t (default: params evaluate)")


def add_work_arguments(parser, section: str) -> None:
    """The flags of every command that walks a file's images (ensemble, evaluate, report, tune)."""
    parser.add_argument("--workers", dest=f"{section}.workers", type=int,
                        help=f"processes; 0 or 1: this one only (default: params {section}.workers, null: every core)")


def add_arguments(parser) -> None:
    parser.add_argument("--gt", required=True,
                        help="ground truth: a CSV in train.csv layout, or a Fashionpedia instances JSON (*.json, "
                             "e.g. instances_attributes_val2020.json)")
    parser.add_argument("--pred", required=True,
                        help="predictions: a CSV in submission layout plus a Score column, in any row order, or "
                             "Fashionpedia's official results JSON (*.json: a list of image_id, category_id, "
                             "segmentation as compressed RLE, score, attribute_ids; needs a JSON --gt)")
    parser.add_argument("--labels", help="label_descriptions.json (default: the project's copy)")
    parser.add_argument("--out", help="metrics JSON to write")
    add_kaggle_arguments(parser)
    add_work_arguments(parser, "evaluate")


def run(settings, args) -> int:
    from pipeline import io
    from pipeline.data import ontology
    from pipeline.evaluation.evaluate import evaluate_files, format_table

    evaluation = evaluate_files(args.gt, args.pred, ontology.load(args.labels), settings.evaluate.kaggle,
                                settings.evaluate.workers, progress=not args.no_progress)
    metrics = evaluation.metrics()
    if args.out:
        io.write_json(args.out, metrics)
    print(format_table(metrics))
    if not evaluation.has_ap:
        print(f"note: {args.pred} has no Score column: AP needs confidences, only kaggle was computed", file=sys.stderr)
    return 0
