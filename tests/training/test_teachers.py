import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from graceful.errors import InputError
from graceful.training import CachedTeacher, EnsembleTeacher, OnlineTeacher, Teacher

N, D, C = 37, 6, 4


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, C))


def _data(ids: torch.Tensor) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    y = torch.randint(0, C, (N,), generator=g)
    return TensorDataset(x, y, ids)


SPARSE_IDS = 1000 + 3 * torch.randperm(N, generator=torch.Generator().manual_seed(1))
DENSE_IDS = torch.randperm(N, generator=torch.Generator().manual_seed(2))
SCATTERED_IDS = 10**6 * torch.randperm(N, generator=torch.Generator().manual_seed(4))
"""Sparse ids span 3N: a position table; scattered ones 10^6 N: a binary search."""
ID_SETS = [SPARSE_IDS, DENSE_IDS, SCATTERED_IDS]
ID_NAMES = ["sparse", "dense", "scattered"]


@pytest.mark.parametrize("ids", ID_SETS, ids=ID_NAMES)
def test_cached_equals_online(ids):
    model = _model(0).train()
    data = _data(ids)
    cached = CachedTeacher.build(model, data, batch_size=N)
    assert model.training  # build restores the mode
    online = OnlineTeacher(model)
    assert not model.training
    assert cached._dense == (ids is DENSE_IDS)
    assert (cached._positions is not None) == (ids is SPARSE_IDS)
    x, _, batch_ids = data.tensors
    order = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    for rows in order.split(10):
        got = cached(x[rows], batch_ids[rows])
        want = online(x[rows], batch_ids[rows])
        assert got.dtype == torch.float32 and not got.requires_grad
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    # one pass over the whole set in the build's batching: bitwise equal
    assert torch.equal(cached(x, batch_ids), online(x, batch_ids))
    assert isinstance(cached, Teacher) and isinstance(online, Teacher)


def test_online_teacher_is_detached_under_grad():
    model = _model(0)
    x = torch.randn(3, D, requires_grad=True)
    out = OnlineTeacher(model)(x, torch.arange(3))
    assert not out.requires_grad
    model.train()  # switched back by someone: the teacher still runs in eval mode
    assert torch.equal(OnlineTeacher(model)(x, torch.arange(3)), out)


@pytest.mark.parametrize("ids", ID_SETS, ids=ID_NAMES)
def test_missing_id_names_it(ids):
    cached = CachedTeacher.build(_model(0), _data(ids))
    absent = int(ids.max()) + 1
    with pytest.raises(InputError, match=f"id {absent} is missing"):
        cached(torch.zeros(2, D), torch.tensor([int(ids[0]), absent]))
    with pytest.raises(InputError, match="id -1 is missing"):
        cached(torch.zeros(1, D), torch.tensor([-1]))
    if ids is not DENSE_IDS:  # a gap between cached ids
        gap = int(ids.min()) + 1
        with pytest.raises(InputError, match=f"id {gap} is missing"):
            cached(torch.zeros(2, D), torch.tensor([int(ids[0]), gap]))
    assert cached(torch.zeros(0, D), torch.zeros(0, dtype=torch.int64)).shape == (0, C)


def test_save_load_round_trip(tmp_path):
    cached = CachedTeacher.build(_model(0), _data(SPARSE_IDS))
    path = tmp_path / "teacher.pt"
    cached.save(path)
    loaded = CachedTeacher.load(path)
    assert torch.equal(loaded.ids, cached.ids)
    assert torch.equal(loaded.logits, cached.logits)
    assert loaded.num_classes == C and len(loaded) == N
    x = torch.zeros(5, D)
    assert torch.equal(loaded(x, SPARSE_IDS[:5]), cached(x, SPARSE_IDS[:5]))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_tampered_file_names_it(tmp_path):
    path = tmp_path / "teacher.pt"
    CachedTeacher(torch.arange(4), torch.randn(4, 3)).save(path)
    payload = torch.load(path, weights_only=True)
    payload["logits"][2, 1] += 1.0
    torch.save(payload, path)
    with pytest.raises(InputError, match=r"teacher\.pt.*checksum"):
        CachedTeacher.load(path)


@pytest.mark.parametrize("content", [b"", b"not a torch file", None])
def test_unreadable_file_names_it(tmp_path, content):
    path = tmp_path / "broken.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=r"broken\.pt") as info:
        CachedTeacher.load(path)
    assert "\n" not in str(info.value)


def test_foreign_file_names_it(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(InputError, match=r"other\.pt"):
        CachedTeacher.load(path)


def test_bad_tables():
    with pytest.raises(InputError, match="id 3 repeats"):
        CachedTeacher(torch.tensor([3, 1, 3]), torch.zeros(3, 2))
    with pytest.raises(InputError, match="`logits`"):
        CachedTeacher(torch.arange(3), torch.zeros(2, 2))
    with pytest.raises(InputError, match="`ids`"):
        CachedTeacher(torch.zeros(3), torch.zeros(3, 2))
    with pytest.raises(InputError, match="`ids`"):
        CachedTeacher(torch.zeros(0, dtype=torch.long), torch.zeros(0, 2))
    duplicated = _data(torch.zeros(N, dtype=torch.long))
    with pytest.raises(InputError, match=r"`dataset`.*repeats"):
        CachedTeacher.build(_model(0), duplicated)
    with pytest.raises(InputError, match="`dataset`"):
        CachedTeacher.build(_model(0), TensorDataset(torch.zeros(3, D), torch.zeros(3)))
    with pytest.raises(InputError, match="`batch_size`"):
        CachedTeacher.build(_model(0), _data(DENSE_IDS), batch_size=0)


def test_ensemble_is_the_mean_of_members():
    a, b = _model(0), _model(1)
    data = _data(DENSE_IDS)
    cached_b = CachedTeacher.build(b, data)
    x, _, ids = data.tensors
    ensemble = EnsembleTeacher([a, cached_b])
    want = (OnlineTeacher(a)(x, ids) + cached_b(x, ids)) / 2
    torch.testing.assert_close(ensemble(x, ids), want, rtol=0, atol=1e-6)
    assert isinstance(ensemble.members[0], OnlineTeacher)
    single = EnsembleTeacher([cached_b])
    assert torch.equal(single(x, ids), cached_b(x, ids))


def test_ensemble_rejects_bad_members():
    with pytest.raises(InputError, match="`members`"):
        EnsembleTeacher([])
    with pytest.raises(InputError, match="`members`"):
        EnsembleTeacher(_model(0))
    with pytest.raises(InputError, match=r"`members\[1\]`"):
        EnsembleTeacher([_model(0), 3])
    other = CachedTeacher(torch.arange(N), torch.zeros(N, C + 1))
    with pytest.raises(InputError, match="one shape"):
        EnsembleTeacher([_model(0), other])(torch.zeros(2, D), torch.arange(2))


def test_online_teacher_of_an_embedding_model_gives_its_logits():
    from graceful.embedding import WithEmbedding
    from graceful.models import SmallCNN

    torch.manual_seed(0)
    net = SmallCNN(width=2, embedding_dim=4)
    x = torch.rand(3, 1, 8, 8)
    out = OnlineTeacher(WithEmbedding(net))(x, torch.arange(3))
    torch.testing.assert_close(out, net.eval()(x))
