"""VAE: the variational autoencoder, with likelihoods, sampling and IWAE scores."""

import copy
import hashlib
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import check_is_fitted

from skae import _random
from skae._base import BaseAutoencoder
from skae._input import validate_float_rows
from skae._mlp import MLP_PARAMETER_CONSTRAINTS, MLPMixin
from skae._phases import EndToEnd
from skae._user_network import (
    USER_NETWORK_PARAMETER_CONSTRAINTS,
    UserNetworkMixin,
    UserVAENetwork,
)
from skae._vae_math import (
    elbo_terms,
    iwae_bound,
    iwae_log_weights,
)
from skae.nn._vae import VAEModule
from skae.utils._threads import threads_sized_to

#: Decoder evaluations (rows x importance samples) held at once when scoring.
_SCORE_BUDGET = 8192
#: Bytes of a scoring pass's rows (as float64): bounds a pass on wide rows.
_SCORE_BATCH_BYTES = 64 * 2**20


class ELBOObjective(torch.nn.Module):
    r"""Negative (beta-weighted) ELBO per sample, averaged over the batch.

    ``loss = mean_i [ -log p(x_i | z_i) + beta * kl_weight * KL_i ]`` with one
    reparameterized draw :math:`z_i` per sample from torch's global RNG. The
    KL weight rises linearly from ``1 / kl_warmup`` to 1 over the first
    ``kl_warmup`` epochs of training (set by the engine's ``begin_epoch``).
    On training batches it also sums the (unweighted) reconstruction and KL
    terms on the device; ``epoch_statistics`` reports their means, the
    reconstruction shifted by ``log_jacobian`` so that it is in X's units.
    """

    def __init__(
        self, likelihood, beta=1.0, binarize=None, kl_warmup=0, log_jacobian=0.0
    ):
        super().__init__()
        self.likelihood = likelihood
        self.beta = beta
        self.binarize = binarize
        self.kl_warmup = kl_warmup
        self.log_jacobian = log_jacobian
        self.kl_weight = 1.0
        self._sums = None
        self._n_rows = 0

    def begin_epoch(self, epoch):
        warmup = self.kl_warmup
        self.kl_weight = min(1.0, epoch / warmup) if warmup else 1.0

    def epoch_statistics(self):
        sums, self._sums = self._sums, None
        n, self._n_rows = self._n_rows, 0
        if sums is None:
            return {"kl_weight": self.kl_weight}
        recon, kl = sums.tolist()
        return {
            "kl_weight": self.kl_weight,
            "train_reconstruction": recon / n - self.log_jacobian,
            "train_kl": kl / n,
        }

    def forward(self, module, x, training=True):
        if training and self.binarize == "dynamic":
            # A fresh binary image per pass: the usual protocol for Bernoulli
            # likelihoods on grey-level data (and a strong regularizer).
            x = _random.bernoulli(x)
        mu, logvar = module.encode(x)
        recon, kl = elbo_terms(
            x, mu, logvar, module.decode, self.likelihood, module.decoder_logvar()
        )
        if training:
            # Summed on the device, outside the graph, read once per epoch.
            terms = torch.stack([recon.detach().sum(), kl.detach().sum()])
            self._sums = terms if self._sums is None else self._sums.add_(terms)
            self._n_rows += len(x)
        weight = self.beta * self.kl_weight
        # Weight 1 (no beta, no warm-up) skips a multiplication: same values.
        return ((kl if weight == 1 else weight * kl) - recon).mean()


class VAE(UserNetworkMixin, MLPMixin, BaseAutoencoder):
    r"""Variational autoencoder: a latent-variable density model and transformer.

    The generative model draws a code from the prior and data from a decoder
    network :math:`g`,

    .. math::

        z \sim p(z) = \mathcal N(0, I_k), \qquad
        x \mid z \sim p(x \mid z) =
        \begin{cases}
        \prod_j \mathrm{Bernoulli}\big(x_j; \sigma(g_j(z))\big)
            & \text{likelihood="bernoulli"}\\
        \mathcal N\big(x; g(z), \operatorname{diag} s^2\big)
            & \text{likelihood="gaussian"}
        \end{cases}

    where the Gaussian variances :math:`s^2` are learned (per feature or one
    shared value), so the model is a proper density, not an MSE in disguise.
    An encoder network gives a Gaussian approximate posterior
    :math:`q(z \mid x) = \mathcal N(\mu(x), \operatorname{diag}\sigma^2(x))`.
    Both are trained with Adam by maximizing, over mini-batches, the evidence
    lower bound (ELBO)

    .. math::

        \log p(x) \ge \mathrm{ELBO}(x) =
        \mathbb E_{q(z \mid x)} \log p(x \mid z)
        - \beta\, \mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big),
        \qquad
        \mathrm{KL} = \tfrac12 \sum_j \big(\sigma_j^2 + \mu_j^2 - 1
        - \log\sigma_j^2\big),

    with :math:`\beta = 1` (``beta`` :math:`\ne 1` gives the beta-VAE, whose
    objective is no longer a bound), the expectation estimated with one
    reparameterized draw :math:`z = \mu + \sigma \odot \varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, I)`. The bound's gap is
    :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))`.

    ``score_samples`` returns the ELBO (with :math:`\beta = 1`) or, with
    ``n_importance_samples=K > 1``, the tighter importance-weighted bound

    .. math::

        \mathcal L_K(x) = \log \frac1K \sum_{k=1}^K
        \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}, \qquad
        z_k \sim q(z \mid x),

    which satisfies :math:`\mathbb E\,\mathcal L_1 = \mathrm{ELBO} \le
    \mathbb E\,\mathcal L_K \le \mathbb E\,\mathcal L_{K+1} \le \log p(x)`
    (Burda et al., 2016). Scores are in nats, in the units of X: the Gaussian
    log-density includes the Jacobian of the internal scaling,
    :math:`\log p(x) = \log p(\tilde x) - \sum_j \log c_j` for
    :math:`\tilde x_j = (x_j - m_j) / c_j`.

    Read more in the :ref:`User Guide <vae>`.

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension :math:`k`. The default gives a latent plane to plot
        and to sample from, the VAE's usual first use.
    hidden_layer_sizes : array-like of int, default=(128, 64)
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them.
    likelihood : {"auto", "gaussian", "bernoulli"}, default="auto"
        Decoder distribution. ``"bernoulli"`` needs data in [0, 1] (binary, or
        grey levels treated as probabilities) or min-max scales them there;
        ``"gaussian"`` standardizes the data internally by default.
        ``"auto"`` picks ``"bernoulli"`` when all training values lie in
        [0, 1] and ``"gaussian"`` otherwise, as ``loss="auto"`` picks the
        cross-entropy in the other autoencoders: on MNIST pixels (10,000-image
        subset, ``n_components=32``) the Bernoulli decoder's codes gave SVC
        0.940 test accuracy against the Gaussian one's 0.911 (PCA: 0.954),
        and half its reconstruction error. The resolved value is stored in
        ``likelihood_``.
    beta : float, default=1.0
        Weight of the KL term during training (beta-VAE when not 1). Scores
        always use the true bound, :math:`\beta = 1`.
    variance : {"feature", "global"}, default="feature"
        Gaussian decoder variance: one learned value per feature or a single
        shared one. It is floored at ``1e-3`` in the internally scaled units.
        Ignored for ``likelihood="bernoulli"``.
    kl_warmup : int, default=0
        Number of epochs over which the KL weight grows linearly from
        ``1 / kl_warmup`` to 1 (KL annealing, against posterior collapse).
        Stopping by ``tol`` is suspended and restarted after the warm-up.
    binarize : {None, "dynamic"}, default=None
        ``"dynamic"`` draws a fresh binary :math:`x \sim \mathrm{Bernoulli}(x)`
        from the [0, 1] data for each training batch (the usual MNIST
        protocol); only with ``likelihood="bernoulli"``. Inference uses X as
        given.
    n_importance_samples : int, default=1
        Number :math:`K` of posterior draws in ``score_samples``: 1 gives the
        ELBO (one draw for the reconstruction term, the KL exactly), more give
        the importance-weighted bound :math:`\mathcal L_K`.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation of the hidden layers (not of the code layer).
    scaling : {"auto", "global", "standard", "minmax", "none"}, default="auto"
        Internal input scaling. ``"auto"``: ``"standard"`` (standardize every
        feature) for the Gaussian likelihood, whose learned per-feature
        variances have a floor in scaled units; ``"minmax"`` to [0, 1] for the
        Bernoulli one (no change when the data already lie in [0, 1]).
        ``"global"`` centres the features and divides them by one scale.
        Log-likelihoods are in X's units whatever the scaling.
    alpha : float, default=0.0
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
        ``n_features`` internally scaled values to ``2 * n_components``
        numbers per row: the posterior mean :math:`\mu(x)` (the first
        ``n_components``, which ``transform`` returns) then the log-variance
        :math:`\log\sigma^2(x)` (the last ``n_components``). A module
        instance is deep-copied at every fit, so your instance never changes
        and its weights are the starting point; a class or another callable
        is called as ``encoder(n_features, 2 * n_components)``, the signature
        of :class:`torch.nn.Linear`, under the fit's seed. The MLP parameters
        (``hidden_layer_sizes``, ``activation``, ``dropout``) then do not
        apply. None builds skae's MLP. Rows must not interact in the network
        (no batch normalization). :func:`skae.save` refuses such a model;
        pickle or joblib keep it.
    decoder : torch.nn.Module, class or callable, default=None
        Your own decoder network (given with ``encoder``), from codes of
        ``n_components`` to ``n_features`` numbers per row: the Bernoulli
        logits, or the Gaussian mean (the Gaussian variances stay skae's
        learned parameters, shaped by ``variance``), as skae's own decoder.
        A class or another callable is called as ``decoder(n_components,
        n_features)``.
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
        The fitted :class:`~skae.nn.VAEModule` (with your ``encoder`` and
        ``decoder``: a module of the same methods around their copies).
    encoder_ : torch.nn.Module
        The fitted encoder, returning ``(mu, logvar)``.
    decoder_ : torch.nn.Module
        The fitted decoder (logits for Bernoulli, the mean for Gaussian).
    likelihood_ : str
        Likelihood actually used (``"gaussian"`` or ``"bernoulli"``).
    loss_ : str
        ``"bce"`` for the Bernoulli likelihood, ``"mse"`` for the Gaussian.
    scaling_ : str
        Scaling actually used.
    offset_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding.
    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied before encoding.
    device_ : torch.device
        Device the model lives on.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training objective per epoch: the negative beta- and warm-up-weighted
        ELBO in the internally scaled space.
    validation_loss_curve_ : list of float
        Validation objective per epoch (only when early stopping used a split).
    kl_weight_curve_ : list of float
        Weight of the KL term in each epoch (rising during ``kl_warmup``).
    elbo_curve_ : list of float
        Mean training ELBO per epoch (:math:`\beta = 1`, nats, units of X),
        ``reconstruction_curve_[i] - kl_curve_[i]``.
    reconstruction_curve_ : list of float
        Mean :math:`\mathbb E_q \log p(x \mid z)` per epoch (nats, units of X).
    kl_curve_ : list of float
        Mean :math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))` per epoch (nats).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    AutoencoderTransformer : The deterministic autoencoder: codes, no density.
    sklearn.decomposition.PCA : Probabilistic PCA is the linear-Gaussian VAE.
    sklearn.mixture.GaussianMixture : A density model with ``sample`` and
        ``score_samples``, in the input space.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.

    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted
    Autoencoders", ICLR 2016.

    I. Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework", ICLR 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAE(n_components=4, max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (1797, 4)
    >>> vae.sample(3).shape
    (3, 64)
    >>> vae.score_samples(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **{
            k: v
            for k, v in BaseAutoencoder._parameter_constraints.items()
            if k != "loss"
        },
        **MLP_PARAMETER_CONSTRAINTS,
        **USER_NETWORK_PARAMETER_CONSTRAINTS,
        "likelihood": [StrOptions({"auto", "gaussian", "bernoulli"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "variance": [StrOptions({"feature", "global"})],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "binarize": [None, StrOptions({"dynamic"})],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(128, 64),
        likelihood="auto",
        beta=1.0,
        variance="feature",
        kl_warmup=0,
        binarize=None,
        n_importance_samples=1,
        activation="relu",
        scaling="auto",
        alpha=0.0,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.beta = beta
        self.variance = variance
        self.kl_warmup = kl_warmup
        self.binarize = binarize
        self.n_importance_samples = n_importance_samples
        self.activation = activation
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
        if self.binarize is not None and self.likelihood == "gaussian":
            raise ValueError(
                f"binarize={self.binarize!r} needs likelihood='bernoulli', got "
                f"likelihood={self.likelihood!r}."
            )

    def _resolve_loss_and_scaling(self, stats):
        in_unit_interval = bool(stats.min.min() >= 0 and stats.max.max() <= 1)
        likelihood = self.likelihood
        if likelihood == "auto":
            likelihood = "bernoulli" if in_unit_interval else "gaussian"
        if self.binarize is not None and likelihood != "bernoulli":
            raise ValueError(
                f"binarize={self.binarize!r} needs likelihood='bernoulli'; "
                "likelihood='auto' chose 'gaussian' because X has values outside "
                "[0, 1]."
            )
        loss = "bce" if likelihood == "bernoulli" else "mse"
        scaling = self.scaling
        if scaling == "auto":
            # Standardized: the Gaussian decoder's variance floor is per
            # feature, in scaled units, so every feature needs unit scale.
            scaling = "minmax" if loss == "bce" else "standard"
        if loss == "bce" and (
            scaling in ("standard", "global")
            or (scaling == "none" and not in_unit_interval)
        ):
            raise ValueError(
                "likelihood='bernoulli' needs data in [0, 1]: use scaling='minmax' "
                f"or 'auto' with it (got scaling={self.scaling!r}"
                + (")." if scaling != "none" else " and X outside [0, 1]).")
            )
        return loss, scaling, in_unit_interval

    def _architecture(self, n_features):
        architecture = super()._architecture(n_features)
        architecture.pop("code_activation", None)
        architecture["likelihood"] = "bernoulli" if self.loss_ == "bce" else "gaussian"
        architecture["variance"] = self.variance
        return architecture

    def _build_module(self, architecture):
        if architecture.get("user_network"):
            return super()._build_module(architecture)
        return VAEModule(**architecture)

    def _user_encoder_width(self, n_components):
        return 2 * n_components

    def _user_encoder_output(self, n_components):
        return (
            f"the posterior mean ({n_components} values) then its log-variance "
            f"({n_components} values)"
        )

    def _wrap_user_network(self, encoder, decoder, architecture):
        return UserVAENetwork(
            encoder,
            decoder,
            architecture["n_features"],
            architecture["likelihood"],
            architecture["variance"],
        )

    @property
    def likelihood_(self):
        """The fitted likelihood, ``likelihood="auto"`` resolved (a parameter
        change needs a refit)."""
        return self.architecture_["likelihood"]

    def _make_objective(self):
        return ELBOObjective(
            self.likelihood_,
            self.beta,
            self.binarize,
            kl_warmup=self.kl_warmup,
            log_jacobian=self._log_jacobian(),
        )

    def _log_jacobian(self):
        # p(x) = p(x_scaled) / prod_j scale_j for a density; a Bernoulli
        # probability mass has no Jacobian.
        if self.likelihood_ != "gaussian":
            return 0.0
        return float(np.sum(np.log(self.scale_)))

    def _begin_training(self, stats, n_features, device, entropy):
        super()._begin_training(stats, n_features, device, entropy)
        self.reconstruction_curve_, self.kl_curve_, self.elbo_curve_ = [], [], []
        self.kl_weight_curve_ = []

    def _encode(self, module, x):
        return module.encode(x)[0]

    def _phases(self):
        warmup = min(self.kl_warmup, self.max_iter)
        if warmup == 0:
            return [EndToEnd(self.max_iter)]
        # The objective changes during the warm-up: neither stop on it nor
        # keep its best weights; the stopping rule starts afresh after it.
        return [
            EndToEnd(warmup, stopping=False),
            EndToEnd(self.max_iter - warmup),
        ]

    def _record_epochs(self, result):
        rows = [r for r in result.rows if "train_kl" in r]
        recon = [float(r["train_reconstruction"]) for r in rows]
        kl = [float(r["train_kl"]) for r in rows]
        # Extended, not rebuilt: partial_fit continues the curves.
        self.reconstruction_curve_ = self.reconstruction_curve_ + recon
        self.kl_curve_ = self.kl_curve_ + kl
        self.elbo_curve_ = self.elbo_curve_ + [r - k for r, k in zip(recon, kl)]
        self.kl_weight_curve_ = self.kl_weight_curve_ + [
            float(r["kl_weight"]) for r in rows
        ]

    # ------------------------------------------------------------ inference
    def _noise_generator(self, random_state):
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        return torch.Generator().manual_seed(int(seed))

    def _row_seeds(self, X):
        """One 64-bit seed per row: a keyed hash of the row's values.

        The posterior draws of a row then depend only on that row and on the
        fitted model (the key is its ``random_seed_``): scores do not change
        with batching, row order or repeated calls, even with
        ``random_state=None``, yet distinct rows get independent draws (so
        ``score`` averages them out).
        """
        key = (self.random_seed_ % 2**63).to_bytes(8, "little")
        # Row by row: a float64 copy of one row at a time, never of all of X
        # (``score_samples`` calls this per pass, on a bounded block of rows).
        return [
            int.from_bytes(
                hashlib.blake2b(
                    np.ascontiguousarray(row, dtype=np.float64).tobytes(),
                    digest_size=8,
                    key=key,
                ).digest(),
                "little",
            )
            for row in X
        ]

    def score_samples(self, X):
        """Per-sample log-likelihood lower bound, in nats, in the units of X.

        The ELBO when ``n_importance_samples == 1`` (the reconstruction term at
        one posterior draw, the KL term exact), else the importance-weighted
        bound :math:`\\mathcal L_K` with ``K = n_importance_samples``, tighter
        as K grows. Both are stochastic estimates whose expectations bound
        :math:`\\log p(x)` from below. A row's draws come from a generator
        seeded by a hash of the row and the fitted model (``random_seed_``):
        a row's score is a function of the row, as scikit-learn users expect
        of ``score_samples``. It does not depend on the other rows, and
        repeated calls are identical, also with ``random_state=None``; other
        draws need a model fitted with another ``random_state``. Higher means
        more typical: usable as an anomaly score. Rows too large to score get
        ``-inf``, with a warning.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in the units seen in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            :math:`\\log p(x)` estimates, in X's float dtype.
        """
        check_is_fitted(self)
        # Read at every call by design (the bound's tightness is a choice at
        # scoring time), so checked here: set_params does not validate.
        name = "n_importance_samples"
        validate_parameter_constraints(
            {name: self._parameter_constraints[name]},
            {name: self.n_importance_samples},
            caller_name="VAE.score_samples",
        )
        X = validate_float_rows(self, X, reset=False)
        draws_per_pass = min(self.n_importance_samples, _SCORE_BUDGET)
        # Memory is O(one pass), whatever the number of rows: the rows of a
        # pass are bounded by decoder evaluations and, for wide rows, bytes.
        rows_per_pass = max(
            1,
            min(
                _SCORE_BUDGET // draws_per_pass,
                _SCORE_BATCH_BYTES // (8 * X.shape[1]),
            ),
        )

        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        module = self.module_
        if dtype == torch.float64:
            module = copy.deepcopy(module).double()
        module.eval()
        offset = torch.as_tensor(self.offset_, dtype=dtype, device=self.device_)
        scale = torch.as_tensor(self.scale_, dtype=dtype, device=self.device_)
        generator = torch.Generator()
        scores = np.empty(X.shape[0], dtype=X.dtype)
        # Each pass evaluates the network rows_per_pass * draws_per_pass times
        # (fewer rows when X has fewer: 50 rows are small work however large
        # the pass could be).
        work = min(rows_per_pass, X.shape[0]) * draws_per_pass * self._n_parameters()
        with (
            threads_sized_to(work, self.device_, self.n_jobs),
            torch.inference_mode(),
        ):
            dec_logvar = module.decoder_logvar()
            for start in range(0, X.shape[0], rows_per_pass):
                stop = min(start + rows_per_pass, X.shape[0])
                scores[start:stop] = self._score_pass(
                    module,
                    X[start:stop],
                    (offset, scale, dec_logvar),
                    draws_per_pass,
                    generator,
                )
        scores -= scores.dtype.type(self._log_jacobian())
        return self._scores_or_least_normal(scores)

    def _score_pass(self, module, X, fitted, draws_per_pass, generator):
        """Scores of the rows of one pass (see :meth:`score_samples`).

        A method of its own so that the pass's temporaries are freed before
        the next pass starts: the extra memory of scoring is one pass.
        ``fitted`` holds the offset, scale and decoder log-variance tensors.
        """
        offset, scale, dec_logvar = fitted
        dtype = offset.dtype
        n_draws, k = self.n_importance_samples, self.n_components_
        # A copy: validated input may be read-only (e.g. a DataFrame's values
        # or an np.memmap), which torch warns about.
        rows = np.array(X, order="C")
        seeds = self._row_seeds(rows)
        x = torch.from_numpy(rows)
        del rows  # the raw copy dies with the next line
        x = (x.to(self.device_, dtype) - offset) / scale
        eps = torch.stack(
            [
                torch.randn(
                    n_draws,
                    k,
                    generator=generator.manual_seed(s),
                    dtype=torch.float64,
                )
                for s in seeds
            ]
        ).to(self.device_, dtype)
        mu, logvar = module.encode(x)
        if n_draws == 1:
            recon, kl = elbo_terms(
                x,
                mu,
                logvar,
                module.decode,
                self.likelihood_,
                dec_logvar,
                eps[:, 0],
            )
            value = recon - kl
        else:
            value = iwae_bound(
                torch.cat(
                    [
                        iwae_log_weights(
                            x,
                            mu,
                            logvar,
                            module.decode,
                            self.likelihood_,
                            eps[:, j : j + draws_per_pass],
                            dec_logvar,
                        )
                        for j in range(0, n_draws, draws_per_pass)
                    ],
                    dim=1,
                )
            )
        return value.cpu().numpy()

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: the average log-likelihood bound.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
            Mean ELBO (or :math:`\\mathcal L_K`) per sample, in nats.
        """
        return super().score(X, y)

    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "random_state": ["random_state"],
            "mean": ["boolean"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, random_state=None, *, mean=True):
        """Generate samples: :math:`z \\sim \\mathcal N(0, I)`, then decode.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; None uses the estimator's ``random_state``
            (so an int there gives the same samples at every call, as in
            :meth:`sklearn.mixture.GaussianMixture.sample`).
        mean : bool, default=True
            Return the decoder mean :math:`\\mathbb E[x \\mid z]` (smooth
            images: Bernoulli probabilities, Gaussian means). False also draws
            :math:`x \\sim p(x \\mid z)`, giving exact samples of the model's
            marginal :math:`p(x)` (binary for Bernoulli).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Samples, in the units of the training data (float64).
        """
        check_is_fitted(self)
        generator = self._noise_generator(
            self.random_state if random_state is None else random_state
        )
        Z = torch.randn(
            n_samples, self.n_components_, generator=generator, dtype=torch.float64
        )
        if mean:
            return self.inverse_transform(Z.numpy())
        module = copy.deepcopy(self.module_).double().cpu().eval()
        with torch.inference_mode():
            output = module.decode(Z)
            if self.likelihood_ == "bernoulli":
                X = torch.bernoulli(torch.sigmoid(output), generator=generator)
            else:
                noise = torch.randn(
                    output.shape, generator=generator, dtype=torch.float64
                )
                X = output + torch.exp(0.5 * module.decoder_logvar()) * noise
        return X.numpy() * self.scale_ + self.offset_
