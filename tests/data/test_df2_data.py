"""DeepFashion2 reader (validation with file + item errors) and its HDF5 cache."""
import json
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from pipeline.cli import main
from pipeline.data.deepfashion2 import annotations as df2
from pipeline.data import resize
from pipeline.data.cache_format import CacheConfig
from pipeline.data.cache_reader import UnusableCache
from pipeline.data.deepfashion2.cache import Df2CacheReader, build_cache, fingerprint
from pipeline.data.images import image_size
from pipeline.errors import InputError


@pytest.fixture(scope="session")
def example(shared_dir):
    return shared_dir / "data" / "deepfashion2_example"


@pytest.fixture
def split(example, tmp_path):
    """A writable copy of the example split."""
    root = tmp_path / "split"
    shutil.copytree(example / "image", root / "image")
    shutil.copytree(example / "annos", root / "annos")
    return root


def test_reads_the_example(example):
    annotations = df2.read_annotations(example / "annos")
    assert [a.image_id for a in annotations] == [1, 2, 3, 4]
    assert [a.source for a in annotations] == ["user", "shop", "shop", "user"]
    first = annotations[0].items
    assert [(i.key, i.category_id, i.style, i.box) for i in first] == [
        ("item1", 1, 1, (40, 30, 160, 140)), ("item2", 8, 2, (50, 130, 150, 290))]
    assert first[0].landmarks.shape == (25, 3) and first[1].landmarks.shape == (14, 3)
    assert first[0].box_area == 120 * 110 and first[0].difficulty == (2, 1, 1, 2)


def test_categories_fill_the_294_slots_in_blocks():
    assert df2.CATEGORIES[-1].first_slot + df2.CATEGORIES[-1].landmarks == df2.NUM_SLOTS
    assert [c.first_slot for c in df2.CATEGORIES[:3]] == [0, 25, 58]


ITEM = {"category_name": "skirt", "category_id": 9, "style": 1, "bounding_box": [10, 10, 50, 60],
        "landmarks": [12, 12, 2] * 8, "segmentation": [[10, 10, 50, 10, 50, 60, 10, 60]],
        "scale": 1, "occlusion": 2, "zoom_in": 3, "viewpoint": 1}


def _with(path, value):
    """ITEM as item2 of a file, with `value` merged into it (None deletes the key)."""
    item = {k: v for k, v in {**ITEM, **value}.items() if v is not None}
    return {"source": "user", "pair_id": 3, "item1": ITEM, "item2": item}


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"source": "user", "item1": ITEM}, ": missing key 'pair_id'"),
        ({"source": "street", "pair_id": 1}, ": source must be one of user, shop"),
        ({"source": "shop", "pair_id": "7"}, ": pair_id must be an integer"),
        ({"source": "shop", "pair_id": 7, "item1": [1]}, ": item1: an item must be a JSON object"),
        (_with(None, {"style": None}), ": item2: missing key 'style'"),
        (_with(None, {"category_id": 14}), ": item2: category_id must be 1..13, got 14"),
        (_with(None, {"category_name": "trousers"}), ": item2: category_name 'trousers' is not category 9"),
        (_with(None, {"bounding_box": [1, 2, 3]}), ": item2: bounding_box must be 4 numbers"),
        (_with(None, {"bounding_box": [50, 10, 10, 60]}), ": item2: bounding_box must have x2 >= x1"),
        (_with(None, {"bounding_box": [1, 2, "3", 4]}), ": item2: bounding_box must hold finite numbers only"),
        (_with(None, {"landmarks": [12, 12, 2] * 7 + [1]}),
         ": item2: landmarks must be 3*8 = 24 numbers for skirt, got 22"),
        (_with(None, {"landmarks": [12, 12, 2] * 7 + [1, 1, 3]}), ": item2: landmark 8: visibility must be 0, 1 or 2"),
        (_with(None, {"segmentation": []}), ": item2: segmentation must be a non-empty list of polygons"),
        (_with(None, {"segmentation": [[1, 2, 3, 4, 5]]}), ": item2: segmentation polygon 1 must be an even count"),
        (_with(None, {"scale": 4}), ": item2: scale must be 1..3, got 4"),
        (_with(None, {"style": -1}), ": item2: style must be >= 0, got -1"),
        (_with(None, {"viewpoint": True}), ": item2: viewpoint must be an integer"),
        ([1, 2], ": must be a JSON object, got list"),
    ],
)
def test_a_bad_annotation_names_the_file_and_the_item(tmp_path, content, expected):
    path = tmp_path / "annos" / "000001.json"
    path.parent.mkdir()
    path.write_text(json.dumps(content))
    with pytest.raises(InputError) as error:
        df2.read_annotations(path.parent)
    assert str(error.value).startswith(f"{path}: ") and expected in str(error.value)


def test_file_level_errors(tmp_path):
    annos = tmp_path / "annos"
    annos.mkdir()
    (annos / "000001.json").write_text('{"source": "user",\n "pair_id": }')
    with pytest.raises(InputError, match=r"000001.json:2: not valid JSON"):
        df2.read_annotations(annos)
    (annos / "000001.json").write_text(json.dumps({"source": "user", "pair_id": 1}))
    (annos / "1.json").write_text(json.dumps({"source": "user", "pair_id": 1}))
    with pytest.raises(InputError, match="image id 1 also in"):
        df2.read_annotations(annos)
    (annos / "1.json").unlink()
    (annos / "first.json").write_text("{}")
    with pytest.raises(InputError, match="first.json: file name must be the image id"):
        df2.read_annotations(annos)
    with pytest.raises(InputError, match="annotation folder not found"):
        df2.read_annotations(tmp_path / "missing")


def test_readme_category_names_are_accepted(tmp_path):
    path = tmp_path / "000005.json"
    path.write_text(json.dumps(_with(None, {"category_name": "skirt"}) | {
        "item3": {**ITEM, "category_id": 1, "category_name": "short sleeve top", "landmarks": [0, 0, 0] * 25}}))
    annotation = df2.read_annotation(path)
    assert annotation.image_id == 5 and [i.category_id for i in annotation.items] == [9, 9, 1]


def _expected_mask(item, orig_size, size):
    full = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([list(p) for p in item.segmentation], *orig_size)))
    return resize.resize_mask(full, size)


@pytest.mark.parametrize("max_size, codec", [(150, "raw"), (512, "jpeg")])
def test_cache_holds_every_field_at_cache_resolution(example, tmp_path, max_size, codec):
    path = tmp_path / "df2.h5"
    build_cache(example, path, CacheConfig(max_size=max_size, codec=codec))
    reader = Df2CacheReader(path, fingerprint(example, CacheConfig(max_size=max_size, codec=codec)))
    annotations = df2.read_annotations(example / "annos")
    assert len(reader) == len(annotations)
    for i, annotation in enumerate(annotations):
        sample = reader[i]
        orig_size = image_size(df2.image_path(example / "image", annotation.image_id))
        size = resize.target_size(*orig_size, max_size)
        scale = np.array([size[1] / orig_size[1], size[0] / orig_size[0]])
        assert sample.image.shape == (*size, 3) and sample.orig_size == orig_size
        assert (sample.image_id, sample.source, sample.pair_id) == (annotation.image_id, annotation.source,
                                                                    annotation.pair_id)
        items = annotation.items
        assert sample.category_ids.tolist() == [item.category_id for item in items]
        assert sample.styles.tolist() == [item.style for item in items]
        assert sample.difficulty.tolist() == [list(item.difficulty) for item in items]
        np.testing.assert_allclose(sample.boxes, [np.array(item.box) * np.tile(scale, 2) for item in items], rtol=1e-6)
        for landmarks, item in zip(sample.landmarks, items):
            np.testing.assert_allclose(landmarks[:, :2], item.landmarks[:, :2] * scale, rtol=1e-6)
            assert landmarks[:, 2].tolist() == item.landmarks[:, 2].tolist()
        for mask, item in zip(sample.masks, items):
            assert mask.any()
            np.testing.assert_array_equal(mask, _expected_mask(item, orig_size, size))


def test_cache_command_is_up_to_date_then_rebuilds_when_an_annotation_changes(split, tmp_path, capsys):
    out = tmp_path / "df2.h5"
    argv = ["cache-df2", "--root", str(split), "--out", str(out), "--max-size", "128"]
    assert main(argv) == 0
    assert "4 images, 7 items" in capsys.readouterr().out
    assert main(argv) == 0
    assert "up to date (4 images)" in capsys.readouterr().out
    anno = split / "annos" / "000004.json"
    anno.write_text(anno.read_text().replace('"style": 1', '"style": 2'))
    with pytest.raises(UnusableCache, match="stale cache"):
        Df2CacheReader(out, fingerprint(split, CacheConfig(max_size=128)))
    assert main(argv) == 0
    assert "rebuilding (stale cache (its inputs or parameters changed))" in capsys.readouterr().out
    assert Df2CacheReader(out)[3].styles.tolist() == [2]


def test_a_bad_annotation_stops_the_build_and_leaves_the_old_cache(split, tmp_path, capsys):
    out = tmp_path / "df2.h5"
    assert main(["cache-df2", "--root", str(split), "--out", str(out)]) == 0
    before = out.read_bytes()
    anno = split / "annos" / "000003.json"
    data = json.loads(anno.read_text())
    data["item2"]["landmarks"] = data["item2"]["landmarks"][:-3]
    anno.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["cache-df2", "--root", str(split), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{anno}: item2: landmarks must be 3*25 = 75 numbers" in err
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".df2.h5")] == []


def test_a_missing_image_is_named_with_its_annotation(split, tmp_path, capsys):
    (split / "image" / "000002.jpg").unlink()
    assert main(["cache-df2", "--root", str(split), "--out", str(tmp_path / "x.h5")]) == 2
    assert "000002.jpg: image file not found (the image of" in capsys.readouterr().err


def test_workers_write_the_same_file_content(split, tmp_path):
    config = CacheConfig(max_size=128)
    build_cache(split, tmp_path / "a.h5", config, workers=0)
    build_cache(split, tmp_path / "b.h5", config, workers=2, batch_bytes=1)
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        assert set(a) == set(b)
        for name in a:
            np.testing.assert_array_equal(a[name][:], b[name][:])


def test_a_fashionpedia_cache_is_refused(tmp_path):
    path = tmp_path / "fp.h5"
    with h5py.File(path, "w") as file:
        file.attrs.update({"format_version": 1, "complete": True})
    with pytest.raises(UnusableCache, match="not a DeepFashion2 cache, run python -m pipeline cache-df2"):
        Df2CacheReader(path)


def test_image_size_reads_the_header(tmp_path):
    Image.new("RGB", (30, 20)).save(df2.image_path(tmp_path, 1))
    assert image_size(df2.image_path(tmp_path, 1)) == (20, 30)
    df2.image_path(tmp_path, 2).write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot read the image header"):
        image_size(df2.image_path(tmp_path, 2))


def test_the_mirror_slots_pair_the_official_sigmas():
    """Each landmark's mirror shares its OKS sigma (the official table mirrors left/right), the mirror of
    a mirror is the landmark itself, and every slot stays in its category's block."""
    from pipeline.evaluation.deepfashion2.metrics import SIGMAS

    slots = df2.MIRRORED_SLOTS
    assert sorted(slots.tolist()) == list(range(df2.NUM_SLOTS)) and (slots[slots] == np.arange(df2.NUM_SLOTS)).all()
    # The official table's one asymmetry: long sleeve dress 15 / 29 (global 234 / 248, 1-based).
    assert np.flatnonzero(SIGMAS[slots] != SIGMAS).tolist() == [233, 247]
    for category in df2.CATEGORIES:
        order = df2.mirror_order(category.id)
        assert sorted(order.tolist()) == list(range(category.landmarks))
    # Spelled out: the shirt's neckline corners and shoulders swap; outerwear's opening meets 4 and the hem.
    shirt, outwear = df2.mirror_order(1) + 1, df2.mirror_order(4) + 1
    assert (shirt[[0, 1, 3, 6, 15]] == [1, 6, 4, 25, 16]).all()
    assert (outwear[[3, 19, 33, 34, 36]] == [34, 37, 4, 38, 20]).all()
    assert (df2.mirror_order(8) + 1).tolist() == [3, 2, 1, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4]
