"""The engine's lean training step computes what skorch's generic one does."""

import copy
import math

import pytest
import torch
from skorch.callbacks import Callback

from skae import _engine
from skae._losses import (
    constant_prediction_loss,
    mean_reconstruction_loss,
    reconstruction_loss,
)
from skae._objectives import ReconstructionObjective
from skae._sources import TensorRows
from skae._sparse import SparsityObjective
from skae._sparsity import SPARSITY_KINDS
from skae.nn import MLPAutoencoder


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_mean_loss_is_the_mean_of_the_per_sample_losses(loss):
    generator = torch.Generator().manual_seed(0)
    output = torch.randn(37, 11, generator=generator)
    target = torch.rand(37, 11, generator=generator)
    expected = reconstruction_loss(output, target, loss).mean()
    torch.testing.assert_close(mean_reconstruction_loss(output, target, loss), expected)


def test_constant_prediction_loss_is_the_loss_of_the_mean_row():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(50, 7, generator=generator, dtype=torch.float64)
    means = target.mean(dim=0, keepdim=True).expand_as(target)
    # MSE: the residual of PCA with no components, the mean feature variance.
    mse = constant_prediction_loss(target, "mse")
    assert mse == pytest.approx(float(target.var(dim=0, unbiased=False).mean()))
    assert mse == pytest.approx(float(reconstruction_loss(means, target, "mse").mean()))
    # BCE: the decoder's output is a logit; the means' logits give the entropy.
    bce = constant_prediction_loss(target, "bce")
    logits = torch.logit(means)
    expected = float(reconstruction_loss(logits, target, "bce").mean())
    assert bce == pytest.approx(expected)
    # A constant feature costs nothing: its entropy is zero even at 0 or 1.
    assert constant_prediction_loss(torch.zeros(4, 3), "bce") == 0.0


@pytest.mark.parametrize("floor, diverged", [(0.0, True), (1.0, False)])
def test_the_loss_floor_decides_whether_leaving_a_near_exact_start_diverges(
    floor, diverged
):
    monitor = _engine.TrainingMonitor(loss_floor=floor)
    monitor.initialize()
    # A start with loss 1e-6 on data whose mean row costs 1.0: a first epoch
    # at 1e-3 is a rise of 1000x the start, and only 0.1% of the data's scale.
    monitor.initial_loss_ = monitor.best_train_ = 1e-6
    rise = 1e-3 - monitor.best_train_
    assert (rise > _engine.DIVERGENCE_RATIO * monitor._loss_scale()) is diverged
    # A loss of 1000x the data's scale is a blow-up with or without a floor.
    assert 1e3 > _engine.DIVERGENCE_RATIO * monitor._loss_scale()


class GradientCounter(Callback):
    """Listens to the gradients: the net must then take skorch's own step."""

    def initialize(self):
        self.calls_ = 0
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        assert all(p.grad is not None for _, p in named_parameters)
        self.calls_ += 1


def _train(module, rows, extra_callbacks):
    net = _engine.build_net(
        module,
        ReconstructionObjective("mse"),
        learning_rate=1e-2,
        weight_decay=1e-3,  # two parameter groups, as with alpha > 0
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
        device=torch.device("cpu"),
        tol=0.0,
        patience=10,
        monitor="train_loss",
        restore_best=False,
        verbose=0,
        max_epochs=3,
        extra_callbacks=extra_callbacks,
    )
    _engine.run_epochs(net, rows, None, 3)
    return net


def _train_without_and_with(name, callback):
    """The same start trained without and with one extra callback: (start,
    net without, net with)."""
    torch.manual_seed(0)
    start = MLPAutoencoder(6, 2, (5,))
    rows = TensorRows(torch.randn(70, 6, generator=torch.Generator().manual_seed(2)))
    without = _train(copy.deepcopy(start), rows, [])
    return start, without, _train(copy.deepcopy(start), rows, [(name, callback)])


def test_lean_step_trains_exactly_like_skorchs_generic_step():
    counter = GradientCounter()
    start, lean, generic = _train_without_and_with("grads", counter)
    assert not lean._generic_step and generic._generic_step
    assert counter.calls_ == 3 * 5  # every batch (70 rows / 16) of every epoch
    for a, b in zip(lean.module_.parameters(), generic.module_.parameters()):
        assert torch.equal(a, b)
    assert lean.history[:, "train_loss"] == generic.history[:, "train_loss"]
    # Training moved the weights: the comparison is not between two starts.
    moved = [
        not torch.equal(a, b)
        for a, b in zip(start.parameters(), lean.module_.parameters())
    ]
    assert any(moved)


class BatchCounter(Callback):
    """Listens to the batch events, which the net then dispatches."""

    def initialize(self):
        self.begun_, self.ended_ = 0, []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        self.begun_ += 1

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        self.ended_.append(float(loss))


def test_batch_events_reach_the_callbacks_that_listen_and_change_nothing():
    counter = BatchCounter()
    _, quiet, listened = _train_without_and_with("batches", counter)
    assert counter.begun_ == len(counter.ended_) == 3 * 5
    assert quiet.history[:, "train_loss"] == listened.history[:, "train_loss"]
    # The phase's starting loss, judged against by the monitor, is the loss
    # of its first step, read once, whether or not the batches are listened to.
    for net in (quiet, listened):
        assert dict(net.callbacks_)["monitor"].initial_loss_ == counter.ended_[0]


@pytest.mark.parametrize("track", [True, False])
def test_sparsity_objective_records_firing_only_when_asked(track):
    objective = SparsityObjective("mse", SPARSITY_KINDS["l1"], 0.01, 0.05, track)
    module = MLPAutoencoder(4, 3, (), code_activation="relu")
    objective(module, torch.randn(8, 4), training=True)
    statistics = objective.epoch_statistics()
    assert ("fired_units" in statistics) is track
    if track:
        assert statistics["fired_units"].shape == (3,)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_pass_in_one_batch_gives_the_rows_the_general_pass_gives(shuffle):
    # Rows that fit in one batch take a path without a generator (an epoch
    # of a small data set is this one step): same rows, same order, same
    # draws from the generator.
    rows = TensorRows(torch.randn(7, 3, generator=torch.Generator().manual_seed(0)))
    one = list(rows.batches(8, shuffle, torch.Generator().manual_seed(1)))
    general = list(rows._iter_batches(8, shuffle, torch.Generator().manual_seed(1)))
    assert len(one) == len(general) == 1
    assert torch.equal(one[0], general[0])
    if shuffle:
        assert not torch.equal(one[0], rows.X)  # the rows were shuffled
    # A pass can be iterated again, each time with the generator's next draw.
    generator = torch.Generator().manual_seed(1)
    passes = rows.batches(7, shuffle, generator)
    first, second = list(passes), list(passes)
    assert torch.equal(first[0], one[0])
    assert torch.equal(second[0], first[0]) is not shuffle


def test_history_rows_number_the_epochs_across_calls():
    # The net appends skorch's row itself (an empty batch list and the
    # epoch's number from 1): a second call goes on counting.
    torch.manual_seed(0)
    rows = TensorRows(torch.randn(40, 6, generator=torch.Generator().manual_seed(2)))
    net = _train(MLPAutoencoder(6, 2, (5,)), rows, [])
    _engine.run_epochs(net, rows, None, 2)
    assert net.history[:, "epoch"] == [1, 2, 3, 4, 5]
    assert all(row["batches"] == [] for row in net.history)
    assert all(math.isfinite(loss) for loss in net.history[:, "train_loss"])
