"""RLE decode and encode: this project's codec against pycocotools' C codec and a naive run loop.

All three decode the same masks from their own string format (Kaggle RLE for ours and the loop,
pycocotools' compressed RLE for pycocotools) into a (height, width) uint8 array, so each side
includes its own string parsing.
"""
from __future__ import annotations

import time

import numpy as np
from pycocotools import mask as coco_mask

from pipeline.data import rle


def add_arguments(parser) -> None:
    parser.add_argument("--masks", type=int, default=200, help="masks to code (default: %(default)s)")
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--width", type=int, default=700)
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats, best kept")
    parser.add_argument("--seed", type=int, default=0)


def garment_like_masks(count: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    """Blobs of garment-like sizes (1% to 40% of the image) with ragged edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    masks = []
    for _ in range(count):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.05, 0.4) * height, rng.uniform(0.05, 0.4) * width
        wobble = 1 + 0.15 * np.sin(xx / rng.uniform(5, 40)) * np.cos(yy / rng.uniform(5, 40))
        masks.append((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < wobble).astype(np.uint8))
    return masks


def decode_naive(encoded: str, height: int, width: int) -> np.ndarray:
    """The loop most public kernels use: one slice assignment per run."""
    values = [int(v) for v in encoded.split()]
    flat = np.zeros(height * width, np.uint8)
    for start, length in zip(values[0::2], values[1::2]):
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape(width, height).T


def encode_naive(mask: np.ndarray) -> str:
    flat = mask.ravel(order="F")
    pairs, start = [], None
    for i, value in enumerate(flat.tolist()):
        if value and start is None:
            start = i
        elif not value and start is not None:
            pairs += [start + 1, i - start]
            start = None
    if start is not None:
        pairs += [start + 1, len(flat) - start]
    return " ".join(map(str, pairs))


def best_seconds(function, items, repeats: int) -> float:
    """Best of `repeats` runs of `function` over all `items`, in seconds per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items)


def run(args, settings) -> dict:
    h, w = args.height, args.width
    masks = garment_like_masks(args.masks, h, w, args.seed)
    kaggle = [rle.encode(m) for m in masks]
    coco = [coco_mask.encode(np.asfortranarray(m)) for m in masks]
    for m, k, c in zip(masks, kaggle, coco):  # all three must agree before any timing counts
        assert np.array_equal(rle.decode(k, h, w), m) and np.array_equal(coco_mask.decode(c), m)
        assert np.array_equal(decode_naive(k, h, w), m)

    decode = {
        "ours": best_seconds(lambda k: rle.decode(k, h, w), kaggle, args.repeats),
        "pycocotools": best_seconds(coco_mask.decode, coco, args.repeats),
        "naive_loop": best_seconds(lambda k: decode_naive(k, h, w), kaggle, args.repeats),
    }
    encode = {
        "ours": best_seconds(rle.encode, masks, args.repeats),
        "pycocotools": best_seconds(lambda m: coco_mask.encode(np.asfortranarray(m)), masks, args.repeats),
        "naive_loop": best_seconds(encode_naive, masks[:10], 1),
    }
    return {
        "masks": args.masks,
        "size": [h, w],
        "mean_runs_per_mask": float(np.mean([k.count(" ") // 2 + 1 for k in kaggle])),
        "decode_ms_per_mask": {k: v * 1e3 for k, v in decode.items()},
        "encode_ms_per_mask": {k: v * 1e3 for k, v in encode.items()},
        "decode_speedup_vs_pycocotools": decode["pycocotools"] / decode["ours"],
        "decode_speedup_vs_naive_loop": decode["naive_loop"] / decode["ours"],
        "encode_speedup_vs_pycocotools": encode["pycocotools"] / encode["ours"],
        "encode_speedup_vs_naive_loop": encode["naive_loop"] / encode["ours"],
    }
