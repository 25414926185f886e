"""The training engine: a skorch ``NeuralNet`` fed with tensor slices.

This is the only module that imports skorch. skorch drives the loop (epochs,
callbacks, optimizer steps); skae replaces the two parts that make skorch slow
for small models: the per-sample ``Dataset``/``DataLoader`` (the data are
training rows of :mod:`skae._sources`, which batch themselves: slices of
tensors already on the training device) and the per-batch ``loss.item()`` host
synchronisation (losses are summed on the device and read once per epoch).

What the objective and the callbacks may rely on:

- before every training epoch the net calls ``objective.begin_epoch(epoch)``
  with the epoch's number (from 1) counted over the estimator's whole
  training (``epoch_offset`` + epochs of this net), for schedules such as a
  KL warm-up;
- after it, ``objective.epoch_statistics()`` is recorded in the history row
  of the epoch, where callbacks read it;
- batch events (``on_batch_begin``, ``on_batch_end``) reach the callbacks
  that override them; the history holds one row per epoch and no per-batch
  rows;
- :class:`TrainingMonitor` is configured per phase through ``configure``;
- a fit whose thread count follows the machine's load re-reads it between
  training steps (:func:`skae.utils._threads.follow_the_load`).
"""

import math
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.history import History

from skae.utils._threads import follow_the_load

_TORCH_VERSION = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])


class _History(History):
    """skorch's ``History`` with constant-time reads of one epoch's row.

    skorch resolves every index, ``history[-1]`` included (as in its own
    ``record`` and ``new_batch``), through a copy of the list of all epochs:
    a cost that grows with the epochs run, several times per epoch. An
    integer index, or an integer and a key the row holds, is answered from
    the row itself: the same object or value; anything else, errors
    included, goes through skorch's resolution.
    """

    def __getitem__(self, i):
        if type(i) is int:
            return list.__getitem__(self, i)
        if type(i) is tuple and len(i) == 2 and type(i[0]) is int:
            row = list.__getitem__(self, i[0])
            if type(i[1]) is str and i[1] in row:
                return row[i[1]]
        return super().__getitem__(i)


def _listens(callback, event):
    """Whether ``callback`` does something on ``event`` (not the base no-op)."""
    if event in vars(callback):
        return True
    return getattr(type(callback), event, None) is not getattr(Callback, event, None)


class FastNet(NeuralNet):
    """skorch net whose criterion is an objective ``criterion(module, X, training)``.

    ``X`` given to ``fit``/``partial_fit`` is a pair ``(X_train, X_valid)`` of
    tensors on the training device (``X_valid`` may be None).
    """

    def __init__(self, *args, shuffle=True, generator=None, epoch_offset=0, **kwargs):
        self.shuffle = shuffle
        self.generator = generator
        self.epoch_offset = epoch_offset
        self._mode_set = None
        self._listeners = (None, {})
        self._batch_listeners = (False, False)
        # The loss of the latest training epoch's first step, in a holder
        # set in place: skorch's ``__setattr__`` costs microseconds a call.
        self._first_step_loss = [None]
        super().__init__(*args, **kwargs)

    @property
    def first_step_loss_(self):
        """The (on-device) loss of the last training epoch's first step."""
        return self._first_step_loss[0]

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch's loop without what skae never uses (data checks, metadata
        # routing, a validation pass over no data), which it pays per epoch.
        self.check_training_readiness()
        epochs = self.max_epochs if epochs is None else epochs
        train, valid = X
        events = {"dataset_train": train, "dataset_valid": valid}
        iterator_train = self.get_iterator(train, training=True)
        iterator_valid = None if valid is None else self.get_iterator(valid)
        # The callbacks are fixed for the call: their handlers are looked up
        # once, not at every epoch (an epoch can be a single step).
        epoch_begin = [self.on_epoch_begin, *self._handlers("on_epoch_begin")]
        epoch_end = [self.on_epoch_end, *self._handlers("on_epoch_end")]
        self._batch_listeners = (
            bool(self._handlers("on_batch_begin")),
            bool(self._handlers("on_batch_end")),
        )
        for _ in range(epochs):
            for handler in epoch_begin:
                handler(self, **events)
            self.run_single_epoch(iterator_train, True, "train", self.train_step)
            if iterator_valid is not None:
                self.run_single_epoch(
                    iterator_valid, False, "valid", self.validation_step
                )
            for handler in epoch_end:
                handler(self, **events)
        return self

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        # skorch's row (an empty batch list and the epoch's number from 1),
        # appended without its generic ``record``.
        history = self.history
        list.append(history, {"batches": [], "epoch": len(history) + 1})

    def initialize_history(self):
        if self.history_ is None or type(self.history_) is History:
            self.history_ = _History()
        else:
            self.history_.clear()
        return self

    def notify(self, method_name, **cb_kwargs):
        # skorch calls every callback for every event, most of them the base
        # class's no-op: a visible share of an epoch that is a single step.
        # The net's own handler (the history's rows) always runs, then the
        # callbacks that override the event, in skorch's order.
        if method_name == "on_train_begin":
            self._listeners = (None, {})  # callbacks may have been replaced
        handlers = self._handlers(method_name)
        getattr(self, method_name)(self, **cb_kwargs)
        for handler in handlers:
            handler(self, **cb_kwargs)

    def _handlers(self, method_name):
        """The handlers of the callbacks that do something on ``method_name``."""
        callbacks, table = self._listeners
        if callbacks is not self.callbacks_:
            callbacks, table = self.callbacks_, {}
            self._listeners = (callbacks, table)
        handlers = table.get(method_name)
        if handlers is None:
            handlers = table[method_name] = [
                getattr(cb, method_name)
                for _, cb in callbacks
                if _listens(cb, method_name)
            ]
        return handlers

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        # skorch opens a row per batch in the history for per-batch scores;
        # skae records losses per epoch only, so the rows would stay empty.
        pass

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # Modes may have been changed since the last call (e.g. evaluation
        # between phases): the first step of this call sets them.
        self._mode_set = None
        super().on_train_begin(net, X=X, y=y, **kwargs)

    def get_default_callbacks(self):
        # Loss recording happens in run_single_epoch; no per-batch scoring.
        return []

    def get_split_datasets(self, X, y=None, **fit_params):
        return X

    def get_iterator(self, dataset, training=False):
        # Training rows (skae._sources) batch themselves.
        return dataset.batches(
            self.batch_size, shuffle=training and self.shuffle, generator=self.generator
        )

    def initialize(self):
        super().initialize()
        # skorch's generic step (a closure, a step accumulator, and a
        # generator of all parameters for ``on_grad_computed`` at every
        # batch) costs about a tenth of a small model's step; it is needed
        # only by a callback that listens to the gradients.
        self._generic_step = any(
            type(cb).on_grad_computed is not Callback.on_grad_computed
            for _, cb in self.callbacks_
        )
        return self

    def train_step(self, batch, **fit_params):
        if self._generic_step:
            return super().train_step(batch, **fit_params)
        # The same computation as skorch's: Adam never re-evaluates the
        # closure, and ``zero_grad`` sets the gradients to None either way.
        self.optimizer_.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        self.optimizer_.step()
        return step

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        # ``forward`` directly: objectives carry no hooks, and the module
        # call's hook dispatch is a visible share of a small model's step.
        loss = self.criterion_.forward(self.module_, batch, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": None}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            loss = self.criterion_.forward(self.module_, batch, training=False)
        return {"loss": loss, "y_pred": None}

    def _set_training(self, training=True):
        # skorch switches modes before every batch, walking every submodule;
        # within a call the mode changes only here (training, then validation
        # epochs), so switch only when it changes. A mode changed from
        # outside between epochs shows in the top-level flags: walk then.
        if self._mode_set is not training or not (
            getattr(self.module_, "training", training) is training
            and getattr(self.criterion_, "training", training) is training
        ):
            super()._set_training(training)
            self._mode_set = training

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        row = self.history[-1]
        if training:
            # The history already holds this epoch's row: epochs count from 1.
            self.criterion_.begin_epoch(self.epoch_offset + len(self.history))
        total = None
        n_seen = 0
        # Batch events go out only where a callback listens (looked up at
        # the start of the call): on a small data set an epoch is one step,
        # and two dispatches per step are a visible share of it.
        begin, end = self._batch_listeners
        for batch in iterator:
            if training:
                # One clock read per step; the load itself at most once a
                # second: an epoch can take seconds once another process
                # competes for a core.
                follow_the_load()
            if begin:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss = step["loss"].detach()
            n = len(batch)
            if total is None:
                if training:
                    # The loss at the weights the epoch starts from (read by
                    # TrainingMonitor once per phase, without a sync per
                    # epoch).
                    self._first_step_loss[0] = loss
                # The sum starts as the first batch's share: one kernel, and
                # the same value as adding it to a zero.
                total = loss * n
            else:
                total.add_(loss, alpha=n)  # one kernel, no temporary
            n_seen += n
            if end:
                self.notify("on_batch_end", batch=batch, training=training, **step)
        if total is None:
            total = torch.zeros((), device=self.device)
        row[prefix + "_loss"] = self.epoch_mean_loss(total, n_seen)
        if training:
            row.update(self.criterion_.epoch_statistics())

    def epoch_mean_loss(self, total, n_seen):
        """The epoch's mean loss from its on-device sum: one host
        synchronisation per epoch instead of one per batch."""
        return (total / max(n_seen, 1)).item()


def _copy_weights(module):
    """A copy of ``module``'s state dict: tensor clones, without
    ``copy.deepcopy``'s per-object bookkeeping."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


#: Parameters (elements) up to which :class:`_Weights` keeps two flat
#: copies of the weights; a larger model, whose epochs dwarf the check, is
#: checked tensor by tensor without any extra copy.
FLAT_WEIGHTS_MAX = 2**22


class _Weights:
    """The weights of one module during one training call: copies of the
    state for the best epoch, and the check that every parameter is finite.

    Taken at every improving epoch, a state-dict copy (a walk over every
    submodule and one clone per tensor) and one ``isfinite`` host
    synchronisation per parameter tensor are a visible share of an epoch
    that is a single step of a small model. When the module's state is its
    parameters, all of one dtype and device (skae's models), the check
    concatenates them into a preallocated flat buffer, and an improving epoch
    keeps that buffer as the copy: one concatenation, one reduction and one
    host synchronisation per epoch, and the state dict's tensors are views of
    the buffer (up to ``FLAT_WEIGHTS_MAX`` parameters). Other modules are
    checked per dtype (a large one tensor by tensor), copied tensor to tensor
    into tensors allocated once per call, and through ``state_dict`` when it
    holds more than the parameters (buffers may be replaced in training).
    """

    def __init__(self, module):
        self.module = module
        self.params = list(module.parameters())
        state = module.state_dict(keep_vars=True)
        self.names = list(state)
        self.sources = list(state.values())
        param_ids = {id(p) for p in self.params}
        state_ids = {id(v) for v in self.sources}
        # Copied tensor to tensor when the state holds parameters only.
        self.fast = state_ids <= param_ids
        self.store = self.targets = None
        contiguous = all(p.is_contiguous() for p in self.params)
        small = sum(p.numel() for p in self.params) <= FLAT_WEIGHTS_MAX
        kinds = {(p.dtype, p.device) for p in self.params}
        self.buffers = None
        if state_ids == param_ids and contiguous and small and len(kinds) == 1:
            ((dtype, device),) = kinds
            if dtype.is_floating_point:
                self._flat_buffers(dtype, device)
        # Flat views (Adam and restores update the parameters in place),
        # concatenated per dtype and device (a cast could overflow); a large
        # model's tensors one by one, without a concatenated copy.
        self.groups = None
        if self.buffers is None:
            groups = {}
            for p in self.params:
                if small and contiguous:
                    groups.setdefault((p.dtype, p.device), []).append(
                        p.detach().view(-1)
                    )
                else:
                    groups[len(groups)] = [p.detach()]
            self.groups = list(groups.values())

    def _flat_buffers(self, dtype, device):
        # One slot per state entry (a tied parameter has two): the state dict
        # of a buffer is views of it, in the module's order and shapes.
        self.views = [v.detach().view(-1) for v in self.sources]
        total = sum(v.numel() for v in self.views)
        self.buffers = []
        for _ in range(2):  # the best epoch's copy, and the one being checked
            flat = torch.empty(total, dtype=dtype, device=device)
            state, offset = {}, 0
            for name, view, source in zip(self.names, self.views, self.sources):
                state[name] = flat[offset : offset + view.numel()].view(source.shape)
                offset += view.numel()
            self.buffers.append((flat, state))

    def _stage(self):
        """The parameters, copied into the flat buffer that is not the best."""
        flat = self.buffers[1][0]
        torch.cat(self.views, out=flat)  # detached views: no graph
        return flat

    def copy(self, staged=False):
        """The module's state: a dict whose tensors no training step
        changes. ``staged``: the weights have not changed since
        :meth:`finite`, whose copy is then kept."""
        if self.buffers is not None:
            if not staged:
                self._stage()
            self.buffers.reverse()
            return self.buffers[0][1]
        if not self.fast:
            return _copy_weights(self.module)
        if self.store is None:
            self.store = {
                n: v.detach().clone() for n, v in zip(self.names, self.sources)
            }
            self.targets = list(self.store.values())
        else:
            with torch.no_grad():
                torch._foreach_copy_(self.targets, self.sources)
        return self.store

    def finite(self):
        """Whether every parameter is finite: one host synchronisation per
        dtype, or per tensor of a large model (two when a sum overflows).

        A finite sum has finite terms only (a NaN or an infinity never leaves
        a sum); a sum that is not finite may be an overflow of finite terms:
        then every term is checked.
        """
        if self.buffers is not None:
            flat = self._stage()
            return math.isfinite(flat.sum().item()) or bool(flat.isfinite().all())
        for group in self.groups:
            flat = torch.cat(group) if len(group) > 1 else group[0]
            if flat.is_complex() or not math.isfinite(flat.sum().item()):
                if not bool(flat.isfinite().all()):
                    return False
        return True


#: Divergence: the training loss exceeds its best by this many times the
#: loss's own scale (the largest of the magnitudes of the first mini-batch's
#: loss, at the starting weights, of the best epoch's loss and of the
#: ``loss_floor`` the fit gives: a start as good as PCA's can have a loss far
#: below the data's own scale, and a first Adam step that leaves it is no
#: divergence).
DIVERGENCE_RATIO = 100.0
#: A stopping phase that ends this far above its best training loss (same
#: scale) keeps its best weights instead of its last ones.
DEGRADATION_RATIO = 1.0


class TrainingMonitor(Callback):
    """Convergence, divergence and best-weights bookkeeping, once per epoch.

    Stops when ``monitor`` has not improved by more than ``tol`` times the
    loss at the start of the phase for ``patience`` consecutive epochs
    (scikit-learn's MLP rule, made unit-free), or as soon as
    the training loss is not finite or has blown up (``DIVERGENCE_RATIO``).
    Keeps a copy of the weights with the best ``monitor`` value, restored on
    divergence, on interruption, at the end when ``restore_best`` is true,
    and at the end of a stopping phase whose last training loss is far above
    its best (``DEGRADATION_RATIO``: reported as ``"degraded"``).

    Parameters
    ----------
    monitor : str, default="train_loss"
        The history key the stopping rule and the best weights follow.
    tol : float, default=1e-4
        Improvement needed, relative to the phase's first loss.
    patience : int or None, default=10
        Epochs without that improvement before stopping (None: never stop).
    restore_best : bool, default=False
        Whether the best weights replace the last ones at the end.
    loss_floor : float, default=0.0
        The loss of the best constant prediction of the training rows
        (:func:`skae._losses.constant_prediction_loss`). The blow-up and
        degradation tests compare losses with the largest of the first, the
        best and this one: a start that is already near the best reachable
        loss (a PCA start) must not make an ordinary fluctuation look like
        a divergence.

    Examples
    --------
    >>> from skae._engine import TrainingMonitor
    >>> TrainingMonitor(tol=1e-3, loss_floor=0.5).initialize().best_score_
    inf
    """

    def __init__(
        self,
        monitor="train_loss",
        tol=1e-4,
        patience=10,
        restore_best=False,
        loss_floor=0.0,
    ):
        self.monitor = monitor
        self.tol = tol
        self.patience = patience
        self.restore_best = restore_best
        self.loss_floor = loss_floor

    def configure(self, *, patience, restore_best):
        """Set the stopping rule for the next phase and forget the best state."""
        self.patience = patience
        self.restore_best = restore_best
        self.best_score_, self.best_state_, self.misses_ = math.inf, None, 0
        self.best_train_ = self.last_train_ = None
        self.initial_loss_ = None

    def restore(self, net):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)

    def initialize(self):
        self.best_score_ = math.inf
        self.best_state_ = None
        self.misses_ = 0
        self.stop_reason_ = None
        self.epochs_run_ = 0
        self.best_train_ = self.last_train_ = None
        self.initial_loss_ = None
        return self

    def _tol_scale(self):
        """``tol`` is relative to the loss at the start of the phase, so the
        stopping rule does not depend on the units of X (a model that starts
        from PCA starts at PCA's small residual)."""
        initial = self.initial_loss_
        if initial is None or not math.isfinite(initial) or initial == 0:
            return 1.0
        return abs(initial)

    def _loss_scale(self):
        initial = self.initial_loss_
        initial = abs(initial) if initial is not None and math.isfinite(initial) else 0
        return max(initial, abs(self.best_train_), self.loss_floor, 1e-12)

    def degraded(self):
        """Whether the last training loss is far above the best one."""
        if self.last_train_ is None or self.patience is None:
            return False
        excess = self.last_train_ - self.best_train_
        return excess > DEGRADATION_RATIO * self._loss_scale()

    def on_train_begin(self, net, **kwargs):
        # Continue the count across partial_fit calls but re-arm stopping.
        self.stop_reason_ = None
        self.misses_ = 0
        # This call's copies go to its own tensors: a snapshot of an earlier
        # call or phase is never overwritten.
        self.weights_ = _Weights(net.module_)
        if self.best_state_ is None:
            # A finite fallback even if the very first epoch diverges.
            self.best_state_ = self.weights_.copy()

    def on_epoch_end(self, net, **kwargs):
        self.epochs_run_ += 1
        if self.initial_loss_ is None:
            # One host synchronisation per phase: the loss of the phase's
            # first step, at its starting weights (before a too large step
            # can blow up the first epoch).
            first = getattr(net, "first_step_loss_", None)
            self.initial_loss_ = None if first is None else float(first)
        row = net.history[-1]
        train_loss = row["train_loss"]
        if not (math.isfinite(train_loss) and self.weights_.finite()):
            self.stop_reason_ = "diverged"
            raise KeyboardInterrupt
        if self.best_train_ is None:
            # Judge the first epoch against the starting weights' loss.
            initial = self.initial_loss_
            finite = initial is not None and math.isfinite(initial)
            self.best_train_ = initial if finite else train_loss
        self.last_train_ = train_loss
        if train_loss - self.best_train_ > DIVERGENCE_RATIO * self._loss_scale():
            self.stop_reason_ = "diverged"
            raise KeyboardInterrupt
        self.best_train_ = min(self.best_train_, train_loss)
        score = row[self.monitor]
        if score < self.best_score_ - self.tol * self._tol_scale():
            self.misses_ = 0
        else:
            self.misses_ += 1
        if score < self.best_score_:
            self.best_score_ = score
            # Unchanged since the finiteness check above.
            self.best_state_ = self.weights_.copy(staged=True)
        if self.patience is not None and self.misses_ >= self.patience:
            self.stop_reason_ = "converged"
            raise KeyboardInterrupt


class EpochProgress(Callback):
    """A tqdm bar over epochs showing the losses (``verbose > 0``)."""

    def __init__(self, total):
        self.total = total

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.total, unit="epoch", leave=True)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.bar_.set_postfix(
            {k: f"{row[k]:.4g}" for k in ("train_loss", "valid_loss") if k in row}
        )
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
        del self.bar_

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state


def build_net(
    module,
    objective,
    *,
    learning_rate,
    weight_decay,
    batch_size,
    shuffle,
    generator,
    device,
    tol,
    patience,
    monitor,
    restore_best,
    verbose,
    max_epochs,
    extra_callbacks=(),
    epoch_offset=0,
    loss_floor=0.0,
):
    """Create and initialize a :class:`FastNet` around ``module`` and ``objective``.

    Adam with the L2 penalty (``weight_decay``) on weight matrices only, as in
    the weight penalty :math:`\\frac{\\lambda}{2}\\sum w^2`; biases are not
    penalised. ``loss_floor`` is the smallest loss scale against which
    :class:`TrainingMonitor` judges divergence (see ``DIVERGENCE_RATIO``).
    """
    callbacks = [
        (
            "monitor",
            TrainingMonitor(monitor, tol, patience, restore_best, loss_floor),
        ),
    ]
    callbacks.extend(extra_callbacks)
    if verbose:
        callbacks.append(("progress", EpochProgress(max_epochs)))
    optimizer_kwargs = {}
    if weight_decay > 0:
        # Penalise weight matrices only; one param group is faster when unused.
        optimizer_kwargs["optimizer__param_groups"] = [
            ("*weight", {"weight_decay": weight_decay}),
            ("*bias", {"weight_decay": 0.0}),
        ]
    if device.type == "cuda" or _TORCH_VERSION >= (2, 4):
        # One fused kernel per step instead of one per parameter tensor (fused
        # Adam on the CPU arrived in torch 2.4).
        optimizer_kwargs["optimizer__fused"] = True
    net = FastNet(
        module,
        objective,
        optimizer=torch.optim.Adam,
        lr=learning_rate,
        batch_size=batch_size,
        max_epochs=max_epochs,
        train_split=None,
        callbacks=callbacks,
        device=device,
        shuffle=shuffle,
        generator=generator,
        epoch_offset=epoch_offset,
        **optimizer_kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net.initialize()
    return net


def optimizer_moments(net):
    """Adam's per-parameter state, keyed by the module's parameter names.

    Names, unlike the optimizer's own integer keys, do not depend on how the
    parameters are grouped (one group, or weights and biases apart when
    ``alpha > 0``), so the moments survive a change of ``alpha`` between
    ``partial_fit`` calls and are plain data for :func:`skae.save`.
    """
    state = net.optimizer_.state
    return {
        name: {k: v.detach().clone() for k, v in state[param].items()}
        for name, param in net.module_.named_parameters()
        if param in state
    }


def load_optimizer_moments(net, moments):
    """Give ``net``'s fresh optimizer the ``moments`` of an earlier one.

    The hyper-parameters (step size, weight decay) stay those the net was
    built with: a schedule applied between calls takes effect while Adam's
    moment estimates carry over.
    """
    optimizer = net.optimizer_
    for name, param in net.module_.named_parameters():
        if name in moments:
            optimizer.state[param] = {
                k: v.detach().clone().to(param.device) for k, v in moments[name].items()
            }


def run_epochs(net, X_train, X_valid, epochs):
    """Train ``net`` for up to ``epochs`` epochs; return why it stopped.

    Returns
    -------
    reason : {"converged", "diverged", "degraded", "interrupted", None}
        None means all ``epochs`` ran; ``"degraded"`` that they did but the
        last training loss was far above the best, whose weights were
        restored.
    """
    monitor = dict(net.callbacks_)["monitor"]
    before = monitor.epochs_run_
    net.partial_fit((X_train, X_valid), epochs=epochs)
    reason = monitor.stop_reason_
    if reason is None and monitor.epochs_run_ - before < epochs:
        # skorch swallows KeyboardInterrupt: it only shows up as missing epochs.
        reason = "interrupted"
    if reason in (None, "converged") and monitor.degraded():
        reason = "degraded"
    if reason in ("diverged", "degraded", "interrupted") or monitor.restore_best:
        monitor.restore(net)
    return reason
