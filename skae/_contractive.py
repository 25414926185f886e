"""ContractiveAE: an autoencoder whose encoder is penalized for its sensitivity."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from skae._base import BaseAutoencoder
from skae._mlp import (
    MLP_PARAMETER_CONSTRAINTS,
    PRETRAINING_PARAMETER_CONSTRAINTS,
    LayerwisePretrainingMixin,
    MLPMixin,
)
from skae._objectives import ReconstructionObjective
from skae._penalties import jacobian_norm_penalty, single_sigmoid_layer
from skae._user_network import (
    USER_NETWORK_PARAMETER_CONSTRAINTS,
    UserNetworkMixin,
)


class ContractiveObjective(ReconstructionObjective):
    r"""Reconstruction loss plus ``weight`` times the mean ``||J_f(x)||_F^2``
    divided by the number of input features.

    For an encoder made of one sigmoid layer the closed form
    :math:`\sum_j (h_j (1 - h_j))^2 \sum_k W_{jk}^2` is used (no Jacobian is
    formed); otherwise batched vector-Jacobian products from the code back to
    the input.
    """

    def __init__(self, loss, weight):
        super().__init__(loss)
        self.weight = weight

    def needs_input_grad(self, module):
        # The closed form of one sigmoid layer needs no graph from x to the code.
        return self.weight > 0 and single_sigmoid_layer(module.encoder) is None

    def penalty(self, code, x_in, module):
        if self.weight == 0:
            return None
        # Per input feature, as the reconstruction loss is: the weight then
        # means the same for 64 or 784 features.
        penalty = jacobian_norm_penalty(module.encoder, code, x_in)
        return self.weight * penalty / x_in.shape[1]


class ContractiveAE(
    UserNetworkMixin, LayerwisePretrainingMixin, MLPMixin, BaseAutoencoder
):
    r"""Contractive autoencoder: codes that barely move when the input moves.

    The reconstruction loss is regularized by the squared Frobenius norm of
    the Jacobian of the encoder :math:`f` at each training sample:

    .. math::

        \min_{f, g} \frac1m \sum_{i=1}^m \Big[\ell\big(x_i, g(f(x_i))\big)
        + \frac{\lambda}{d} \Big\lVert \frac{\partial f(x_i)}{\partial x}
        \Big\rVert_F^2
        \Big] + \frac{\alpha}{2} \sum_W \lVert W \rVert_F^2 ,
        \qquad \lVert J \rVert_F^2 = \sum_{j, k} J_{jk}^2 ,

    with :math:`\ell` the per-feature mean squared error or binary
    cross-entropy, :math:`d` the number of input features (the penalty is a
    per-feature mean, like the loss) and :math:`\lambda` =
    ``contraction_weight``. For a single
    sigmoid layer, :math:`h = \sigma(W x + b)`, the penalty has the closed
    form :math:`\sum_j \big(h_j (1 - h_j)\big)^2 \sum_k W_{jk}^2`, which is
    what is computed then (as cheap as the forward pass). For a deeper encoder
    the Jacobian of the whole batch is obtained with ``n_components`` batched
    vector-Jacobian products (one backward pass vectorized over the code
    units) and differentiated through. Your own ``encoder`` gets the same
    exact penalty by autograd (the closed form when it is a
    ``torch.nn.Sequential`` of one ``Linear`` and a ``Sigmoid``), with the
    same per-feature weight; it must allow a batched backward pass
    (``torch.vmap``), as torch's standard layers do. Its cost grows with
    ``n_components``: 10 epochs on the digits (1,797 rows, a 64-64-16 tanh
    encoder, one CPU thread) took 1.0 s with the penalty and 0.17 s with
    ``contraction_weight=0``.

    The penalty makes the code locally invariant to the directions in which
    the data do not vary, while the reconstruction term keeps it sensitive
    along the data manifold. Unlike :class:`DenoisingAE` the objective is
    deterministic: no noise is sampled.

    Parameters
    ----------
    n_components : int, default=32
        Size of the code. The default suits features for a downstream model:
        the penalty, not a narrow bottleneck, shapes what the code keeps.
    contraction_weight : float, default=1.0
        Weight :math:`\lambda` of the Jacobian penalty, per input feature: the
        penalty is :math:`\lambda \lVert J \rVert_F^2 / n_\text{features}`,
        so the same weight means the same on 64 or 784 features (before
        skae 0.2 it was not divided, and 0.1 on 784 features collapsed the
        codes). The Jacobian is taken with respect to the internally scaled
        input, which ``loss="auto"`` scales globally (mean variance 1), so
        the weight does not depend on X's units either.
    pretraining : {"layerwise"} or None, default=None
        ``"layerwise"``: greedy layer-wise pretraining of the stacked
        autoencoder (each encoder layer and its mirrored decoder layer trained
        as a shallow autoencoder of the previous layer's codes, for up to
        ``max_iter`` epochs each), then end-to-end fine-tuning. Only matters
        with hidden layers.
    hidden_layer_sizes : array-like of int, default=()
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. ``()`` is the classic one-layer contractive autoencoder.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation of the hidden layers (not of the code layer).
    code_activation : {"logistic", "tanh", "identity"}, default="logistic"
        Activation of the code layer (sigmoid in the original formulation).
        Not used with your own ``encoder``, whose outputs are the code.
    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"auto"`` uses ``"mse"`` on globally scaled
        inputs (mean variance 1) whatever the data: the penalty's weight is
        traded against the reconstruction loss, and this is the loss whose size
        does not depend on X's units, so one default weight means the same on
        every data set (with BCE on pixels in [0, 1] the default weights
        failed on MNIST). ``"bce"`` needs data in [0, 1]. The
        resolved value is stored in ``loss_``.
    scaling : {"auto", "global", "standard", "minmax", "none"}, default="auto"
        Internal input scaling. ``"auto"``: for MSE (a Gaussian likelihood)
        ``"global"``, which centres every feature and divides all of them by one
        scale (the root mean variance), so that the loss weighs the features as
        PCA does; for BCE (a Bernoulli likelihood) ``"minmax"`` to [0, 1] (no
        change when the data already lie in [0, 1]). ``"standard"`` standardizes
        each feature (every feature then weighs the same).
    alpha : float, default=1e-5
        L2 penalty on the weight matrices (biases are not penalized).
    learning_rate : float, default=1e-3
        Adam step size.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Reshuffle the samples each epoch.
    tol : float, default=1e-4
        Minimum improvement of the monitored loss, relative to the loss at the
        start of training (so it does not depend on the units of X); training
        stops after ``n_iter_no_change`` epochs without one.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, monitor its loss (the
        training objective, on uncorrupted inputs) to stop, and keep the weights
        with the best validation loss.
    validation_fraction : float, default=0.1
        Share of the data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    dropout : float, default=0.0
        Dropout probability on hidden layers during training.
    encoder : torch.nn.Module, class or callable, default=None
        Your own encoder network (given with ``decoder``), from rows of
        ``n_features`` internally scaled values to codes of ``n_components``.
        A module instance is deep-copied at every fit, so your instance never
        changes and its weights are the starting point; a class or another
        callable is called as ``encoder(n_features, n_components)``, the
        signature of :class:`torch.nn.Linear`, under the fit's seed. The MLP
        parameters (``hidden_layer_sizes``, ``activation``, ``dropout``) then
        do not apply and the network starts as given. None builds skae's MLP.
        Rows must not interact in the network (no batch normalization).
        :func:`skae.save` refuses such a model; pickle or joblib keep it.
    decoder : torch.nn.Module, class or callable, default=None
        Your own decoder network (given with ``encoder``), from codes of
        ``n_components`` to the pre-activation reconstruction of the
        ``n_features`` values (logits when ``loss_ == "bce"``). A class or
        another callable is called as ``decoder(n_components, n_features)``.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw: weight initialization, shuffling, dropout and
        the model's own noise while training, and random draws at inference.
        With an int, results are reproducible; the global RNGs are left
        untouched.
    device : str or torch.device, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    n_jobs : int or None, default=None
        Intra-op threads for training and inference on the CPU. None sizes them
        to the work: one thread for small models (a second one only adds
        synchronisation, and is much slower on a busy machine), torch's setting
        for large ones, capped at the cores other processes leave idle (read
        at the call and again about every second of training). -1 uses every
        available core. The caller's torch setting is restored after each
        call.
    verbose : int, default=0
        Show a progress bar with the loss per epoch when positive.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted autoencoder.
    loss_ : str
        Loss actually used (``"mse"`` or ``"bce"``).
    scaling_ : str
        Scaling actually used.
    offset_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding.
    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied before encoding.
    device_ : torch.device
        Device the model lives on.
    n_iter_ : int
        Number of epochs run (pretraining included).
    n_pretraining_iter_ : int
        Number of layer-wise pretraining epochs (0 without pretraining).
    loss_curve_ : list of float
        Mean training objective per epoch, pretraining epochs first.
    validation_loss_curve_ : list of float
        Validation loss per epoch (only with an early-stopping split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : A linear map, whose Jacobian is constant.
    sklearn.decomposition.KernelPCA : Non-linear features without a decoder
        network.
    DenoisingAE : Robustness to finite corruptions, by sampling noise.
    SparseAE : Penalizes the code's activity instead of its sensitivity.

    References
    ----------
    S. Rifai, P. Vincent, X. Muller, X. Glorot and Y. Bengio, "Contractive
    auto-encoders: explicit invariance during feature extraction", ICML 2011.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ContractiveAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> cae = ContractiveAE(n_components=16, contraction_weight=0.1,
    ...                     max_iter=5, random_state=0)
    >>> cae.fit_transform(X).shape
    (1797, 16)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        **MLP_PARAMETER_CONSTRAINTS,
        **PRETRAINING_PARAMETER_CONSTRAINTS,
        **USER_NETWORK_PARAMETER_CONSTRAINTS,
        "contraction_weight": [Interval(Real, 0, None, closed="left")],
        "code_activation": [StrOptions({"logistic", "tanh", "identity"})],
    }

    def __init__(
        self,
        n_components=32,
        *,
        contraction_weight=1.0,
        pretraining=None,
        hidden_layer_sizes=(),
        activation="relu",
        code_activation="logistic",
        loss="auto",
        scaling="auto",
        alpha=1e-5,
        learning_rate=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        dropout=0.0,
        encoder=None,
        decoder=None,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.contraction_weight = contraction_weight
        self.pretraining = pretraining
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.scaling = scaling
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.encoder = encoder
        self.decoder = decoder
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks
    def _code_activation(self):
        return None if self.code_activation == "identity" else self.code_activation

    def _auto_loss(self, in_unit_interval):
        # A penalty weighed against the reconstruction loss needs a loss whose
        # size does not depend on X's units: the MSE on globally scaled rows.
        # The Jacobian is taken on the scaled input, so its size follows the
        # input's scale too. On MNIST pixels (BCE, variance ~0.1) the codes
        # fed an SVC at 0.93x PCA's; with the MSE 1.0x, the Jacobian still
        # halved against the same model unpenalized.
        return "mse"

    def _make_objective(self):
        return ContractiveObjective(self.loss_, self.contraction_weight)
