import random
from pathlib import Path

import numpy as np
import pytest

from benchmarks.data import load_mnist1d
from graceful.errors import InputError


def test_generated_split_and_global_rng_untouched(tmp_path: Path) -> None:
    pytest.importorskip("mnist1d")
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    s = load_mnist1d(seed=0, cache_dir=tmp_path, num_samples=200, val_size=20)
    assert (random.random(), np.random.random()) == expected
    assert s.train.x.shape == (140, 40) and (len(s.val), len(s.test)) == (20, 40)
    assert np.bincount(s.val.y, minlength=10).tolist() == [2] * 10
    again = load_mnist1d(seed=0, cache_dir=tmp_path, num_samples=200, val_size=20)
    assert np.array_equal(again.test.x, s.test.x)
    other = load_mnist1d(seed=1, cache_dir=tmp_path, num_samples=200, val_size=20)
    assert not np.array_equal(other.test.x, s.test.x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num_samples": 15}, "`num_samples`"), ({"val_size": 5000}, "`val_size`")],
)
def test_bad_sizes(tmp_path: Path, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_mnist1d(cache_dir=tmp_path, **kwargs)
