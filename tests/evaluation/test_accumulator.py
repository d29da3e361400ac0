"""Images scored a few at a time (`Accumulator`) give exactly the numbers of one call on all."""
import numpy as np
import pytest

from pipeline.scoring.evaluator import Accumulator, evaluate
from pipeline.scoring.predictions import predictions_table

from random_cases import ONTOLOGY, random_case


def _chunked(records, table, bounds, order):
    """Accumulators over images `order` split at `bounds`, each chunk re-indexed as a reader would."""
    parts = []
    for begin, end in zip(bounds[:-1], bounds[1:]):
        images = np.sort(order[begin:end])
        accumulator = Accumulator(ONTOLOGY)
        rows = np.flatnonzero(np.isin(table.image, images))
        accumulator.add([records[i] for i in images], table.of_images(images), image_index=images, position=rows)
        parts.append(accumulator)
    return Accumulator.merge(parts).result()


@pytest.mark.parametrize("seed", range(8))
def test_chunks_in_any_order_equal_one_call(seed):
    records, frame = random_case(seed, ONTOLOGY, images=12)
    table = predictions_table(frame, records, ONTOLOGY)
    whole = evaluate(records, table, ONTOLOGY)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    bounds = np.r_[0, np.sort(rng.choice(np.arange(1, len(records)), 3, replace=False)), len(records)]
    chunked = _chunked(records, table, bounds, order)
    got, expected = chunked.metrics(), whole.metrics()
    # The Kaggle score sums its (image, class) groups chunk by chunk: the last bit may differ.
    assert got.pop("kaggle") == pytest.approx(expected.pop("kaggle"), abs=1e-12)
    assert got == expected
    for area in ("all", "small", "medium", "large"):
        assert np.array_equal(chunked.iou_precision[area], whole.iou_precision[area])
        assert np.array_equal(chunked.f1_precision[area], whole.f1_precision[area])


def test_a_sorted_file_read_in_chunks_scores_as_the_whole_frame(tmp_path):
    from pipeline.errors import InputError
    from pipeline.scoring.predictions import chunked_tables, in_image_id_order

    records, frame = random_case(3, ONTOLOGY, images=12)
    # Some ground-truth images without any prediction, at the start, middle and end.
    kept = ~frame.ImageId.isin([records[i].image_id for i in (0, 5, 11)])
    frame = frame[kept].sort_values("ImageId", kind="stable").reset_index(drop=True)
    frame.to_csv(tmp_path / "pred.csv", index=False)
    whole = evaluate(records, predictions_table(frame, records, ONTOLOGY), ONTOLOGY).metrics()
    accumulator = Accumulator(ONTOLOGY)
    seen = []
    for images, chunk, _, table in chunked_tables(tmp_path / "pred.csv", in_image_id_order(records), ONTOLOGY,
                                                  chunk_images=4):
        accumulator.add(chunk, table, image_index=images, position=table.line)
        seen += images.tolist()
    assert sorted(seen) == list(range(len(records)))
    got = accumulator.result().metrics()
    assert got.pop("kaggle") == pytest.approx(whole.pop("kaggle"), abs=1e-12)
    assert got == whole
    frame.iloc[:3].assign(ImageId="zz").to_csv(tmp_path / "unknown.csv", index=False)
    with pytest.raises(InputError, match="unknown.csv:2: image zz is not in the ground truth"):
        list(chunked_tables(tmp_path / "unknown.csv", in_image_id_order(records), ONTOLOGY))
