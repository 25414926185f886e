"""Data-parallel training of an skae autoencoder with torchrun (DDP).

Run with::

    torchrun --nproc_per_node=2 examples/train_torchrun.py

Each process opens the same data (memory-mapped: it reads only its own rows
and one pass for the scaling), trains on its contiguous shard, and
DistributedDataParallel averages the gradients of every step (gloo on CPUs,
NCCL when every process has a GPU). Rank 0 saves the fitted estimator, which
then loads in a plain Python process as a normal fitted estimator. On several
machines, run the same command on each with ``--nnodes``, ``--node_rank`` and
``--master_addr``/``--master_port`` (or ``--rdzv_endpoint``).

This script is not named ``plot_*.py``: the documentation gallery does not run it.
"""

import os
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import AutoencoderTransformer
from skae.distributed import fit_distributed, init_process_group

torch.set_num_threads(1)  # one core per process
rank, world_size = init_process_group()  # gloo on CPU, NCCL with GPUs

# Rank 0 writes the data set once; every rank then memory-maps all of it.
path = os.path.join(tempfile.gettempdir(), "skae_torchrun_X.npy")
if rank == 0:
    rng = np.random.RandomState(0)
    latent = rng.randn(20_000, 4)
    X = np.tanh(latent @ rng.randn(4, 32)) + 0.05 * rng.randn(20_000, 32)
    np.save(path, X)
dist.barrier()
X = np.load(path, mmap_mode="r")

# batch_size is per process: the global batch is world_size * 128 rows.
estimator = AutoencoderTransformer(
    n_components=4,
    hidden_layer_sizes=(64,),
    batch_size=128 // world_size,
    max_iter=10,
    random_state=0,
)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    fit_distributed(estimator, X)
elapsed = time.perf_counter() - start

if rank == 0:
    model_path = os.path.join(tempfile.gettempdir(), "skae_torchrun_model.skae")
    skae.save(estimator, model_path)
    print(
        f"{world_size} process(es), backend {dist.get_backend()}: {estimator.n_iter_} "
        f"epochs in {elapsed:.1f} s, final training loss "
        f"{estimator.loss_curve_[-1]:.4f}"
    )
    print(f"saved to {model_path}")
dist.destroy_process_group()

if rank == 0:
    # The file is a normal fitted estimator, usable without any process group.
    loaded = skae.load(model_path)
    Z = loaded.transform(np.array(X[:5]))  # a writable copy of the memmap rows
    print("codes of the first 5 rows, from the reloaded model:")
    print(np.round(Z, 3))
