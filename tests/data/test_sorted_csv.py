"""Files read image by image by ImageId: groups across chunk boundaries, files side by side, files
in any order sorted on disk (runs merged, in several passes when there are many) with their lines."""
import random

import pandas as pd
import pytest

from pipeline.data import sorted_csv
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


@pytest.mark.parametrize("sort_rows, fan_in", [(1, 2), (2, 3), (3, 200), (50_000, 200)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_file_in_any_order_is_read_as_its_sorted_rows_with_their_lines(tmp_path, monkeypatch, sort_rows, fan_in,
                                                                         seed):
    monkeypatch.setattr(sorted_csv, "SORT_ROWS", sort_rows)
    monkeypatch.setattr(sorted_csv, "MERGE_FAN_IN", fan_in)
    shuffled = ROWS.copy()
    random.Random(seed).shuffle(shuffled)
    shuffled[0] = (" " + shuffled[0][0], shuffled[0][1])  # ids are compared stripped
    path = write(tmp_path / "p.csv", shuffled)
    line_of = {x: line for line, (_, x) in enumerate(shuffled, 2)}
    expected = [(i, [x for j, x in ROWS if j == i]) for i in "abcd"]
    for chunk in (1, 2, 100):
        groups = [(i, f.x.tolist(), (f.index + 2).tolist()) for i, f in image_groups(path, rows=chunk)]
        assert [(i, sorted(x)) for i, x, _ in groups] == expected
        for _, xs, lines in groups:
            assert lines == sorted(lines) and lines == [line_of[x] for x in xs]  # file order within an image
    assert list(tmp_path.iterdir()) == [path]  # the sorted copy lives in a temporary folder


def test_a_file_in_order_is_not_copied(tmp_path, monkeypatch):
    path = write(tmp_path / "p.csv", ROWS)
    monkeypatch.setattr(sorted_csv, "sorted_copy", None)
    assert [i for i, _ in image_groups(path)] == ["a", "b", "c", "d"]


def test_an_empty_image_id_names_its_line_in_either_order(tmp_path):
    for rows, line in (([("", "x")] + ROWS[:2], 2), ([("b", "1"), ("a", "2"), ("", "x")], 4)):
        path = write(tmp_path / "p.csv", rows)
        with pytest.raises(InputError, match="empty ImageId") as error:
            list(image_groups(path))
        assert (error.value.path, error.value.line) == (str(path), line)


def test_an_empty_file_in_any_order(tmp_path):
    assert list(image_groups(write(tmp_path / "p.csv", []))) == []


def test_missing_file_and_column(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        list(image_groups(tmp_path / "none.csv"))
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="missing column"):
        list(image_groups(tmp_path / "bad.csv"))
