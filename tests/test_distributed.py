"""Data-parallel training (skae.distributed) with gloo on loopback.

The reference for 2 processes with ``batch_size=b`` on contiguous shards is one
process with ``batch_size=2b`` on the rows reordered so that its batch ``t`` is
the union of the two processes' batch ``t``: DDP's averaged gradient of the
two batch means is the gradient of the mean over the union. Weights agree to
``ATOL`` (float32 sums in a different order).
"""

import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

import skae
from skae._autoencoder import AutoencoderTransformer
from skae._denoising import DenoisingAE
from skae._vae import VAE
from skae.distributed import fit_distributed, shard_bounds

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)

ATOL = 1e-5
N, B = 512, 32
PARAMS = dict(
    n_components=3,
    hidden_layer_sizes=(16,),
    max_iter=3,
    batch_size=B,
    shuffle=False,
    # Each process would hold out its own shard's rows: the union equivalence
    # below holds for training without a validation split.
    early_stopping=False,
    random_state=0,
    device="cpu",
)

WORKER = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np, torch
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import torch.distributed as dist
    from skae import save
    from skae._autoencoder import AutoencoderTransformer
    from skae.distributed import fit_distributed, init_process_group

    X = np.load(sys.argv[1], mmap_mode="r")  # every rank opens all the rows
    rank, world_size = init_process_group("gloo")
    est = fit_distributed(AutoencoderTransformer(**json.loads(sys.argv[2])), X)
    torch.save(est.module_.state_dict(), f"{sys.argv[3]}.rank{rank}.pt")
    if rank == 0:
        save(est, sys.argv[3])
    dist.destroy_process_group()
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(n=N, d=6):
    rng = np.random.RandomState(0)
    return rng.randn(n, d) @ rng.randn(d, d) + 3.0


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Run the worker as 2 gloo processes on loopback, as torchrun would."""
    tmp = tmp_path_factory.mktemp("ddp")
    np.save(tmp / "X.npy", _data())
    (tmp / "worker.py").write_text(WORKER)
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(tmp / "worker.py"),
                    str(tmp / "X.npy"),
                    json.dumps(PARAMS),
                    str(tmp / "model.skae"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return tmp


def _single_process_reference():
    """One process, batch 2B, batch t = rank 0's batch t + rank 1's batch t."""
    X = _data()
    half = N // 2
    order = np.concatenate(
        [
            np.r_[t * B : (t + 1) * B, half + t * B : half + (t + 1) * B]
            for t in range(half // B)
        ]
    )
    return AutoencoderTransformer(**{**PARAMS, "batch_size": 2 * B}).fit(X[order])


def test_two_gloo_processes_match_one_process_on_the_union(two_processes):
    ref = _single_process_reference().module_.state_dict()
    weights = torch.load(two_processes / "model.skae.rank0.pt", weights_only=True)
    assert weights.keys() == ref.keys()
    for name, value in ref.items():
        np.testing.assert_allclose(weights[name], value, atol=ATOL, err_msg=name)


def test_both_ranks_end_with_identical_weights(two_processes):
    w0 = torch.load(two_processes / "model.skae.rank0.pt", weights_only=True)
    w1 = torch.load(two_processes / "model.skae.rank1.pt", weights_only=True)
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name


def test_rank0_model_loads_as_a_plain_fitted_estimator(two_processes):
    est = skae.load(two_processes / "model.skae")
    check_is_fitted(est)
    assert isinstance(est, AutoencoderTransformer) and est.n_iter_ == 3
    ref = _single_process_reference()
    X = _data()
    np.testing.assert_allclose(est.transform(X), ref.transform(X), atol=ATOL)
    # Epoch losses are averaged over the processes: the global training loss.
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-5)


@pytest.mark.parametrize("n, world_size", [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_shard_bounds_are_equal_and_cover_every_row(n, world_size):
    bounds = [shard_bounds(n, r, world_size) for r in range(world_size)]
    sizes = {stop - start for start, stop in bounds}
    assert len(sizes) == 1  # same number of steps on every process
    covered = np.concatenate([np.arange(a, b) % n for a, b in bounds])
    assert set(covered) == set(range(n))


# -------------------------------------------- a 1-process group, in-process
@pytest.fixture
def group():
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize(
    "est",
    [
        AutoencoderTransformer(**{**PARAMS, "shuffle": True, "early_stopping": True}),
        VAE(**PARAMS, kl_warmup=2),
    ],
    ids=["AutoencoderTransformer", "VAE"],
)
def test_one_process_group_equals_plain_fit(group, est):
    X = _data()
    ref = clone(est).fit(X)
    fitted = fit_distributed(clone(est), X)
    assert fitted.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(fitted.loss_curve_, ref.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(fitted.transform(X), ref.transform(X), atol=1e-6)


def test_partial_fit_after_fit_distributed_continues_from_its_optimizer(group):
    X = _data()
    # An unpickled stream carries Adam moments; the refit must replace them.
    est = AutoencoderTransformer(**PARAMS).partial_fit(X).partial_fit(X)
    est = fit_distributed(pickle.loads(pickle.dumps(est)), X)
    ref = AutoencoderTransformer(**PARAMS).fit(X)
    np.testing.assert_allclose(
        est.partial_fit(X).transform(X), ref.partial_fit(X).transform(X), atol=1e-6
    )


def test_layerwise_pretraining_is_rejected(group):
    est = DenoisingAE(**PARAMS, pretraining="layerwise")
    with pytest.raises(ValueError, match="pretraining='layerwise' is not supported"):
        fit_distributed(est, _data())


def test_without_a_launcher_it_is_fit(monkeypatch):
    for name in ("WORLD_SIZE", "MASTER_ADDR", "RANK"):
        monkeypatch.delenv(name, raising=False)
    X = _data()
    est = fit_distributed(AutoencoderTransformer(**PARAMS), X)
    assert not dist.is_initialized()
    ref = AutoencoderTransformer(**PARAMS).fit(X)
    np.testing.assert_array_equal(est.transform(X), ref.transform(X))
