"""`validate-submission`: each defect is one `FILE:LINE: message`, exit 2; a valid file exits 0."""
import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.data import rle
from pipeline.submission.validate import MAX_REPORTED
from test_write import make_dataset

HEADER = "ImageId,EncodedPixels,ClassId,AttributesIds"
VALID = [  # images a (40x30), b (20x50), c (30x30) of make_dataset
    "a,101 10,0,115",
    "a,1 5 41 5,31,\"115,136\"",
    "b,1 4,23,",
    "c,,,",
]


def validate(root, lines, *extra, header=HEADER):
    (root / "sub.csv").write_text("\n".join([header, *lines]) + "\n")
    return main(["--params", str(root / "params.yaml"), "validate-submission", str(root / "sub.csv"),
                 "--data", str(root), *extra])


def test_a_valid_file_passes(tmp_path, capsys):
    root = make_dataset(tmp_path)
    assert validate(root, VALID) == 0
    assert capsys.readouterr().out == f"{root}/sub.csv: valid submission: 4 rows, 3 masks\n"


@pytest.mark.parametrize(("row", "message"), [
    ("z,1 4,23,", "ImageId 'z' is not a test image"),
    ("b,1 4,23,,0.5", "expected 4 fields, got 5"),
    ("b,1 4 6,23,", "RLE has an odd number of values (3)"),
    ("b,0 4,23,", "RLE start 0: starts are 1-indexed"),
    ("b,5 4 1 2,23,", "RLE runs out of order or overlapping at pair 2"),
    ("b,990 20,23,", "RLE run ends at pixel 1009, beyond 20x50=1000"),
    ("b,1 x,23,", "RLE must be non-negative integers separated by spaces"),
    ("b,1 4,46,", "ClassId 46 outside 0..45"),
    ("b,1 4,shoe,", "ClassId 'shoe' is not an integer"),
    ("b,1 4,,", "ClassId '' is not an integer"),
    ("b,1 4,23,999", "attribute id 999 is not in the ontology"),
    ("b,1 4,23,\"136,115\"", "AttributesIds '136,115' must be sorted ascending"),
    ("b,1 4,23,\"115,115\"", "AttributesIds '115,115' repeats attribute id 115"),
    ("b,1 4,23,\"115, 136\"", "AttributesIds '115, 136' must be integers separated by commas, without spaces"),
    ("b,,23,", "ClassId or AttributesIds without EncodedPixels: a row without a mask must be blank"),
])
def test_each_defect_is_reported_with_its_line(tmp_path, capsys, row, message):
    root = make_dataset(tmp_path)
    assert validate(root, [*VALID[:2], row, *VALID[2:]]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{root}/sub.csv:4: {message}", f"{root}/sub.csv: not a valid submission: 1 problem(s) in 5 rows"]


def test_header_missing_images_and_max_side(tmp_path, capsys):
    root = make_dataset(tmp_path)
    assert validate(root, VALID, header="ImageId,EncodedPixels,ClassId,AttributesIds,Score") == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{root}/sub.csv:1: header must be exactly {HEADER}, got '{HEADER},Score'; rows not checked")
    assert validate(root, VALID[:2]) == 2  # b and c left out
    assert capsys.readouterr().out.splitlines()[:2] == [f"{root}/sub.csv: test image b has no row",
                                                        f"{root}/sub.csv: test image c has no row"]
    # a is 40x30, at --max-side 20 it is 20x15: a mask that fits the original may not fit the reduced size
    rows = ["a,291 20,0,115", "b,1 4,23,", "c,,,"]
    assert validate(root, rows) == 0
    assert validate(root, rows, "--max-side", "20") == 2
    assert capsys.readouterr().out.splitlines()[-2] == f"{root}/sub.csv:2: RLE run ends at pixel 310, beyond 20x15=300"


def test_long_rle_fields_round_trip(tmp_path, capsys):
    root = make_dataset(tmp_path, {"s": (300, 300)})
    stripes = np.zeros((300, 300), np.uint8)
    stripes[::2] = 1  # 150 runs per column: a 350 KB RLE field
    pd.DataFrame([("s", rle.encode(stripes), 23, "", 0.5)],
                 columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"]).to_csv(root / "pred.csv", index=False)
    assert main(["--params", str(root / "params.yaml"), "submit", "--data", str(root), "--predictions",
                 str(root / "pred.csv"), "--out", str(root / "sub.csv")]) == 0
    assert main(["--params", str(root / "params.yaml"), "validate-submission", str(root / "sub.csv"),
                 "--data", str(root)]) == 0
    assert "valid submission: 1 rows, 1 masks" in capsys.readouterr().out


def test_problems_are_capped_with_a_count(tmp_path, capsys):
    root = make_dataset(tmp_path)
    assert validate(root, [*VALID, *["b,1 4,99,"] * (MAX_REPORTED + 7)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == MAX_REPORTED + 2
    assert out[0] == f"{root}/sub.csv:6: ClassId 99 outside 0..45"
    assert out[-2:] == [f"{root}/sub.csv: ... and 7 more problem(s)",
                        f"{root}/sub.csv: not a valid submission: {MAX_REPORTED + 7} problem(s) in {MAX_REPORTED + 11} rows"]


def test_unreadable_files_end_in_one_line(tmp_path, capsys):
    root = make_dataset(tmp_path)
    (root / "sub.csv").write_bytes(f"{HEADER}\nb,1 4,23,\n".encode() + b"c,\xff\xfe,,\n")
    assert main(["--params", str(root / "params.yaml"), "validate-submission", str(root / "sub.csv"),
                 "--data", str(root)]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{root}/sub.csv:1: not UTF-8 text (this line or a later one); the rest not checked")
    assert main(["--params", str(root / "params.yaml"), "validate-submission", str(root / "missing.csv"),
                 "--data", str(root)]) == 2
    assert capsys.readouterr().err == f"error: {root}/missing.csv: file not found\n"
