"""Reading a Fashionpedia instances JSON: seconds and peak resident memory, at a chosen size.

Writes a file of `--images` images (1024 x 683) and `--annotations` annotations, each one polygon of
`--vertices` points with 2-decimal coordinates and 0-6 attributes (train2020: 45,623 images and
~333k annotations; val2020: 1,158 images). Then, in a fresh process: `load_instances` (json.load and
validation), then every image's record one at a time, as the cache build takes them. The imports
alone are measured in a process of their own, to be subtracted.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from pipeline.data import ontology as ontology_lib

MEASURE = """
import json, resource, sys, time
from pipeline.data import ontology as ontology_lib
from pipeline.data.fashionpedia import load_instances
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ontology = ontology_lib.load()
if sys.argv[1] == "imports":
    print(json.dumps({"peak_rss_mb": peak()}))
    sys.exit()
start = time.perf_counter()
instances, _ = load_instances(sys.argv[1], ontology)
loaded, loaded_peak = time.perf_counter() - start, peak()
start = time.perf_counter()
count = sum(len(instances.record(image).instances) for image in instances.annotated())
print(json.dumps({"load_seconds": loaded, "peak_rss_mb_after_load": loaded_peak, "instances": count,
                  "records_seconds": time.perf_counter() - start, "peak_rss_mb_after_records": peak()}))
"""


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=1158, help="default: %(default)s (val2020)")
    parser.add_argument("--annotations", type=int, default=8800, help="default: %(default)s")
    parser.add_argument("--vertices", type=int, default=40, help="points per polygon (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def write_instances(path: Path, images: int, annotations: int, vertices: int, seed: int) -> None:
    """The file, written an annotation at a time."""
    ontology = ontology_lib.load()
    rng = np.random.default_rng(seed)
    labels = lambda entries: [{"id": e.id, "name": e.name, "supercategory": e.supercategory} for e in entries]  # noqa: E731
    with open(path, "w") as out:
        out.write('{"images": ' + json.dumps([{"id": i + 1, "file_name": f"{i:012x}.jpg", "height": 1024, "width": 683}
                                              for i in range(images)]))
        out.write(f', "categories": {json.dumps(labels(ontology.categories))}')
        out.write(f', "attributes": {json.dumps(labels(ontology.attributes))}, "annotations": [')
        for k in range(annotations):
            cx, cy, radius = rng.uniform(150, 530), rng.uniform(150, 870), rng.uniform(20, 140)
            angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
            polygon = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1).ravel()
            entry = {"id": k + 1, "image_id": k * images // annotations + 1, "category_id": int(rng.integers(0, 46)),
                     "attribute_ids": sorted(rng.choice(ontology.attribute_ids, int(rng.integers(0, 7)),
                                                        replace=False).tolist()),
                     "segmentation": [np.round(polygon, 2).tolist()], "area": float(np.pi * radius**2),
                     "iscrowd": 0}
            out.write(("," if k else "") + json.dumps(entry))
        out.write("]}")


def _measure(argument: str) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, argument], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run(args, settings) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "instances.json"
        write_instances(path, args.images, args.annotations, args.vertices, args.seed)
        size = path.stat().st_size
        return {
            "file": {"images": args.images, "annotations": args.annotations, "vertices": args.vertices,
                     "megabytes": size / 1e6},
            "imports_peak_rss_mb": _measure("imports")["peak_rss_mb"],
            **_measure(str(path)),
        }
