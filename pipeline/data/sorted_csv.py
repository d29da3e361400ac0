"""CSV files sorted by ImageId, read image by image in bounded memory.

Every prediction file the pipeline writes (predict, gather, ensemble, submit) has its rows sorted by
ImageId (string order, `sorted()`'s), so a reader needs one image's rows at a time, and several files
are walked side by side like sorted lists are merged. Readers check the order as they go: a file
that is not sorted stops with `FILE:LINE` naming the first row out of order.

Cells are strings ('' for empty ones), as `annotations.read_csv_strict` reads them; the rows of an
image come as a DataFrame whose index is the file line - 2 (the header is line 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from pipeline.errors import InputError

CHUNK_ROWS = 5000  # rows parsed at once; an image's rows are kept whole however many chunks they span


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
    """(ImageId, that image's rows) in file order; InputError at the first row out of ImageId order."""
    pending_id, pending = None, None
    for chunk in chunks(path, required, rows):
        if chunk.empty:  # a file with a header only
            continue
        ids = chunk["ImageId"].str.strip().to_numpy(str)
        lines = chunk.index.to_numpy() + 2
        empty = np.flatnonzero(ids == "")
        if empty.size:
            raise InputError("empty ImageId", path, int(lines[empty[0]]))
        previous = np.r_[[ids[0] if pending_id is None else pending_id], ids[:-1]]
        disorder = np.flatnonzero(ids < previous)
        if disorder.size:
            at = disorder[0]
            raise InputError(f"rows are not sorted by ImageId ({ids[at]} after {previous[at]}); the pipeline "
                             "writes prediction files sorted: sort this one by ImageId", path, int(lines[at]))
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
    """Sorted files walked side by side: (ImageId, each file's rows of it or None), ImageIds ascending."""
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
