"""The dictionary-style sparse autoencoders: SparseAE(sparsity="batchtopk" |
"jumprelu"), their network, the AuxK loss and the sparse-code metrics."""

import socket
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

import skae
from skae import SparseAE
from skae._sae_training import SAEObjective, geometric_median
from skae._sparsity import SPARSITY_KINDS
from skae.distributed import fit_distributed
from skae.metrics import (
    dead_fraction,
    fraction_variance_explained,
    l0_norm,
    shrinkage,
    sparse_code_metrics,
)
from skae.nn._sae import BatchTopK, JumpReLU, SAEModule, jumprelu, step

KINDS = ("batchtopk", "matryoshka", "jumprelu")


def superposition_data(n=600, d=8, n_features=16, active=2, seed=0):
    """Sparse non-negative combinations of unit directions, more than d."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_features, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    on = rng.random((n, n_features)) < active / n_features
    return (on * rng.uniform(0.5, 1.5, (n, n_features))) @ directions, directions


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


# ---------------------------------------------------------------- BatchTopK
def test_batchtopk_training_keeps_k_times_batch_largest_and_sets_threshold():
    layer = BatchTopK(2)
    h = torch.tensor([[5.0, -1.0, 0.2, 3.0], [0.1, 4.0, 0.3, 0.0]])
    z = layer(h)
    # k * batch = 4 largest of the batch: 5, 4, 3, 0.3 (row 0 keeps two, row 1 two).
    expected = torch.tensor([[5.0, 0.0, 0.0, 3.0], [0.0, 4.0, 0.3, 0.0]])
    assert torch.equal(z, expected)
    # The threshold is the running mean of the smallest kept activation.
    assert layer.threshold.item() == pytest.approx(0.3)
    layer(torch.tensor([[1.0, 0.9, 0.0, 0.0], [0.0, 0.0, 0.8, 0.7]]))
    assert layer.threshold.item() == pytest.approx((0.3 + 0.7) / 2)


def test_batchtopk_training_depends_on_batch_but_inference_does_not():
    layer = BatchTopK(1)
    a = torch.tensor([[3.0, 2.0]])
    big = torch.tensor([[9.0, 8.0]])
    # Training: the row's second value survives alone, not beside a larger row.
    assert layer(a)[0].count_nonzero() == 1
    assert layer(torch.cat([a, torch.tensor([[0.0, 0.0]])]))[0].count_nonzero() == 2
    layer.eval()
    alone = layer(a)
    assert torch.equal(layer(torch.cat([a, big]))[0], alone[0])


def test_batchtopk_transform_is_row_independent():
    X, _ = superposition_data()
    sae = fit_quietly(
        SparseAE(32, sparsity="batchtopk", k=2, max_iter=5, random_state=0), X
    )
    Z = sae.transform(X[:50])
    rows = np.vstack([sae.transform(X[i : i + 1]) for i in range(50)])
    np.testing.assert_allclose(rows, Z, rtol=0, atol=1e-12)
    # A batch with very different other rows (scaled up 10x) leaves row 0 alone.
    mixed = sae.transform(np.vstack([X[:1], 10 * X[1:50]]))
    np.testing.assert_allclose(mixed[0], Z[0], rtol=0, atol=1e-12)
    # The threshold is used: every kept activation exceeds it, and about k per row.
    threshold = sae.module_.encoder.activation.threshold.item()
    assert threshold > 0
    assert np.all(Z[Z != 0] > threshold)
    assert 0.5 < l0_norm(sae.transform(X)) < 6


# ----------------------------------------------------------------- JumpReLU
def test_jumprelu_straight_through_gradient_hand_computed():
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    h = torch.tensor([[0.97, 2.04], [1.2, 1.0]], requires_grad=True)
    upstream = torch.tensor([[2.0, 3.0], [5.0, 7.0]])
    eps = 0.1
    z = jumprelu(h, theta, eps)
    assert torch.equal(z, torch.tensor([[0.0, 2.04], [1.2, 0.0]]))
    (z * upstream).sum().backward()
    # (h - theta) / eps = [[-0.3, 0.4], [2, -10]]: inside the rectangle (|u| <
    # 1/2) for row 0 only, so d/dtheta_j = -(theta_j / eps) * upstream[0, j].
    assert torch.allclose(theta.grad, torch.tensor([-10.0 * 2.0, -20.0 * 3.0]))
    # d/dh is the exact gradient H(h - theta) times the upstream gradient.
    assert torch.allclose(h.grad, torch.tensor([[0.0, 3.0], [5.0, 0.0]]))


def test_step_straight_through_gradient_hand_computed():
    theta = torch.tensor([1.0, 2.0], requires_grad=True)
    h = torch.tensor([[0.97, 2.04], [1.2, 1.0]], requires_grad=True)
    out = step(h, theta, 0.1)
    assert torch.equal(out, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    (out * torch.tensor([[2.0, 3.0], [5.0, 7.0]])).sum().backward()
    # -(1 / eps) * upstream inside the rectangle; the step passes nothing to h.
    assert torch.allclose(theta.grad, torch.tensor([-10.0 * 2.0, -10.0 * 3.0]))
    assert h.grad is None


def test_jumprelu_layer_l0_gradient_reaches_its_thresholds():
    layer = JumpReLU(2, 0.1, initial_threshold=1.0)
    h = torch.tensor([[0.97, 1.02], [1.2, 1.04]])
    layer.l0(h).sum().backward()
    # (-1/eps) per row within eps/2 of theta = 1: one row for latent 0, two for 1.
    assert torch.allclose(layer.threshold.grad, torch.tensor([-10.0, -20.0]))


def test_jumprelu_sparsity_weight_lowers_l0():
    X, _ = superposition_data(n=400)
    l0 = [
        l0_norm(
            fit_quietly(
                SparseAE(
                    32,
                    sparsity="jumprelu",
                    sparsity_weight=w,
                    bandwidth=0.1,
                    learning_rate=1e-2,
                    max_iter=15,
                    random_state=0,
                ),
                X,
            ).transform(X)
        )
        for w in (0.0, 0.05)
    ]
    # The penalty's straight-through gradient raises the thresholds: with a
    # wrong sign or kernel it would not lower the L0.
    assert l0[1] < 0.75 * l0[0], l0


# ------------------------------------------------------ network and AuxK
def test_network_starts_tied_with_unit_columns_and_median_bias():
    torch.manual_seed(0)
    module = SAEModule(5, 12, BatchTopK(2))
    directions = module.decoder.directions().detach()
    np.testing.assert_allclose(directions.norm(dim=0).numpy(), 1.0, atol=1e-6)
    assert torch.allclose(module.encoder.weight, directions.T)
    X, _ = superposition_data(n=300)
    sae = fit_quietly(SparseAE(16, sparsity="batchtopk", k=2, max_iter=2), X)
    np.testing.assert_allclose(
        sae.module_.decoder.directions().detach().norm(dim=0).numpy(), 1.0, atol=1e-6
    )


def test_geometric_median_hand_computed():
    # Points on a line: the geometric median is the ordinary median, (2, 0),
    # far from the mean (23, 0) that the outliers drag away.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [10.0, 0.0], [100.0, 0.0]])
    np.testing.assert_allclose(
        geometric_median(x, n_iter=500).numpy(), [2, 0], atol=1e-3
    )


def test_aux_loss_hand_computed():
    torch.manual_seed(0)
    module = SAEModule(2, 3, BatchTopK(1))
    with torch.no_grad():
        module.decoder.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    objective = SAEObjective(SPARSITY_KINDS["batchtopk"], 0.0, 1, 1.0, 10)
    h = torch.tensor([[0.5, 2.0, 3.0]])
    dead = torch.tensor([True, True, False])
    residual = torch.tensor([[1.0, 1.0]])
    # Best dead latent of the row: latent 1 (2.0) -> e_hat = 2 * (0, 1) = (0, 2);
    # mean squared error against (1, 1): ((1 - 0)^2 + (1 - 2)^2) / 2 = 1.
    assert objective._aux_loss(module, h, dead, residual).item() == pytest.approx(1.0)


def test_auxk_revives_dead_latents():
    # As many latents as true features, a short dead window and small batches:
    # without AuxK some latents die for good and their features go unlearned.
    X, _ = superposition_data(n=1000, d=16, n_features=32, active=2, seed=1)
    dead = {}
    for weight in (0.0, 1 / 32):
        sae = SparseAE(
            32,
            sparsity="batchtopk",
            k=2,
            aux_weight=weight,
            dead_window=200,
            batch_size=50,
            max_iter=40,
            tol=0,
            learning_rate=1e-2,
            random_state=0,
        )
        dead[weight] = fit_quietly(sae, X).dead_fraction_
    assert dead[0.0] >= 0.09, dead
    assert dead[1 / 32] < 0.5 * dead[0.0], dead


def test_dead_latent_counter_counts_training_rows():
    X, _ = superposition_data(n=100)
    sae = fit_quietly(
        SparseAE(
            16, sparsity="batchtopk", k=1, max_iter=1, batch_size=100, random_state=0
        ),
        X,
    )
    counts = sae.module_.encoder.rows_since_fired.numpy()
    fired = sae.transform(X) != 0
    assert set(np.unique(counts)) <= {0, 100}
    # Whatever fired in the one training batch has count 0 (its code at the
    # threshold may differ, but not for a latent that never fired at all).
    assert np.all(counts[~fired.any(axis=0)] >= 0)
    assert (counts == 0).sum() >= 1


# --------------------------------------------------------------- Matryoshka
def test_matryoshka_nested_loss_hand_computed():
    module = SAEModule(2, 3, BatchTopK(1))
    with torch.no_grad():
        module.decoder.weight.copy_(torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 4.0]]))
        module.encoder.pre_bias.copy_(torch.tensor([1.0, 0.0]))
    objective = SAEObjective(SPARSITY_KINDS["matryoshka"], 0.0, 1, 0.0, 10, (1, 3))
    z = torch.tensor([[2.0, 1.0, 5.0]])
    x = torch.tensor([[3.0, 1.0]])
    loss, x_hat = objective._nested_loss(module, z, x)
    # Unit columns (1, 0), (0, 1), (0.6, 0.8). Prefix 1: b + 2 (1, 0) = (3, 0),
    # error (0, 1) -> 0.5; prefix 3: (3, 0) + (0, 1) + 5 (0.6, 0.8) = (6, 5),
    # error (3, 4) -> 12.5. Mean: 6.5.
    assert loss.item() == pytest.approx(6.5)
    assert torch.allclose(x_hat, torch.tensor([[6.0, 5.0]]))


def test_matryoshka_prefix_reconstructs_on_its_own():
    X, _ = superposition_data(n=1000, d=16, n_features=32, active=2, seed=2)
    fve = {}
    for kind in ("batchtopk", "matryoshka"):
        sae = fit_quietly(
            SparseAE(32, sparsity=kind, k=2, max_iter=20, random_state=0), X
        )
        Z = sae.transform(X)
        Z[:, 4:] = 0  # the first prefix: 32 / 2**3 = 4 latents
        fve[kind] = fraction_variance_explained(X, sae.inverse_transform(Z))
    assert sae.architecture_["matryoshka_levels"] == 4
    assert fve["matryoshka"] > 1.4 * fve["batchtopk"], fve


# ------------------------------------------------- estimator-level behaviour
@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_streams_and_persists(kind, tmp_path):
    X, _ = superposition_data(n=400)
    sae = SparseAE(16, sparsity=kind, random_state=0)
    for start in range(0, 400, 100):
        sae.partial_fit(X[start : start + 100])
    assert sae.n_iter_ == 4
    counts = sae.module_.encoder.rows_since_fired
    assert int(counts.max()) <= 400
    path = tmp_path / "sae.skae"
    skae.save(sae, path)
    loaded = skae.load(path)
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))
    assert torch.equal(loaded.module_.encoder.rows_since_fired, counts)


def test_one_process_group_equals_plain_fit():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1
    )
    try:
        X, _ = superposition_data(n=300)
        for kind in KINDS:
            est = SparseAE(16, sparsity=kind, max_iter=3, random_state=0)
            ref = fit_quietly(clone(est), X)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted = fit_distributed(clone(est), X)
            np.testing.assert_allclose(fitted.transform(X), ref.transform(X), atol=1e-6)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sparsity": "batchtopk", "hidden_layer_sizes": (4,)}, "hidden_layer_sizes"),
        ({"sparsity": "jumprelu", "pretraining": "layerwise"}, "pretraining"),
        ({"sparsity": "batchtopk", "loss": "bce"}, "loss='bce'"),
        ({"sparsity": "batchtopk", "k": 99}, "k=99"),
        ({"sparsity": "jumprelu", "aux_k": 99}, "aux_k=99"),
        ({"sparsity": "matryoshka", "k": 99}, "k=99"),
    ],
)
def test_bad_parameters_rejected(params, message):
    X, _ = superposition_data(n=50)
    with pytest.raises(ValueError, match=message):
        SparseAE(16, **params).fit(X)


@pytest.mark.parametrize(
    "name, value",
    [
        ("bandwidth", 0.0),
        ("dead_window", 0),
        ("aux_weight", -1.0),
        ("matryoshka_levels", 0),
    ],
)
def test_bad_parameter_values_rejected(name, value):
    X, _ = superposition_data(n=50)
    with pytest.raises(InvalidParameterError, match=name):
        SparseAE(16, sparsity="jumprelu", **{name: value}).fit(X)


def test_data_in_unit_interval_uses_mse():
    X, _ = superposition_data(n=200)
    X = (X - X.min()) / (X.max() - X.min())
    sae = fit_quietly(SparseAE(8, sparsity="jumprelu", max_iter=1), X)
    assert sae.loss_ == "mse"
    assert sae.scaling_ == "global"


# ------------------------------------------------------------------ metrics
def test_metrics_hand_computed():
    Z = np.array([[0.0, 2.0, 0.0], [1.0, 3.0, 0.0]])
    assert l0_norm(Z) == 1.5
    assert dead_fraction(Z) == pytest.approx(1 / 3)
    X = np.array([[1.0, 0.0], [3.0, 0.0]])
    X_hat = np.array([[1.0, 1.0], [3.0, 0.0]])
    # Total variance: 1 + 1 = 2; residual: 1.
    assert fraction_variance_explained(X, X_hat) == pytest.approx(0.5)
    assert shrinkage(X, X_hat) == pytest.approx((np.sqrt(2) + 1) / 2)
    with pytest.raises(ValueError, match="shape"):
        shrinkage(X, X_hat[:1])


def test_sparse_code_metrics_of_a_fitted_model():
    X, _ = superposition_data(n=300)
    sae = fit_quietly(
        SparseAE(16, sparsity="batchtopk", k=2, max_iter=3, random_state=0), X
    )
    metrics = sparse_code_metrics(sae, X)
    Z = sae.transform(X)
    assert metrics["l0"] == pytest.approx(np.count_nonzero(Z) / len(X))
    assert 0 < metrics["variance_explained"] < 1
    assert metrics["dead_fraction"] == pytest.approx(sae.dead_fraction_)
