"""Small configurations of every skae estimator for scikit-learn's common checks.

Kept in the test suite, as scikit-learn keeps its own in
``sklearn.utils._test_common.instance_generator``, not in the estimator
classes. Each estimator is covered by configurations that exercise its
distinct code paths (every corruption, sparsity kind, code type, ...).
"""

from skae import (
    VAE,
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    DictionaryLearner,
    SparseAE,
)

CHECK_INSTANCES = {
    AutoencoderTransformer: [AutoencoderTransformer()],
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
    ],
    VAE: [VAE()],
    DictionaryLearner: [
        DictionaryLearner(n_components=2, code=code, max_iter=20, random_state=0)
        for code in ("sparse", "nonnegative", "onehot", "orthogonal")
    ],
}


def check_instances():
    """Every configuration, for ``parametrize_with_checks``."""
    return [est for instances in CHECK_INSTANCES.values() for est in instances]
