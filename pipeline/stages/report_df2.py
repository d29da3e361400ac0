"""`python -m pipeline report-df2`: the DeepFashion2 track's validation metrics in one JSON (`df2.report`)."""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    pass


def run(settings, args) -> int:
    import json

    from pipeline import io
    from pipeline.evaluation.deepfashion2.report import report

    metrics = report(Path(settings.df2.root), Path(settings.df2.predictions))
    io.write_json(settings.df2.report, metrics)
    print(json.dumps(metrics, indent=2))
    print(f"report-df2: -> {settings.df2.report}")
    return 0
