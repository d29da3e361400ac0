"""A model's out-of-fold predictions over all folds in one file (the `gather` stage).

The fold files are sorted by ImageId (as `predict` writes them) and merged image by image into a
file sorted the same way, streamed: memory holds one image's rows per fold. A missing file is an
error, never a silently smaller file.
"""
from __future__ import annotations

from pathlib import Path

from pipeline import io
from pipeline.data.prediction_rows import COLUMNS
from pipeline.data.sorted_csv import aligned_image_groups
from pipeline.errors import InputError
from pipeline.progress import progress as shown_progress


def gather(paths: list[Path], out: Path, progress: bool = False) -> int:
    """Merge the fold files `paths` into `out`; the number of rows written."""
    for path in paths:
        if not path.exists():
            raise InputError("prediction file not found (run predict for this fold first)", path)
    rows = 0
    with io.csv_rows(out, COLUMNS) as writer:
        groups = aligned_image_groups(paths, COLUMNS)
        for _, frames in shown_progress(groups, progress, description=f"gather {out.name}"):
            for frame in frames:
                if frame is not None:
                    writer.writerows(frame[list(COLUMNS)].itertuples(index=False))
                    rows += len(frame)
    return rows
