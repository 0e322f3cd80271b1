import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.retrieval import asymmetric_metrics, retrieval_metrics


def test_rows_equal_retrieval_metrics_and_criterion():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    large = rng.normal(size=(60, 8)) + 2 * np.eye(8)[labels]
    small = large + rng.normal(scale=0.8, size=(60, 8))
    independent = rng.normal(size=(60, 8))
    table = asymmetric_metrics(small, large, labels, independent=independent, top_k=(1, 3))
    assert table[["query", "gallery"]].values.tolist() == [
        ["small", "large"],
        ["small", "small"],
        ["large", "large"],
        ["independent", "large"],
        ["independent", "independent"],
    ]
    models = {"small": small, "large": large, "independent": independent}
    for row in table.itertuples(index=False):
        expected = retrieval_metrics(
            models[row.query], labels, models[row.gallery], labels, top_k=(1, 3)
        )
        assert (row.top1, row.top3, row.map) == (
            expected["top1"],
            expected["top3"],
            expected["map"],
        )
    by = {(r.query, r.gallery): r for r in table.itertuples(index=False)}
    assert by[("small", "large")].compatible == (
        by[("small", "large")].top1 > by[("small", "small")].top1
    )
    assert pd.isna(by[("large", "large")].compatible)


def test_bad_input_names_the_argument():
    x = np.zeros((4, 2))
    with pytest.raises(InputError, match="top_k"):
        asymmetric_metrics(x, x, np.array([0, 0, 1, 1]), top_k=0)
    with pytest.raises(InputError):
        asymmetric_metrics(x, np.zeros((4, 3)), np.array([0, 0, 1, 1]), top_k=1)
