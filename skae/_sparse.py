"""SparseAE: autoencoders with sparse codes (the kinds of skae._sparsity)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skae import _random
from skae._base import BaseAutoencoder
from skae._engine import Callback
from skae._mlp import (
    MLP_PARAMETER_CONSTRAINTS,
    PRETRAINING_PARAMETER_CONSTRAINTS,
    LayerwisePretrainingMixin,
    MLPMixin,
)
from skae._objectives import ReconstructionObjective
from skae._pretraining import iter_rows
from skae._sae_training import SAEObjective
from skae._sparsity import SPARSITY_KINDS
from skae._user_network import (
    USER_NETWORK_PARAMETER_CONSTRAINTS,
    UserNetwork,
    UserNetworkMixin,
    UserSAENetwork,
)
from skae.nn import MLPAutoencoder, linear_layers


class SparsityObjective(ReconstructionObjective):
    """Reconstruction loss plus the sparsity kind's penalty on the code.

    With ``track_firing`` it also records, while training, which code units
    fired on at least one sample of the epoch, reported as the
    ``fired_units`` epoch statistic (read by :class:`DeadUnitResampler` from
    the history).
    """

    def __init__(self, loss, kind, weight, rho, track_firing=True):
        super().__init__(loss)
        self.kind = kind
        self.weight = weight
        self.rho = rho
        self.track_firing = track_firing
        self._fired = None

    def observe(self, code):
        if not self.track_firing:
            # Nobody reads it (no resampler): a comparison and a reduction
            # per batch saved, a tenth of a small model's step.
            return
        fired = self.kind.fires(code).any(dim=0)
        self._fired = fired if self._fired is None else self._fired | fired

    def epoch_statistics(self):
        fired, self._fired = self._fired, None
        return {} if fired is None else {"fired_units": fired}

    def penalty(self, code, x_in, module):
        return self.kind.penalty(code, self.weight, self.rho)


class DeadUnitResampler(Callback):
    """Re-initialize code units that fired on no sample during the last epoch.

    A simplified form of the neuron resampling used to train sparse
    autoencoders at scale (Bricken et al., 2023): the encoder row and bias of
    a dead unit and its decoder column get a fresh random direction with the
    mean norm of the live units, and their Adam moments are reset. It runs at
    the start of an epoch, from the previous epoch's ``fired_units`` in the
    history, so a resampled unit always trains for at least one epoch before
    training ends. The first epoch of a ``partial_fit`` call reads the
    estimator's ``dead_units_`` from the previous call (``previously_dead``).
    """

    def __init__(self, previously_dead=None):
        self.previously_dead = previously_dead

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) >= 2 and "fired_units" in net.history[-2]:
            fired = net.history[-2, "fired_units"]
        elif len(net.history) == 1 and self.previously_dead is not None:
            fired = torch.as_tensor(~self.previously_dead, device=net.device)
        else:
            return
        if fired.all() or not fired.any():
            return
        dead = ~fired
        enc = linear_layers(net.module_.encoder)[-1]
        dec = linear_layers(net.module_.decoder)[0]
        with torch.no_grad():
            enc_norm = enc.weight[fired].norm(dim=1).mean()
            new_rows = _random.randn(int(dead.sum()), enc.in_features, like=enc.weight)
            enc.weight[dead] = new_rows / new_rows.norm(dim=1, keepdim=True) * enc_norm
            enc.bias[dead] = 0.0
            dec_norm = dec.weight[:, fired].norm(dim=0).mean()
            new_cols = _random.randn(dec.out_features, int(dead.sum()), like=dec.weight)
            dec.weight[:, dead] = new_cols / new_cols.norm(dim=0) * dec_norm
        state = net.optimizer_.state
        for param, index in ((enc.weight, dead), (enc.bias, dead)):
            for moment in ("exp_avg", "exp_avg_sq"):
                if param in state and moment in state[param]:
                    state[param][moment][index] = 0.0
        if dec.weight in state:
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in state[dec.weight]:
                    state[dec.weight][moment][:, dead] = 0.0


def _code_layers(encoder, decoder):
    """The layers a resampled unit lives in: the encoder's last layer and the
    decoder's first, when both are a ``torch.nn.Linear`` (the part itself or
    an end of a ``torch.nn.Sequential``), else None."""

    def end(part, index):
        if isinstance(part, torch.nn.Sequential) and len(part):
            part = part[index]
        return part if isinstance(part, torch.nn.Linear) else None

    enc, dec = end(encoder, -1), end(decoder, 0)
    return None if enc is None or dec is None else (enc, dec)


class SparseAE(UserNetworkMixin, LayerwisePretrainingMixin, MLPMixin, BaseAutoencoder):
    r"""Sparse autoencoder: an (often overcomplete) code with few active units.

    The encoder :math:`f` maps a sample to a code :math:`h = f(x)` of
    ``n_components`` units, usually more than the input features; the decoder
    :math:`g` maps it back. Sparsity, not a bottleneck, keeps the network from
    learning the identity. Three ways to impose it (``sparsity``):

    - ``"kl"`` (sigmoid code units, :math:`h_j \in (0, 1)`): with
      :math:`\hat\rho_j = \frac1m \sum_{i=1}^m h_j^{(i)}` the mean activation of
      unit :math:`j` over the mini-batch,

      .. math::

          \min_{f, g} \frac1m \sum_{i=1}^m \ell\big(x_i, g(f(x_i))\big)
          + \beta \sum_{j=1}^{n_\text{components}}
          \Big(\rho \log\frac{\rho}{\hat\rho_j}
          + (1 - \rho) \log\frac{1 - \rho}{1 - \hat\rho_j}\Big) ;

    - ``"l1"`` (ReLU code units, :math:`h_j \ge 0`):

      .. math::

          \min_{f, g} \frac1m \sum_{i=1}^m \Big[\ell\big(x_i, g(f(x_i))\big)
          + \beta \lVert f(x_i) \rVert_1\Big] ;

    - ``"topk"`` (k-sparse autoencoder): the code keeps the :math:`k` largest
      of the linear encoder outputs of each sample and zeroes the others,
      :math:`h = \mathrm{TopK}_k(W x + b)`, and the plain reconstruction loss
      is minimized. Every code has exactly :math:`k` non-zeros.

    Three more kinds train the one-layer network used to find interpretable
    features in the activations of large networks,

    .. math::

        h = W_\text{enc}(x - b_\text{pre}) + b_\text{enc}, \qquad
        z = \sigma(h), \qquad \hat x = W_\text{dec}\, z + b_\text{pre},

    with unit-norm columns of :math:`W_\text{dec}` (normalized in the
    forward pass, so each latent is a direction of the input space),
    :math:`W_\text{enc}` started as :math:`W_\text{dec}^\top`,
    :math:`b_\text{pre}` started at the geometric median of the (scaled)
    training rows, the squared error ``loss="mse"`` (chosen by ``"auto"``,
    also for data in [0, 1]) and no hidden layers:

    - ``"batchtopk"`` (Bussmann et al., 2024): while training, the
      :math:`k B` largest entries of :math:`\mathrm{ReLU}(h)` over a batch of
      :math:`B` rows are kept (``k`` active latents per row on average, more
      on rows that need them); at inference :math:`z = \mathrm{ReLU}(h)
      \odot [h > \theta]`, with :math:`\theta` the running mean of the
      smallest activation kept in each training batch, so ``transform`` of a
      row does not depend on the other rows;
    - ``"matryoshka"`` (Bussmann et al., 2025): BatchTopK codes, and the
      reconstruction term is the mean over nested prefixes :math:`m_1 <
      \dots < m_L = n` of the squared error of :math:`W_\text{dec}[:, :m_l]\,
      z_{:m_l} + b_\text{pre}`, so that the first latents reconstruct on
      their own (general features first, refinements after them);
    - ``"jumprelu"`` (Rajamanoharan et al., 2024): :math:`z_j = h_j\,
      H(h_j - \theta_j)` with a learned threshold per latent and the loss
      :math:`\ell + \lambda \lVert z \rVert_0` (:math:`\lambda` is
      ``sparsity_weight``). The step function has no useful derivative, so
      :math:`\theta` learns through the straight-through estimators
      :math:`\partial z_j / \partial \theta_j = -\frac{\theta_j}{\varepsilon}
      K\big(\frac{h_j - \theta_j}{\varepsilon}\big)` and
      :math:`\partial H / \partial \theta_j = -\frac1\varepsilon
      K\big(\frac{h_j - \theta_j}{\varepsilon}\big)`, with the rectangle
      kernel :math:`K(u) = [|u| < \tfrac12]` of width :math:`\varepsilon`
      (``bandwidth``).

    Both add the AuxK loss of Gao et al. (2024) against dead latents: with
    :math:`D` the latents that fired on none of the last ``dead_window``
    training rows and :math:`e = x - \hat x` the residual,
    :math:`\alpha_\text{aux} \lVert e - W_\text{dec}\,
    \mathrm{TopK}_{k_\text{aux}}(h|_D) \rVert^2` (its ReLU differentiated
    as the identity) gives dead latents a gradient toward what the live ones
    miss. :func:`skae.metrics.sparse_code_metrics` reports the L0, variance
    explained, dead fraction and shrinkage of any kind.

    :math:`\ell` is the per-feature mean squared error or binary
    cross-entropy, and an L2 penalty :math:`\frac{\alpha}{2}\sum_W \lVert W
    \rVert_F^2` on the weights is added as in
    :class:`~skae.AutoencoderTransformer`.

    Units that never fire waste capacity ("dead" units). With
    ``resample_dead=True`` (L1 and top-k), a unit that fired on no training
    sample during an epoch is re-initialized, as done when training sparse
    autoencoders at scale; the KL penalty needs no such help since its
    gradient raises the activity of any unit with :math:`\hat\rho_j < \rho`.
    ``dead_fraction_`` reports the share of units that fire on no training
    sample at the end of ``fit``.

    Parameters
    ----------
    n_components : int, default=128
        Number of code units; larger than ``n_features`` is the normal use
        (an overcomplete dictionary of features, each used by few rows), so
        the default is wider than most tabular data.
    sparsity : {"kl", "l1", "topk", "batchtopk", "matryoshka", "jumprelu"}, \
            default="kl"
        How sparsity is imposed (see above).
    sparsity_target : float, default=0.05
        Target mean activation :math:`\rho` of each unit for ``"kl"``; must
        lie in (0, 1); 0.01 to 0.1 is usual. :math:`\hat\rho_j` is the mean
        over one mini-batch, so ``batch_size`` should hold many samples.
    sparsity_weight : float, default=None
        Penalty weight :math:`\beta`: 0.07 for ``"kl"``, 0.02 for ``"l1"``
        and :math:`\lambda = 0.03` for ``"jumprelu"`` (the loss is the mean,
        not the sum, over features of the squared error, so this is the
        paper's :math:`\lambda` divided by ``n_features``) when None; not used
        by ``"topk"``, ``"batchtopk"`` and ``"matryoshka"``.
    k : int, default=None
        Number of units kept per sample for ``"topk"`` (the mean number per
        row for ``"batchtopk"`` and ``"matryoshka"``);
        ``max(1, n_components // 10)`` when None. Must not exceed
        ``n_components``.
    resample_dead : bool, default=True
        Re-initialize units that fired on no sample during an epoch
        (``"l1"`` and ``"topk"`` only).
    aux_k : int, default=None
        Number :math:`k_\text{aux}` of dead latents whose best activations
        reconstruct the residual in the AuxK loss (the dictionary kinds
        ``"batchtopk"``, ``"matryoshka"`` and ``"jumprelu"``);
        ``min(512, n_components // 2)`` (at least 1) when None. Must not
        exceed ``n_components``.
    aux_weight : float, default=1/32
        Weight :math:`\alpha_\text{aux}` of the AuxK loss (the dictionary
        kinds); 0 disables it.
    dead_window : int, default=10000
        A latent that has fired on none of the last ``dead_window`` training
        rows counts as dead for the AuxK loss (the dictionary kinds); the
        count carries over ``partial_fit`` calls.
    bandwidth : float, default=0.05
        Width :math:`\varepsilon` of the rectangle kernel of JumpReLU's
        straight-through threshold gradient (``"jumprelu"``). Rajamanoharan
        et al. use 0.001 over ~10^5 steps of 4096 rows; on data of a few
        thousand rows so narrow a window sees too few pre-activations near
        the thresholds to move them (``benchmarks/bench_sae.py``: L0 8.9
        instead of 5.5, dictionary similarity 0.958 instead of 0.981).
    matryoshka_levels : int, default=4
        Number :math:`L` of nested dictionary prefixes of ``"matryoshka"``:
        the first :math:`\lceil n / 2^{L-l} \rceil` latents, :math:`l = 1..L`
        (``n_components // 8``, ``// 4``, ``// 2`` and all of them by
        default).
    pretraining : {"layerwise"} or None, default=None
        ``"layerwise"``: greedy layer-wise pretraining of the stacked
        autoencoder (each encoder layer and its mirrored decoder layer trained
        as a shallow autoencoder of the previous layer's codes, for up to
        ``max_iter`` epochs each), then end-to-end fine-tuning. Only matters
        with hidden layers.
    hidden_layer_sizes : array-like of int, default=()
        Widths of the encoder's hidden layers, input side first; the decoder
        mirrors them. ``()`` is the classic single-layer sparse autoencoder.
    activation : {"relu", "tanh", "logistic", "elu", "gelu", "identity"}, \
            default="relu"
        Activation of the hidden layers (not of the code layer).
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
        ``n_features`` internally scaled values to the *pre-activations* of
        the ``n_components`` code units: skae puts the kind's code layer after
        it (``"kl"``: :math:`\sigma(h + \log\frac{\rho}{1 - \rho})`, the
        shift starting every unit at the target activity; ``"l1"``: ReLU;
        ``"topk"``: the ``k`` largest kept; the dictionary kinds: their
        BatchTopK or JumpReLU, with the AuxK loss, ``g(z) - g(0)`` of your
        decoder :math:`g` reconstructing the residual, and Matryoshka's
        prefixes decoded with the later latents zeroed). The penalty and the
        dead-unit count read the resulting code. Your network starts as
        given: the unit-norm decoder columns, the tied start and the
        pre-encoder bias of the dictionary kinds' own network are not
        applied. With ``resample_dead=True`` (``"l1"``, ``"topk"``) the
        encoder must end with a :class:`torch.nn.Linear` and the decoder
        start with one (the layer itself or an end of a
        :class:`torch.nn.Sequential`), whose rows and columns are the ones
        resampled; other networks raise a ValueError at fit. A module
        instance is deep-copied at every fit, so your instance never changes
        and its weights are the starting point; a class or another callable
        is called as ``encoder(n_features, n_components)``, the signature of
        :class:`torch.nn.Linear`, under the fit's seed. The MLP parameters
        (``hidden_layer_sizes``, ``activation``, ``dropout``) then do not
        apply. None builds skae's network. Rows must not interact in the
        network (no batch normalization). :func:`skae.save` refuses such a
        model; pickle or joblib keep it.
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
        The fitted autoencoder. For the dictionary kinds the inference
        threshold(s) are ``module_.encoder.activation.threshold``,
        the unit-norm dictionary ``module_.decoder.directions()`` (shape
        (n_features, n_components), in the scaled space) and the rows since
        each latent last fired ``module_.encoder.rows_since_fired``.
    dead_units_ : ndarray of shape (n_components_,), dtype=bool
        Code units that fire on no training sample after the last ``fit`` or
        ``partial_fit`` call; the next ``partial_fit`` resamples them when
        ``resample_dead=True``.
    dead_fraction_ : float
        Share of code units that fire on no training sample after ``fit``
        (a unit fires when its activation is non-zero; above 0.5 for the
        sigmoid units of ``"kl"``).
    k_ : int or None
        Number of units kept per sample (``"topk"``; the mean per row for
        ``"batchtopk"`` and ``"matryoshka"``).
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
        Validation loss per epoch (only with an early-stopping split).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.DictionaryLearning : Sparse codes by alternating
        minimization (an iterative encoder) instead of a learned one.
    sklearn.decomposition.MiniBatchDictionaryLearning : Its online version.
    sklearn.decomposition.SparsePCA : Sparse components rather than codes.
    sklearn.neural_network.BernoulliRBM : Another single-layer learner of
        binary hidden features.
    DenoisingAE : Robustness to corrupted inputs instead of sparsity.
    ContractiveAE : Penalizes the encoder's Jacobian instead of the code.

    References
    ----------
    H. Lee, C. Ekanadham and A. Ng, "Sparse deep belief net model for visual
    area V2", NIPS 2007 (the KL target-activation penalty).
    A. Makhzani and B. Frey, "k-Sparse Autoencoders", ICLR 2014.
    T. Bricken et al., "Towards Monosemanticity", Anthropic, 2023.
    L. Gao et al., "Scaling and evaluating sparse autoencoders", 2024
    (TopK, AuxK, tied initialization).
    B. Bussmann, P. Leask and N. Nanda, "BatchTopK Sparse Autoencoders", 2024.
    B. Bussmann et al., "Learning Multi-Level Features with Matryoshka
    Sparse Autoencoders", 2025.
    S. Rajamanoharan et al., "Jumping Ahead: Improving Reconstruction
    Fidelity with JumpReLU Sparse Autoencoders", 2024.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> sae = SparseAE(n_components=128, sparsity="topk", k=8, max_iter=5,
    ...                random_state=0)
    >>> Z = sae.fit_transform(X)
    >>> Z.shape
    (1797, 128)
    >>> int((Z != 0).sum(axis=1).max())
    8
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        **MLP_PARAMETER_CONSTRAINTS,
        **PRETRAINING_PARAMETER_CONSTRAINTS,
        **USER_NETWORK_PARAMETER_CONSTRAINTS,
        # A live view: a kind added to the table is a valid value at once.
        "sparsity": [StrOptions(SPARSITY_KINDS.keys())],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_weight": [Interval(Real, 0, None, closed="left"), None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "resample_dead": ["boolean"],
        "aux_k": [Interval(Integral, 1, None, closed="left"), None],
        "aux_weight": [Interval(Real, 0, None, closed="left")],
        "dead_window": [Interval(Integral, 1, None, closed="left")],
        "bandwidth": [Interval(Real, 0, None, closed="neither")],
        "matryoshka_levels": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=128,
        *,
        sparsity="kl",
        sparsity_target=0.05,
        sparsity_weight=None,
        k=None,
        resample_dead=True,
        aux_k=None,
        aux_weight=1 / 32,
        dead_window=10000,
        bandwidth=0.05,
        matryoshka_levels=4,
        pretraining=None,
        hidden_layer_sizes=(),
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
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.k = k
        self.resample_dead = resample_dead
        self.aux_k = aux_k
        self.aux_weight = aux_weight
        self.dead_window = dead_window
        self.bandwidth = bandwidth
        self.matryoshka_levels = matryoshka_levels
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
        if (
            self.sparsity in ("topk", "batchtopk", "matryoshka")
            and self.k is not None
            and self.k > self.n_components
        ):
            raise ValueError(
                f"k={self.k} must not exceed n_components={self.n_components}: "
                "top-k sparsity keeps k of the n_components code units."
            )
        if SPARSITY_KINDS[self.sparsity].own_network:
            self._validate_dictionary_params()

    def _validate_dictionary_params(self):
        """The one-layer network of the dictionary kinds has no hidden layers,
        and its linear decoder reconstructs with the squared error."""
        name = f"sparsity={self.sparsity!r}"
        # A user's network replaces the one layer (its checks are the mixin's).
        own = not self._user_network()
        if own and (len(self.hidden_layer_sizes) or self.pretraining is not None):
            raise ValueError(
                f"{name} trains the one-layer sparse autoencoder of the "
                "interpretability literature: use hidden_layer_sizes=() and "
                f"pretraining=None, not hidden_layer_sizes={self.hidden_layer_sizes!r}"
                f" and pretraining={self.pretraining!r}."
            )
        if self.loss == "bce":
            raise ValueError(
                f"{name} reconstructs with a linear decoder and the squared error: "
                "use loss='mse' or 'auto', not loss='bce'."
            )
        if self.aux_k is not None and self.aux_k > self.n_components:
            raise ValueError(
                f"aux_k={self.aux_k} must not exceed n_components="
                f"{self.n_components}: AuxK uses aux_k of the dead latents."
            )

    def _auto_loss(self, in_unit_interval):
        # A penalty weighed against the reconstruction loss needs a loss whose
        # size does not depend on X's units: the MSE on globally scaled rows.
        # On MNIST pixels (BCE) the L1 default zeroed every unit and the KL
        # codes fed an SVC at 0.90x PCA's codes. The dictionary kinds need the
        # squared error anyway (a linear decoder).
        return "mse"

    def _code_activation(self):
        return SPARSITY_KINDS[self.sparsity].code_activation

    def _architecture(self, n_features):
        kind = SPARSITY_KINDS[self.sparsity]
        if self._user_network():
            return {
                **super()._architecture(n_features),
                "sparsity": self.sparsity,
                **kind.user_architecture(int(self.n_components), self.get_params()),
            }
        if kind.own_network:
            return {
                "n_features": int(n_features),
                "n_components": int(self.n_components),
                "sparsity": self.sparsity,
                **kind.network_architecture(int(self.n_components), self.get_params()),
            }
        return {
            **super()._architecture(n_features),
            "sparsity": self.sparsity,
            **kind.architecture(self.n_components, self.k),
        }

    def _build_module(self, architecture):
        kind = SPARSITY_KINDS[architecture["sparsity"]]
        if architecture.get("user_network"):
            return super()._build_module(architecture)
        if kind.own_network:
            return kind.build_module(architecture)
        mlp = {k: v for k, v in architecture.items() if k not in ("sparsity", "k")}
        module = MLPAutoencoder(**mlp)
        kind.extend_module(module, architecture)
        return module

    def _wrap_user_network(self, encoder, decoder, architecture):
        kind = SPARSITY_KINDS[architecture["sparsity"]]
        if self.resample_dead and kind.resamples_dead:
            if _code_layers(encoder, decoder) is None:
                raise ValueError(
                    f"sparsity={architecture['sparsity']!r} with resample_dead=True "
                    "re-initializes the weights of dead code units, which needs "
                    "your encoder to end with a torch.nn.Linear and your decoder "
                    "to start with one (the layer itself or an end of a "
                    "torch.nn.Sequential); got encoder "
                    f"{type(encoder).__name__} and decoder "
                    f"{type(decoder).__name__}. Use resample_dead=False."
                )
        # The user's outputs are the pre-activations; the kind makes the code.
        code = kind.wrap_user_encoder(encoder, architecture)
        if kind.own_network:
            return UserSAENetwork(code, decoder)
        return UserNetwork(code, decoder)

    def _initialize_module(self, module, rows):
        kind = self._kind()
        if self.architecture_.get("user_network"):
            # Your network starts as given (KL's start is its code shift).
            return
        if kind.own_network:
            kind.initialize_from_rows(module, rows)
        else:
            kind.initialize(module, self.sparsity_target)

    def _kind(self):
        """The fitted sparsity kind (a parameter change needs a refit)."""
        return SPARSITY_KINDS[self.architecture_["sparsity"]]

    def _make_objective(self):
        kind = self._kind()
        weight = self.sparsity_weight
        if weight is None:
            weight = kind.default_weight
        if kind.own_network:
            architecture = self.architecture_
            return SAEObjective(
                kind,
                weight,
                architecture["aux_k"],
                self.aux_weight,
                architecture["dead_window"],
                kind.prefixes(architecture),
            )
        return SparsityObjective(
            self.loss_,
            kind,
            weight,
            self.sparsity_target,
            track_firing=self._resamples_dead(),
        )

    def _resamples_dead(self):
        if not (self.resample_dead and self._kind().resamples_dead):
            return False
        module = self.module_
        if isinstance(module, UserNetwork):
            # Checked at fit; a set_params(resample_dead=True) before a
            # partial_fit must not resample layers that are not the code's.
            return _code_layers(module.encoder[0], module.decoder) is not None
        return True

    def _extra_callbacks(self):
        if self._resamples_dead():
            previous = getattr(self, "dead_units_", None)
            return [("resample_dead", DeadUnitResampler(previous))]
        return []

    def _begin_training(self, stats, n_features, device, entropy):
        super()._begin_training(stats, n_features, device, entropy)
        self.k_ = self.architecture_.get("k")
        self.__dict__.pop("dead_units_", None)

    def _after_training(self, rows):
        self.dead_units_ = self._dead_units(rows)
        self.dead_fraction_ = float(self.dead_units_.mean())

    def _dead_units(self, rows):
        module, kind = self.module_, self._kind()
        was_training = module.training
        module.eval()
        fired = torch.zeros(self.n_components_, dtype=torch.bool, device=self.device_)
        with torch.no_grad():
            for x in iter_rows(rows):
                fired |= kind.fires(module.encode(x)).any(dim=0)
        module.train(was_training)
        return (~fired).cpu().numpy()
