"""Your own encoder and decoder in AutoencoderTransformer and DenoisingAE:
parameters untouched, clone, the training template's features, persistence."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA

import skae
from skae import AutoencoderTransformer, DenoisingAE
from skae._denoising import DenoisingObjective
from skae._user_network import UserNetwork

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
