"""DenoisingAE: reconstructs clean inputs from freshly corrupted copies."""

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skae._base import BaseAutoencoder
from skae._mlp import (
    MLP_PARAMETER_CONSTRAINTS,
    PRETRAINING_PARAMETER_CONSTRAINTS,
    LayerwisePretrainingMixin,
    MLPMixin,
)
from skae._noise import NOISE_KINDS, corrupt
from skae._objectives import ReconstructionObjective
from skae._user_network import (
    USER_NETWORK_PARAMETER_CONSTRAINTS,
    UserNetworkMixin,
)


class DenoisingObjective(ReconstructionObjective):
    """Reconstruction of the clean ``x`` from a freshly corrupted copy of it."""

    def __init__(self, loss, noise, noise_level, low, high):
        super().__init__(loss)
        self.noise = noise
        self.noise_level = noise_level
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def corrupt(self, x):
        return corrupt(x, self.noise, self.noise_level, self.low, self.high)


class DenoisingAE(
    UserNetworkMixin, LayerwisePretrainingMixin, MLPMixin, BaseAutoencoder
):
    r"""Denoising autoencoder: learns to undo a corruption of its input.

    Each training sample :math:`x` is corrupted afresh, every mini-batch of
    every epoch, into :math:`\tilde x \sim q(\tilde x \mid x)`, and the
    network is trained to recover the *clean* sample:

    .. math::

        \min_{f, g} \frac1m \sum_{i=1}^m
        \ell\big(x_i, g(f(\tilde x_i))\big)
        + \frac{\alpha}{2} \sum_W \lVert W \rVert_F^2 ,
        \qquad \tilde x_i \sim q(\cdot \mid x_i),

    where :math:`\ell` is the per-feature mean squared error or binary
    cross-entropy. The corruption :math:`q` (``noise``) is one of

    - ``"gaussian"``: :math:`\tilde x = x + \sigma u`,
      :math:`u \sim \mathcal N(0, I)`, :math:`\sigma` = ``noise_level``;
    - ``"masking"`` (input dropout): each feature is set to 0 with
      probability ``noise_level``;
    - ``"salt_and_pepper"``: each feature is set, with probability
      ``noise_level``, to its minimum or maximum over the training data
      (each with probability 1/2).

    Noise is applied in the internally scaled space: for data in [0, 1]
    (BCE, e.g. pixel intensities) that is the data's own units; for
    centred data (MSE), ``noise_level`` of ``"gaussian"`` is a fraction
    of the scale of the data (with the default ``scaling="global"``, the
    root mean variance of the features; with ``"standard"``, each feature's
    standard deviation) and ``"masking"`` sets a feature to
    its training mean. ``transform``, ``inverse_transform``, ``denoise`` and
    ``score_samples`` never add noise.

    Parameters
    ----------
    n_components : int, default=32
        Size of the code. Overcomplete codes are fine: the corruption, not
        the bottleneck, stops the network from copying its input.
    noise : {"gaussian", "masking", "salt_and_pepper"}, default="masking"
        The corruption process.
    noise_level : float, default=0.3
        Standard deviation (``"gaussian"``) or probability per feature
        (``"masking"``, ``"salt_and_pepper"``, then at most 1).
    pretraining : {"layerwise"} or None, default=None
        ``"layerwise"``: greedy layer-wise pretraining of the stacked
        autoencoder (each encoder layer and its mirrored decoder layer trained
        as a shallow autoencoder of the previous layer's codes, for up to
        ``max_iter`` epochs each), then end-to-end fine-tuning. Only matters
        with hidden layers.
    hidden_layer_sizes : array-like of int, default=(128,)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation of the hidden layers (not of the code layer).
    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"auto"`` uses ``"bce"`` when all training values
        lie in [0, 1] (e.g. pixel intensities) and ``"mse"`` otherwise. The
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
    data_min_ : ndarray of shape (n_features_in_,)
        Per-feature minimum of the training data (salt-and-pepper's "salt").
    data_max_ : ndarray of shape (n_features_in_,)
        Per-feature maximum of the training data (its "pepper").
    n_iter_ : int
        Number of epochs run (pretraining included).
    n_pretraining_iter_ : int
        Number of layer-wise pretraining epochs (0 without pretraining).
    loss_curve_ : list of float
        Mean training loss (on corrupted inputs) per epoch, pretraining
        epochs first.
    validation_loss_curve_ : list of float
        Validation loss per epoch (only with an early-stopping split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : Linear reconstruction; its projection also
        removes isotropic noise outside the principal subspace.
    sklearn.impute.IterativeImputer : Fills in missing values, the
        ``"masking"`` task, feature by feature.
    AutoencoderTransformer : The same network trained without corruption.
    ContractiveAE : Robustness to infinitesimal input changes, analytically.

    References
    ----------
    P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and P.-A. Manzagol,
    "Stacked denoising autoencoders", JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> dae = DenoisingAE(noise="masking", noise_level=0.3, max_iter=5,
    ...                   random_state=0).fit(X)
    >>> X_noisy = X * (np.random.default_rng(0).random(X.shape) > 0.3)
    >>> dae.denoise(X_noisy).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        **MLP_PARAMETER_CONSTRAINTS,
        **PRETRAINING_PARAMETER_CONSTRAINTS,
        **USER_NETWORK_PARAMETER_CONSTRAINTS,
        "noise": [StrOptions(set(NOISE_KINDS))],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=32,
        *,
        noise="masking",
        noise_level=0.3,
        pretraining=None,
        hidden_layer_sizes=(128,),
        activation="relu",
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
        self.noise = noise
        self.noise_level = noise_level
        self.pretraining = pretraining
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} is a probability for "
                f"noise={self.noise!r} and must lie in [0, 1]."
            )

    def _begin_training(self, stats, n_features, device, entropy):
        super()._begin_training(stats, n_features, device, entropy)
        # Salt-and-pepper extremes: the per-feature min / max of the training
        # data, kept (in X's units) so that partial_fit after skae.load works.
        self.data_min_, self.data_max_ = stats.min.copy(), stats.max.copy()

    def _make_objective(self):
        # Scaling is increasing and per feature: the scaled extremes.
        low = (self.data_min_ - self.offset_) / self.scale_
        high = (self.data_max_ - self.offset_) / self.scale_
        return DenoisingObjective(
            self.loss_,
            self.noise,
            self.noise_level,
            torch.as_tensor(low, dtype=torch.float32, device=self.device_),
            torch.as_tensor(high, dtype=torch.float32, device=self.device_),
        )

    # ------------------------------------------------------------- public API
    def denoise(self, X):
        """Reconstruct X through the network: ``inverse_transform(transform(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Possibly corrupted data, in the units seen in ``fit``.

        Returns
        -------
        X_denoised : ndarray of shape (n_samples, n_features_in_)
            The reconstructions, in the units of the training data.
        """
        return self.inverse_transform(self.transform(X))
