"""`python -m pipeline retrieve`: consumer-to-shop retrieval with a trained Match R-CNN.

By default the DeepFashion2 track's model, validation cache and predict-df2's gallery index
(params `df2`); the flags point it at other files. Writes the official retrieval results JSON.
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--weights", help="a model.pt that embeds items (default: the df2 model's)")
    parser.add_argument("--cache", help="a DeepFashion2 cache (cache-df2): shop photos are the gallery, consumer "
                                        "photos the queries (default: the df2 validation cache)")
    parser.add_argument("--index", help="folder of the gallery index, built when missing or stale "
                                        "(default: predict-df2's, in df2.predictions)")
    parser.add_argument("--out", help="the retrieval results JSON to write (default: df2.predictions/retrieval.json)")
    parser.add_argument("--query-threshold", dest="df2.query_threshold", type=float,
                        help="lowest detection score of a query item (default: params df2.query_threshold)")
    parser.add_argument("--gallery-threshold", dest="df2.gallery_threshold", type=float,
                        help="lowest detection score of a gallery item (default: params df2.gallery_threshold)")
    parser.add_argument("--threads", dest="df2.threads", type=int,
                        help="torch CPU threads; 0: torch's default, one per core (default: params df2.threads)")


def run(settings, args) -> int:
    import torch

    from pipeline import layout
    from pipeline.inference.deepfashion2.retrieval import retrieve

    df2 = settings.df2
    if df2.threads:
        torch.set_num_threads(df2.threads)
    predictions = Path(df2.predictions)
    summary = retrieve(Path(args.weights or layout.df2_model_file(df2.model)), Path(args.cache or df2.cache("validation")),
                       Path(args.index or predictions / layout.DF2_GALLERY_INDEX),
                       Path(args.out or predictions / "retrieval.json"), df2.query_threshold, df2.gallery_threshold,
                       progress=not args.no_progress)
    print(f"retrieve: {summary}")
    return 0
