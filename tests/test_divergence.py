"""Divergence is detected from the loss, and a stream survives one bad batch."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, ContractiveAE, DenoisingAE, SparseAE


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:400]


@pytest.mark.parametrize("cls", [DenoisingAE, SparseAE, ContractiveAE])
def test_a_blown_up_fit_warns_and_keeps_its_best_weights(cls, X):
    sane = cls(n_components=8, max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sane.fit(X)
    est = cls(n_components=8, learning_rate=1e3, max_iter=10, random_state=0)
    with pytest.warns(RuntimeWarning, match="diverged|far above its best"):
        est.fit(X)
    # The kept weights are those of the best epoch, not of the blown-up end.
    assert est.score(X) > -10 * abs(sane.score(X))
    assert np.all(np.isfinite(est.transform(X)))


def test_a_stream_keeps_learning_after_one_bad_batch(X):
    est = AutoencoderTransformer(n_components=8, random_state=0)
    for _ in range(5):
        est.partial_fit(X)
    before = est.score(X)
    bad = X.copy()
    bad[3, 5] = 1e30  # finite, but overflows the float32 loss
    with pytest.warns(RuntimeWarning, match="epoch was undone"):
        est.partial_fit(bad)
    assert est.score(X) == before  # the bad call changed nothing
    for _ in range(5):
        est.partial_fit(X)
    assert est.score(X) > before  # Adam's moments stayed finite


def test_a_nan_weight_with_a_finite_loss_stops_the_fit(X):
    # A NaN written into one bias after the epoch's last loss is computed:
    # every recorded loss stays finite, only the weights show the divergence.
    est = AutoencoderTransformer(
        n_components=8,
        init="random",
        early_stopping=False,
        max_iter=10,
        batch_size=100,
        random_state=0,
    )
    make_objective = est._make_objective
    calls = []

    def poisoning_objective():
        objective = make_objective()
        forward = objective.forward

        def poisoned(module, *args, **kwargs):
            loss = forward(module, *args, **kwargs)
            calls.append(1)
            if len(calls) == 8:  # the last batch of epoch 2
                name, bias = list(module.named_parameters())[-1]
                assert name.endswith("bias")  # not saved for the backward pass
                with torch.no_grad():
                    bias[0] = float("nan")
            return loss

        objective.forward = poisoned
        return objective

    est._make_objective = poisoning_objective
    with pytest.warns(RuntimeWarning, match="diverged"):
        est.fit(X)
    assert est.n_iter_ == 2 and np.all(np.isfinite(est.loss_curve_))
    # The best weights (epoch 1's) are restored: all finite.
    assert all(bool(torch.isfinite(p).all()) for p in est.module_.parameters())


@pytest.mark.parametrize("kind", ["one-buffer", "per-dtype", "large"])
def test_weights_check_and_copy_match_the_plain_computation(kind, monkeypatch):
    from skae import _engine
    from skae._engine import _copy_weights, _Weights

    mixed = kind != "one-buffer"
    if kind == "large":
        monkeypatch.setattr(_engine, "FLAT_WEIGHTS_MAX", 10)

    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 3))
    module.append(torch.nn.Linear(3, 4))
    module[2].weight = module[0].weight  # tied: two state entries, one tensor
    if kind == "per-dtype":
        wide = torch.full((2,), 1e300, dtype=torch.float64)
        module.register_parameter("wide", torch.nn.Parameter(wide))
    weights = _Weights(module)
    assert (weights.buffers is None) == mixed
    assert weights.finite()  # 1e300 is no float32 overflow
    copy = weights.copy()
    assert copy.keys() == module.state_dict().keys()
    for key, value in _copy_weights(module).items():
        assert torch.equal(copy[key], value) and copy[key].dtype == value.dtype
    with torch.no_grad():
        module[1].weight.add_(1.0)
    assert not torch.equal(copy["1.weight"], module[1].weight)  # a snapshot
    assert weights.finite()
    again = weights.copy(staged=True)
    assert torch.equal(again["1.weight"], module[1].weight)
    assert torch.equal(copy["1.weight"], again["1.weight"]) == mixed
    for param in module.parameters():
        with torch.no_grad():
            saved = param.view(-1)[-1].item()
            param.view(-1)[-1] = float("inf")
            assert not weights.finite()
            param.view(-1)[-1] = saved
    assert weights.finite()
    module.load_state_dict(copy)  # restorable
    # Finite weights whose sum overflows float32 are finite.
    big = torch.nn.Linear(4, 4)
    with torch.no_grad():
        big.weight.fill_(3e38)
    assert _Weights(big).finite()
    with torch.no_grad():
        big.bias[0] = float("nan")
    assert not _Weights(big).finite()
    # Buffers may be replaced during training: copied through state_dict.
    normed = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    weights = _Weights(normed)
    assert not weights.fast and weights.copy() is not weights.copy()


def test_history_reads_are_skorchs():
    from skorch.history import History

    from skae._engine import _History

    rows = [{"batches": [{}], "train_loss": 1.0}, {"batches": [], "x": None}]
    fast, slow = _History(rows), History(rows)
    for key in [0, -1, (-1, "x"), (0, "train_loss"), (-1, "batches"), (0, "batches")]:
        assert fast[key] is slow[key] or fast[key] == slow[key]
    for key in [(-1, "train_loss"), (5, "x"), (0, "nope")]:
        with pytest.raises((KeyError, IndexError)) as expected:
            slow[key]
        with pytest.raises(expected.type):
            fast[key]
    assert fast[:, "train_loss"] == slow[:, "train_loss"]
