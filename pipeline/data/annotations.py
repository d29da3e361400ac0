"""Read Kaggle's `train.csv` (ImageId, EncodedPixels, Height, Width, ClassId, AttributesIds).

Every row is validated; an error names the file and the line (header = line 1). With
`on_error="skip"` bad rows are dropped and returned as a list of errors instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.data import rle
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError

TRAIN_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds")


@dataclass
class Instance:
    class_id: int
    rle: str
    attributes: tuple[int, ...]
    line: int = 0  # line in the source CSV, for error messages


@dataclass
class ImageRecord:
    image_id: str
    height: int
    width: int
    instances: list[Instance] = field(default_factory=list)

    @property
    def class_ids(self) -> list[int]:
        return [inst.class_id for inst in self.instances]


def read_csv_strict(path: str | Path, required: tuple[str, ...]) -> pd.DataFrame:
    """All columns as strings (empty cells as ''); InputError if unreadable or columns missing."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"not a readable CSV ({str(error).splitlines()[0]})", path) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path, 1)
    return frame


def parse_int(value: str, what: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{what} {number} outside {bound}")
    return number


def parse_class_id(value: str, ontology: Ontology) -> int:
    return parse_int(value, "ClassId", 0, ontology.num_classes - 1)


def parse_attributes(value: str, ontology: Ontology) -> tuple[int, ...]:
    """'115,136,143' -> (115, 136, 143); '' -> (); unknown ids are an error."""
    value = value.strip()
    if not value:
        return ()
    try:
        ids = [int(v) for v in value.split(",")]
    except ValueError:
        raise ValueError(f"AttributesIds {value!r} must be comma-separated integers") from None
    unknown = [a for a in ids if a not in ontology.attribute_index]
    if unknown:
        raise ValueError(f"attribute id {unknown[0]} is not in the ontology")
    return tuple(sorted(set(ids)))


def read_annotations(
    path: str | Path, ontology: Ontology, on_error: str = "raise"
) -> tuple[list[ImageRecord], list[InputError]]:
    """Per-image records in file order, and the errors of skipped rows (on_error='skip')."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    frame = read_csv_strict(path, TRAIN_COLUMNS)
    records: dict[str, ImageRecord] = {}
    errors: list[InputError] = []
    columns = [frame[c].tolist() for c in TRAIN_COLUMNS]
    for line, (image_id, encoded, height, width, class_id, attributes) in enumerate(zip(*columns), 2):
        try:
            image_id = image_id.strip()
            if not image_id:
                raise ValueError("empty ImageId")
            height = parse_int(height, "Height", 1)
            width = parse_int(width, "Width", 1)
            record = records.get(image_id)
            if record is not None and (record.height, record.width) != (height, width):
                raise ValueError(
                    f"size {height}x{width} disagrees with {record.height}x{record.width} "
                    f"given earlier for image {image_id}"
                )
            rle.parse(encoded, height, width)
            instance = Instance(
                parse_class_id(class_id, ontology), encoded.strip(), parse_attributes(attributes, ontology), line
            )
        except ValueError as error:  # RLEError is a ValueError
            error = InputError(str(error), path, line)
            if on_error == "raise":
                raise error from None
            errors.append(error)
            continue
        if record is None:
            record = records[image_id] = ImageRecord(image_id, height, width)
        record.instances.append(instance)
    return list(records.values()), errors
