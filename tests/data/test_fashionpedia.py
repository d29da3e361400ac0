"""Fashionpedia's own JSON layout: read into the same records and the same cache as Kaggle's."""
import json
import shutil

import h5py
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.data.annotations import read_annotations
from pipeline.data.cache_format import CacheConfig, fingerprint
from pipeline.data.cache_build import build_cache
from pipeline.data.cache_reader import CacheReader
from pipeline.data.fashionpedia import load_instances, read_images
from pipeline.errors import InputError

from fashionpedia_layout import ONTOLOGY, write_layouts

TRAIN_JSON = "instances_attributes_train2020.json"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_layouts(tmp_path_factory.mktemp("layouts"), train_images=6, val_images=4, seed=1)


def _datasets(path):
    with h5py.File(path, "r") as file:
        return {name: file[name][:] for name in file}, dict(file.attrs)


def test_every_segmentation_form_is_read(layouts):
    fp_root, _ = layouts
    data = json.loads((fp_root / TRAIN_JSON).read_text())
    forms = {"polygons" if isinstance(a["segmentation"], list) else type(a["segmentation"]["counts"]).__name__
             for a in data["annotations"]}
    assert forms == {"polygons", "str", "list"}
    assert any(len(a["segmentation"]) == 2 for a in data["annotations"] if isinstance(a["segmentation"], list))


def test_records_equal_the_kaggle_readers(layouts):
    fp_root, kaggle_root = layouts
    instances, skipped = load_instances(fp_root / TRAIN_JSON, ONTOLOGY)
    kaggle, _ = read_annotations(kaggle_root / "train.csv", ONTOLOGY)
    ours = {image.image_id: instances.record(image) for image in instances.images}
    assert not skipped and sorted(ours) == sorted(r.image_id for r in kaggle)
    for record in kaggle:
        mine = ours[record.image_id]
        assert (mine.height, mine.width) == (record.height, record.width)
        assert [(i.class_id, i.rle, i.attributes) for i in mine.instances] == \
            [(i.class_id, i.rle, i.attributes) for i in record.instances]
        assert all(i.area is not None for i in mine.instances)


@pytest.mark.parametrize("split", ["train", "test"])
def test_cache_from_the_json_layout_equals_the_kaggle_layouts(layouts, tmp_path, split):
    fp_root, kaggle_root = layouts
    kaggle = tmp_path / "kaggle.h5"
    json_cache = tmp_path / "json.h5"
    build_cache(kaggle_root, split, kaggle, CacheConfig(max_size=128))
    # Workers: the records are made in this process as tasks are taken, the masks decoded in workers.
    build_cache(fp_root, split, json_cache, CacheConfig(max_size=128), workers=1, layout="fashionpedia")
    (expected, expected_attrs), (actual, actual_attrs) = _datasets(kaggle), _datasets(json_cache)
    assert sorted(actual) == sorted(expected)
    if split == "train":  # test caches hold images only
        assert actual["class_id"].size == sum(1 for _ in open(kaggle_root / "train.csv")) - 1
    for name in expected:
        assert np.array_equal(actual[name], expected[name]), name
    assert actual_attrs.pop("layout") == "fashionpedia"
    assert actual_attrs.pop("fingerprint") != expected_attrs.pop("fingerprint")
    assert actual_attrs == expected_attrs
    CacheReader(json_cache, fingerprint(fp_root, split, CacheConfig(max_size=128), layout="fashionpedia"))


def test_train_cache_leaves_out_images_without_annotations(layouts, tmp_path, capsys):
    fp_root, _ = layouts
    root = tmp_path / "data"
    shutil.copytree(fp_root, root)
    data = json.loads((root / TRAIN_JSON).read_text())
    bare = data["images"][2]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != bare["id"]]
    (root / TRAIN_JSON).write_text(json.dumps(data))
    summary = build_cache(root, "train", tmp_path / "train.h5", CacheConfig(max_size=64), layout="fashionpedia")
    assert summary.images == len(data["images"]) - 1 and summary.instances == len(data["annotations"])
    assert bare["file_name"][:-4] not in CacheReader(tmp_path / "train.h5").image_ids
    assert "1 image(s) without annotations left out" in capsys.readouterr().err


def test_the_val_images_may_sit_in_val(layouts, tmp_path):
    fp_root, _ = layouts
    root = tmp_path / "data"
    shutil.copytree(fp_root, root)
    (root / "test").rename(root / "val")
    build_cache(root, "test", tmp_path / "test.h5", CacheConfig(max_size=64), layout="fashionpedia")
    names = sorted(image.image_id for image in read_images(root / "instances_attributes_val2020.json"))
    assert CacheReader(tmp_path / "test.h5").image_ids == names


def _corrupt(annotation, image):
    """(change to make, what the message must say) of every kind of bad annotation."""
    return [
        ({"category_id": 46}, "category_id 46 outside 0..45"),
        ({"attribute_ids": [999]}, "attribute id 999 is not in the ontology"),
        ({"attribute_ids": "1,2"}, "attribute_ids must be a list of integers"),
        ({"image_id": 123456}, "image_id 123456 is not in the file's images"),
        ({"iscrowd": 1}, "iscrowd is set: crowd annotations are not supported"),
        ({"area": -3}, "area -3 is not a non-negative number"),
        ({"segmentation": []}, "empty segmentation"),
        ({"segmentation": [[1, 2, 3, 4]]}, "polygon 1 has 4 coordinates"),
        ({"segmentation": [[1, 2, 3, 4, 5, 6, 7]]}, "polygon 1 has 7 coordinates"),
        ({"segmentation": [[1, 2, "x", 4, 5, 6]]}, "polygon 1 is not a list of numbers"),
        ({"segmentation": {"size": [image["height"], image["width"]], "counts": [5, 3]}}, "RLE counts cover 8 pixels, not"),
        ({"segmentation": {"size": [1, 2], "counts": [2]}}, "RLE size [1, 2] is not the image"),
        ({"segmentation": {"size": [image["height"], image["width"]], "counts": "0P"}}, "compressed RLE counts end in the middle of a value"),
        ({"segmentation": {"size": [image["height"], image["width"]], "counts": [-1, image["height"] * image["width"] + 1]}},
         "RLE counts hold a negative run length"),
        ({"segmentation": {"counts": "abc"}}, "segmentation is neither polygons nor RLE"),
    ]


def test_every_bad_annotation_is_one_error_naming_the_file_and_annotation_id(layouts, tmp_path):
    fp_root, _ = layouts
    data = json.loads((fp_root / TRAIN_JSON).read_text())
    annotation = data["annotations"][3]
    image = next(i for i in data["images"] if i["id"] == annotation["image_id"])
    path = tmp_path / "bad.json"
    for change, message in _corrupt(annotation, image):
        bad = json.loads(json.dumps(data))
        bad["annotations"][3].update(change)
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError) as error:
            load_instances(path, ONTOLOGY)
        assert str(error.value).startswith(f"{path}: annotation {annotation['id']}: {message}"), str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["images"][0].update(height=0), "image {id}: height 0 is not a positive integer"),
    (lambda d: d["images"].append(dict(d["images"][0])), "image {id}: id given twice"),
    (lambda d: d["images"].append({**d["images"][0], "id": -5}), "image -5: a second image named"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0])), "annotation {aid}: id given twice"),
    (lambda d: d["annotations"][0].pop("id"), "annotation #0 (no integer id): no integer id"),
    (lambda d: d["categories"].pop(), "`categories` ids differ from the ontology's (e.g. [45])"),
    (lambda d: d["attributes"].append({"id": 999}), "`attributes` ids differ from the ontology's (e.g. [999])"),
    (lambda d: d.pop("annotations"), "no `annotations` list"),
])
def test_bad_files_name_what_is_wrong(layouts, tmp_path, change, message):
    fp_root, _ = layouts
    data = json.loads((fp_root / TRAIN_JSON).read_text())
    expected = message.format(id=data["images"][0]["id"], aid=data["annotations"][0]["id"])
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as error:
        load_instances(path, ONTOLOGY)
    assert str(error.value).startswith(f"{path}: {expected}"), str(error.value)


def test_cache_command_exits_2_on_a_bad_annotation_and_skips_it_on_request(layouts, tmp_path, capsys):
    fp_root, _ = layouts
    root = tmp_path / "data"
    shutil.copytree(fp_root, root)
    data = json.loads((root / TRAIN_JSON).read_text())
    data["annotations"][1]["category_id"] = 99
    (root / TRAIN_JSON).write_text(json.dumps(data))
    (tmp_path / "params.yaml").write_text("{}\n")
    command = ["--params", str(tmp_path / "params.yaml"), "cache", "--root", str(root), "--layout", "fashionpedia",
               "--out-dir", str(tmp_path / "cache"), "--split", "train", "--workers", "0", "--max-size", "64"]
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {root / TRAIN_JSON}: annotation {data['annotations'][1]['id']}: category_id 99 outside 0..45"]
    assert not (tmp_path / "cache" / "train.h5").exists()
    assert main([*command, "--on-error", "skip"]) == 0
    assert "1 bad annotation(s) skipped" in capsys.readouterr().err
    reader = CacheReader(tmp_path / "cache" / "train.h5")
    assert reader.class_ids.size == len(data["annotations"]) - 1
    assert main([*command, "--on-error", "skip"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_wrong_image_size_names_the_json_and_the_image_id(layouts, tmp_path):
    fp_root, _ = layouts
    root = tmp_path / "data"
    shutil.copytree(fp_root, root)
    data = json.loads((root / TRAIN_JSON).read_text())
    image = data["images"][0]
    image["height"] += 1
    for annotation in data["annotations"]:  # keep the RLEs the right size for the stated image
        segmentation = annotation["segmentation"]
        if annotation["image_id"] == image["id"] and isinstance(segmentation, dict):
            annotation["segmentation"] = [[1, 1, 20, 1, 20, 20]]
    (root / TRAIN_JSON).write_text(json.dumps(data))
    with pytest.raises(InputError, match=f"but its listing says .* image id {image['id']}"):
        build_cache(root, "train", tmp_path / "train.h5", CacheConfig(max_size=64), layout="fashionpedia")
