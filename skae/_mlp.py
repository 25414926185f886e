"""The parameters of multi-layer-perceptron autoencoders, in one place.

``hidden_layer_sizes``, ``activation`` and ``dropout`` describe an MLP
encoder and its mirrored decoder; ``pretraining`` trains such a stack greedily,
layer by layer. :class:`MLPMixin` and :class:`LayerwisePretrainingMixin` carry
their validation, their part of the fitted architecture and their training
phase, so an estimator with another kind of network (convolutional,
recurrent, a user's module) derives from :class:`~skae._base.BaseAutoencoder`
alone and inherits none of them.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from skae._phases import LayerwisePretraining
from skae.nn import ACTIVATIONS, MLPAutoencoder

#: Constraints of the MLP parameters, merged into an estimator's own.
MLP_PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like"],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "dropout": [Interval(Real, 0, 1, closed="left")],
}

#: Constraint of ``pretraining``, for the estimators that offer it.
PRETRAINING_PARAMETER_CONSTRAINTS = {
    "pretraining": [StrOptions({"layerwise"}), None],
}


class MLPMixin:
    """An MLP encoder with a mirrored decoder, from ``hidden_layer_sizes``,
    ``activation`` and ``dropout`` (and the model's ``_code_activation()``)."""

    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        sizes = self.hidden_layer_sizes
        if np.ndim(sizes) != 1 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
            for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, got "
                f"{sizes!r}."
            )

    def _code_activation(self):
        """Activation of the code layer: None is linear, as in PCA."""
        return None

    def _architecture(self, n_features):
        return {
            "n_features": int(n_features),
            "n_components": int(self.n_components),
            "hidden_layer_sizes": tuple(int(h) for h in self.hidden_layer_sizes),
            "activation": self.activation,
            "code_activation": self._code_activation(),
            "dropout": float(self.dropout),
        }

    def _build_module(self, architecture):
        return MLPAutoencoder(**architecture)


class LayerwisePretrainingMixin:
    """``pretraining="layerwise"``: greedy layer-wise pretraining of the MLP
    stack (``max_iter`` epochs per level) before the end-to-end training."""

    def _phases(self):
        phases = super()._phases()
        if self.pretraining == "layerwise":
            phases.insert(0, LayerwisePretraining(self.max_iter))
        return phases
