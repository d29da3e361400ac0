"""`python -m pipeline fashionpedia-results`: the official results JSON of a predictions CSV.

Fashionpedia's evaluator (FPEval) and its evaluation server read a JSON list of {image_id,
category_id, segmentation (compressed RLE), score, attribute_ids} (`pipeline.scoring.results_json`).
Its numeric image ids come from the dataset's own file: instances_attributes_val2020.json for
val2020, info_test2020.json for test2020 (any file with an `images` list: id, file_name, height,
width); a CSV row's ImageId is the file name without its extension. The CSV is read a chunk at a
time and the JSON written as it goes, atomically.
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, help="predictions CSV: submission layout plus a Score column")
    parser.add_argument("--images", required=True,
                        help="Fashionpedia JSON whose `images` give the ids and sizes (instances_attributes_val2020"
                             ".json, info_test2020.json)")
    parser.add_argument("--out", required=True, help="results JSON to write")
    parser.add_argument("--labels", help="label_descriptions.json (default: the project's copy)")


def run(settings, args) -> int:
    from pipeline.data import ontology as ontology_lib
    from pipeline.data.fashionpedia import read_images
    from pipeline.scoring.results_json import write_results

    count = write_results(args.pred, read_images(args.images), ontology_lib.load(args.labels), args.out)
    print(f"{count} results -> {args.out}")
    return 0
