"""Attribute agreement between paired predictions and ground truths, all pairs at once.

Attribute sets become rows of a 0/1 matrix over the ontology's attributes; a pair's counts come
from one vectorised AND and row sums, never a per-pair scikit-learn call.
"""
from __future__ import annotations

import numpy as np

from pipeline.data.ontology import Ontology


def attribute_matrix(attributes: list[tuple[int, ...]], ontology: Ontology) -> np.ndarray:
    """Bool matrix (instances x ontology attributes) with the instances' attribute sets."""
    matrix = np.zeros((len(attributes), ontology.num_attributes), bool)
    rows = np.repeat(np.arange(len(attributes)), [len(a) for a in attributes])
    columns = [ontology.attribute_index[a] for ids in attributes for a in ids]
    matrix[rows, columns] = True
    return matrix


def _counts(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives of paired rows."""
    true_positives = np.count_nonzero(gt & pred, axis=1)
    return (
        true_positives,
        np.count_nonzero(pred, axis=1) - true_positives,
        np.count_nonzero(gt, axis=1) - true_positives,
    )


def fpeval_f1(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """FPEval's attribute score of paired rows: scikit-learn's macro F1 over the labels {0, 1}.

    Each pair is one binary vector over all attributes; the score is the mean F1 of the labels
    present in either vector. Both F1s are 2 * hits / (2 * hits + misses) in float64, the very
    operations scikit-learn performs, so threshold comparisons agree bit for bit.
    """
    true_positives, false_positives, false_negatives = _counts(gt, pred)
    true_negatives = gt.shape[1] - true_positives - false_positives - false_negatives
    errors = false_positives + false_negatives
    ones_present = true_positives + errors > 0
    zeros_present = true_negatives + errors > 0
    f1_ones = _ratio(2 * true_positives, 2 * true_positives + errors)
    f1_zeros = _ratio(2 * true_negatives, 2 * true_negatives + errors)
    total = np.where(ones_present, f1_ones, 0.0) + np.where(zeros_present, f1_zeros, 0.0)
    return total / (ones_present.astype(np.int64) + zeros_present)


def set_f1(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Set F1 2|P∩G| / (|P| + |G|) of paired rows (the Kaggle score's); 1.0 when both are empty."""
    true_positives, false_positives, false_negatives = _counts(gt, pred)
    denominator = 2 * true_positives + false_positives + false_negatives
    return np.where(denominator > 0, _ratio(2 * true_positives, denominator), 1.0)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return numerator / np.maximum(denominator, 1)
