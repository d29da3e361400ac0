import subprocess
import sys
import tempfile

import pytest

from pipeline.cli import main
from pipeline.data import ontology
from pipeline.data.annotations import index_annotations, read_annotations, records_by_image_id
from pipeline.errors import InputError

HEADER = "ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
GOOD = "a,1 3,4,5,0,115\na,5 2,4,5,31,\nb,1 1,2,2,23,\n"


def write(tmp_path, body, header=HEADER):
    path = tmp_path / "train.csv"
    path.write_text(header + body)
    return path


def test_reads_records_in_file_order(tmp_path):
    records, errors = read_annotations(write(tmp_path, GOOD), ontology.load())
    assert not errors
    assert [(r.image_id, r.height, r.width, r.class_ids) for r in records] == [("a", 4, 5, [0, 31]), ("b", 2, 2, [23])]
    assert records[0].instances[0].attributes == (115,) and records[0].instances[1].attributes == ()
    assert [i.line for i in records[0].instances] == [2, 3]


@pytest.mark.parametrize(
    "row, line, message",
    [
        ("c,1 2 3,4,5,0,\n", 5, "odd number"),
        ("c,1 30,4,5,0,\n", 5, "beyond 4x5"),
        ("c,5 2 1 1,4,5,0,\n", 5, "out of order"),
        ("c,1 0,4,5,0,\n", 5, "length 0"),
        ("c,1 1,4,5,46,\n", 5, "ClassId 46 outside 0..45"),
        ("c,1 1,4,5,x,\n", 5, "ClassId 'x' is not an integer"),
        ("c,1 1,4,5,0,999\n", 5, "attribute id 999 is not in the ontology"),
        ("c,1 1,4,5,0,1;2\n", 5, "comma-separated integers"),
        ("c,1 1,0,5,0,\n", 5, "Height 0 outside"),
        ("a,1 1,5,5,0,\n", 5, "disagrees with 4x5"),
        (",1 1,5,5,0,\n", 5, "empty ImageId"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, line, message):
    path = write(tmp_path, GOOD + row)
    with pytest.raises(InputError, match=message) as caught:
        read_annotations(path, ontology.load())
    assert caught.value.line == line and caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_skip_mode_reports_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, GOOD + "c,1 2 3,4,5,0,\nc,1 1,4,5,0,\n")
    records, errors = read_annotations(path, ontology.load(), on_error="skip")
    assert [e.line for e in errors] == [5]
    assert [r.image_id for r in records] == ["a", "b", "c"]


def test_missing_column_is_line_1(tmp_path):
    path = write(tmp_path, "a,1 1,4,5,0\n", header="ImageId,EncodedPixels,Height,Width,ClassId\n")
    with pytest.raises(InputError, match="missing column.*AttributesIds") as caught:
        read_annotations(path, ontology.load())
    assert caught.value.line == 1


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path):
    (tmp_path / "train.csv").write_text(HEADER + GOOD + "c,1 2 3,4,5,0,\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "folds", "--root", str(tmp_path), "--k", "2",
         "--out", str(tmp_path / "folds.csv"), "--report", str(tmp_path / "folds.json")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'train.csv'}:5: RLE has an odd number" in result.stderr
    assert not (tmp_path / "folds.csv").exists()


def test_cli_missing_file(tmp_path, capsys):
    assert main(["folds", "--root", str(tmp_path)]) == 2
    assert "train.csv: file not found" in capsys.readouterr().err


# Rows of image b split around a's, ids out of order: the streaming reader sorts them on disk.
UNSORTED = "b,1 1,2,2,23,\na,1 3,4,5,0,115\nc,2 2,3,3,1,\nb,3 1,2,2,6,\"115,136\"\na,5 2,4,5,31,\n"


@pytest.mark.parametrize("rows", [1, 2, 5000])
def test_streamed_records_come_by_image_id_as_read_whole(tmp_path, rows):
    path = write(tmp_path, UNSORTED)
    records, _ = read_annotations(path, ontology.load())
    index = index_annotations(path, ontology.load(), rows=rows)
    assert index.image_ids == [r.image_id for r in records]
    assert index.sizes == [(r.height, r.width) for r in records]
    streamed = list(records_by_image_id(index, ontology.load(), rows=rows))
    assert streamed == sorted(enumerate(records), key=lambda pair: pair[1].image_id)
    assert [i.line for i in streamed[1][1].instances] == [2, 5]  # b: its file lines, in file order


def test_a_sorted_file_is_streamed_as_it_is(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    index = index_annotations(path, ontology.load(), rows=1)
    # No sorted runs to write for a file in ImageId order.
    monkeypatch.setattr(tempfile, "TemporaryDirectory", None)
    assert [r for _, r in records_by_image_id(index, ontology.load(), rows=1)] == read_annotations(path, ontology.load())[0]


def test_a_bad_row_in_a_later_chunk_names_file_and_line(tmp_path):
    path = write(tmp_path, UNSORTED + "d,1 1,2,2,0,\nd,1 1,3,2,0,\n")
    with pytest.raises(InputError, match="size 3x2 disagrees with 2x2") as caught:
        index_annotations(path, ontology.load(), rows=2)
    assert str(caught.value).startswith(f"{path}:8: ")


SORTED = "a,1 3,4,5,0,115\na,5 2,4,5,31,\nb,1 1,2,2,23,\nb,3 1,2,2,6,\"115,136\"\nc,2 2,3,3,1,\n"


@pytest.mark.parametrize("text", [SORTED, UNSORTED])
def test_records_parsed_where_used_equal_records_read_whole(tmp_path, text):
    """A sorted file's records come with their rows unparsed (`streamed_records`); `with_instances`,
    on any run of them, parses what `records_by_image_id` gives. The index is the same whether
    validated by one process or by several."""
    from pipeline.data.annotations import streamed_records, with_instances

    path = write(tmp_path, text)
    index = index_annotations(path, ontology.load())
    assert index_annotations(path, ontology.load(), workers=2) == index
    whole = list(records_by_image_id(index, ontology.load()))
    streamed = list(streamed_records(index, ontology.load()))
    assert [i for i, _ in streamed] == [i for i, _ in whole]
    assert all(r.rows is not None for _, r in streamed) == (text == SORTED)
    records = [r for _, r in streamed]
    parsed = with_instances(records[:1], ontology.load()) + with_instances(records[1:], ontology.load())
    assert parsed == [r for _, r in whole]


def test_a_bad_row_names_its_line_when_validated_by_several_processes(tmp_path):
    path = write(tmp_path, SORTED + "d,1 1,2,2,0,\nd,1 1,3,2,0,\ne,1 1,2,2,99,\n")
    with pytest.raises(InputError, match="size 3x2 disagrees with 2x2") as caught:
        index_annotations(path, ontology.load(), rows=1, workers=2)
    assert str(caught.value).startswith(f"{path}:8: ")
