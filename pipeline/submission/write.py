"""Scored predictions -> Kaggle's submission CSV (the `submit` stage).

Reads a predictions CSV as `predict` writes it (ImageId, EncodedPixels, ClassId, AttributesIds,
Score; masks at the original size; rows sorted by ImageId), every row validated as the evaluator
validates predictions. It is read and written image by image (`sorted_csv`): memory holds one
image's rows, however many test images there are.
Writes Kaggle's four columns exactly, `ImageId,EncodedPixels,ClassId,AttributesIds` (no Score),
attribute ids ascending and comma-joined, rows by ImageId, then by score, highest first (file
order without a Score column).

- **Every test image has a row** (the images of `images.submission_images`): Kaggle's checker
  does not allow missing ImageIds. An image without predictions gets one blank row: empty
  EncodedPixels, ClassId and AttributesIds, which the local evaluator reads as "no predictions".
  The public 2019/2020 kernels padded with a one-pixel mask of class 23 instead (`1 1,23`, the row
  the synthetic `sample_submission.csv` uses); that row would score as a false positive.
- **`--max-side N`**: masks re-encoded at the image's size scaled to a longest side of N, aspect
  kept, as the 2020 solutions submitted to keep the file small; images no larger keep their size
  (never enlarged, as in the cache). Unverified against Kaggle's scorer: no public source shows
  that it decoded masks at a reduced size (the file carries no mask size), so the default is the
  original size. Masks shrink by area coverage >= 0.5 (`resize.resize_mask`),
  so no instance vanishes.
- **`--thresholds FILE`** (params `submit.thresholds`, null: none): `tune`'s thresholds applied
  first (`pipeline.ensembling.thresholds.apply_thresholds`): detections under their class's score
  cut-off dropped, AttributesIds re-derived from AttributeScores.
- **`--overlap smaller_wins`**: a pixel claimed by several masks of one image stays only in the
  smallest of them (pixel count at the original size; ties: higher score, then file order), so a
  pocket or a zip keeps its pixels against the garment it sits on; masks left empty are dropped.
  `none` writes the masks as predicted, overlaps included.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.data import ontology as ontology_lib
from pipeline.data import resize, rle
from pipeline.data.annotations import ImageRecord
from pipeline.data.sorted_csv import header, image_groups
from pipeline.data.ontology import Ontology
from pipeline.ensembling.thresholds import apply_thresholds
from pipeline.ensembling.thresholds import load as load_thresholds
from pipeline.errors import InputError
from pipeline.progress import progress as shown_progress
from pipeline.scoring.instances import InstanceTable
from pipeline.scoring.predictions import PREDICTION_COLUMNS, predictions_table
from pipeline.submission.config import SubmitConfig
from pipeline.submission.images import submission_images, submission_size

def submission(frame: pd.DataFrame, images: dict[str, tuple[int, int]], ontology: Ontology,
               max_side: int | None = None, overlap: str = "none", source: str = "<predictions>") -> pd.DataFrame:
    """The submission of a predictions frame (CSV strings) for `images` (ImageId -> original size).
    Messages name the line `frame.index` + 2 (a frame read from a file, whole or in part)."""
    ids = frame["ImageId"].astype(str).str.strip()
    lines = np.arange(len(frame)) + 2 if frame.index.dtype.kind not in "iu" else frame.index.to_numpy() + 2
    unknown = np.flatnonzero((ids != "").to_numpy() & ~ids.isin(images).to_numpy())
    if unknown.size:
        raise InputError(f"ImageId {ids.iat[unknown[0]]} is not a test image", source, int(lines[unknown[0]]))
    image_ids = list(images)
    try:
        table = predictions_table(frame.reset_index(drop=True), [ImageRecord(i, *images[i]) for i in image_ids],
                                  ontology, source)
    except InputError as error:
        raise InputError(error.message, source, int(lines[error.line - 2])) from None
    score = table.score if table.score is not None else np.zeros(len(table))
    order = np.lexsort((-score, table.image))  # stable: equal scores keep file order
    bounds = np.searchsorted(table.image[order], np.arange(len(image_ids) + 1))
    strings = frame["EncodedPixels"].astype(str).tolist()
    rows = []
    for index, image_id in enumerate(image_ids):
        members = order[bounds[index]:bounds[index + 1]]
        size = images[image_id]
        encoded = image_masks(table, members, size, submission_size(*size, max_side), overlap,
                              [strings[line - 2] for line in table.line[members]])
        kept = [(image_id, e, str(table.class_id[m]), ",".join(map(str, table.attributes[m])))
                for m, e in zip(members, encoded) if e]
        rows += kept or [(image_id, "", "", "")]
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


def image_masks(table: InstanceTable, members: np.ndarray, size: tuple[int, int], out_size: tuple[int, int],
                overlap: str, originals: list[str]) -> list[str]:
    """RLE strings at `out_size` of one image's rows `members` ('' for a mask overlap removal emptied)."""
    if out_size == size and overlap == "none":
        return [s.strip() for s in originals]
    height, width = size
    claimed = np.zeros(out_size, bool) if overlap == "smaller_wins" else None
    # Smallest first, so each mask keeps what no smaller one took; stable: ties keep score order.
    visit = np.argsort(table.area[members], kind="stable") if claimed is not None else range(members.size)
    encoded = [""] * members.size
    for k in visit:
        starts, lengths = table.runs[members[k]]
        mask = rle.counts_to_mask(rle.runs_to_counts(starts, lengths, height * width), height, width)
        mask = resize.resize_mask(mask, out_size).astype(bool)
        if claimed is not None:
            own = mask & ~claimed
            claimed |= mask
            mask = own
        encoded[k] = rle.encode(mask)
    return encoded


def write_submission(source: Path, root: Path, config: SubmitConfig, thresholds_path: str | Path | None,
                     out: str | Path, progress: bool = False) -> str:
    """The submission of the scored test predictions `source` for `root`'s test images into `out`
    (tune's thresholds applied first when given); a summary line."""
    images = submission_images(root)
    ontology = ontology_lib.load_for_dataset(root)
    header(source, tuple(PREDICTION_COLUMNS))
    thresholds = load_thresholds(thresholds_path) if thresholds_path else None
    pending = iter(images)  # test images in ImageId order; those without predictions get a blank row
    masks = blank = 0
    with io.csv_rows(out, PREDICTION_COLUMNS) as writer:
        groups = image_groups(source, tuple(PREDICTION_COLUMNS))
        for image_id, frame in shown_progress(groups, progress, len(images), "submit"):
            if image_id not in images:
                raise InputError(f"ImageId {image_id} is not a test image", source, int(frame.index[0]) + 2)
            for missing in pending:
                if missing == image_id:
                    break
                writer.writerow((missing, "", "", ""))
                blank += 1
            if thresholds is not None:
                frame = apply_thresholds(frame, thresholds, str(source), blank_dropped=True)
            rows = submission(frame, {image_id: images[image_id]}, ontology, config.max_side, config.overlap,
                              str(source))
            writer.writerows(rows.itertuples(index=False))
            empty = int((rows["EncodedPixels"] == "").sum())
            masks, blank = masks + len(rows) - empty, blank + empty
        for missing in pending:
            writer.writerow((missing, "", "", ""))
            blank += 1
    size = f"longest side {config.max_side}" if config.max_side else "original size"
    return (f"{masks} masks ({size}, overlap {config.overlap}) for {len(images)} test images, "
            f"{blank} without predictions -> {out}")
