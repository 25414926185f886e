"""Small configurations of every skae estimator for scikit-learn's common checks.

Kept in the test suite, as scikit-learn keeps its own in
``sklearn.utils._test_common.instance_generator``, not in the estimator
classes. Each estimator is covered by configurations that exercise its
distinct code paths (every corruption, sparsity kind, code type, ...).
"""

import torch
from sklearn.decomposition import PCA

from skae import (
    VAE,
    AutoencoderClassifier,
    AutoencoderRegressor,
    AutoencoderTransformer,
    ContractiveAE,
    ConvAutoencoder,
    DenoisingAE,
    DictionaryLearner,
    GraphAutoencoder,
    OutlierDetector,
    SequenceAutoencoder,
    SparseAE,
)
from skae._outlier_default import AutoencoderEnsemble

CHECK_INSTANCES = {
    # Pretraining, the head-only probe, fine-tuning all layers with the
    # reconstruction term and input noise, a hidden head, early stopping
    # (a large step: check_classifiers_train asks for 0.83 training accuracy).
    AutoencoderClassifier: [
        AutoencoderClassifier(
            DenoisingAE(
                n_components=8,
                hidden_layer_sizes=(16,),
                noise="gaussian",
                noise_level=0.1,
                max_iter=10,
            ),
            learning_rate=1e-2,
            max_iter=50,
        ),
        AutoencoderClassifier(
            AutoencoderTransformer(
                n_components=4, hidden_layer_sizes=(8,), max_iter=10
            ),
            fine_tune="head",
            head_layer_sizes=(8,),
            early_stopping=True,
            learning_rate=1e-2,
            max_iter=50,
        ),
    ],
    AutoencoderRegressor: [
        AutoencoderRegressor(
            AutoencoderTransformer(
                n_components=4, hidden_layer_sizes=(8,), max_iter=10
            ),
            learning_rate=1e-2,
            max_iter=50,
        ),
    ],
    AutoencoderTransformer: [
        AutoencoderTransformer(),
        # A user's networks (classes called as cls(n_in, n_out)): a linear AE.
        AutoencoderTransformer(
            encoder=torch.nn.Linear, decoder=torch.nn.Linear, max_iter=5
        ),
    ],
    # The checks use any number of features: rows read as 1-D signals.
    ConvAutoencoder: [
        ConvAutoencoder(
            n_components=4, image_shape=(1, 1, -1), channels=(4,), max_iter=5
        ),
        ConvAutoencoder(
            n_components=4,
            image_shape=(1, 1, -1),
            channels=(4, 4),
            noise="gaussian",
            noise_level=0.1,
            max_iter=5,
        ),
    ],
    SparseAE: [
        SparseAE(n_components=16, sparsity="kl", max_iter=5),
        SparseAE(n_components=16, sparsity="l1", max_iter=5),
        # k=None: the checks set n_components=1, and k <= n_components.
        SparseAE(
            n_components=16,
            sparsity="topk",
            hidden_layer_sizes=(8,),
            pretraining="layerwise",
            max_iter=5,
        ),
        # The dictionary-style kinds (their own one-layer network).
        SparseAE(n_components=16, sparsity="batchtopk", max_iter=5),
        SparseAE(n_components=16, sparsity="jumprelu", max_iter=5),
        SparseAE(n_components=16, sparsity="matryoshka", max_iter=5),
        # A user's networks: top-k codes of a linear encoder's outputs.
        SparseAE(
            n_components=16,
            sparsity="topk",
            encoder=torch.nn.Linear,
            decoder=torch.nn.Linear,
            max_iter=5,
        ),
    ],
    DenoisingAE: [
        DenoisingAE(
            n_components=4, hidden_layer_sizes=(8,), noise="masking", max_iter=5
        ),
        DenoisingAE(
            n_components=4,
            hidden_layer_sizes=(8,),
            noise="gaussian",
            pretraining="layerwise",
            max_iter=5,
        ),
        DenoisingAE(
            n_components=4, hidden_layer_sizes=(), noise="salt_and_pepper", max_iter=5
        ),
        DenoisingAE(
            n_components=4,
            encoder=torch.nn.Linear,
            decoder=torch.nn.Linear,
            noise="masking",
            max_iter=5,
        ),
    ],
    ContractiveAE: [
        # The closed-form and the batched-Jacobian penalties.
        ContractiveAE(n_components=4, max_iter=5),
        ContractiveAE(
            n_components=4,
            hidden_layer_sizes=(8,),
            code_activation="tanh",
            pretraining="layerwise",
            max_iter=5,
        ),
        # A user's encoder: the penalty by autograd (the batched Jacobian).
        ContractiveAE(
            n_components=4, encoder=torch.nn.Linear, decoder=torch.nn.Linear, max_iter=5
        ),
    ],
    VAE: [
        VAE(),
        # A user's encoder returns the posterior mean and log-variance.
        VAE(encoder=torch.nn.Linear, decoder=torch.nn.Linear, max_iter=5),
    ],
    # A GRU on rows read as one channel, and a stacked LSTM on rows of 2
    # channels (the checks fit on data of several widths: sequence_shape
    # must be None there, and is tested with shapes in test_sequence.py).
    SequenceAutoencoder: [
        SequenceAutoencoder(n_components=2, hidden_size=8, max_iter=5),
        SequenceAutoencoder(
            n_components=2, cell="lstm", hidden_size=4, num_layers=2, max_iter=5
        ),
    ],
    DictionaryLearner: [
        *(
            DictionaryLearner(n_components=2, code=code, max_iter=20, random_state=0)
            for code in ("sparse", "nonnegative", "onehot", "orthogonal", "independent")
        ),
        # Overcomplete ICA (RICA) on the checks' data of up to 10 features.
        DictionaryLearner(
            n_components=12, code="independent", max_iter=20, random_state=0
        ),
    ],
    # All pairs and negative sampling (the checks' graphs are linear kernels
    # of their rows: dense, non-negative, square).
    GraphAutoencoder: [
        GraphAutoencoder(n_components=2, hidden_layer_size=8, max_iter=20),
        GraphAutoencoder(
            n_components=2, hidden_layer_size=8, max_iter=20, negative_sampling=True
        ),
    ],
    OutlierDetector: [
        # A scikit-learn scorer, an skae model, and the default ensemble kept
        # tiny (the checks fit each configuration dozens of times). A given
        # estimator keeps its own random_state: seeded here.
        OutlierDetector(PCA(n_components=1)),
        OutlierDetector(
            AutoencoderTransformer(
                n_components=1, hidden_layer_sizes=(), max_iter=5, random_state=0
            )
        ),
        OutlierDetector(
            AutoencoderEnsemble(
                n_estimators=2, hidden_layer_size=4, n_steps=10, random_state=0
            )
        ),
    ],
}


def check_instances():
    """Every configuration, for ``parametrize_with_checks``."""
    return [est for instances in CHECK_INSTANCES.values() for est in instances]
