"""Files sorted by ImageId read image by image: groups across chunk boundaries, files side by side,
unsorted files refused at the first row out of order."""
import pandas as pd
import pytest

from pipeline.data.sorted_csv import aligned_image_groups, image_groups
from pipeline.errors import InputError
from pipeline.io import csv_rows

ROWS = [("a", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("c", "5"), ("c", "6"), ("d", "7")]


def write(path, rows):
    with csv_rows(path, ["ImageId", "x"]) as writer:
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_groups_span_chunks_and_keep_file_lines(tmp_path, chunk):
    path = write(tmp_path / "p.csv", ROWS)
    groups = [(i, f.x.tolist(), (f.index + 2).tolist()) for i, f in image_groups(path, rows=chunk)]
    assert groups == [("a", ["1", "2"], [2, 3]), ("b", ["3"], [4]), ("c", ["4", "5", "6"], [5, 6, 7]),
                      ("d", ["7"], [8])]


def test_files_side_by_side(tmp_path):
    empty = write(tmp_path / "0.csv", [])  # a model that found nothing: a header only
    first = write(tmp_path / "1.csv", ROWS)
    second = write(tmp_path / "2.csv", [("b", "8"), ("e", "9")])
    walked = [(i, [None if f is None else f.x.tolist() for f in frames])
              for i, frames in aligned_image_groups([first, empty, second])]
    assert walked == [("a", [["1", "2"], None, None]), ("b", [["3"], None, ["8"]]),
                      ("c", [["4", "5", "6"], None, None]), ("d", [["7"], None, None]), ("e", [None, None, ["9"]])]


@pytest.mark.parametrize("chunk", [1, 3])
def test_unsorted_file_names_file_and_line(tmp_path, chunk):
    path = write(tmp_path / "p.csv", ROWS[:3] + [("a", "9")] + ROWS[3:])
    with pytest.raises(InputError, match="not sorted by ImageId") as error:
        list(image_groups(path, rows=chunk))
    assert (error.value.path, error.value.line) == (str(path), 5)


def test_missing_file_and_column(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        list(image_groups(tmp_path / "none.csv"))
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="missing column"):
        list(image_groups(tmp_path / "bad.csv"))
