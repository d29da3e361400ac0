"""Read Kaggle's `train.csv` (ImageId, EncodedPixels, Height, Width, ClassId, AttributesIds).

Every row is validated; an error names the file and the line (header = line 1). With
`on_error="skip"` bad rows are dropped and returned as a list of errors instead.

`read_annotations` holds the whole file (the data stages need every image). The scoring stages
(evaluate, report, tune) stream it instead: `index_annotations` validates it a chunk of rows at a
time and keeps each image's id and size, `records_by_image_id` then yields one image's record at a
time in the prediction files' order, so the masks of the real train.csv (several GB) are never all
in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from pipeline.data import rle, sorted_csv
from pipeline.data.ontology import Ontology
from pipeline.errors import InputError
from pipeline.parallel import ordered_map

TRAIN_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds")
CHUNK_ROWS = sorted_csv.CHUNK_ROWS  # ground-truth rows parsed at once by the streaming readers


@dataclass
class Instance:
    class_id: int
    rle: str
    attributes: tuple[int, ...]
    line: int = 0  # line in the source CSV, for error messages
    area: float | None = None  # the area a COCO-style file gives (the evaluators' area ranges); None: the mask's


@dataclass
class ImageRecord:
    image_id: str
    height: int
    width: int
    instances: list[Instance] = field(default_factory=list)
    # Instances not parsed yet: the image's rows in the file (`streamed_records`, `with_instances`).
    rows: sorted_csv.Span | None = None

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
    sizes: dict[str, tuple[int, int]] = {}
    errors: list[InputError] = []
    columns = [frame[c].tolist() for c in TRAIN_COLUMNS]
    for line, values in enumerate(zip(*columns), 2):
        try:
            image_id, height, width, instance = parse_row(values, ontology, sizes, line)
        except ValueError as error:  # RLEError is a ValueError
            error = InputError(str(error), path, line)
            if on_error == "raise":
                raise error from None
            errors.append(error)
            continue
        record = records.get(image_id)
        if record is None:
            record = records[image_id] = ImageRecord(image_id, height, width)
            sizes[image_id] = (height, width)
        record.instances.append(instance)
    return list(records.values()), errors


def parse_row(values: tuple[str, ...], ontology: Ontology, sizes: dict[str, tuple[int, int]],
              line: int) -> tuple[str, int, int, Instance]:
    """(ImageId, Height, Width, instance) of one row's TRAIN_COLUMNS cells; `sizes`: the size of
    every image seen before. ValueError names what is wrong."""
    image_id, encoded, height, width, class_id, attributes = values
    image_id = image_id.strip()
    if not image_id:
        raise ValueError("empty ImageId")
    height = parse_int(height, "Height", 1)
    width = parse_int(width, "Width", 1)
    known = sizes.get(image_id)
    if known is not None and known != (height, width):
        raise ValueError(f"size {height}x{width} disagrees with {known[0]}x{known[1]} given earlier "
                         f"for image {image_id}")
    rle.parse(encoded, height, width)
    instance = Instance(parse_class_id(class_id, ontology), encoded.strip(), parse_attributes(attributes, ontology),
                        line)
    return image_id, height, width, instance


@dataclass
class AnnotationIndex:
    """What a ground-truth file holds per image, without its masks: read once (`index_annotations`),
    then the records are streamed image by image (`records_by_image_id`)."""
    path: Path
    image_ids: list[str]              # first-appearance order: `read_annotations`'s record order
    sizes: list[tuple[int, int]]      # (Height, Width) of each
    # Each image's rows in the file, for a file `sorted_csv.image_spans` walks (then in ImageId
    # order): `streamed_records` hands them on instead of walking the file again.
    spans: list[sorted_csv.Span] | None = None

    def sized_record(self, index: int) -> ImageRecord:
        """Image `index`'s id and size only: for code that is handed the instances as a table."""
        return ImageRecord(self.image_ids[index], *self.sizes[index])


def index_annotations(path: str | Path, ontology: Ontology, rows: int = CHUNK_ROWS, workers: int = 1) -> AnnotationIndex:
    """Validate every row as `read_annotations` does (InputError at the first bad one), `rows` at a
    time, keeping each image's id and size only. A file `sorted_csv.image_spans` can walk is
    validated a chunk of images at a time by `workers` processes, and its images' spans are kept;
    others are read in this process."""
    walked = sorted_csv.image_spans(path, TRAIN_COLUMNS)
    if walked is None:
        sizes: dict[str, tuple[int, int]] = {}
        for chunk in sorted_csv.chunks(path, TRAIN_COLUMNS, rows):
            _validate(chunk, path, ontology, sizes)
        return AnnotationIndex(Path(path), list(sizes), list(sizes.values()))
    spans = [span for _, span in walked]
    image_ids, sizes = [], []
    for ids, chunk_sizes in ordered_map(_validated_span, _span_chunks(spans, rows), (Path(path), ontology), workers):
        image_ids += ids
        sizes += chunk_sizes
    return AnnotationIndex(Path(path), image_ids, sizes, spans)


def _validate(chunk: pd.DataFrame, path: Path, ontology: Ontology, sizes: dict[str, tuple[int, int]]) -> None:
    """Check `chunk`'s rows (read by `sorted_csv`, index = line - 2), adding the size of each image
    first seen to `sizes` (those seen before); InputError at the first bad row."""
    columns = [chunk[c].tolist() for c in TRAIN_COLUMNS]
    for line, values in zip(chunk.index + 2, zip(*columns)):
        try:
            image_id, height, width, _ = parse_row(values, ontology, sizes, int(line))
        except ValueError as error:
            raise InputError(str(error), path, int(line)) from None
        sizes.setdefault(image_id, (height, width))


def _span_chunks(spans: list[sorted_csv.Span], rows: int) -> Iterator[sorted_csv.Span]:
    """Adjacent images' spans joined into chunks of at least `rows` x 256 bytes (a few thousand short
    rows, fewer long ones; an image never split)."""
    chunk, size = [], 0
    for span in spans:
        chunk.append(span)
        size += span.end - span.start
        if size >= rows * 256:
            yield sorted_csv.joined(chunk)
            chunk, size = [], 0
    if chunk:
        yield sorted_csv.joined(chunk)


def _validated_span(context: tuple[Path, Ontology], span: sorted_csv.Span) -> tuple[list[str], list[tuple[int, int]]]:
    path, ontology = context
    sizes: dict[str, tuple[int, int]] = {}
    _validate(sorted_csv.read_span(span), path, ontology, sizes)
    return list(sizes), list(sizes.values())


def records_by_image_id(index: AnnotationIndex, ontology: Ontology,
                        rows: int = CHUNK_ROWS) -> Iterator[tuple[int, ImageRecord]]:
    """(position in `index.image_ids`, record) by ascending ImageId, the order of prediction files,
    each image's instances in file order. A file in another order is sorted on disk first
    (`sorted_csv.image_groups`), so memory holds a few rows, never the file."""
    position = {image_id: i for i, image_id in enumerate(index.image_ids)}
    for image_id, frame in sorted_csv.image_groups(index.path, TRAIN_COLUMNS, rows):
        i = position[image_id]
        yield i, ImageRecord(image_id, *index.sizes[i], _instances(frame, ontology))


def streamed_records(index: AnnotationIndex, ontology: Ontology) -> Iterator[tuple[int, ImageRecord]]:
    """`records_by_image_id`, except that from a file `sorted_csv.image_spans` walks (the index
    holds its spans) the records come without their instances, holding their rows' place in the
    file instead (`rows`): `with_instances` parses them where they are used, e.g. in a worker
    process, so the process walking the file parses none."""
    if index.spans is None:
        yield from records_by_image_id(index, ontology)
        return
    for i, span in enumerate(index.spans):  # a walked file's images come in ImageId order
        yield i, ImageRecord(index.image_ids[i], *index.sizes[i], rows=span)


def with_instances(records: list[ImageRecord], ontology: Ontology) -> list[ImageRecord]:
    """The records with their instances, parsing the rows of those that hold them (`streamed_records`):
    adjacent ones' rows read at once."""
    if not any(record.rows is not None for record in records):
        return records
    done, k = [], 0
    while k < len(records):
        if records[k].rows is None:
            done.append(records[k])
            k += 1
            continue
        end = k + 1  # records[k:end]: rows adjacent in the file
        while end < len(records) and records[end].rows is not None and records[end].rows.start == records[end - 1].rows.end:
            end += 1
        frame = sorted_csv.read_span(sorted_csv.joined([r.rows for r in records[k:end]]))
        ids = frame["ImageId"].str.strip().to_numpy(str)
        bounds = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1, ids.size]
        for record, begin, stop in zip(records[k:end], bounds[:-1], bounds[1:]):
            done.append(ImageRecord(record.image_id, record.height, record.width,
                                    _instances(frame.iloc[begin:stop], ontology)))
        k = end
    return done


def _instances(frame: pd.DataFrame, ontology: Ontology) -> list[Instance]:
    """One image's rows, validated by `index_annotations`: only the values are taken here."""
    return [Instance(int(class_id), encoded.strip(), parse_attributes(attributes, ontology), int(line))
            for encoded, class_id, attributes, line in zip(frame["EncodedPixels"], frame["ClassId"],
                                                           frame["AttributesIds"], frame.index + 2)]
