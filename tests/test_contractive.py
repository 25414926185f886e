import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skae._contractive import ContractiveAE
from skae._penalties import (
    contractive_penalty,
    exact_jacobian_norms,
    jacobian_penalty,
    sigmoid_contractive_penalty,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _finite_difference_norms(f, x, eps=1e-6):
    """Per-sample squared Frobenius norm of the Jacobian by central differences."""
    out = torch.zeros(len(x), dtype=x.dtype)
    for k in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, k] = eps
        out += ((f(x + e) - f(x - e)) / (2 * eps)).square().sum(dim=1)
    return out


def test_sigmoid_closed_form_equals_jacobian():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Sigmoid()).double()
    x = torch.randn(9, 6, dtype=torch.float64)
    code, penalty = contractive_penalty(enc, x)
    with torch.no_grad():
        fd = _finite_difference_norms(enc, x).mean()
    exact = exact_jacobian_norms(enc, x).mean()
    assert penalty.item() == pytest.approx(exact.item(), rel=1e-10)
    assert penalty.item() == pytest.approx(fd.item(), rel=1e-6)
    lin = enc[0]
    assert sigmoid_contractive_penalty(x, lin.weight, lin.bias).item() == (
        pytest.approx(penalty.item(), rel=1e-12)
    )
    torch.testing.assert_close(code, enc(x))


def test_general_form_equals_jacobian_and_closed_form_gradient():
    torch.manual_seed(0)
    deep = torch.nn.Sequential(
        torch.nn.Linear(5, 7),
        torch.nn.Tanh(),
        torch.nn.Linear(7, 3),
        torch.nn.Sigmoid(),
    ).double()
    x = torch.randn(8, 5, dtype=torch.float64)
    code, penalty = contractive_penalty(deep, x)
    with torch.no_grad():
        fd = _finite_difference_norms(deep, x).mean()
    assert penalty.item() == pytest.approx(exact_jacobian_norms(deep, x).mean().item())
    assert penalty.item() == pytest.approx(fd.item(), rel=1e-6)

    # The batched-VJP form, differentiated, gives the closed form's gradient.
    shallow = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Sigmoid()).double()
    _, closed = contractive_penalty(shallow, x)
    (g_closed,) = torch.autograd.grad(closed, shallow[0].weight)
    xr = x.clone().requires_grad_(True)
    general = jacobian_penalty(shallow(xr), xr)
    (g_general,) = torch.autograd.grad(general, shallow[0].weight)
    assert general.item() == pytest.approx(closed.item(), rel=1e-12)
    torch.testing.assert_close(g_general, g_closed)


def _mean_jacobian_norm(est, X):
    x = torch.as_tensor((X - est.offset_) / est.scale_, dtype=torch.float32)
    est.module_.eval()
    return exact_jacobian_norms(est.module_.encoder, x).mean().item()


@pytest.mark.parametrize("hidden", [(), (32,)])
def test_contraction_shrinks_the_jacobian(hidden):
    X, _ = load_digits(return_X_y=True)
    X = X[:400]
    common = dict(
        n_components=16,
        hidden_layer_sizes=hidden,
        learning_rate=1e-2,
        max_iter=10,
        random_state=0,
    )
    # The penalty is per input feature: 64 features, 64 times the old weight.
    cae = ContractiveAE(contraction_weight=64.0, **common).fit(X)
    plain = ContractiveAE(contraction_weight=0.0, **common).fit(X)
    j_cae, j_plain = _mean_jacobian_norm(cae, X), _mean_jacobian_norm(plain, X)
    print(f"mean ||J||_F^2, hidden={hidden}: CAE {j_cae:.4f}, plain {j_plain:.4f}")
    assert j_cae < 0.7 * j_plain, (j_cae, j_plain)


def test_penalty_enters_the_training_loss():
    X = np.random.default_rng(0).normal(size=(100, 5))
    a = ContractiveAE(
        n_components=3, contraction_weight=0.0, max_iter=1, random_state=0
    )
    b = ContractiveAE(
        n_components=3, contraction_weight=10.0, max_iter=1, random_state=0
    )
    assert b.fit(X).loss_curve_[0] > a.fit(X).loss_curve_[0]


def test_early_stopping_validation_loss_includes_penalty():
    X = np.random.default_rng(0).normal(size=(100, 5))
    cae = ContractiveAE(
        n_components=3,
        hidden_layer_sizes=(6,),
        early_stopping=True,
        max_iter=3,
        random_state=0,
    ).fit(X)
    assert len(cae.validation_loss_curve_) == 3
    assert np.all(np.isfinite(cae.validation_loss_curve_))


@pytest.mark.parametrize(
    "params, name",
    [
        ({"contraction_weight": -1.0}, "contraction_weight"),
        ({"code_activation": "relu"}, "code_activation"),
    ],
)
def test_bad_parameters_raise_at_fit(params, name):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=name):
        ContractiveAE(max_iter=1, **params).fit(X)


def test_penalty_is_per_input_feature():
    # The Jacobian norm sums over input features; the weight must mean the
    # same for 64 or 784 of them, so the penalty is divided by their number.
    from skae._contractive import ContractiveObjective
    from skae._penalties import contractive_penalty
    from skae.nn import MLPAutoencoder

    torch.manual_seed(0)
    for n_features in (8, 80):
        module = MLPAutoencoder(n_features, 3, code_activation="logistic")
        x = torch.randn(16, n_features)
        code, norm = contractive_penalty(module.encoder, x)
        objective = ContractiveObjective("mse", weight=2.0)
        expected = 2.0 * norm / n_features
        assert objective.penalty(code, x, module).item() == pytest.approx(
            expected.item(), rel=1e-6
        )


def test_auto_loss_makes_the_weight_independent_of_x_units():
    # The penalty is weighed against the reconstruction loss and the Jacobian
    # is taken on the scaled input: loss="auto" trains the MSE on globally
    # scaled rows, so X and X / 16 (pixels in [0, 1]) are the same problem.
    X = load_digits().data[:600]
    params = dict(n_components=8, max_iter=15, random_state=0)
    raw = ContractiveAE(**params).fit(X)
    unit = ContractiveAE(**params).fit(X / 16.0)
    assert (unit.loss_, unit.scaling_) == ("mse", "global")
    np.testing.assert_allclose(unit.transform(X / 16.0), raw.transform(X), atol=1e-3)
    bce = ContractiveAE(**{**params, "loss": "bce", "max_iter": 1}).fit(X / 16.0)
    assert bce.loss_ == "bce"
