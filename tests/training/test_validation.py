"""Validation during training takes its held-out images' ground truth from a streamed train.csv."""
from types import SimpleNamespace

import pytest

from pipeline.data import ontology
from pipeline.data.annotations import read_annotations
from pipeline.errors import InputError
from pipeline.scoring.kaggle_options import KaggleOptions
from pipeline.inference.validation import held_out

GT = ("ImageId,EncodedPixels,Height,Width,ClassId,AttributesIds\n"
      "b,1 1,2,2,23,\na,1 3,4,5,0,115\nc,2 2,3,3,1,\nb,3 1,2,2,6,\n")


def test_held_out_keeps_only_its_images_records(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(GT)
    labels = ontology.load()
    reader = SimpleNamespace(image_ids=["a", "b", "c"])
    held = held_out(reader, [2, 1], path, labels, 0.5, KaggleOptions(), "cpu")
    whole = {r.image_id: r for r in read_annotations(path, labels)[0]}
    assert held.records == [whole["c"], whole["b"]]
    with pytest.raises(InputError, match="image d of the cache is not in the ground truth"):
        held_out(SimpleNamespace(image_ids=["a", "d"]), [0, 1], path, labels, 0.5, KaggleOptions(), "cpu")
