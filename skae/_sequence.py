"""SequenceAutoencoder: a recurrent (GRU / LSTM) autoencoder for sequences."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skae import _dask
from skae._base import BaseAutoencoder
from skae._dask import is_dask_collection
from skae._losses import reconstruction_loss
from skae._sources import pooled_statistics
from skae.nn import RecurrentAutoencoder
from skae.nn._recurrent import CELLS
from skae.utils._warnings import warn_user


class SequenceAutoencoder(BaseAutoencoder):
    r"""Recurrent autoencoder for sequences (GRU or LSTM), as a transformer.

    Each row of X is one sequence of ``n_steps`` steps of ``n_channels``
    channels, flattened step by step (``X = windows.reshape(n, -1)`` for an
    array ``windows`` of shape ``(n, n_steps, n_channels)``), as every
    scikit-learn transformer takes rows. An encoder reads the steps
    :math:`x_1, \dots, x_T` with a recurrent network and maps its last state
    :math:`h_T` linearly to the code :math:`z`; a decoder unrolls :math:`z`
    back: :math:`z` sets the decoder's initial state and is its input at every
    step, and a linear read-out of each step's state gives
    :math:`\hat x_t` (Srivastava et al., 2015). Both are trained with Adam
    on

    .. math::

        \min \frac{1}{m} \sum_{i=1}^{m} \frac{1}{T C} \sum_{t=1}^{T}
        \sum_{c=1}^{C} \ell\big(x_{itc}, \hat x_{itc}\big)
        + \frac{\alpha}{2} \sum_{W} \lVert W \rVert_F^2 ,

    with :math:`\ell` the squared error or the binary cross-entropy.
    Scaling is per *channel*: every step of a channel gets the same offset
    and divisor, so a time shift of the data does not change how it is
    scaled, and the network sees the same units at every step.

    :meth:`score_samples` (the negative reconstruction loss of each
    sequence) is an anomaly score for windows of a time series;
    :meth:`score_steps` scores every step of every sequence, and
    :func:`skae.timeseries.sliding_windows` /
    :func:`skae.timeseries.window_scores_to_steps` turn a series into window
    rows and window scores back into per-time-step scores.

    Read more in the :ref:`User Guide <sequence_ae>`.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code (latent space).
    sequence_shape : tuple of (int, int) or None, default=None
        ``(n_steps, n_channels)`` of one sequence: rows must have
        ``n_steps * n_channels`` features. None reads every row as one
        channel over ``n_features`` steps, ``(n_features, 1)``.
    cell : {"gru", "lstm"}, default="gru"
        Recurrent cell of the encoder and of the decoder.
    hidden_size : int, default=64
        Width of the recurrent state.
    num_layers : int, default=1
        Number of stacked recurrent layers, in the encoder and in the decoder.
    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"auto"`` uses ``"bce"`` when all training values
        lie in [0, 1] (e.g. pixel intensities) and ``"mse"`` otherwise. The
        resolved value is stored in ``loss_``.
    scaling : {"auto", "global", "standard", "minmax", "none"}, default="auto"
        Internal input scaling, per channel (the statistics of a channel are
        pooled over its steps). ``"auto"``: ``"standard"`` for MSE, as the
        channels of a series are often in different units (each channel
        then weighs the same); ``"minmax"`` for BCE (no change when the data
        already lie in [0, 1]). ``"global"`` centres each channel and divides
        all of them by one scale.
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
    module_ : skae.nn.RecurrentAutoencoder
        The fitted autoencoder (``encoder_`` and ``decoder_`` are its parts).
    encoder_ : torch.nn.Module
        The fitted recurrent encoder.
    decoder_ : torch.nn.Module
        The fitted recurrent decoder (outputs logits when ``loss_ == "bce"``).
    sequence_shape_ : tuple of (int, int)
        ``(n_steps, n_channels)`` used, given or inferred.
    architecture_ : dict
        The fitted network's description (sizes, cell), which rebuilds it.
    loss_ : str
        Loss actually used (``"mse"`` or ``"bce"``).
    scaling_ : str
        Scaling actually used.
    offset_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding; equal at every step of
        a channel.
    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied before encoding; equal at every step of a
        channel.
    device_ : torch.device
        Device the model lives on.
    n_iter_ : int
        Number of epochs run.
    n_pretraining_iter_ : int
        Always 0 (no layer-wise pretraining for recurrent networks).
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_loss_curve_ : list of float
        Validation loss per epoch (only with an early-stopping split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    AutoencoderTransformer : The MLP autoencoder, for rows without order.
    skae.timeseries.sliding_windows : Rows of windows of a time series.
    sklearn.ensemble.IsolationForest : A tree-based anomaly detector.

    References
    ----------
    N. Srivastava, E. Mansimov and R. Salakhutdinov, "Unsupervised learning
    of video representations using LSTMs", ICML 2015.

    P. Malhotra et al., "LSTM-based encoder-decoder for multi-sensor anomaly
    detection", ICML Anomaly Detection Workshop, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import SequenceAutoencoder
    >>> t = np.linspace(0, 8 * np.pi, 2000)
    >>> series = np.column_stack([np.sin(t), np.cos(t)])  # 2 channels
    >>> from skae.timeseries import sliding_windows
    >>> X = sliding_windows(series, window=20, stride=5)
    >>> X.shape
    (397, 40)
    >>> ae = SequenceAutoencoder(n_components=4, sequence_shape=(20, 2),
    ...                          hidden_size=16, max_iter=3, random_state=0)
    >>> ae.fit_transform(X).shape
    (397, 4)
    >>> ae.score_steps(X).shape
    (397, 20)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "sequence_shape": ["array-like", None],
        "cell": [StrOptions(set(CELLS))],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        sequence_shape=None,
        cell="gru",
        hidden_size=64,
        num_layers=1,
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
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.sequence_shape = sequence_shape
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
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
    def _sequence_shape(self, n_features):
        """``(n_steps, n_channels)`` for rows of ``n_features``, checked."""
        shape = self.sequence_shape
        if shape is None:
            return int(n_features), 1
        if (
            np.ndim(shape) != 1
            or len(shape) != 2
            or not all(
                isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                for s in shape
            )
        ):
            raise ValueError(
                "sequence_shape must be None or a pair of positive integers "
                f"(n_steps, n_channels), got {shape!r}."
            )
        n_steps, n_channels = int(shape[0]), int(shape[1])
        if n_steps * n_channels != n_features:
            raise ValueError(
                f"sequence_shape={(n_steps, n_channels)} describes rows of "
                f"{n_steps} x {n_channels} = {n_steps * n_channels} features, but "
                f"X has {n_features} features."
            )
        return n_steps, n_channels

    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        self._sequence_shape(n_features)

    def _resolve_loss_and_scaling(self, stats):
        loss, scaling, in_unit = super()._resolve_loss_and_scaling(stats)
        if self.scaling == "auto" and loss == "mse":
            scaling = "standard"
        return loss, scaling, in_unit

    def _fit_scaler(self, stats, scaling, in_unit_interval):
        shape = self._sequence_shape(len(stats.mean))
        super()._fit_scaler(
            pooled_statistics(stats, shape, channel_axis=1), scaling, in_unit_interval
        )

    def _architecture(self, n_features):
        n_steps, n_channels = self._sequence_shape(n_features)
        return {
            "n_features": int(n_features),
            "n_components": int(self.n_components),
            "n_steps": n_steps,
            "n_channels": n_channels,
            "cell": self.cell,
            "hidden_size": int(self.hidden_size),
            "num_layers": int(self.num_layers),
        }

    def _build_module(self, architecture):
        return RecurrentAutoencoder(**architecture)

    # ------------------------------------------------------------- public API
    @property
    def sequence_shape_(self):
        """``(n_steps, n_channels)`` of the fitted model."""
        check_is_fitted(self)
        return self.architecture_["n_steps"], self.architecture_["n_channels"]

    def _step_scores(self, module, x):
        # One "sample" per step: the loss averaged over that step's channels.
        n_channels = self.architecture_["n_channels"]
        per_step = reconstruction_loss(
            module(x).reshape(-1, n_channels), x.reshape(-1, n_channels), self.loss_
        )
        return -per_step.reshape(len(x), -1)

    def score_steps(self, X):
        """Per-step score of every sequence: higher means more normal.

        The negative reconstruction loss of each step, averaged over the
        channels, in the internally scaled space; its mean over the steps is
        :meth:`score_samples`. Map the scores of overlapping windows back to
        time steps with :func:`skae.timeseries.window_scores_to_steps`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Flattened sequences; a dask array gives a lazy dask array.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_steps)
        """
        if is_dask_collection(X):  # lazily, chunk by chunk, as score_samples
            check_is_fitted(self)
            n_steps = self.architecture_["n_steps"]
            return _dask._lazy(self, X, "score_steps", None, (n_steps,))
        X = self._validated_float(X)
        n_steps = self.architecture_["n_steps"]
        scores = self._iter_batches(X, self._step_scores, (n_steps,), X.dtype)
        # As in score_samples: a step too large to score is as abnormal as
        # can be, and every other step is still scored.
        bad = ~np.isfinite(scores)
        if bad.any():
            scores[bad] = -np.inf
            warn_user(
                f"{type(self).__name__}.score_steps: {int(bad.sum())} step(s) hold "
                "values too large to score (far outside the training range); they "
                "get the lowest possible score, -inf."
            )
        return scores
