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


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_spans_of_a_simple_sorted_file_read_as_its_groups(tmp_path, ending):
    """A file in ImageId order is walked without parsing: each image's rows as a byte span, which
    `read_span` parses into the frame `image_groups` gives (lines included), alone or joined."""
    rows = ROWS[:3] + [("c", '"4,5"'), ("c", "")] + ROWS[5:]
    text = "ImageId,x\n" + "".join(f"{i},{x}\n" for i, x in rows)
    path = tmp_path / "p.csv"
    path.write_bytes((text.replace("\n", "\r\n") if ending == "\r\n" else text[:-1] if ending == "" else text).encode())
    spans = list(sorted_csv.image_spans(path))
    groups = list(image_groups(path))
    assert [i for i, _ in spans] == [i for i, _ in groups] == ["a", "b", "c", "d"]
    for (_, span), (_, frame) in zip(spans, groups):
        pd.testing.assert_frame_equal(sorted_csv.read_span(span), frame)
    whole = sorted_csv.read_span(sorted_csv.joined([span for _, span in spans[1:3]]))
    pd.testing.assert_frame_equal(whole, pd.concat([frame for _, frame in groups[1:3]]))


@pytest.mark.parametrize("text", [
    "ImageId,x\nb,1\na,2\n",          # out of order
    "ImageId,x\na,1\n\nb,2\n",        # a blank line
    'ImageId,x\n"a",1\nb,2\n',        # a quoted ImageId
    "ImageId,x\n a,1\nb,2\n",         # a padded one
    'ImageId,x\na,"1\n2"\nb,3\n',     # a quoted line break
    "x,ImageId\n1,a\n2,b\n",          # ImageId not first
])
def test_files_that_are_not_simple_are_left_to_the_parser(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_text(text)
    assert sorted_csv.image_spans(path) is None
    assert [i for i, _ in image_groups(path)] == ["a", "b"]


def test_a_span_that_does_not_parse_names_the_file_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("ImageId,x\na,1\nb,2\nb,3,4\n")
    with pytest.raises(InputError, match="line 4") as error:
        sorted_csv.read_span(dict(sorted_csv.image_spans(path))["b"])
    assert (error.value.path, error.value.line) == (str(path), 4)
    empty = tmp_path / "e.csv"
    empty.write_text("ImageId,x\na,1\n,2\n")
    with pytest.raises(InputError, match="empty ImageId") as error:
        sorted_csv.image_spans(empty)
    assert error.value.line == 3
