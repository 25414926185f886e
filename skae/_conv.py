"""ConvAutoencoder: strided convolutions to a code, transposed convolutions back."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skae._base import BaseAutoencoder
from skae._denoising import DenoisingObjective
from skae._noise import NOISE_KINDS
from skae._objectives import ReconstructionObjective
from skae._sources import pooled_statistics
from skae.nn import ACTIVATIONS, ConvAutoencoderModule


def resolve_image_shape(image_shape, n_features):
    """``(channels, height, width)`` of rows of ``n_features`` values.

    ``None`` infers a square single-channel image, which is the only
    unambiguous guess; one ``-1`` entry is inferred from ``n_features``, as in
    :func:`numpy.reshape`. Raises a ValueError naming ``image_shape`` when
    the shape does not fit the rows.

    Examples
    --------
    >>> from skae._conv import resolve_image_shape
    >>> resolve_image_shape(None, 784), resolve_image_shape((3, -1, 4), 48)
    ((1, 28, 28), (3, 4, 4))
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"Cannot infer image_shape from {n_features} features: only a "
                "square single-channel image (n_features a perfect square) is "
                "inferred. Pass image_shape=(channels, height, width), e.g. "
                f"(1, 1, {n_features}) for one-dimensional signals."
            )
        return (1, side, side)
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and (s >= 1 or s == -1)
        for s in shape
    ):
        raise ValueError(
            "image_shape must be (channels, height, width), three positive "
            f"integers (one of them may be -1), got {image_shape!r}."
        )
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"image_shape may have one -1 entry, got {image_shape!r}.")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if n_features % known:
            raise ValueError(
                f"image_shape={image_shape!r} does not fit {n_features} features: "
                f"{n_features} is not a multiple of {known}."
            )
        shape = tuple(n_features // known if s == -1 else s for s in shape)
    elif known != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} has {known} values per image, but X has "
            f"{n_features} features."
        )
    return shape


class ConvAutoencoder(BaseAutoencoder):
    r"""Convolutional autoencoder for images given as flattened rows.

    Each row is read as an image of ``image_shape = (channels, height,
    width)``. The encoder applies convolutions of stride 2 (each halves the
    sides; ``channels`` sets their feature maps) and a linear map of the last
    feature maps to a code of ``n_components`` numbers; the decoder mirrors
    it with a linear map and transposed convolutions of stride 2 back to the
    image. Weights are shared across positions, so the model has far fewer
    parameters than an MLP of the same code size and generalizes the local
    structure of images (edges, strokes) from fewer examples. It minimizes

    .. math::

        \min_{f, g} \frac{1}{m} \sum_{i=1}^{m} \ell\big(x_i, g(f(\tilde x_i))\big)
        + \frac{\alpha}{2} \sum_{W} \lVert W \rVert_F^2 ,

    where :math:`\tilde x_i = x_i` without ``noise`` and a fresh corruption of
    it with ``noise`` (a denoising convolutional autoencoder, as
    :class:`DenoisingAE`), and :math:`\ell` is the per-pixel mean squared
    error or binary cross-entropy.

    **Scaling is per channel**, not per pixel: every pixel of a channel is
    shifted and divided by the same numbers (the channel's statistics over all
    its pixels), so the image keeps its spatial structure (a border pixel that
    is almost always black is not blown up to unit variance, as per-pixel
    standardization would do) and a convolution sees the same units
    everywhere.

    Supported objectives: plain reconstruction and denoising (``noise``);
    both only change the input, so they apply to any network. Sparsity and
    contractive penalties and the VAE's likelihoods are not offered with a
    convolutional network yet (use :class:`SparseAE`, :class:`ContractiveAE`
    or :class:`VAE` for MLPs).

    Parameters
    ----------
    n_components : int, default=16
        Size of the code (latent space).
    image_shape : tuple of int or None, default=None
        ``(channels, height, width)`` of one image; rows hold the values
        channel by channel, each channel row by row (as
        ``images.reshape(len(images), -1)`` gives for an array of shape
        ``(n_images, channels, height, width)``). None infers a square
        single-channel image (``n_features`` must be a perfect square, e.g.
        784 for 28 x 28), and raises a ValueError otherwise. One entry may be
        -1, inferred from ``n_features`` (``(1, 1, -1)``: one-dimensional
        signals).
    channels : array-like of int, default=(16, 32)
        Feature maps of the encoder's strided convolutions, input side first;
        the decoder's transposed convolutions mirror them.
    kernel_size : int, default=3
        Side of the square convolution kernels; odd, so that the padding
        ``kernel_size // 2`` keeps the image centred.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation after every convolution but the decoder's last.
    noise : {"gaussian", "masking", "salt_and_pepper"} or None, default=None
        Corruption of the training inputs, drawn afresh for every mini-batch
        (see :class:`DenoisingAE`); None trains a plain autoencoder. The
        salt-and-pepper extremes are each channel's minimum and maximum.
    noise_level : float, default=0.3
        Standard deviation (``"gaussian"``) or probability per feature
        (``"masking"``, ``"salt_and_pepper"``, then at most 1). Ignored
        without ``noise``.
    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"auto"`` uses ``"bce"`` when all training values
        lie in [0, 1] (e.g. pixel intensities) and ``"mse"`` otherwise. The
        resolved value is stored in ``loss_``.
    scaling : {"auto", "global", "standard", "minmax", "none"}, default="auto"
        Internal input scaling, per channel. ``"auto"``: ``"global"`` for MSE
        (each channel centred on its mean, all channels divided by one scale,
        the root mean variance) and ``"minmax"`` for BCE (each channel to
        [0, 1] by its minimum and maximum; no change when the data already lie
        in [0, 1]). ``"standard"`` centres each channel and divides it by its
        own standard deviation.
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
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, monitor its loss (the
        training objective, on uncorrupted inputs) to stop, and keep the
        weights with the best validation loss.
    validation_fraction : float, default=0.1
        Share of the data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
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
    module_ : skae.nn.ConvAutoencoderModule
        The fitted network (``encoder_`` and ``decoder_`` are its parts).
    image_shape_ : tuple of int
        ``(channels, height, width)`` the rows were read as.
    loss_ : str
        Loss actually used (``"mse"`` or ``"bce"``).
    scaling_ : str
        Scaling actually used.
    offset_ : ndarray of shape (n_features_in_,)
        Offset subtracted before encoding (the same for every pixel of a
        channel).
    scale_ : ndarray of shape (n_features_in_,)
        Divisor applied before encoding (the same for every pixel of a
        channel).
    data_min_ : ndarray of shape (n_features_in_,)
        Each pixel's channel minimum over the training data (salt-and-pepper's
        "pepper").
    data_max_ : ndarray of shape (n_features_in_,)
        Each pixel's channel maximum (salt-and-pepper's "salt").
    device_ : torch.device
        Device the model lives on.
    n_iter_ : int
        Number of epochs run.
    n_pretraining_iter_ : int
        Always 0 (no layer-wise pretraining for convolutional networks).
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_loss_curve_ : list of float
        Validation loss per epoch (only when early stopping used a split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    AutoencoderTransformer : The MLP autoencoder, for rows without spatial
        structure.
    DenoisingAE : Denoising with an MLP.
    sklearn.decomposition.PCA : The linear baseline.

    References
    ----------
    J. Masci, U. Meier, D. Ciresan and J. Schmidhuber, "Stacked
    convolutional auto-encoders for hierarchical feature extraction",
    ICANN 2011.

    V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep
    learning", arXiv:1603.07285, 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ConvAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = ConvAutoencoder(n_components=8, channels=(8,), max_iter=2,
    ...                      random_state=0)
    >>> Z = ae.fit_transform(X / 16)
    >>> ae.image_shape_, Z.shape
    ((1, 8, 8), (1797, 8))
    >>> ae.inverse_transform(Z).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "image_shape": ["array-like", None],
        "channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "noise": [StrOptions(set(NOISE_KINDS)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=16,
        *,
        image_shape=None,
        channels=(16, 32),
        kernel_size=3,
        activation="relu",
        noise=None,
        noise_level=0.3,
        loss="auto",
        scaling="auto",
        alpha=1e-5,
        learning_rate=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.image_shape = image_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.noise = noise
        self.noise_level = noise_level
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
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks
    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        resolve_image_shape(self.image_shape, n_features)
        channels = self.channels
        if np.ndim(channels) != 1 or not all(
            isinstance(c, Integral) and not isinstance(c, bool) and c >= 1
            for c in channels
        ):
            raise ValueError(
                f"channels must be a sequence of positive integers, got {channels!r}."
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (the padding kernel_size // 2 then keeps "
                f"the image centred), got {self.kernel_size}."
            )
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} is a probability for "
                f"noise={self.noise!r} and must lie in [0, 1]."
            )

    def _fit_scaler(self, stats, scaling, in_unit_interval):
        shape = resolve_image_shape(self.image_shape, len(stats.mean))
        pooled = pooled_statistics(stats, shape, channel_axis=0)
        super()._fit_scaler(pooled, scaling, in_unit_interval)
        # Salt-and-pepper extremes, per channel, kept in X's units so that
        # partial_fit after skae.load corrupts the same way.
        self.data_min_, self.data_max_ = pooled.min.copy(), pooled.max.copy()

    def _architecture(self, n_features):
        return {
            "n_features": int(n_features),
            "n_components": int(self.n_components),
            "image_shape": resolve_image_shape(self.image_shape, n_features),
            "channels": tuple(int(c) for c in self.channels),
            "kernel_size": int(self.kernel_size),
            "activation": self.activation,
        }

    def _build_module(self, architecture):
        return ConvAutoencoderModule(
            architecture["image_shape"],
            architecture["n_components"],
            architecture["channels"],
            architecture["kernel_size"],
            architecture["activation"],
        )

    @property
    def image_shape_(self):
        """``(channels, height, width)`` the rows are read as (fitted)."""
        check_is_fitted(self)
        return self.architecture_["image_shape"]

    def _make_objective(self):
        if self.noise is None:
            return ReconstructionObjective(self.loss_)
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
