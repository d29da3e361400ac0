import numpy as np
import pytest
from sklearn.metrics import f1_score

from pipeline.scoring.attributes import attribute_matrix, fpeval_f1, set_f1

from random_cases import ONTOLOGY


def _sets(rng, ontology, count):
    ids = ontology.attribute_ids
    sizes = rng.choice([0, 0, 1, 2, 3, 5, 20], size=count)
    return [tuple(sorted(rng.choice(ids, size=int(n), replace=False).tolist())) for n in sizes]


def test_fpeval_f1_is_sklearn_macro_f1_bit_for_bit():
    rng = np.random.default_rng(0)
    gt_sets, pred_sets = _sets(rng, ONTOLOGY, 300), _sets(rng, ONTOLOGY, 300)
    pred_sets[:50] = gt_sets[:50]  # equal sets, including both empty
    gt, pred = attribute_matrix(gt_sets, ONTOLOGY), attribute_matrix(pred_sets, ONTOLOGY)
    ours = fpeval_f1(gt, pred)
    for row in range(len(gt_sets)):
        # FPEval: f1_score(true, predict, average="macro") on the two 0/1 vectors.
        assert ours[row] == f1_score(gt[row].astype(int), pred[row].astype(int), average="macro")


def test_fpeval_f1_consequences_stated_in_metrics_md():
    gt = attribute_matrix([(), (), (1, 2, 3)], ONTOLOGY)
    pred = attribute_matrix([(), (1,), (1,)], ONTOLOGY)
    both_empty, empty_vs_one, three_vs_one = fpeval_f1(gt, pred)
    assert both_empty == 1.0
    assert empty_vs_one == pytest.approx(0.499, abs=1e-3) and empty_vs_one < 0.5
    assert three_vs_one == pytest.approx(0.748, abs=1e-3)


def test_set_f1():
    gt = attribute_matrix([(1, 2, 3), (1,), ()], ONTOLOGY)
    pred = attribute_matrix([(1,), (), ()], ONTOLOGY)
    np.testing.assert_array_equal(set_f1(gt, pred), [2 * 1 / (1 + 3), 0.0, 1.0])


def test_attribute_matrix_rows_follow_the_ontology_vector():
    matrix = attribute_matrix([(0, 340), ()], ONTOLOGY)
    assert matrix.shape == (2, ONTOLOGY.num_attributes)
    np.testing.assert_array_equal(matrix[0], ONTOLOGY.attributes_to_vector([0, 340]) > 0)
    assert not matrix[1].any()
