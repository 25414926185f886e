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

import os
import warnings

import torch
import torch.distributed as dist
from sklearn import config_context

from skae import _engine
from skae._sources import shard_bounds

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

    def epoch_mean_loss(self, total, n_seen):
        # One synchronisation per epoch: every rank gets the global mean.
        sums = torch.stack([total.double(), total.new_tensor(n_seen).double()])
        dist.all_reduce(sums)
        return (sums[0] / sums[1].clamp(min=1)).item()


class ProcessGroup:
    """What the training template needs from a ``torch.distributed`` job.

    :meth:`skae._base.BaseAutoencoder._fit` asks it for this process's
    device, for rank 0's seed, for this process's shard of the rows (through
    ``rank`` and ``world_size``), to wrap the net in
    :class:`DistributedNet`, and to check that every process ends with the
    same weights. Everything else is the single-process template.
    """

    def __init__(self, rank, world_size):
        self.rank = rank
        self.world_size = world_size

    def check_supported(self, estimator):
        if getattr(estimator, "pretraining", None) == "layerwise":
            raise ValueError(
                "pretraining='layerwise' is not supported by fit_distributed: each "
                "process would pretrain on its own shard. Use pretraining=None."
            )

    def device(self, device):
        if device.type == "cuda":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return device

    def broadcast(self, value):
        """Rank 0's ``value`` everywhere: identical initialization."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, net):
        """Rebuild the configured net as a :class:`DistributedNet`."""
        dnet = DistributedNet(**net.get_params(deep=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dnet.initialize()
        return dnet.wrap()

    def check_same_weights(self, module):
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
                "process separately (e.g. SparseAE(resample_dead=True)). Disable "
                "it for distributed training."
            )


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
    estimator._validate_params()
    group = ProcessGroup(dist.get_rank(), dist.get_world_size())
    with config_context(skip_parameter_validation=True):
        return estimator._fit(X, incremental=False, group=group)
