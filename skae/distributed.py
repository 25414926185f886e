"""Data-parallel training of skae estimators with ``torch.distributed``.

Launch one process per device with ``torchrun`` and call :func:`fit_distributed`
in each; every process trains the same model on its own contiguous shard of the
rows, and :class:`~torch.nn.parallel.DistributedDataParallel` averages the
gradients of every step across processes (NCCL on GPUs, gloo on CPUs). skorch
still drives the epochs; the result on every rank is a normal fitted estimator
(save it from rank 0 with :func:`skae.save` or pickle)::

    # train.py, run with: torchrun --nproc_per_node=2 train.py
    import numpy as np, skae, torch.distributed as dist
    from skae import AutoencoderTransformer
    from skae.distributed import fit_distributed, init_process_group

    init_process_group()          # reads torchrun's RANK, WORLD_SIZE, MASTER_*
    X = np.load("X.npy", mmap_mode="r")  # every rank opens the full data
    est = fit_distributed(AutoencoderTransformer(random_state=0), X)
    if dist.get_rank() == 0:
        skae.save(est, "model.skae")
    dist.destroy_process_group()

One step of ``W`` processes with ``batch_size=b`` each is one step on the
``W * b`` rows they hold together: the averaged gradient of the mean loss is the
gradient of the mean loss over the union. Set ``batch_size`` to the global
batch divided by the number of processes to keep the single-process dynamics.
"""

import math
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import validate_data

from skae import _engine
from skae.utils._device import resolve_device

__all__ = ["fit_distributed", "init_process_group", "shard_bounds"]


def init_process_group(backend=None, **kwargs):
    """Join the process group described by torchrun's environment variables.

    Does nothing when a group already exists. With ``backend=None``, uses
    ``"nccl"`` when CUDA is available (each process then owns the GPU
    ``LOCAL_RANK``) and ``"gloo"`` otherwise.

    Parameters
    ----------
    backend : {"nccl", "gloo"} or None, default=None
    **kwargs
        Passed to :func:`torch.distributed.init_process_group` (e.g. ``timeout``).

    Returns
    -------
    rank, world_size : int
    """
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend, **kwargs)
    return dist.get_rank(), dist.get_world_size()


def shard_bounds(n_samples, rank, world_size):
    """Rows ``[start, stop)`` of the contiguous shard of ``rank``.

    Every shard has ``ceil(n_samples / world_size)`` rows, so that every
    process runs the same number of steps; ``stop`` may pass ``n_samples``,
    the missing rows being taken again from the start (as
    :class:`torch.utils.data.DistributedSampler` pads).
    """
    size = math.ceil(n_samples / world_size)
    return rank * size, (rank + 1) * size


def _shard(X, rank, world_size):
    start, stop = shard_bounds(X.shape[0], rank, world_size)
    if stop <= X.shape[0]:
        return X[start:stop]  # a slice of an np.memmap stays out-of-core
    return X[np.arange(start, stop) % X.shape[0]]


class _ObjectiveModule(torch.nn.Module):
    """``forward(x)`` = the training loss, so DDP sees the whole step."""

    def __init__(self, module, objective):
        super().__init__()
        self.module = module
        self.objective = objective

    def forward(self, x):
        return self.objective(self.module, x, training=True)


class DistributedNet(_engine.FastNet):
    """A :class:`~skae._engine.FastNet` whose training steps run through
    :class:`~torch.nn.parallel.DistributedDataParallel` and whose epoch losses
    are averaged over all processes (so every rank takes the same stopping
    decisions)."""

    def wrap(self):
        device_ids = (
            [self.module_device.index] if self.module_device.type == "cuda" else None
        )
        # Plain attribute: skorch would otherwise register the wrapper as a
        # second copy of the module. DDP broadcasts rank 0's weights here.
        object.__setattr__(
            self,
            "ddp_module_",
            torch.nn.parallel.DistributedDataParallel(
                _ObjectiveModule(self.module_, self.criterion_), device_ids=device_ids
            ),
        )
        return self

    @property
    def module_device(self):
        return next(self.module_.parameters()).device

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        loss = self.ddp_module_(batch)
        loss.backward()  # DDP all-reduces (averages) the gradients here
        return {"loss": loss, "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        n_seen = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            total += step["loss"].detach().double() * len(batch)
            n_seen += len(batch)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        sums = torch.stack([total, total.new_tensor(n_seen)])
        dist.all_reduce(sums)  # one synchronisation per epoch
        self.history.record(prefix + "_loss", (sums[0] / sums[1].clamp(min=1)).item())


def _as_distributed(net):
    """Rebuild the estimator's configured net as a :class:`DistributedNet`."""
    dnet = DistributedNet(**net.get_params(deep=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dnet.initialize()
    return dnet.wrap()


def _check_same_weights(module):
    """Raise if the ranks' weights differ (a per-rank change DDP cannot see)."""
    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    same = torch.tensor([float(torch.equal(flat, reference))], device=flat.device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    if not same.item():
        raise RuntimeError(
            "fit_distributed: the processes ended with different weights; a "
            "callback changed the weights outside the gradient step on each "
            "process separately (e.g. SparseAE(resample_dead=True)). Disable it "
            "for distributed training."
        )


@_fit_context(prefer_skip_nested_validation=True)
def _fit(estimator, X, rank, world_size):
    X_input = X
    X = validate_data(estimator, X, dtype=[np.float64, np.float32])
    estimator._validate_model_params(X.shape[1])
    if getattr(estimator, "pretraining", None) == "layerwise":
        raise ValueError(
            "pretraining='layerwise' is not supported by fit_distributed: each "
            "process would pretrain on its own shard. Use pretraining=None."
        )
    device = resolve_device(estimator.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    estimator.device_ = device
    estimator.__dict__.pop("validation_loss_curve_", None)
    # Rank 0's seed everywhere: identical initialization and scaling.
    seed = [estimator._gen_seed()]
    dist.broadcast_object_list(seed, src=0)
    seed = seed[0]
    with estimator._seed_context(seed):
        # Statistics from all rows: the same scaling as a single-process fit.
        estimator._start_training(X, seed)
        source = X_input if isinstance(X_input, np.memmap) else X
        data = estimator._training_data(_shard(source, rank, world_size))
        X_train, X_valid = estimator._split_validation(
            data, torch.Generator().manual_seed(seed + 2 + rank)
        )
        monitor = "train_loss" if X_valid is None else "valid_loss"
        net = estimator._make_net(
            len(X_train), seed + rank, estimator.max_iter, monitor
        )
        net = _as_distributed(net)
        reason = estimator._fit_loop(net, X_train, X_valid)
    _check_same_weights(estimator.module_)
    # The distributed net cannot continue outside the process group:
    # a later partial_fit starts a fresh optimizer.
    estimator.__dict__.pop("_net", None)
    if reason is None:
        warnings.warn(
            f"{type(estimator).__name__}: max_iter={estimator.max_iter} epochs "
            "reached and the optimization has not converged yet.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return estimator


def fit_distributed(estimator, X, y=None, *, backend=None):
    """Fit ``estimator`` data-parallel across the processes of a torchrun job.

    Call it in every process with the same ``X`` (e.g. the same
    ``np.load(..., mmap_mode="r")``: each process reads only its shard's rows,
    plus one pass for the scaling statistics). Process ``r`` of ``W`` trains on
    the contiguous rows ``shard_bounds(len(X), r, W)``; the module is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel`, which starts every
    process from rank 0's weights and averages the gradients of every step.
    Epoch losses are averaged over processes, so all of them stop together.
    Without a process group or torchrun environment (``WORLD_SIZE`` unset) this
    is ``estimator.fit(X)``.

    Parameters
    ----------
    estimator : BaseAutoencoder
        An unfitted or fitted skae autoencoder (it is refitted). ``batch_size``
        is per process: the global batch is ``W * batch_size``.
        ``pretraining="layerwise"`` is not supported.
    X : array-like of shape (n_samples, n_features)
        All the training rows, the same in every process.
    y : Ignored
    backend : {"nccl", "gloo"} or None, default=None
        Used when the process group does not exist yet (see
        :func:`init_process_group`).

    Returns
    -------
    estimator : BaseAutoencoder
        The fitted estimator, identical in every process: a normal estimator
        (``skae.save``, pickle, ``transform`` work in a plain process).
    """
    if not dist.is_initialized():
        if (
            int(os.environ.get("WORLD_SIZE", "1")) == 1
            and "MASTER_ADDR" not in os.environ
        ):
            return estimator.fit(X)
        init_process_group(backend)
    return _fit(estimator, X, dist.get_rank(), dist.get_world_size())
