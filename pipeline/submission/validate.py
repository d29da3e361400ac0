"""Check a Kaggle submission before uploading it (`python -m pipeline validate-submission FILE`).

Every problem is one line `FILE:LINE: message` (header = line 1; a missing image has no line):

- the header is exactly `ImageId,EncodedPixels,ClassId,AttributesIds` (rows are not read otherwise);
- every row has four fields and the ImageId of a test image (`images.submission_images`);
- a row is blank (no EncodedPixels, ClassId or AttributesIds: an image without predictions) or a
  mask: RLE valid for the image's size under `rle.parse`'s strict rules (the original size, or
  longest side `--max-side`), ClassId a category id, AttributesIds known attribute ids written
  comma-separated without spaces, ascending, without duplicates;
- every test image has a row.

Exit status 0 for a valid file; otherwise 2, with the first MAX_REPORTED problems and a count of
the rest. Blank lines are skipped, as pandas' CSV reader skips them.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data import ontology as ontology_lib
from pipeline.data import rle
from pipeline.data.annotations import parse_attributes, parse_class_id
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.progress import progress as shown_progress
from pipeline.scoring.predictions import PREDICTION_COLUMNS
from pipeline.submission.images import submission_images, submission_size

MAX_REPORTED = 50
# The RLE of a large, ragged mask can pass the csv module's default 128 KiB field limit.
FIELD_SIZE_LIMIT = 1 << 30
_ATTRIBUTES = re.compile(r"\d+(?:,\d+)*")


@dataclass
class Report:
    rows: int = 0
    masks: int = 0
    problems: list[InputError] = field(default_factory=list)


def check(path: str | Path, images: dict[str, tuple[int, int]], ontology: Ontology,
          max_side: int | None = None, progress: bool = False) -> Report:
    """Every problem of the submission at `path` for `images` (ImageId -> original size)."""
    report = Report()
    sizes = {image_id: submission_size(*size, max_side) for image_id, size in images.items()}
    seen = set()
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    try:
        with open(path, newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            if header != list(PREDICTION_COLUMNS):
                got = "an empty file" if header is None else repr(",".join(header))
                report.problems.append(InputError(
                    f"header must be exactly {','.join(PREDICTION_COLUMNS)}, got {got}; rows not checked", path, 1))
                return report
            for fields in shown_progress(reader, progress, description="validate-submission", unit="row"):
                if not fields:
                    continue
                report.rows += 1
                seen.add(fields[0])
                try:
                    report.masks += check_row(fields, sizes, ontology)
                except ValueError as error:  # RLEError is a ValueError
                    report.problems.append(InputError(str(error), path, reader.line_num))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except UnicodeDecodeError:  # raised for a whole buffered chunk: the bad byte is here or further on
        report.problems.append(InputError("not UTF-8 text (this line or a later one); the rest not checked", path,
                                          reader.line_num + 1))
        return report
    except OSError as error:
        raise InputError(f"cannot read the file ({error.strerror})", path) from None
    except csv.Error as error:
        report.problems.append(InputError(f"not a readable CSV ({error}); the rest not checked", path,
                                          reader.line_num))
        return report
    report.problems += [InputError(f"test image {i} has no row", path) for i in images if i not in seen]
    return report


def check_row(fields: list[str], sizes: dict[str, tuple[int, int]], ontology: Ontology) -> int:
    """1 for a valid mask row, 0 for a valid blank row; ValueError naming the first problem."""
    if len(fields) != len(PREDICTION_COLUMNS):
        raise ValueError(f"expected {len(PREDICTION_COLUMNS)} fields, got {len(fields)}")
    image_id, encoded, class_text, attribute_text = fields
    size = sizes.get(image_id)
    if size is None:
        raise ValueError(f"ImageId {image_id!r} is not a test image")
    if not encoded.strip():
        if class_text.strip() or attribute_text.strip():
            raise ValueError("ClassId or AttributesIds without EncodedPixels: a row without a mask must be blank")
        return 0
    rle.parse(encoded, *size)
    parse_class_id(class_text, ontology)
    check_attributes(attribute_text, ontology)
    return 1


def check_attributes(text: str, ontology: Ontology) -> None:
    """Known ids, comma-separated without spaces, ascending, no duplicates ('' = none)."""
    if not text:
        return
    if _ATTRIBUTES.fullmatch(text) is None:
        raise ValueError(f"AttributesIds {text!r} must be integers separated by commas, without spaces")
    parse_attributes(text, ontology)  # unknown ids
    ids = [int(v) for v in text.split(",")]
    if len(set(ids)) != len(ids):
        raise ValueError(f"AttributesIds {text!r} repeats attribute id {next(a for a in ids if ids.count(a) > 1)}")
    if ids != sorted(ids):
        raise ValueError(f"AttributesIds {text!r} must be sorted ascending")


def validate(path: str | Path, root: Path, max_side: int | None, progress: bool = False) -> tuple[bool, list[str]]:
    """(valid, lines to print) of the submission at `path` for `root`'s test images."""
    report = check(path, submission_images(root), ontology_lib.load_for_dataset(root), max_side, progress)
    lines = [str(problem) for problem in report.problems[:MAX_REPORTED]]
    if len(report.problems) > MAX_REPORTED:
        lines.append(f"{path}: ... and {len(report.problems) - MAX_REPORTED} more problem(s)")
    if report.problems:
        return False, lines + [f"{path}: not a valid submission: {len(report.problems)} problem(s) in {report.rows} rows"]
    return True, [f"{path}: valid submission: {report.rows} rows, {report.masks} masks"]
