import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.data import ontology
from pipeline.data.annotations import read_annotations
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
