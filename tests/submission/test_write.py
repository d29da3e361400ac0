"""`submit`: Kaggle's layout exactly, every test image present, --max-side and the overlap policy."""
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import drawn
from pipeline.cli import main
from pipeline.data import rle
from pipeline.data.ontology import load as load_ontology
from pipeline.errors import InputError
from pipeline.submission.images import submission_images
from pipeline.submission.write import submission

LABELS = load_ontology()
SIZES = {"a": (40, 30), "b": (20, 50), "c": (30, 30)}  # ImageId -> (height, width)


def make_dataset(root: Path, sizes: dict = SIZES) -> Path:
    """A Kaggle-layout test split of blank JPEGs and an empty params file; returns the root."""
    (root / "test").mkdir(parents=True)
    for image_id, (height, width) in sizes.items():
        Image.new("RGB", (width, height)).save(root / "test" / f"{image_id}.jpg")
    (root / "params.yaml").write_text("{}\n")  # the repository's params must not matter
    return root


def box(height, width, top, left, rows, cols) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top:top + rows, left:left + cols] = 1
    return mask


def predictions(rows) -> pd.DataFrame:
    """(ImageId, mask or RLE, ClassId, AttributesIds, Score) -> a predictions frame of CSV strings."""
    return pd.DataFrame([(i, m if isinstance(m, str) else rle.encode(m), str(c), a, str(s)) for i, m, c, a, s in rows],
                        columns=["ImageId", "EncodedPixels", "ClassId", "AttributesIds", "Score"])


def submit(root: Path, *extra) -> int:
    return main(["--params", str(root / "params.yaml"), "submit", "--data", str(root),
                 "--predictions", str(root / "pred.csv"), "--out", str(root / "sub.csv"), *extra])


def validate(root: Path, *extra) -> int:
    return main(["--params", str(root / "params.yaml"), "validate-submission", str(root / "sub.csv"),
                 "--data", str(root), *extra])


def test_round_trip_kaggle_layout_and_blank_rows(tmp_path, capsys):
    root = make_dataset(tmp_path)
    (root / "pred.csv").write_text(
        "ImageId,EncodedPixels,ClassId,AttributesIds,Score\n"
        "a,1 5 41 5,31,\"136,115\",0.2\n"
        "a,101 10,0,115,0.9\n"
        "b,1 4,23,,0.5\n"
    )
    assert submit(root) == 0
    assert (root / "sub.csv").read_text() == (
        "ImageId,EncodedPixels,ClassId,AttributesIds\n"
        "a,101 10,0,115\n"
        "a,1 5 41 5,31,\"115,136\"\n"
        "b,1 4,23,\n"
        "c,,,\n"  # no predictions: one blank row
    )
    assert "3 masks" in capsys.readouterr().out
    assert validate(root) == 0
    assert "valid submission: 4 rows, 3 masks" in capsys.readouterr().out


def test_submit_and_validation_show_progress_on_a_terminal_unless_told_not_to(tmp_path, monkeypatch):
    root = make_dataset(tmp_path)
    (root / "pred.csv").write_text("ImageId,EncodedPixels,ClassId,AttributesIds,Score\nb,1 4,23,,0.5\n")
    common = ["--params", str(root / "params.yaml")]
    command = {"submit": [*common, "submit", "--data", str(root), "--predictions", str(root / "pred.csv"), "--out",
                          str(root / "sub.csv")],
               "validate-submission": [*common, "validate-submission", str(root / "sub.csv"), "--data", str(root)]}
    for name, arguments in command.items():
        assert f"{name}:" in drawn(monkeypatch, arguments)
        assert drawn(monkeypatch, [*arguments, "--no-progress"]) == ""


def test_test_images_come_from_sample_submission_when_present(tmp_path):
    root = make_dataset(tmp_path)
    (root / "sample_submission.csv").write_text("ImageId,EncodedPixels,ClassId,AttributesIds\nc,1 1,23,\na,1 1,23,\n")
    assert submission_images(root) == {"a": (40, 30), "c": (30, 30)}
    (root / "test" / "c.jpg").unlink()
    with pytest.raises(InputError, match="image file not found"):
        submission_images(root)


@pytest.mark.parametrize(("row", "message"), [
    ("z,1 4,23,,0.5", "pred.csv:3: ImageId z is not a test image"),
    ("a,1 4 2 4,23,,0.5", "pred.csv:3: RLE runs out of order or overlapping at pair 2"),
    ("a,1 4,46,,0.5", "pred.csv:3: ClassId 46 outside 0..45"),
    ("a,1 4,23,999,0.5", "pred.csv:3: attribute id 999 is not in the ontology"),
])
def test_bad_predictions_stop_with_their_line(tmp_path, capsys, row, message):
    root = make_dataset(tmp_path)
    (root / "pred.csv").write_text(f"ImageId,EncodedPixels,ClassId,AttributesIds,Score\na,1 4,23,,0.5\n{row}\n")
    assert submit(root) == 2
    assert capsys.readouterr().err.strip() == f"error: {root}/{message}"
    assert not (root / "sub.csv").exists()


def test_predictions_in_any_order_give_the_sorted_files_submission(tmp_path, capsys):
    root = make_dataset(tmp_path)
    header = "ImageId,EncodedPixels,ClassId,AttributesIds,Score\n"
    rows = ["a,1 4,23,,0.5", "a,9 4,1,,0.7", "b,1 4,23,,0.5", "b,5 2,6,,0.9"]
    (root / "pred.csv").write_text(header + "\n".join(rows) + "\n")
    assert submit(root) == 0
    sorted_submission = (root / "sub.csv").read_text()
    (root / "pred.csv").write_text(header + "\n".join([rows[2], rows[1], rows[3], rows[0]]) + "\n")
    assert submit(root) == 0
    assert (root / "sub.csv").read_text() == sorted_submission
    (root / "pred.csv").write_text(header + "b,1 4,23,,0.5\na,1 4,99,,0.5\n")
    assert submit(root) == 2
    assert f"{root}/pred.csv:3: " in capsys.readouterr().err  # the line of the file as given


def test_bad_params_are_named(tmp_path, capsys):
    root = make_dataset(tmp_path)
    (root / "params.yaml").write_text("submit: {overlap: largest_wins}\n")
    assert submit(root) == 2
    assert "submit: overlap must be one of none, smaller_wins" in capsys.readouterr().err


def test_smaller_wins_keeps_each_pixel_in_its_smallest_mask():
    h, w = 40, 30
    coat = box(h, w, 0, 0, 30, 20)        # 600 px
    pocket = box(h, w, 10, 5, 5, 5)       # 25 px, inside the coat
    sleeve = box(h, w, 20, 10, 15, 15)    # 225 px, overlaps the coat's corner
    hidden = box(h, w, 10, 5, 5, 10)      # 50 px, half under the pocket, half under the bow
    bow = box(h, w, 10, 10, 5, 5)         # 25 px, same size as the pocket, lower score
    rows = [("a", coat, 23, "", 0.9), ("a", pocket, 31, "", 0.5), ("a", sleeve, 32, "", 0.8),
            ("a", hidden, 33, "", 0.7), ("a", bow, 34, "", 0.4)]
    frame = submission(predictions(rows), {"a": (h, w)}, LABELS, overlap="smaller_wins")
    assert frame.ClassId.tolist() == ["23", "32", "31", "34"]  # score order; `hidden` lost every pixel
    got = {int(c): rle.decode(e, h, w).astype(bool) for c, e in zip(frame.ClassId, frame.EncodedPixels)}
    assert np.array_equal(got[31], pocket.astype(bool)) and np.array_equal(got[34], bow.astype(bool))
    assert np.array_equal(got[32], sleeve.astype(bool))  # smaller than the coat: keeps the shared corner
    assert np.array_equal(got[23], coat.astype(bool) & ~pocket.astype(bool) & ~bow.astype(bool) & ~sleeve.astype(bool))
    assert sum(m.astype(int) for m in got.values()).max() == 1

    # equal areas: the higher score keeps the shared pixels
    left, right = box(h, w, 0, 0, 10, 10), box(h, w, 0, 5, 10, 10)
    frame = submission(predictions([("a", left, 1, "", 0.3), ("a", right, 2, "", 0.6)]), {"a": (h, w)}, LABELS,
                       overlap="smaller_wins")
    got = {int(c): rle.decode(e, h, w).astype(bool) for c, e in zip(frame.ClassId, frame.EncodedPixels)}
    assert got[2].sum() == 100 and got[1].sum() == 50

    # overlap none: masks as predicted
    frame = submission(predictions(rows), {"a": (h, w)}, LABELS)
    assert frame.EncodedPixels.tolist() == [rle.encode(m) for m in (coat, sleeve, hidden, pocket, bow)]


def test_max_side_keeps_each_mask_shape(tmp_path, capsys):
    root = make_dataset(tmp_path, {"a": (300, 200), "b": (50, 40)})
    ellipse = cv2.ellipse(np.zeros((300, 200), np.uint8), (90, 140), (60, 110), 20, 0, 360, 1, -1)
    strap = box(300, 200, 10, 150, 200, 2)  # 2 px wide: 0.4 px at the new size, must not vanish
    rows = [("a", ellipse, 10, "", 0.9), ("a", strap, 41, "", 0.8), ("b", box(50, 40, 5, 5, 20, 20), 1, "", 0.7)]
    predictions(rows).to_csv(root / "pred.csv", index=False)
    assert submit(root, "--max-side", "60") == 0
    frame = pd.read_csv(root / "sub.csv", dtype=str, keep_default_na=False)
    small = rle.decode(frame.EncodedPixels[0], 60, 40).astype(bool)
    expected = cv2.resize(ellipse, (40, 60), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert (small & expected).sum() / (small | expected).sum() > 0.9
    assert rle.decode(frame.EncodedPixels[1], 60, 40).any()
    # b's longest side is under 60: never enlarged, its mask is unchanged
    assert frame.EncodedPixels[2] == rle.encode(box(50, 40, 5, 5, 20, 20))
    capsys.readouterr()
    assert validate(root, "--max-side", "60") == 0
    # the full-size file does not fit the reduced sizes
    assert submit(root, "--max-side", "0") == 0
    assert validate(root, "--max-side", "60") == 2
    assert "beyond 60x40=2400" in capsys.readouterr().out


def test_max_side_with_overlap_removal(tmp_path):
    big, small = box(300, 200, 0, 0, 200, 200), box(300, 200, 50, 50, 50, 50)
    frame = submission(predictions([("a", big, 10, "", 0.9), ("a", small, 31, "", 0.1)]), {"a": (300, 200)}, LABELS,
                       max_side=30, overlap="smaller_wins")
    big_out, small_out = (rle.decode(e, 30, 20).astype(bool) for e in frame.EncodedPixels)
    assert small_out.sum() == 25 and big_out.sum() == 400 - 25 and not (big_out & small_out).any()
