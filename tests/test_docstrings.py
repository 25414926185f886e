"""Shared parameters are documented the same way in every estimator.

scikit-learn's ``assert_docstring_consistency`` compares the numpydoc entries
(type, default and description) of the parameters that the autoencoders share.
Parameters whose defaults differ by design (the code size, the network, VAE's
weight penalty) are compared where they agree, and so are those whose meaning
differs by design: a user's ``encoder`` returns SparseAE's pre-activations and
the VAE's posterior mean and log-variance, and the VAE's ``decoder`` the
likelihood's parameters.
"""

import inspect

from numpydoc.docscrape import ClassDoc
from sklearn.utils._testing import assert_docstring_consistency

from skae import (
    VAE,
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    SequenceAutoencoder,
    SparseAE,
)

AUTOENCODERS = [AutoencoderTransformer, SparseAE, DenoisingAE, ContractiveAE, VAE]
#: Defaults chosen per model: the code size and the network everywhere, and
#: AutoencoderTransformer's early stopping (its PCA start needs held-out rows).
PER_MODEL_DEFAULTS = ["n_components", "hidden_layer_sizes", "early_stopping"]
#: A user's networks: what the encoder returns is the model's (see the module).
USER_NETWORKS = ["encoder", "decoder"]


def _shared(classes):
    params = [set(inspect.signature(cls).parameters) for cls in classes]
    return sorted(set.intersection(*params))


def test_parameters_shared_by_all_autoencoders():
    params = [
        p for p in _shared(AUTOENCODERS) if p not in PER_MODEL_DEFAULTS + USER_NETWORKS
    ]
    params.remove("alpha")  # the VAE's default is 0.0 (the ELBO has its prior)
    # The VAE standardizes by default (its variance floor is per feature).
    params.remove("scaling")
    assert len(params) >= 12
    assert_docstring_consistency(AUTOENCODERS, include_params=params)


def test_parameters_shared_by_the_deterministic_autoencoders():
    classes = AUTOENCODERS[:4]
    params = [
        p for p in _shared(classes) if p not in PER_MODEL_DEFAULTS + USER_NETWORKS
    ]
    assert {"alpha", "loss", "pretraining", "scaling"} <= set(params)
    # "auto" resolves by model: the MSE of AutoencoderTransformer's PCA start,
    # the MSE under SparseAE's and ContractiveAE's penalties.
    params.remove("loss")
    assert_docstring_consistency(classes, include_params=params)
    assert_docstring_consistency([SparseAE, ContractiveAE], include_params=["loss"])
    assert 'init="pca"' in _parameter_doc(AutoencoderTransformer, "loss")
    assert "bce" in _parameter_doc(DenoisingAE, "loss")


def test_user_networks_are_documented_alike_where_they_mean_the_same():
    # Codes in, codes out: the encoder of the models without a code layer of
    # their own; the decoder of every deterministic model.
    codes = [AutoencoderTransformer, DenoisingAE, ContractiveAE]
    assert_docstring_consistency(codes, include_params=["encoder"])
    assert_docstring_consistency(codes + [SparseAE], include_params=["decoder"])
    # The VAE's differ on purpose: 2 * n_components outputs, likelihood
    # parameters (the consistency check would pass if they did not).
    for name in USER_NETWORKS:
        texts = {
            " ".join(_parameter_doc(cls, name).split()) for cls in (DenoisingAE, VAE)
        }
        assert len(texts) == 2
    assert "2 * n_components" in _parameter_doc(VAE, "encoder")
    assert "pre-activations" in _parameter_doc(SparseAE, "encoder")


def _parameter_doc(cls, name):
    (entry,) = [p for p in ClassDoc(cls)["Parameters"] if p.name == name]
    return "\n".join(entry.desc)


def test_parameters_shared_with_the_sequence_autoencoder():
    # Its scaling is per channel (documented apart); the rest is the same.
    classes = [AutoencoderTransformer, SequenceAutoencoder]
    params = [p for p in _shared(classes) if p not in PER_MODEL_DEFAULTS]
    params.remove("scaling")
    assert {"alpha", "loss", "learning_rate", "random_state", "device"} <= set(params)
    # The "auto" loss of AutoencoderTransformer follows its PCA start.
    params.remove("loss")
    assert_docstring_consistency(classes, include_params=params)
    assert_docstring_consistency(
        [DenoisingAE, SequenceAutoencoder], include_params=["loss"]
    )
