"""AutoencoderTransformer: the plain (deterministic, unregularized) autoencoder."""

from sklearn.utils._param_validation import StrOptions

from skae._base import BaseAutoencoder
from skae._mlp import (
    MLP_PARAMETER_CONSTRAINTS,
    PRETRAINING_PARAMETER_CONSTRAINTS,
    LayerwisePretrainingMixin,
    MLPMixin,
    initialize_as_pca,
)
from skae._phases import EndToEnd
from skae._user_network import (
    USER_NETWORK_PARAMETER_CONSTRAINTS,
    UserNetworkMixin,
)


class AutoencoderTransformer(
    UserNetworkMixin, LayerwisePretrainingMixin, MLPMixin, BaseAutoencoder
):
    r"""Autoencoder as a scikit-learn transformer, usable wherever PCA is.

    An encoder :math:`f` maps each sample to a code of ``n_components``
    numbers and a decoder :math:`g` maps it back. Both are multi-layer
    perceptrons trained with Adam on the mini-batch objective

    .. math::

        \min_{f, g} \frac{1}{m} \sum_{i=1}^{m} \ell\big(x_i, g(f(x_i))\big)
        + \frac{\alpha}{2} \sum_{W} \lVert W \rVert_F^2 ,

    where :math:`\ell` is the mean squared error or the binary cross-entropy
    per feature, and the second term is an L2 penalty on the weight matrices.
    Inputs are scaled internally (centred and divided by one global scale for
    MSE, so the loss weighs the features as PCA does; to [0, 1] for BCE)
    and every output is returned in the original units.

    With ``hidden_layer_sizes=()`` and ``activation="identity"`` the model is
    a linear autoencoder, whose optimum spans the same subspace as
    ``PCA(n_components)`` on the scaled data.

    **Never worse than PCA** (the defaults, with the MSE loss): the encoder
    and the decoder are each a linear map plus an MLP correction whose last
    layer starts at zero, and the linear maps start as PCA's projection of the
    training rows (``init="pca"``; Baldi and Hornik, 1989: PCA is the linear
    autoencoder's optimum). Training starts from PCA's codes and
    reconstruction and bends them where the data are not linear; with the
    default ``early_stopping=True`` it keeps the PCA start unless held-out
    rows show the trained network to be better beyond noise. The default
    ``scaling="global"`` makes the loss PCA's objective (in X's units, up to
    a constant). ``loss="auto"`` therefore means the MSE with the PCA start,
    also for data in [0, 1]. An explicit ``loss="bce"`` starts from the same
    linear maps, the decoder's output read as logits: a better start than
    random weights (on MNIST, half the held-out error of a random start at
    ``n_components=32``), though not PCA's reconstruction.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code (latent space). The default gives a 2-D map to plot,
        as scikit-learn's manifold learners (``Isomap``, ``TSNE``) default
        to; for features in a ``Pipeline``, set it (or search it) as you
        would PCA's ``n_components``.
    hidden_layer_sizes : array-like of int, default=(128, 64)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. ``()`` gives a single linear map each way.
    init : {"pca", "random"}, default="pca"
        Starting point. ``"pca"``: a linear path plus the MLP, started as PCA
        of the training rows (with BCE the decoder's linear output is read as
        logits); see above.
        ``"random"``: a plain MLP with PyTorch's default random weights.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation of the hidden layers (not of the code layer).
    loss : {"auto", "mse", "bce"}, default="auto"
        Reconstruction loss. ``"auto"`` uses ``"mse"`` with ``init="pca"`` (the
        default; PCA is the MSE's linear optimum, so training starts at it)
        whatever the data; with ``init="random"`` or your own networks it uses
        ``"bce"`` when all training values lie in [0, 1] (e.g. pixel
        intensities) and ``"mse"`` otherwise. The resolved value is stored in
        ``loss_``.
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
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, monitor its loss (the
        training objective, on uncorrupted inputs) to stop, and keep the weights
        with the best validation loss. With ``init="pca"`` the PCA start is
        kept unless the trained weights reconstruct the held-out rows better
        beyond noise (a paired test, ``skae._phases.significantly_better``):
        this is what makes the defaults never worse than PCA.
    validation_fraction : float, default=0.1
        Share of the data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    dropout : float, default=0.0
        Dropout probability on hidden layers during training.
    pretraining : {"layerwise"} or None, default=None
        ``"layerwise"``: greedy layer-wise pretraining of the stacked
        autoencoder (each encoder layer and its mirrored decoder layer trained
        as a shallow autoencoder of the previous layer's codes, for up to
        ``max_iter`` epochs each), then end-to-end fine-tuning. Only matters
        with hidden layers.
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
        The fitted autoencoder (``encoder_`` and ``decoder_`` are its parts).
    encoder_ : torch.nn.Module
        The fitted encoder.
    decoder_ : torch.nn.Module
        The fitted decoder (outputs logits when ``loss_ == "bce"``).
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
        Mean training loss per epoch: pretraining epochs first, if any.
    validation_loss_curve_ : list of float
        Validation loss per epoch (only when early stopping used a split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : The linear special case, solved in closed form.
    sklearn.decomposition.NMF : Non-negative linear factorization.
    sklearn.neural_network.MLPRegressor : A generic MLP; not a transformer.

    References
    ----------
    P. Baldi and K. Hornik, "Neural networks and principal component
    analysis: learning from examples without local minima", Neural Networks
    2(1), 1989.

    G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of
    data with neural networks", Science 313(5786), 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> Z = ae.fit_transform(X)
    >>> Z.shape
    (1797, 8)
    >>> ae.inverse_transform(Z).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        **MLP_PARAMETER_CONSTRAINTS,
        **PRETRAINING_PARAMETER_CONSTRAINTS,
        **USER_NETWORK_PARAMETER_CONSTRAINTS,
        "init": [StrOptions({"pca", "random"})],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(128, 64),
        init="pca",
        activation="relu",
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
        dropout=0.0,
        pretraining=None,
        encoder=None,
        decoder=None,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init = init
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
        self.pretraining = pretraining
        self.encoder = encoder
        self.decoder = decoder
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ hooks
    def _auto_loss(self, in_unit_interval):
        # The PCA start is the optimum of the MSE among linear maps, so it
        # takes the MSE even for data in [0, 1]: from random weights, BCE lost
        # to PCA on digits / 16 (up to 6x its held-out error at k = 32), and
        # its MNIST codes fed an SVC worse (doc/autoencoder.rst, "Why the
        # defaults are never worse than PCA").
        if self.init == "pca" and not self._user_network():
            return "mse"
        return super()._auto_loss(in_unit_interval)

    def _starts_as_pca(self):
        return self.init == "pca" and not self._user_network()

    def _architecture(self, n_features):
        architecture = super()._architecture(n_features)
        if not self._user_network():
            architecture["linear_path"] = self._starts_as_pca()
        return architecture

    def _initialize_module(self, module, rows):
        if self._starts_as_pca():
            initialize_as_pca(module, rows)

    def _phases(self):
        phases = super()._phases()
        if self._starts_as_pca():
            # PCA is where training starts: keep it unless training beats it.
            phases[-1] = EndToEnd(self.max_iter, keep_best=True)
        return phases
