"""CSV files read image by image, by ascending ImageId, in bounded memory.

Every prediction file the pipeline writes (predict, gather, ensemble, submit) has its rows sorted by
ImageId (string order, `sorted()`'s, of the stripped ids), so a reader needs one image's rows at a
time, and several files are walked side by side like sorted lists are merged. Files from elsewhere
(a Kaggle submission, another tool's predictions, the synthetic train.csv) come in any order: a
first pass reads their ImageId column only, and a file out of order is sorted on disk first
(`sorted_copy`: sorted runs of `SORT_ROWS` rows in a temporary folder, merged), so memory never
holds the file either way. An image's rows keep their file order.

Cells are strings ('' for empty ones), as `annotations.read_csv_strict` reads them; the rows of an
image come as a DataFrame whose index is the file line - 2 (the header is line 1), the line of the
file as given even when it was read through a sorted copy.

A file in ImageId order whose first column is ImageId, one row per line, can also be walked without
parsing it (`image_spans`): each image's rows as a `Span` of bytes, parsed by whoever needs them
(`read_span`, e.g. a worker process), so the process that walks the file does not parse every row.
"""
from __future__ import annotations

import csv
import heapq
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from pipeline.errors import InputError

CHUNK_ROWS = 5000  # rows parsed at once; an image's rows are kept whole however many chunks they span
SORT_ROWS = 50_000  # rows sorted at once into a run (tens of MB of masks)
MERGE_FAN_IN = 200  # runs merged at once: open files stay below the usual limit of 1024
LINE = "SourceLine"  # a sorted copy's column: the row's line in the file it was copied from
# Masks of large photos make long RLE fields: past the csv module's default 128 KiB limit.
FIELD_SIZE_LIMIT = 1 << 30


def header(path: str | Path, required: tuple[str, ...]) -> list[str]:
    """The columns of a CSV file; InputError if it is missing, unreadable or lacks `required`."""
    try:
        columns = list(pd.read_csv(path, nrows=0, dtype=str).columns)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"not a readable CSV ({str(error).splitlines()[0]})", path) from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path, 1)
    return columns


def chunks(path: str | Path, required: tuple[str, ...], rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file's rows, `rows` at a time, index = line - 2."""
    header(path, required)
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, chunksize=rows)
    try:
        yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(f"not a readable CSV ({str(error).splitlines()[0]})", path) from None
    finally:
        reader.close()


def image_groups(path: str | Path, required: tuple[str, ...] = ("ImageId",),
                 rows: int = CHUNK_ROWS) -> Iterator[tuple[str, pd.DataFrame]]:
    """(ImageId, that image's rows) by ascending ImageId, each image once, its rows in file order;
    a file out of order is read through a sorted copy on disk."""
    header(path, required)
    if in_image_id_order(path, rows):
        yield from _groups(path, path, required, rows)
        return
    with tempfile.TemporaryDirectory(prefix="sorted-csv-") as folder:
        yield from _groups(sorted_copy(path, required, folder, SORT_ROWS), path, required, rows)


def in_image_id_order(path: str | Path, rows: int = CHUNK_ROWS) -> bool:
    """Whether the rows come by ascending ImageId, each image's together (its ImageId column only
    is kept, but the parser holds `rows` whole rows, masks included: a few thousand, so the check's
    peak memory stays below the readers'); InputError at an empty ImageId."""
    last = None
    reader = pd.read_csv(path, usecols=["ImageId"], dtype=str, keep_default_na=False, na_filter=False,
                         chunksize=rows)
    with reader:
        for chunk in reader:
            ids = chunk["ImageId"].str.strip().to_numpy(str)
            if not ids.size:
                continue
            empty = np.flatnonzero(ids == "")
            if empty.size:
                raise InputError("empty ImageId", path, int(chunk.index[empty[0]]) + 2)
            if (last is not None and ids[0] < last) or (ids[1:] < ids[:-1]).any():
                return False
            last = ids[-1]
    return True


def sorted_copy(path: str | Path, required: tuple[str, ...], folder: str | Path, rows: int = SORT_ROWS) -> Path:
    """A copy of the file under `folder`, rows sorted by (stripped ImageId, line), with their line in
    `path` in an extra column LINE: runs of `rows` rows sorted in memory, then merged."""
    folder = Path(folder)
    columns = header(path, required)
    runs = []
    for k, chunk in enumerate(chunks(path, required, rows)):
        run = chunk.assign(ImageId=chunk["ImageId"].str.strip(), **{LINE: chunk.index + 2})
        runs.append(folder / f"run{k}.csv")
        run.sort_values(["ImageId", LINE], kind="stable").to_csv(runs[-1], index=False)
    if not runs:
        pd.DataFrame(columns=[*columns, LINE]).to_csv(folder / "run0.csv", index=False)
        runs.append(folder / "run0.csv")
    merged = 0
    while len(runs) > 1:
        batch, runs = runs[:MERGE_FAN_IN], runs[MERGE_FAN_IN:]
        runs.append(folder / f"merged{merged}.csv")
        _merge(batch, runs[-1])
        merged += 1
    return runs[0]


def _merge(runs: list[Path], out: Path) -> None:
    """Sorted runs (same header) merged into `out` by (ImageId, LINE), then deleted."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    files = [open(run, newline="", encoding="utf-8") for run in runs]
    try:
        readers = [csv.reader(file) for file in files]
        columns = [next(reader) for reader in readers][0]
        image, line = columns.index("ImageId"), columns.index(LINE)
        with open(out, "w", newline="", encoding="utf-8") as target:
            writer = csv.writer(target)
            writer.writerow(columns)
            writer.writerows(heapq.merge(*readers, key=lambda row: (row[image], int(row[line]))))
    finally:
        for file in files:
            file.close()
    for run in runs:
        run.unlink()


def _groups(path: str | Path, source: str | Path, required: tuple[str, ...],
            rows: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """`image_groups` of a file in ImageId order; `source`: the file messages name (`path` itself or
    the file it is a sorted copy of, whose lines its LINE column holds)."""
    pending_id, pending = None, None
    for chunk in chunks(path, required, rows):
        if chunk.empty:  # a file with a header only
            continue
        if path != source:  # a sorted copy: its rows are named by the lines they came from
            chunk.index = chunk.pop(LINE).astype(np.int64).to_numpy() - 2
        ids = chunk["ImageId"].str.strip().to_numpy(str)
        lines = chunk.index.to_numpy() + 2
        empty = np.flatnonzero(ids == "")
        if empty.size:
            raise InputError("empty ImageId", source, int(lines[empty[0]]))
        bounds = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1, ids.size]
        for begin, end in zip(bounds[:-1], bounds[1:]):
            part = chunk.iloc[begin:end]
            if ids[begin] == pending_id:  # an image whose rows began in the previous chunk
                pending = pd.concat([pending, part])
                continue
            if pending is not None:
                yield pending_id, pending
            pending_id, pending = str(ids[begin]), part
    if pending is not None:
        yield pending_id, pending


def aligned_image_groups(paths: list[str | Path], required: tuple[str, ...] = ("ImageId",)
                         ) -> Iterator[tuple[str, list[pd.DataFrame | None]]]:
    """Files walked side by side: (ImageId, each file's rows of it or None), ImageIds ascending."""
    streams = [image_groups(path, required) for path in paths]
    heads = [next(stream, None) for stream in streams]
    while any(head is not None for head in heads):
        image_id = min(head[0] for head in heads if head is not None)
        frames = []
        for k, head in enumerate(heads):
            if head is not None and head[0] == image_id:
                frames.append(head[1])
                heads[k] = next(streams[k], None)
            else:
                frames.append(None)
        yield image_id, frames


@dataclass(frozen=True)
class Span:
    """Consecutive rows of a CSV file as a byte range (`read_span` parses them): a few numbers to
    hand a worker process instead of the rows."""
    path: str
    header: bytes  # the file's first line
    start: int     # byte offsets of the rows: [start, end)
    end: int
    first_line: int  # the file's line of the first row (the header is line 1)


def joined(spans: list[Span]) -> Span:
    """Adjacent spans of one file as one."""
    return Span(spans[0].path, spans[0].header, spans[0].start, spans[-1].end, spans[0].first_line)


def read_span(span: Span) -> pd.DataFrame:
    """The span's rows as `chunks` reads them: cells as strings, index = line - 2."""
    with open(span.path, "rb") as file:
        file.seek(span.start)
        data = file.read(span.end - span.start)
    try:
        frame = pd.read_csv(io.BytesIO(span.header + data), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        # The parser counts the span's lines (its header is line 1): name the file's.
        at = re.search(r"line (\d+)", str(error))
        line = span.first_line + int(at.group(1)) - 2 if at else None
        message = str(error).splitlines()[0]
        message = message.replace(at.group(0), f"line {line}") if at else message
        raise InputError(f"not a readable CSV ({message})", span.path, line) from None
    frame.index = np.arange(len(frame)) + span.first_line - 2
    return frame


def image_spans(path: str | Path, required: tuple[str, ...] = ("ImageId",)) -> Iterator[tuple[str, Span]] | None:
    """(ImageId, the image's rows as a Span) by ascending ImageId, as `image_groups` gives the rows;
    None when the file is not simple enough to walk without parsing: ImageId not its first column,
    rows out of ImageId order, a blank line, a quoted or padded ImageId, a quoted line break (then
    `image_groups` reads it). One pass over the lines, keeping a few numbers per image."""
    columns = header(path, required)
    if columns[0] != "ImageId":
        return None
    found = _scan(path)
    if found is None:
        return None
    with open(path, "rb") as file:
        head = file.readline()
    return ((image_id, Span(str(path), head, start, end, line)) for image_id, start, end, line in found)


def _scan(path: str | Path) -> list[tuple[str, int, int, int]] | None:
    """(ImageId, byte start, byte end, first line) of each image's rows, or None (`image_spans`);
    InputError at an empty ImageId."""
    images, cell, last = [], None, ""
    with open(path, "rb") as file:
        offset = len(file.readline())
        for line, raw in enumerate(file, 2):
            comma = raw.find(b",")
            if raw.count(b'"') % 2 or comma < 0:  # a quoted line break, or a row of one cell
                return None
            if raw[:comma] != cell:
                cell = raw[:comma]
                try:
                    image_id = cell.decode("utf-8")
                except UnicodeDecodeError:
                    return None
                if not image_id or image_id != image_id.strip() or image_id.startswith('"'):
                    if not image_id.strip():
                        raise InputError("empty ImageId", path, line)
                    return None
                if image_id < last:
                    return None
                if image_id != last:
                    images.append([image_id, offset, offset, line])
                last = image_id
            offset += len(raw)
            images[-1][2] = offset
    return [tuple(image) for image in images]
