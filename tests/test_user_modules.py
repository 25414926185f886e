"""Your own encoder and decoder in AutoencoderTransformer, DenoisingAE,
SparseAE, ContractiveAE and VAE: parameters untouched, clone, the training
template's features, persistence, each model's expectations."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA

import skae
from skae import VAE, AutoencoderTransformer, ContractiveAE, DenoisingAE, SparseAE
from skae._denoising import DenoisingObjective
from skae._penalties import sigmoid_contractive_penalty
from skae._sae_training import SAEObjective
from skae._sparsity import SPARSITY_KINDS
from skae._user_network import UserNetwork, UserSAENetwork
from skae.nn._sae import JumpReLU, SAEModule, UserSAEEncoder

da = pytest.importorskip("dask.array")


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def low_rank(n=300, d=8, rank=2, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, rank) @ rng.randn(rank, d) + 0.01 * rng.randn(n, d) + 5.0


def networks(d=8, k=2, hidden=16):
    encoder = torch.nn.Sequential(
        torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, k)
    )
    decoder = torch.nn.Sequential(
        torch.nn.Linear(k, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, d)
    )
    return encoder, decoder


def weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class InputRecorder(torch.nn.Module):
    """A linear encoder that remembers the mean of the rows it saw in training."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().mean(dim=0))
        return self.linear(x)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, DenoisingAE])
def test_users_module_is_never_modified_and_clone_copies_it(cls):
    X = low_rank()
    encoder, decoder = networks()
    before = (weights(encoder), weights(decoder))
    est = cls(n_components=2, encoder=encoder, decoder=decoder, max_iter=3)
    fit_quietly(est, X)
    est.partial_fit(X)
    # The parameter is stored untouched: the same object, the same weights.
    assert est.get_params()["encoder"] is encoder
    for module, saved in zip((encoder, decoder), before):
        assert all(torch.equal(saved[k], v) for k, v in module.state_dict().items())
    # The fitted network is a trained copy, a UserNetwork of the two parts.
    assert isinstance(est.module_, UserNetwork)
    assert est.encoder_ is not encoder and est.decoder_ is not decoder
    trained = weights(est.encoder_)
    assert any(not torch.equal(trained[k], before[0][k]) for k in trained)
    copy = clone(est)
    assert copy.encoder is not encoder
    assert all(
        torch.equal(v, before[0][k]) for k, v in copy.encoder.state_dict().items()
    )
    assert not hasattr(copy, "module_")


def test_a_class_is_called_with_the_sizes_and_seeded():
    X = low_rank()
    est = AutoencoderTransformer(
        n_components=3, encoder=InputRecorder, decoder=torch.nn.Linear, max_iter=2
    )
    est.set_params(random_state=0, early_stopping=False, scaling="global")
    fit_quietly(est, X)
    assert est.module_.encoder.linear.in_features == 8
    assert est.module_.encoder.linear.out_features == 3
    assert est.module_.decoder.out_features == 8
    # The network trains on internally scaled rows (centred by "global").
    seen = torch.stack(est.module_.encoder.seen).mean(dim=0)
    assert float(seen.abs().max()) < 0.2
    again = fit_quietly(clone(est), X)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_a_linear_user_network_reaches_pca():
    # The linear autoencoder's optimum spans PCA's subspace (Baldi & Hornik):
    # a user's pair of torch.nn.Linear trained by skae gets there.
    X = low_rank(n=400)
    est = AutoencoderTransformer(
        n_components=2,
        encoder=torch.nn.Linear,
        decoder=torch.nn.Linear,
        learning_rate=1e-2,
        batch_size=50,
        max_iter=150,
        early_stopping=False,
        random_state=0,
    )
    fit_quietly(est, X)
    pca = PCA(2).fit(X)
    ae_error = np.mean((est.inverse_transform(est.transform(X)) - X) ** 2)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    total = np.mean((X - X.mean(axis=0)) ** 2)
    assert ae_error < pca_error + 0.01 * total


def test_bad_networks_are_reported_clearly():
    X = low_rank()
    encoder, decoder = networks(k=2)
    with pytest.raises(ValueError, match="n_components=3"):
        AutoencoderTransformer(n_components=3, encoder=encoder, decoder=decoder).fit(X)
    X9 = np.c_[X, X[:, :1]]
    with pytest.raises(ValueError, match="encoder does not run on rows of 9"):
        AutoencoderTransformer(n_components=2, encoder=encoder, decoder=decoder).fit(X9)
    with pytest.raises(ValueError, match=r"decoder does not run on codes of shape"):
        AutoencoderTransformer(
            n_components=2, encoder=encoder, decoder=torch.nn.Linear(3, 8)
        ).fit(X)
    wide, _ = networks(d=9)
    with pytest.raises(ValueError, match=r"expected \(2, 9\)"):
        AutoencoderTransformer(n_components=2, encoder=wide, decoder=decoder).fit(X9)
    with pytest.raises(ValueError, match="given together"):
        AutoencoderTransformer(encoder=encoder).fit(X)
    with pytest.raises(ValueError, match="pretraining"):
        AutoencoderTransformer(
            n_components=2, encoder=encoder, decoder=decoder, pretraining="layerwise"
        ).fit(X)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        AutoencoderTransformer(encoder=lambda a, b: "net", decoder=decoder).fit(X)
    with pytest.raises(ValueError, match="encoder"):
        AutoencoderTransformer(encoder="mlp", decoder=decoder).fit(X)


def test_early_stopping_partial_fit_dask_and_bce():
    X = low_rank()
    encoder, decoder = networks()
    est = fit_quietly(
        AutoencoderTransformer(
            n_components=2, encoder=encoder, decoder=decoder, max_iter=4
        ),
        X,
    )
    assert len(est.validation_loss_curve_) == est.n_iter_
    before = est.transform(X)
    est.partial_fit(X)
    assert est.n_iter_ == len(est.loss_curve_) and not np.array_equal(
        est.transform(X), before
    )
    lazy = fit_quietly(
        clone(est).set_params(max_iter=2, random_state=0), da.from_array(X, chunks=100)
    )
    assert lazy.transform(X).shape == (len(X), 2)
    # BCE: the decoder returns logits, the estimator applies the sigmoid.
    unit = (X - X.min()) / (X.max() - X.min())
    bce = fit_quietly(clone(est).set_params(max_iter=2), unit)
    assert bce.loss_ == "bce"
    X_hat = bce.inverse_transform(bce.transform(unit))
    assert X_hat.min() >= 0 and X_hat.max() <= 1


def test_denoising_corrupts_the_users_network_input():
    X = low_rank()
    est = fit_quietly(
        DenoisingAE(
            n_components=2,
            encoder=torch.nn.Linear,
            decoder=torch.nn.Linear,
            noise="gaussian",
            noise_level=0.5,
            max_iter=2,
        ),
        X,
    )
    assert isinstance(est._make_objective(), DenoisingObjective)
    assert isinstance(est.module_, UserNetwork)


def test_persistence_keeps_the_network_by_pickle_and_safe_format_refuses(tmp_path):
    X = low_rank()
    encoder, decoder = networks()
    est = fit_quietly(
        AutoencoderTransformer(
            n_components=2, encoder=encoder, decoder=decoder, max_iter=3
        ),
        X,
    )
    Z = est.transform(X)
    with pytest.raises(TypeError, match="networks of your own.*joblib or pickle"):
        skae.save(est, tmp_path / "user.skae")
    assert not (tmp_path / "user.skae").exists()
    # The fitted network travels whole: changing the parameters after fitting
    # does not change what a pickled model computes.
    other, _ = networks(hidden=4)
    est.set_params(encoder=other)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.transform(X), Z)
    np.testing.assert_array_equal(
        loaded.partial_fit(X).transform(X), est.partial_fit(X).transform(X)
    )


def test_classifier_refuses_an_autoencoder_with_user_networks():
    # AutoencoderClassifier rebuilds its autoencoder's network from the class
    # name and the architecture: a user's network cannot be rebuilt that way.
    X = low_rank()
    y = (X[:, 0] > X[:, 0].mean()).astype(int)
    ae = AutoencoderTransformer(
        n_components=2, encoder=torch.nn.Linear, decoder=torch.nn.Linear, max_iter=2
    )
    with pytest.raises(ValueError, match="your own encoder/decoder"):
        skae.AutoencoderClassifier(ae, max_iter=2).fit(X, y)


# --------------------------------------------------------------------------
# SparseAE, ContractiveAE and VAE: the same parameters, each model's own
# expectations of the encoder's outputs.


class SigmoidLayer(torch.nn.Module):
    """One sigmoid layer that is not an ``nn.Sequential``: skae cannot see its
    closed form, so the contractive penalty is taken by autograd."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


def model_networks(cls, d=8, k=2):
    """A (tanh MLP encoder, decoder) pair for ``cls`` with code size ``k``."""
    width = 2 * k if cls is skae.VAE else k
    encoder, _ = networks(d=d, k=width)
    _, decoder = networks(d=d, k=k)
    return encoder, decoder


MODELS = [
    pytest.param(SparseAE, {"sparsity": "topk", "k": 2}, id="SparseAE-topk"),
    pytest.param(
        SparseAE, {"sparsity": "l1", "resample_dead": False}, id="SparseAE-l1"
    ),
    pytest.param(SparseAE, {"sparsity": "kl"}, id="SparseAE-kl"),
    pytest.param(ContractiveAE, {"contraction_weight": 0.5}, id="ContractiveAE"),
    pytest.param(VAE, {}, id="VAE"),
]


@pytest.mark.parametrize("cls, params", MODELS)
def test_models_train_copies_and_keep_the_templates_features(cls, params):
    X = low_rank()
    k = 4
    encoder, decoder = model_networks(cls, k=k)
    before = (weights(encoder), weights(decoder))
    est = cls(
        n_components=k,
        encoder=encoder,
        decoder=decoder,
        early_stopping=True,
        max_iter=3,
        random_state=0,
        **params,
    )
    fit_quietly(est, X)
    assert len(est.validation_loss_curve_) == est.n_iter_
    Z = est.transform(X)
    assert Z.shape == (len(X), k) and np.all(np.isfinite(Z))
    assert est.inverse_transform(Z).shape == X.shape
    assert np.all(np.isfinite(est.score_samples(X)))
    est.partial_fit(X)
    assert est.n_iter_ == len(est.loss_curve_)
    # Your modules: the same objects, bit-identical weights; the fitted
    # network holds trained copies.
    assert est.get_params()["encoder"] is encoder
    for module, saved in zip((encoder, decoder), before):
        assert all(torch.equal(saved[n], v) for n, v in module.state_dict().items())
    assert isinstance(est.module_, UserNetwork)
    trained = weights(est.module_.decoder)
    assert any(not torch.equal(trained[n], before[1][n]) for n in trained)
    # Chunked (dask) input goes through the same template.
    lazy = fit_quietly(clone(est), da.from_array(X, chunks=100))
    assert lazy.transform(X).shape == (len(X), k)


@pytest.mark.parametrize("cls, params", MODELS)
def test_models_pickle_whole_and_the_safe_format_refuses(cls, params, tmp_path):
    X = low_rank()
    encoder, decoder = model_networks(cls)
    est = fit_quietly(
        cls(
            n_components=2,
            encoder=encoder,
            decoder=decoder,
            max_iter=2,
            random_state=0,
            **params,
        ),
        X,
    )
    with pytest.raises(TypeError, match="networks of your own.*joblib or pickle"):
        skae.save(est, tmp_path / "user.skae")
    assert not (tmp_path / "user.skae").exists()
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    joblib.dump(est, tmp_path / "user.joblib")
    again = joblib.load(tmp_path / "user.joblib")
    # The stream continues exactly: weights and Adam's moments travelled.
    np.testing.assert_array_equal(
        again.partial_fit(X).transform(X), est.partial_fit(X).transform(X)
    )


def test_sparse_codes_are_the_kinds_on_the_users_outputs():
    X = low_rank()
    linear = {"encoder": torch.nn.Linear, "decoder": torch.nn.Linear}
    topk = fit_quietly(
        SparseAE(n_components=12, sparsity="topk", k=3, max_iter=2, **linear), X
    )
    assert np.all((topk.transform(X) != 0).sum(axis=1) == 3)
    assert topk.k_ == 3
    relu = fit_quietly(
        SparseAE(n_components=12, sparsity="l1", max_iter=2, **linear), X
    )
    assert relu.transform(X).min() == 0.0
    # KL: an encoder whose outputs start at zero starts every unit at the
    # target activity rho (the kind's fixed shift), not at one half.
    encoder = torch.nn.Linear(8, 12)
    torch.nn.init.zeros_(encoder.weight), torch.nn.init.zeros_(encoder.bias)
    kl = SparseAE(n_components=12, sparsity="kl", sparsity_target=0.1, max_iter=1)
    kl.set_params(encoder=encoder, decoder=torch.nn.Linear)
    kl._validate_model_params(8)
    module = kl._build_module(kl._architecture(8))
    codes = module.encode(torch.randn(5, 8))
    np.testing.assert_allclose(codes.detach().numpy(), 0.1, rtol=1e-6)


def test_sparse_resampling_needs_linear_code_layers():
    X = low_rank()
    # Resampling writes the code layer's rows and columns: it needs them as
    # torch.nn.Linear ends; resample_dead=False takes any network.
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())
    with pytest.raises(ValueError, match="resample_dead=True.*resample_dead=False"):
        SparseAE(
            n_components=4, sparsity="l1", encoder=encoder, decoder=torch.nn.Linear
        ).fit(X)
    fit_quietly(
        SparseAE(
            n_components=4,
            sparsity="l1",
            resample_dead=False,
            encoder=encoder,
            decoder=torch.nn.Linear,
            max_iter=2,
        ),
        X,
    )


@pytest.mark.parametrize("resample_dead", [True, False])
def test_dead_units_of_a_users_network_are_resampled(resample_dead):
    X = low_rank()
    encoder = torch.nn.Linear(8, 6)
    with torch.no_grad():
        encoder.bias[0] = -1e3  # a ReLU unit that never fires
    est = fit_quietly(
        SparseAE(
            n_components=6,
            sparsity="l1",
            resample_dead=resample_dead,
            encoder=encoder,
            decoder=torch.nn.Linear,
            max_iter=3,
            random_state=0,
        ),
        X,
    )
    bias = float(est.module_.encoder[0].bias[0].detach())
    # The resampler restarts a dead unit from bias 0; without it the unit
    # stays dead (no gradient reaches it).
    assert (abs(bias) < 1.0) if resample_dead else (bias < -900)
    assert encoder.bias[0] == -1e3


def test_contractive_autograd_penalty_equals_the_closed_form():
    # One sigmoid layer: as an nn.Sequential skae uses the closed form; the
    # same layer in a class of the user's is differentiated by autograd.
    X = low_rank()
    est = fit_quietly(
        ContractiveAE(
            n_components=3,
            contraction_weight=0.7,
            encoder=SigmoidLayer,
            decoder=torch.nn.Linear,
            max_iter=2,
            random_state=0,
        ),
        X,
    )
    module = est.module_
    objective = est._make_objective()
    assert objective.needs_input_grad(module)  # the autograd path
    x = torch.randn(20, 8, dtype=torch.float32, requires_grad=True)
    autograd = objective.penalty(module.encode(x), x, module)
    linear = module.encoder.linear
    closed = sigmoid_contractive_penalty(x, linear.weight, linear.bias)
    # Per input feature, as the closed form of skae's own network is.
    torch.testing.assert_close(autograd, 0.7 * closed / 8)
    sequential = torch.nn.Sequential(linear, torch.nn.Sigmoid())
    twin = UserNetwork(sequential, module.decoder)
    assert not objective.needs_input_grad(twin)  # the closed form
    torch.testing.assert_close(objective.penalty(twin.encode(x), x, twin), autograd)


def test_vae_reads_mean_then_log_variance_and_checks_the_width():
    X = low_rank()
    k = 2
    with pytest.raises(ValueError, match=r"\(2, 2\).*shape \(2, 4\).*log-variance"):
        VAE(
            n_components=k, encoder=torch.nn.Linear(8, 2), decoder=torch.nn.Linear(2, 8)
        ).fit(X)
    with pytest.raises(ValueError, match=r"expected \(2, 8\)"):
        VAE(
            n_components=k, encoder=torch.nn.Linear(8, 4), decoder=torch.nn.Linear(2, 7)
        ).fit(X)
    est = fit_quietly(
        VAE(
            n_components=k,
            encoder=torch.nn.Linear,
            decoder=torch.nn.Linear,
            variance="global",
            max_iter=3,
            random_state=0,
        ),
        X,
    )
    assert est.module_.encoder.out_features == 2 * k
    # transform is the posterior mean: the first n_components outputs.
    scaled = torch.as_tensor((X - est.offset_) / est.scale_, dtype=torch.float32)
    with torch.no_grad():
        mean = est.module_.encoder(scaled)[:, :k].numpy()
    np.testing.assert_allclose(
        est.transform(X.astype(np.float32)), mean, rtol=1e-5, atol=1e-6
    )
    assert est.module_.decoder_logvar().shape == (1,)
    assert est.sample(3, random_state=0).shape == (3, 8)
    unit = (X - X.min()) / (X.max() - X.min())
    bernoulli = fit_quietly(clone(est).set_params(likelihood="bernoulli"), unit)
    assert bernoulli.module_.decoder_logvar() is None
    X_hat = bernoulli.inverse_transform(bernoulli.transform(unit))
    assert X_hat.min() >= 0 and X_hat.max() <= 1


class _Part(torch.nn.Module):
    """A function as a module (a view of another network's computation)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, t):
        return self.fn(t)


def test_dictionary_objective_on_a_user_network_equals_skaes_own():
    # skae's one-layer network seen as a user's encoder and decoder: the
    # generic nested-prefix loss and the AuxK residual g(z) - g(0) must give
    # the values computed from the network's dictionary columns.
    torch.manual_seed(0)
    own = SAEModule(6, 8, JumpReLU(8, 0.05))
    with torch.no_grad():
        own.encoder.pre_bias.normal_()
    encoder = UserSAEEncoder(
        _Part(own.encoder.pre_activations), own.encoder.activation, 8
    )
    user = UserSAENetwork(encoder, _Part(own.decode))
    assert not hasattr(user.decoder, "directions")
    z = torch.randn(5, 8)
    torch.testing.assert_close(user.decode_residual(z), own.decode_residual(z))
    dead = torch.tensor([0, 9, 0, 9, 9, 0, 0, 9])
    x = torch.randn(10, 6)
    kind = SPARSITY_KINDS["matryoshka"]
    losses = []
    for module in (own, user):
        module.encoder.rows_since_fired.copy_(dead)
        objective = SAEObjective(kind, 0.0, 2, 0.5, 5, prefixes=(2, 4, 8))
        losses.append(objective(module, x))
    torch.testing.assert_close(losses[0], losses[1])


@pytest.mark.parametrize("kind", ["batchtopk", "matryoshka", "jumprelu"])
def test_dictionary_kinds_train_a_users_network(kind):
    X = low_rank()
    est = fit_quietly(
        SparseAE(
            n_components=12,
            sparsity=kind,
            k=2,
            encoder=torch.nn.Linear,
            decoder=torch.nn.Linear,
            dead_window=50,
            max_iter=3,
            random_state=0,
        ),
        X,
    )
    assert isinstance(est.module_, UserSAENetwork)
    assert est.loss_ == "mse"
    Z = est.transform(X)
    assert Z.min() >= 0 and Z.shape == (len(X), 12)
    before = est.module_.encoder.rows_since_fired.clone()
    est.partial_fit(X)
    assert not torch.equal(before, est.module_.encoder.rows_since_fired)
