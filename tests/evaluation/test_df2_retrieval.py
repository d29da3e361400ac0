"""DeepFashion2 retrieval: the protocol's quirks on hand-made cases, and a literal loop on random ones."""
import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.evaluation.deepfashion2 import retrieval

TOP = ("top1", "top5", "top10", "top15", "top20")


def corner_iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def literal(query: list, gallery: list, results: list) -> dict:
    """DEEPFASHION2.md section 5, step by step, in plain loops."""
    hits = dict.fromkeys(TOP, 0)
    for image in dict.fromkeys(q["query_image_id"] for q in query):
        items = [i for i, q in enumerate(query) if q["query_image_id"] == image]
        assigned = {}
        for detection in (r for r in results if r["query_image_id"] == image):
            ious = [corner_iou(detection["query_bbox"], query[i]["bbox"]) for i in items]
            assigned.setdefault(items[int(np.argmax(ious))], []).append(detection)
        for i in items:
            item = query[i]
            candidates = [d for d in assigned.get(i, []) if d["query_cls"] == item["cls"]]
            if item["style"] == 0 or not candidates:
                continue
            best = max(candidates, key=lambda d: d["query_score"])  # max keeps the first on ties
            matches = [g for g in gallery if (g["pair_id"], g["style"]) == (item["pair_id"], item["style"])]
            for rank, (image_id, box) in enumerate(zip(best["gallery_image_id"][:20], best["gallery_bbox"][:20])):
                if any(g["gallery_image_id"] == image_id and corner_iou(box, g["bbox"]) >= 0.5 for g in matches):
                    for key in TOP:
                        hits[key] += rank < int(key[3:])
                    break
    denominator = sum(q["style"] > 0 for q in query)
    return {key: hits[key] / denominator for key in TOP}


def evaluate(query, gallery, results) -> dict:
    return retrieval.evaluate(retrieval.read_query_gt(query, "q.json"), retrieval.read_gallery_gt(gallery, "g.json"),
                              retrieval.read_results(results, "r.json"))


def random_box(rng, near=None, spread=10):
    if near is None:
        x1, y1 = rng.integers(0, 150, 2)
        return [int(x1), int(y1), int(x1 + rng.integers(10, 80)), int(y1 + rng.integers(10, 80))]
    return [int(v + rng.integers(-spread, spread + 1)) for v in near]


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    query, gallery, results = [], [], []
    for image in range(100, 100 + int(rng.integers(1, 8))):
        for _ in range(int(rng.integers(1, 5))):
            query.append({"query_image_id": image, "bbox": random_box(rng), "cls": int(rng.choice((1, 8))),
                          "style": int(rng.integers(0, 3)), "pair_id": int(rng.integers(1, 4))})
    query[0]["style"] = max(1, query[0]["style"])  # at least one counted query
    for image in range(1, int(rng.integers(2, 8))):
        for _ in range(int(rng.integers(1, 4))):
            gallery.append({"gallery_image_id": image, "bbox": random_box(rng), "style": int(rng.integers(1, 3)),
                            "pair_id": int(rng.integers(1, 4))})
    for item in query + [{"query_image_id": 999, "bbox": random_box(rng)}]:  # 999 is not a query image
        for _ in range(int(rng.integers(0, 3))):
            ranked = [gallery[int(i)] for i in rng.integers(0, len(gallery), 20)]
            matches = [g for g in gallery if (g["pair_id"], g["style"]) == (item.get("pair_id"), item.get("style"))]
            if matches and rng.random() < 0.7:  # a true match somewhere in the list
                ranked[int(rng.integers(0, 20))] = matches[int(rng.integers(0, len(matches)))]
            length = int(rng.choice((20, 20, 20, 7)))
            results.append({
                "query_image_id": item["query_image_id"], "query_bbox": random_box(rng, item["bbox"], 25),
                "query_cls": int(rng.choice((1, 8))), "query_score": float(rng.choice((0.2, 0.5, 0.5, 0.9))),
                "gallery_image_id": [g["gallery_image_id"] for g in ranked][:length],
                "gallery_bbox": [random_box(rng, g["bbox"], 12) for g in ranked][:length],
            })
    return query, gallery, results


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_equal_the_literal_protocol(seed):
    query, gallery, results = random_case(seed)
    ours = evaluate(query, gallery, results)
    assert {key: ours[key] for key in TOP} == literal(query, gallery, results)


def test_random_cases_are_not_trivial():
    values = [evaluate(*random_case(seed)) for seed in range(40)]
    top1 = [v["top1"] for v in values]
    assert min(top1) == 0 and max(top1) > 0.3 and sum(0 < t < 1 for t in top1) >= 5
    assert any(v["missed"] for v in values) and any(v["ignored_results"] for v in values)


def entry(image, box, cls, score, ranked):
    return {"query_image_id": image, "query_bbox": box, "query_cls": cls, "query_score": score,
            "gallery_image_id": [g for g, _ in ranked], "gallery_bbox": [b for _, b in ranked]}


QUERY = [
    {"query_image_id": 1, "bbox": [0, 0, 100, 100], "cls": 1, "style": 0, "pair_id": 5},  # style 0, first item
    {"query_image_id": 1, "bbox": [0, 0, 100, 100], "cls": 1, "style": 1, "pair_id": 5},  # same box: loses ties
    {"query_image_id": 1, "bbox": [200, 200, 300, 300], "cls": 8, "style": 2, "pair_id": 5},
]
GALLERY = [{"gallery_image_id": 7, "bbox": [0, 0, 100, 100], "style": 1, "pair_id": 5},
           {"gallery_image_id": 8, "bbox": [0, 0, 100, 100], "style": 2, "pair_id": 5}]
HIT_1 = [(7, [0, 0, 100, 100])]
HIT_2 = [(8, [0, 0, 100, 100])]


def test_a_style_zero_item_takes_the_detections_it_ties_with():
    # Both detections tie on the first two items: the style-0 item 1 takes them, item 2 is missed.
    results = [entry(1, [0, 0, 100, 100], 1, 0.9, HIT_1 * 20), entry(1, [200, 200, 300, 300], 8, 0.9, HIT_2 * 20)]
    metrics = evaluate(QUERY, GALLERY, results)
    assert metrics["top1"] == 0.5 and metrics["missed"] == 1


def test_a_box_far_from_everything_represents_the_first_item():
    query = QUERY[1:]  # now the style-1 top is the image's first item
    results = [entry(1, [500, 500, 510, 510], 1, 0.9, HIT_1 * 20)]
    assert evaluate(query, GALLERY, results)["top1"] == 0.5


def test_gallery_iou_half_counts_and_short_lists_are_misses():
    half = [(7, [0, 0, 100, 50])]  # IoU exactly 0.5 with the true match
    results = [entry(1, [0, 0, 100, 100], 1, 0.9, [(7, [0, 0, 10, 10])] * 4 + half),  # rank 5
               entry(1, [200, 200, 300, 300], 8, 0.9, [(8, [0, 0, 10, 10])] * 3)]  # 3 entries, no hit
    metrics = evaluate(QUERY[1:], GALLERY, results)
    assert (metrics["top1"], metrics["top5"], metrics["top20"]) == (0.0, 0.5, 0.5)


def test_the_highest_scored_candidate_of_the_right_class_represents_the_item():
    results = [entry(1, [200, 200, 300, 300], 1, 0.99, HIT_2 * 20),  # wrong class: skipped
               entry(1, [200, 200, 300, 300], 8, 0.5, HIT_2 * 20),
               entry(1, [200, 200, 300, 300], 8, 0.6, [(7, [0, 0, 100, 100])] * 20)]  # wrong product
    metrics = evaluate(QUERY[1:], GALLERY, results)
    assert metrics["top20"] == 0.0 and metrics["missed"] == 1


def test_only_twenty_ranks_are_read():
    results = [entry(1, [0, 0, 100, 100], 1, 0.9, [(7, [0, 0, 10, 10])] * 20 + HIT_1)]
    assert evaluate(QUERY[1:], GALLERY, results)["top20"] == 0.0


@pytest.mark.parametrize(
    "which, data, expected",
    [
        ("query", [{"query_image_id": 1, "bbox": [0, 0, 1, 1], "cls": 1, "style": 1}], "entry 1: missing key 'pair_id'"),
        ("query", [{"query_image_id": 1, "bbox": [0, 0, 1, 1], "cls": 20, "style": 1, "pair_id": 1}], "cls 20 is not"),
        ("gallery", [{"gallery_image_id": 1.5, "bbox": [0, 0, 1, 1], "style": 1, "pair_id": 1}],
         "entry 1: gallery_image_id must be an integer"),
        ("results", [entry(1, [0, 0, 1], 1, 0.5, HIT_1)], "entry 1: query_bbox must be 4 numbers"),
        ("results", [{**entry(1, [0, 0, 1, 1], 1, 0.5, HIT_1), "gallery_bbox": []}], "gallery_bbox 0"),
        ("results", {"a": 1}, "must be a JSON list"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_and_entry(tmp_path, capsys, which, data, expected):
    files = {"query": QUERY, "gallery": GALLERY, "results": [entry(1, [0, 0, 1, 1], 1, 0.5, HIT_1)]}
    files[which] = data
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    status = main(["evaluate-df2", "--task", "retrieval", "--query-gt", str(tmp_path / "query.json"),
                   "--gallery-gt", str(tmp_path / "gallery.json"), "--results", str(tmp_path / "results.json")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"{tmp_path / which}.json" in err and expected in err


def test_no_counted_query_is_an_error():
    with pytest.raises(InputError, match="no query item with style > 0"):
        evaluate([{**QUERY[0]}], GALLERY, [])
