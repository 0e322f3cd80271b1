import numpy as np

from graceful.data import load_digits


def test_digits_split() -> None:
    s = load_digits(seed=0)
    assert s.train.x.shape == (1077, 1, 8, 8)
    assert (len(s.val), len(s.test)) == (360, 360)
    assert s.train.x.dtype == np.float32 and s.train.y.dtype == np.int64
    assert s.train.x.min() >= 0.0 and s.train.x.max() == 1.0
    assert s.classes == [str(d) for d in range(10)]
    ids = np.concatenate([s.train.ids, s.val.ids, s.test.ids])
    assert np.array_equal(np.sort(ids), np.arange(1797))
    # stratified: every class holds 20 % of its samples in the test part, give or take one
    full = np.bincount(np.concatenate([s.train.y, s.val.y, s.test.y]))
    assert np.all(np.abs(np.bincount(s.test.y) - full * 360 / 1797) < 1 + 1e-9)


def test_digits_seeded() -> None:
    a = load_digits(seed=1)
    b = load_digits(seed=1)
    c = load_digits(seed=2)
    assert np.array_equal(a.test.ids, b.test.ids) and np.array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.test.ids, c.test.ids)
    # the image of an id does not depend on the split
    by_id = {int(i): x for p in (c.train, c.val, c.test) for i, x in zip(p.ids, p.x, strict=True)}
    assert all(np.array_equal(x, by_id[int(i)]) for i, x in zip(a.test.ids, a.test.x, strict=True))


def test_digits_sizes() -> None:
    s = load_digits(seed=0, val_size=0, test_size=797)
    assert (len(s.train), len(s.val), len(s.test)) == (1000, 0, 797)
