"""Random choices among the options of a garment or scene."""
from __future__ import annotations

import numpy as np


def choose(rng: np.random.Generator, options):
    """One item of a sequence, or one key of a dict, uniformly at random."""
    options = list(options)
    return options[rng.integers(len(options))]


def weighted(rng: np.random.Generator, weights: dict):
    """One key of an {option: weight} dict at random."""
    keys = list(weights)
    p = np.array(list(weights.values()), float)
    return keys[rng.choice(len(keys), p=p / p.sum())]
