"""The kinds of code sparsity of :class:`~skae.SparseAE`, one small object each.

A kind says everything :class:`~skae.SparseAE` needs to know about it: the
activation of the code layer, what it adds to the module (a top-k layer),
how it initializes the code layer, its penalty on the code and its default
weight, when a code unit counts as firing, and whether dead units are
resampled. ``SPARSITY_KINDS`` maps the ``sparsity`` parameter's values to
them; adding a kind is adding one class and one entry here (the parameter's
allowed values and the estimator read this table).

With a user's encoder and decoder (``SparseAE(encoder=..., decoder=...)``)
the encoder's outputs are the code's pre-activations, and
``wrap_user_encoder`` puts the kind's code activation or selection after
them (``user_code_layer``; the dictionary kinds' activation, with the firing
counts their AuxK loss reads).
"""

import math

import torch

from skae._penalties import TopK, kl_sparsity_penalty, l1_penalty
from skae._sae_training import geometric_median, sample_rows
from skae.nn import ACTIVATIONS, linear_layers
from skae.nn._sae import BatchTopK, JumpReLU, SAEModule, UserSAEEncoder


class SparsityKind:
    """Base: a linear code, no penalty, units fire when non-zero."""

    #: Activation of the code layer (None: linear), a key of skae.nn.ACTIVATIONS.
    code_activation = None
    #: ``sparsity_weight`` when the user leaves it None.
    default_weight = 0.0
    #: A unit fires on a sample when its activation exceeds this (None: != 0).
    firing_threshold = None
    #: Whether units that never fire are re-initialized (``resample_dead``).
    resamples_dead = False
    #: Whether the kind has its own network (:class:`DictionaryKind`) instead
    #: of the MLP of ``hidden_layer_sizes``.
    own_network = False

    def architecture(self, n_components, k):
        """Entries this kind adds to the fitted architecture."""
        return {}

    def user_architecture(self, n_components, params):
        """Entries this kind adds to the architecture of a user's network,
        from the estimator's parameters."""
        return self.architecture(n_components, params["k"])

    def wrap_user_encoder(self, encoder, architecture):
        """A user's encoder followed by the kind's code layer."""
        return torch.nn.Sequential(encoder, self.user_code_layer(architecture))

    def user_code_layer(self, architecture):
        """The layer after a user's encoder: its outputs become the code."""
        if self.code_activation is None:
            return torch.nn.Identity()
        return ACTIVATIONS[self.code_activation]()

    def extend_module(self, module, architecture):
        """Add layers to the MLP module (structure only, no initialization)."""

    def initialize(self, module, sparsity_target):
        """Initialize a freshly built module's code layer."""

    def penalty(self, code, weight, sparsity_target):
        """The sparsity penalty of a batch of codes, or None."""
        return None

    def fires(self, code):
        """Which activations count as firing."""
        if self.firing_threshold is None:
            return code != 0
        return code > self.firing_threshold


class ShiftedSigmoid(torch.nn.Module):
    """:math:`h \\mapsto \\sigma(h + c)` with a fixed shift :math:`c`.

    Examples
    --------
    >>> import math, torch
    >>> from skae._sparsity import ShiftedSigmoid
    >>> ShiftedSigmoid(math.log(0.05 / 0.95))(torch.zeros(1)).round(decimals=3)
    tensor([0.0500])
    """

    def __init__(self, shift):
        super().__init__()
        self.shift = float(shift)

    def forward(self, h):
        return torch.sigmoid(h + self.shift)

    def extra_repr(self):
        return f"shift={self.shift:.4g}"


class KLSparsity(SparsityKind):
    r"""Sigmoid codes and :math:`\beta \sum_j KL(\rho \| \hat\rho_j)` on the
    mini-batch mean activations :math:`\hat\rho_j` (Ng, 2011)."""

    code_activation = "logistic"
    # Chosen on an MNIST selection split (10k rows, not the benchmark's):
    # the largest of 0.1, 0.07, 0.05, 0.035, 0.025 with SVC accuracy on
    # the codes >= 0.955x PCA's and mean activation <= 2 * rho = 0.10
    # (0.07: 0.959x, 0.0996; 0.1 gave 0.953x, 0.086).
    default_weight = 0.07
    # Sigmoid units are never exactly 0: firing means above one half.
    firing_threshold = 0.5

    def user_architecture(self, n_components, params):
        rho = float(params["sparsity_target"])
        return {"code_shift": math.log(rho / (1 - rho))}

    def user_code_layer(self, architecture):
        # A user's last layer is not skae's to initialize: the fixed shift
        # logit(rho) starts every unit at the target activity all the same
        # (a code of pre-activation 0 has activity rho), as the bias start
        # of skae's own network does.
        return ShiftedSigmoid(architecture["code_shift"])

    def initialize(self, module, sparsity_target):
        # Start every unit at the target activity rho: from bias 0 (activity
        # 1/2) Adam needs thousands of steps to get there, during which the
        # penalty dominates the loss.
        rho = sparsity_target
        with torch.no_grad():
            linear_layers(module.encoder)[-1].bias.fill_(math.log(rho / (1 - rho)))

    def penalty(self, code, weight, sparsity_target):
        if weight > 0:
            return weight * kl_sparsity_penalty(code, sparsity_target)
        return None


class L1Sparsity(SparsityKind):
    r"""ReLU codes and :math:`\beta \lVert h \rVert_1` per sample."""

    code_activation = "relu"
    default_weight = 0.02
    resamples_dead = True

    def penalty(self, code, weight, sparsity_target):
        if weight > 0:
            return weight * l1_penalty(code)
        return None


class TopKSparsity(SparsityKind):
    """The ``k`` largest linear code units of each sample kept, the others
    zeroed (Makhzani and Frey, 2014); no penalty."""

    resamples_dead = True

    def architecture(self, n_components, k):
        return {"k": max(1, n_components // 10) if k is None else int(k)}

    def extend_module(self, module, architecture):
        module.encoder.append(TopK(architecture["k"]))

    def user_code_layer(self, architecture):
        return TopK(architecture["k"])


class DictionaryKind(SparsityKind):
    r"""Base of the kinds with the network of the interpretability literature,
    :class:`skae.nn._sae.SAEModule`: one layer, unit-norm decoder columns
    (a dictionary of directions), the encoder started as the decoder's
    transpose, a pre-encoder bias started at the training rows' geometric
    median, the MSE loss and the AuxK loss of dead latents
    (:class:`skae._sae_training.SAEObjective`)."""

    own_network = True

    def architecture(self, n_components, k):
        return {}

    def network_architecture(self, n_components, params):
        """Entries of the fitted architecture from the estimator's parameters."""
        aux_k = params["aux_k"]
        return {
            "aux_k": max(1, min(512, n_components // 2))
            if aux_k is None
            else int(aux_k),
            "dead_window": int(params["dead_window"]),
        }

    def activation(self, architecture):
        """The activation module of the network of ``architecture``."""
        raise NotImplementedError

    def user_architecture(self, n_components, params):
        return self.network_architecture(n_components, params)

    def wrap_user_encoder(self, encoder, architecture):
        # The objective reads the pre-activations and the firing counts;
        # the unit-norm dictionary, the tied start and the pre-encoder bias
        # are skae's own network's, not applied to a user's.
        return UserSAEEncoder(
            encoder, self.activation(architecture), architecture["n_components"]
        )

    def build_module(self, architecture):
        return SAEModule(
            architecture["n_features"],
            architecture["n_components"],
            self.activation(architecture),
        )

    def initialize_from_rows(self, module, rows):
        """Start the pre-encoder bias at the geometric median of the rows."""
        median = geometric_median(sample_rows(rows))
        with torch.no_grad():
            module.encoder.pre_bias.copy_(median.to(module.encoder.pre_bias))

    def code_penalty(self, activation, pre_activations, weight):
        """The penalty of a batch, from the pre-activations, or None."""
        return None

    def prefixes(self, architecture):
        """Nested prefix sizes of the reconstruction loss, or None (all)."""
        return None


class BatchTopKSparsity(DictionaryKind):
    """The ``k * batch`` largest activations of a training batch kept, a
    threshold at inference (Bussmann et al., 2024)."""

    def network_architecture(self, n_components, params):
        k = params["k"]
        return {
            "k": max(1, n_components // 10) if k is None else int(k),
            **super().network_architecture(n_components, params),
        }

    def activation(self, architecture):
        return BatchTopK(architecture["k"])


def matryoshka_prefixes(n_components, n_levels):
    """Nested prefix sizes ``ceil(n / 2**(L - l))``, l = 1..L, without repeats.

    Examples
    --------
    >>> from skae._sparsity import matryoshka_prefixes
    >>> matryoshka_prefixes(100, 4)
    (13, 25, 50, 100)
    >>> matryoshka_prefixes(2, 4)
    (1, 2)
    """
    sizes = [
        math.ceil(n_components / 2 ** (n_levels - level))
        for level in range(1, n_levels + 1)
    ]
    return tuple(sorted(set(sizes)))


class MatryoshkaSparsity(BatchTopKSparsity):
    r"""BatchTopK codes trained so that every prefix of the dictionary
    reconstructs on its own (Matryoshka SAE, Bussmann et al., 2025): the
    first latents learn general features, later ones refinements."""

    def network_architecture(self, n_components, params):
        return {
            "matryoshka_levels": int(params["matryoshka_levels"]),
            **super().network_architecture(n_components, params),
        }

    def prefixes(self, architecture):
        return matryoshka_prefixes(
            architecture["n_components"], architecture["matryoshka_levels"]
        )


class JumpReLUSparsity(DictionaryKind):
    r"""Learned per-latent thresholds and the penalty
    :math:`\lambda \lVert z \rVert_0` through the straight-through estimator
    (Rajamanoharan et al., 2024)."""

    default_weight = 0.03

    def network_architecture(self, n_components, params):
        return {
            "bandwidth": float(params["bandwidth"]),
            **super().network_architecture(n_components, params),
        }

    def activation(self, architecture):
        return JumpReLU(architecture["n_components"], architecture["bandwidth"])

    def code_penalty(self, activation, pre_activations, weight):
        if weight > 0:
            return weight * activation.l0(pre_activations).mean()
        return None


#: The ``sparsity`` parameter's values and their kinds.
SPARSITY_KINDS = {
    "kl": KLSparsity(),
    "l1": L1Sparsity(),
    "topk": TopKSparsity(),
    "batchtopk": BatchTopKSparsity(),
    "matryoshka": MatryoshkaSparsity(),
    "jumprelu": JumpReLUSparsity(),
}
