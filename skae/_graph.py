"""GraphAutoencoder: node embeddings of a graph given by its adjacency matrix.

The model of Kipf and Welling (2016): a two-layer graph-convolutional encoder
and an inner-product decoder, trained to reconstruct the adjacency matrix. Its
input is one precomputed (n_nodes, n_nodes) matrix, as for
``SpectralEmbedding(affinity="precomputed")``, not rows of samples, so it does
not use :class:`skae._base.BaseAutoencoder`'s row-based training template: a
fit is a short full-graph loop written here. What it shares with the other
estimators are the utilities: device resolution, per-fit seeding of torch's
global generator for initialization, thread sizing and warnings that point at
the user's line.

The fitted model is plain NumPy arrays (weights, the training nodes' degrees
and first-layer activations): torch is used for training only, so the model
pickles anywhere and stores in skae's safe format without a module.
"""

import copy
import time
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    check_non_negative,
    check_symmetric,
    validate_data,
)

from skae import _random
from skae.nn._graph import GCNEncoder, inner_product_logits
from skae.utils._device import resolve_device
from skae.utils._float_mode import flush_subnormals
from skae.utils._threads import follow_the_load, threads_sized_to
from skae.utils._warnings import warn_user

#: Largest graph trained on all n_nodes**2 pairs when ``negative_sampling``
#: is "auto": the pair logits and their gradient take about 16 * n**2 bytes.
ALL_PAIRS_MAX_NODES = 5000

_ACCEPT_SPARSE = ("csr", "csc", "coo")


def normalized_adjacency(adjacency):
    r"""The GCN propagation matrix :math:`\hat A = D^{-1/2}(A + I)D^{-1/2}`.

    :math:`D` is the diagonal degree matrix of :math:`A + I` (row sums), so
    every node keeps its own features (the self-loop) and the propagation
    does not change the scale of the features with the degree (Kipf and
    Welling's renormalization trick).

    Parameters
    ----------
    adjacency : {ndarray, sparse matrix} of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights.

    Returns
    -------
    normalized : same kind as ``adjacency``, shape (n_nodes, n_nodes)

    Examples
    --------
    >>> import numpy as np
    >>> from skae._graph import normalized_adjacency
    >>> normalized_adjacency(np.array([[0.0, 1.0], [1.0, 0.0]]))
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    n = adjacency.shape[0]
    with_loops = adjacency + (
        sp.identity(n, format="csr") if sp.issparse(adjacency) else np.eye(n)
    )
    inv_sqrt = 1.0 / np.sqrt(np.asarray(with_loops.sum(axis=1)).ravel())
    if sp.issparse(with_loops):
        scaling = sp.diags(inv_sqrt)
        return (scaling @ with_loops @ scaling).tocsr()
    return with_loops * inv_sqrt[:, None] * inv_sqrt[None, :]


def _to_torch(matrix, device):
    """A float32 torch tensor (sparse COO for a sparse matrix) on ``device``."""
    if sp.issparse(matrix):
        coo = sp.coo_matrix(matrix, dtype=np.float32)
        indices = np.vstack([coo.row, coo.col]).astype(np.int64)
        # scipy's COO is valid by construction: skip torch's invariant checks.
        return (
            torch.sparse_coo_tensor(
                torch.as_tensor(indices),
                torch.as_tensor(coo.data),
                size=coo.shape,
                check_invariants=False,
            )
            .coalesce()
            .to(device)
        )
    return torch.as_tensor(np.asarray(matrix, dtype=np.float32), device=device)


def _hold_out_edges(scaled, fraction, rng):
    """Split ``fraction`` of the edges off ``scaled`` for early stopping.

    Returns the training graph (without the held-out edges, both directions)
    and the validation pairs: the held-out edges and as many uniformly drawn
    pairs of distinct nodes, each with its target in the full graph (0 for a
    non-edge), or None when the graph has too few edges to hold any out.
    """
    upper = sp.triu(sp.coo_matrix(scaled), k=1).tocoo()
    n_held = int(round(fraction * upper.nnz))
    if n_held < 1 or n_held == upper.nnz:
        return scaled, None
    held = rng.choice(upper.nnz, size=n_held, replace=False)
    rows, cols = upper.row[held], upper.col[held]
    n = scaled.shape[0]
    random_rows = rng.randint(n, size=n_held)
    random_cols = (random_rows + rng.randint(1, n, size=n_held)) % n  # i != j
    if sp.issparse(scaled):
        removed = sp.csr_matrix(
            (np.ones(2 * n_held), (np.r_[rows, cols], np.r_[cols, rows])),
            shape=scaled.shape,
        )
        train = scaled - scaled.multiply(removed)
        train.eliminate_zeros()
        random_targets = np.asarray(scaled[random_rows, random_cols]).ravel()
    else:
        train = scaled.copy()
        train[rows, cols] = train[cols, rows] = 0.0
        random_targets = scaled[random_rows, random_cols]
    validation = (
        np.r_[rows, random_rows],
        np.r_[cols, random_cols],
        np.r_[upper.data[held], random_targets],
        n_held,
    )
    return train, validation


def _row_sums(matrix):
    return np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()


class GraphAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    r"""Graph autoencoder (GAE): node embeddings from a precomputed adjacency.

    The encoder is a two-layer graph convolutional network and the decoder
    the inner product of the codes:

    .. math::

        Z = \hat A \,\mathrm{relu}(\hat A X W_0)\, W_1, \qquad
        P(a_{ij} = 1) = \sigma(z_i^\top z_j), \qquad
        \hat A = D^{-1/2}(A + I)D^{-1/2},

    where :math:`D` holds the degrees of :math:`A + I` and :math:`X` the node
    features. The weights are fitted with Adam on the weighted binary
    cross-entropy between :math:`\sigma(ZZ^\top)` and :math:`A + I`:

    .. math::

        \min_{W_0, W_1} -\frac{1}{n^2} \sum_{i,j} \big[\, w\, t_{ij}
        \log \sigma(z_i^\top z_j) + (1 - t_{ij}) \log(1 - \sigma(z_i^\top z_j))
        \big],

    with :math:`w = \#\text{non-edges} / \#\text{edges}` so the few edges
    weigh as much as the many non-edges (Kipf and Welling, 2016). Weighted
    affinities are divided by their largest value, so the targets
    :math:`t_{ij}` lie in [0, 1]. Large graphs (``negative_sampling``) use all
    edges and as many random pairs per epoch instead of all :math:`n^2` pairs.
    Training stops when the loss of held-out edges stops improving
    (``early_stopping``).

    ``fit(A)`` takes a square, non-negative adjacency or affinity matrix, dense
    or sparse, like ``SpectralEmbedding(affinity="precomputed")``; a
    non-symmetric one is replaced by :math:`(A + A^\top)/2` with a warning.
    Without node features, each node's features are its own row of :math:`A`
    (scaled), which also gives new nodes features.

    Read more in the :ref:`User Guide <graph_ae>`.

    Parameters
    ----------
    n_components : int, default=16
        Size of the node embeddings.
    hidden_layer_size : int, default=32
        Width of the first graph convolution.
    learning_rate : float, default=0.01
        Adam step size.
    max_iter : int, default=200
        Maximum number of epochs (full passes over the graph).
    tol : float, default=1e-4
        Minimum improvement of the training loss, relative to the loss at the
        first epoch; training stops after ``n_iter_no_change`` epochs without
        one.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the edges (and as many random
        pairs of nodes), train on the graph without them, stop when their
        loss stops improving and keep the weights with the best one: without
        it a featureless GAE goes on fitting the training edges (the
        memorized graph) after held-out edges stop improving. The final
        embeddings use the whole graph. Graphs with too few edges to hold one
        out are trained on all of them, monitoring the training loss.
    validation_fraction : float, default=0.1
        Share of the edges held out when ``early_stopping=True``.
    negative_sampling : bool or "auto", default="auto"
        False: the loss sums over all :math:`n^2` pairs (memory grows as
        :math:`n^2`). True: over all edges and, each epoch, as many random
        pairs taken as non-edges. ``"auto"``: all pairs up to
        ``ALL_PAIRS_MAX_NODES`` (5000) nodes.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw: weight initialization and, with negative
        sampling, the pairs drawn each epoch. With an int, results are
        reproducible; the global RNGs are left untouched.
    device : str or torch.device, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    n_jobs : int or None, default=None
        Intra-op threads for training on the CPU (inference is NumPy). None
        sizes them to the work: one thread for small graphs (a second one only
        adds synchronisation, and is much slower on a busy machine), torch's
        setting for large ones, capped at the cores other processes leave idle
        (read at the call and again about every second of training). -1 uses
        every available core. The caller's torch setting is restored after
        each call.
    verbose : int, default=0
        Print the training loss every 10 epochs when positive.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components)
        Embeddings of the training graph's nodes (what ``fit_transform``
        returns).
    n_components_ : int
        Size of the embeddings.
    n_node_features_ : int
        Number of node features given to ``fit`` (0: the nodes' rows of
        :math:`A` were their features).
    scale_ : float
        Largest affinity of the training graph; affinities are divided by it.
    degree_ : ndarray of shape (n_nodes,)
        Degrees of the training nodes in :math:`A / \text{scale\_} + I`.
    hidden_weights_ : ndarray of shape (n_inputs, hidden_layer_size)
        :math:`W_0` (``n_inputs`` is ``n_nodes`` without node features).
    output_weights_ : ndarray of shape (hidden_layer_size, n_components)
        :math:`W_1`.
    projected_features_ : ndarray of shape (n_nodes, hidden_layer_size)
        :math:`X W_0` for the training nodes.
    hidden_ : ndarray of shape (n_nodes, hidden_layer_size)
        First-layer activations :math:`\mathrm{relu}(\hat A X W_0)` of the
        training nodes.
    pos_weight_ : float
        Weight :math:`w` of the edges in the loss (1 with negative sampling).
    loss_curve_ : list of float
        Training loss per epoch.
    validation_loss_curve_ : list of float
        Loss of the held-out edges and pairs per epoch (only when early
        stopping held edges out).
    n_iter_ : int
        Number of epochs run.
    device_ : torch.device
        Device the model was trained on.
    n_features_in_ : int
        Number of nodes of the training graph (columns of ``A``).

    See Also
    --------
    sklearn.manifold.SpectralEmbedding : Eigenvectors of the graph Laplacian,
        the linear, closed-form counterpart.

    Notes
    -----
    **New nodes.** ``transform(A_new)`` takes the affinities of new (or the
    same) nodes to the ``n_nodes`` training nodes, shape (n_queries, n_nodes),
    as kernel methods take ``K(X_new, X_train)``, and embeds each query node
    as if attached to the training graph: its degree is one plus its row sum,
    the training nodes keep theirs, and its features are its own row (or the
    ``features`` given). On the training matrix this is exactly the
    transductive embedding, so ``fit(A).transform(A)`` equals
    ``fit_transform(A)`` and ``embedding_``. Rows are embedded independently.
    This is also how a ``Pipeline`` under ``GridSearchCV`` sees it (the
    estimator is tagged pairwise): trained on the subgraph of the training
    nodes, applied to the test nodes' affinities to them.

    **Node features** go to ``fit(A, features=F)`` (and ``transform(A_new,
    features=F_new)``), not to a parameter: they are data, aligned with the
    nodes, and scikit-learn's cross-validation slices such per-sample fit
    arguments along with the nodes.

    References
    ----------
    T. N. Kipf and M. Welling, "Variational graph auto-encoders", NIPS
    Workshop on Bayesian Deep Learning, 2016. arXiv:1611.07308.

    T. N. Kipf and M. Welling, "Semi-supervised classification with graph
    convolutional networks", ICLR 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import GraphAutoencoder
    >>> block = np.ones((4, 4)) - np.eye(4)
    >>> A = np.block([[block, np.zeros((4, 4))], [np.zeros((4, 4)), block]])
    >>> gae = GraphAutoencoder(n_components=2, random_state=0)
    >>> Z = gae.fit_transform(A)
    >>> Z.shape
    (8, 2)
    >>> bool(gae.predict_link_proba([[0, 1]])[0] > gae.predict_link_proba([[0, 5]])[0])
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "negative_sampling": ["boolean", StrOptions({"auto"})],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=16,
        *,
        hidden_layer_size=32,
        learning_rate=0.01,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=True,
        validation_fraction=0.1,
        negative_sampling="auto",
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_layer_size = hidden_layer_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.negative_sampling = negative_sampling
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------ validation
    def _validate_graph(self, X, *, reset):
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=_ACCEPT_SPARSE,
            dtype=[np.float64, np.float32],
        )
        name = type(self).__name__
        if reset and X.shape[0] != X.shape[1]:
            raise ValueError(
                f"{name}.fit expects a square adjacency or affinity matrix of shape "
                f"(n_nodes, n_nodes); got shape {X.shape}."
            )
        check_non_negative(X, f"{name} (adjacency)")
        return sp.csr_matrix(X) if sp.issparse(X) else X

    def _validate_features(self, features, n_rows, X, expected):
        """Node features as a finite float array of ``n_rows`` rows, or None.

        ``expected``: the fitted model's ``n_node_features_`` (None in fit).
        """
        name = type(self).__name__
        if features is None:
            if expected:
                raise ValueError(
                    f"{name} was fitted with {expected} node features; pass the "
                    "new nodes' features with features=..."
                )
            return None
        if expected == 0:
            raise ValueError(
                f"{name} was fitted without node features; call transform without "
                "features=."
            )
        features = check_array(
            features,
            accept_sparse=False,
            dtype=[np.float64, np.float32],
            input_name="features",
        )
        if features.shape[0] != n_rows:
            raise ValueError(
                f"features has {features.shape[0]} rows but the adjacency matrix "
                f"has {n_rows} nodes (rows)."
            )
        if expected is not None and features.shape[1] != expected:
            raise ValueError(
                f"features has {features.shape[1]} columns, but {name} was fitted "
                f"with {expected} node features."
            )
        return features.astype(X.dtype, copy=False)

    def _use_negative_sampling(self, n_nodes):
        if self.negative_sampling == "auto":
            return n_nodes > ALL_PAIRS_MAX_NODES
        return bool(self.negative_sampling)

    # --------------------------------------------------------------- training
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, features=None):
        """Fit the graph autoencoder to the adjacency matrix ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_nodes, n_nodes)
            Adjacency or affinity matrix: square, non-negative, symmetric (a
            non-symmetric one is averaged with its transpose, with a warning).
        y : None
            Ignored.
        features : array-like of shape (n_nodes, n_node_features), default=None
            Node features. None: each node's row of ``X`` (scaled) is its
            features.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, features)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, *, features=None):
        """Fit to ``X`` and return the embeddings of its nodes (``embedding_``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_nodes, n_nodes)
            Adjacency or affinity matrix.
        y : None
            Ignored.
        features : array-like of shape (n_nodes, n_node_features), default=None
            Node features (see :meth:`fit`).

        Returns
        -------
        embedding : ndarray of shape (n_nodes, n_components)
            In ``X``'s floating dtype.
        """
        X = self._fit(X, features)
        return self.embedding_.astype(X.dtype, copy=False)

    def _fit(self, X, features):
        """Fit; return the validated, symmetric training matrix.

        A failed call (bad input, an error while training) leaves the
        estimator's attributes as they were.
        """
        saved = dict(self.__dict__)
        try:
            return self._fit_graph(X, features)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_graph(self, X, features):
        X = self._validate_graph(X, reset=True)
        X = check_symmetric(X, raise_warning=True)
        X = sp.csr_matrix(X) if sp.issparse(X) else X
        device = resolve_device(self.device)
        features = self._validate_features(features, X.shape[0], X, None)
        # Training computes in float32: values beyond its range would train
        # on infinities.
        if (
            features is not None
            and np.abs(features).max(initial=0.0) > np.finfo(np.float32).max
        ):
            raise ValueError(
                "features holds values too large for float32 training; rescale "
                "the node features."
            )
        n_nodes = X.shape[0]
        largest = X.max() if X.size else 0.0
        self.scale_ = float(largest) if largest > 0 else 1.0
        scaled = X / self.scale_
        self.n_node_features_ = 0 if features is None else features.shape[1]
        self.n_components_ = self.n_components
        self.device_ = device
        inputs = scaled if features is None else features

        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        seeds = np.random.SeedSequence(seed).generate_state(3)
        with _random.seeded_global_rng(int(seeds[0]), device):
            module = GCNEncoder(
                inputs.shape[1], self.hidden_layer_size, self.n_components
            )
        module = module.to(device)
        sampling = self._use_negative_sampling(n_nodes)
        nnz = scaled.nnz if sp.issparse(scaled) else np.count_nonzero(scaled)
        pairs = 2 * (nnz + n_nodes) if sampling else n_nodes * n_nodes
        work = (pairs + nnz) * (self.n_components + self.hidden_layer_size)
        train, validation = scaled, None
        if self.early_stopping:
            split_rng = np.random.RandomState(int(seeds[2]))
            train, validation = _hold_out_edges(
                scaled, self.validation_fraction, split_rng
            )
        train_inputs = train if features is None else features
        with (
            threads_sized_to(work, device, self.n_jobs),
            flush_subnormals(),
        ):
            self._train(
                module, train, train_inputs, validation, sampling, int(seeds[1]), device
            )
            # The embeddings use the whole graph, held-out edges included.
            self._set_inference_state(module, scaled, inputs)
        self.embedding_ = self._embed(X, features)
        return X

    def _train(self, module, scaled, inputs, validation, sampling, seed, device):
        adjacency = _to_torch(normalized_adjacency(scaled), device)
        features = _to_torch(inputs, device)
        n = scaled.shape[0]
        # Targets: A + I in [0, 1] (the paper reconstructs the graph with its
        # self-loops); a node given a self-loop of its own keeps target 1.
        if sp.issparse(scaled):
            target = scaled.tolil()
            target.setdiag(1.0)
        else:
            target = scaled.copy()
            np.fill_diagonal(target, 1.0)
        total = float(target.sum())
        if sampling:
            coo = sp.coo_matrix(target)
            rows = torch.as_tensor(coo.row, dtype=torch.int64, device=device)
            cols = torch.as_tensor(coo.col, dtype=torch.int64, device=device)
            values = torch.as_tensor(coo.data, dtype=torch.float32, device=device)
            generator = torch.Generator(device=device).manual_seed(seed)
            self.pos_weight_ = 1.0
        else:
            dense = target.toarray() if sp.issparse(target) else target
            dense = torch.as_tensor(dense, dtype=torch.float32, device=device)
            # Edges weigh as much as non-edges in total (the paper's w), and
            # the norm keeps the loss on the scale of a plain mean BCE.
            negatives = max(n * n - total, 0.0)
            self.pos_weight_ = negatives / total if negatives > 0 else 1.0
            pos_weight = torch.tensor(self.pos_weight_, device=device)
            norm = n * n / (2.0 * negatives) if negatives > 0 else 1.0

        def loss_fn():
            z = module(adjacency, features)
            if not sampling:
                return norm * F.binary_cross_entropy_with_logits(
                    inner_product_logits(z), dense, pos_weight=pos_weight
                )
            fake = torch.randint(
                0, n, (2, len(values)), device=device, generator=generator
            )
            return F.binary_cross_entropy_with_logits(
                inner_product_logits(z, rows, cols), values
            ) + F.binary_cross_entropy_with_logits(
                inner_product_logits(z, fake[0], fake[1]), torch.zeros_like(values)
            )

        if validation is not None:
            val_rows, val_cols, val_targets = (
                torch.as_tensor(a, device=device) for a in validation[:3]
            )
            val_targets, n_edges = val_targets.float(), validation[3]

        def validation_loss():
            # Held-out edges and random pairs weigh alike (the all-pairs
            # loss's balance), whatever the share of edges in the graph.
            with torch.no_grad():
                logits = inner_product_logits(
                    module(adjacency, features), val_rows, val_cols
                )
                losses = F.binary_cross_entropy_with_logits(
                    logits, val_targets, reduction="none"
                )
            return float(losses[:n_edges].mean() + losses[n_edges:].mean())

        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        self.loss_curve_ = []
        if validation is not None:
            self.validation_loss_curve_ = []
        elif hasattr(self, "validation_loss_curve_"):
            del self.validation_loss_curve_
        best_loss, best_state, stale, reason = np.inf, None, 0, None
        start = time.perf_counter()
        try:
            for epoch in range(self.max_iter):
                follow_the_load()
                optimizer.zero_grad()
                loss = loss_fn()
                value = float(loss.detach())
                if not np.isfinite(value):
                    reason = "diverged"
                    break
                if validation is None and value < best_loss:
                    # The training loss measures the weights before the step.
                    best_state = copy.deepcopy(module.state_dict())
                loss.backward()
                optimizer.step()
                self.loss_curve_.append(value)
                if validation is not None:
                    value = validation_loss()
                    self.validation_loss_curve_.append(value)
                    if value < best_loss:
                        best_state = copy.deepcopy(module.state_dict())
                if self.verbose and (epoch % 10 == 0 or epoch == self.max_iter - 1):
                    held_out = f", held-out {value:.5f}" if validation else ""
                    print(
                        f"epoch {epoch + 1}: loss {self.loss_curve_[-1]:.5f}"
                        f"{held_out} ({time.perf_counter() - start:.1f} s)"
                    )
                first = (
                    self.validation_loss_curve_
                    if validation is not None
                    else self.loss_curve_
                )[0]
                if value < best_loss - self.tol * abs(first):
                    stale = 0
                else:
                    stale += 1
                best_loss = min(best_loss, value)
                if stale >= self.n_iter_no_change:
                    reason = "converged"
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
        if best_state is not None:
            module.load_state_dict(best_state)
        self.n_iter_ = len(self.loss_curve_)
        self._report(reason)

    def _report(self, reason):
        name = type(self).__name__
        if reason == "diverged":
            warn_user(
                f"{name}: the training loss diverged (NaN or infinite) at epoch "
                f"{self.n_iter_ + 1}; the best weights seen so far were kept. Lower "
                "learning_rate.",
                RuntimeWarning,
            )
        elif reason == "interrupted":
            warn_user(
                f"{name}: training interrupted by user after {self.n_iter_} "
                "epoch(s); the estimator is fitted with the best weights seen so far."
            )
        elif reason is None:
            warn_user(
                f"{name}: max_iter={self.max_iter} epochs reached and the "
                "optimization has not converged yet.",
                ConvergenceWarning,
            )

    def _set_inference_state(self, module, scaled, inputs):
        """What ``transform`` needs of the training graph, in float64."""
        self.hidden_weights_ = module.hidden.weight.detach().cpu().double().numpy().T
        self.output_weights_ = module.output.weight.detach().cpu().double().numpy().T
        self.hidden_weights_ = np.ascontiguousarray(self.hidden_weights_)
        self.output_weights_ = np.ascontiguousarray(self.output_weights_)
        inputs = inputs.astype(np.float64)
        self.degree_ = 1.0 + _row_sums(scaled.astype(np.float64))
        self.projected_features_ = np.asarray(inputs @ self.hidden_weights_)
        propagation = normalized_adjacency(scaled.astype(np.float64))
        self.hidden_ = np.maximum(propagation @ self.projected_features_, 0.0)

    # -------------------------------------------------------------- inference
    def _embed(self, X, features):
        """Embeddings of query nodes with affinity rows ``X`` (validated).

        A query q with scaled affinities b_q to the training nodes and degree
        d_q = 1 + sum(b_q) gets, layer by layer,
        ``h_q = relu(sum_j b_qj / sqrt(d_q d_j) p_j + p_q / d_q)`` with
        ``p = x W0``, then ``z_q`` the same way from ``h W1``: row q of
        ``Â relu(Â X W0) W1`` when q is a training node with its own row.
        """
        dtype = X.dtype
        b = X / self.scale_
        # x_q W0: the query's own features (its affinity row without features).
        own = b if features is None else features
        weights0 = self.hidden_weights_.astype(dtype, copy=False)
        weights1 = self.output_weights_.astype(dtype, copy=False)
        inv_sqrt_train = (1.0 / np.sqrt(self.degree_)).astype(dtype)[:, None]
        degree = (1.0 + _row_sums(b)).astype(dtype)[:, None]
        inv_sqrt = 1.0 / np.sqrt(degree)
        projected = self.projected_features_.astype(dtype, copy=False)
        hidden = np.maximum(
            np.asarray(b @ (projected * inv_sqrt_train)) * inv_sqrt
            + np.asarray(own @ weights0) / degree,
            0.0,
        )
        messages = self.hidden_.astype(dtype, copy=False) @ weights1
        out = (
            np.asarray(b @ (messages * inv_sqrt_train)) * inv_sqrt
            + (hidden @ weights1) / degree
        )
        return np.ascontiguousarray(out, dtype=dtype)

    def transform(self, X, *, features=None):
        """Embed nodes given by their affinities to the training nodes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_nodes)
            Affinities of each query node to the ``n_nodes`` training nodes
            (the training matrix itself gives ``embedding_``); see Notes.
        features : array-like of shape (n_queries, n_node_features), \
                default=None
            The query nodes' features; required exactly when the model was
            fitted with features.

        Returns
        -------
        embedding : ndarray of shape (n_queries, n_components)
            In ``X``'s floating dtype.
        """
        check_is_fitted(self)
        X = self._validate_graph(X, reset=False)
        features = self._validate_features(
            features, X.shape[0], X, self.n_node_features_
        )
        return self._checked(self._embed(X, features), "transform")

    def inverse_transform(self, X):
        """Reconstruct affinities to the training nodes from embeddings.

        The inner-product decoder: ``scale_ * sigmoid(X @ embedding_.T)``,
        edge probabilities in the units of the training matrix.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_components)
            Node embeddings (e.g. from :meth:`transform`).

        Returns
        -------
        affinities : ndarray of shape (n_queries, n_nodes)
        """
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32])
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_components_} features (the embedding size)."
            )
        logits = X @ self.embedding_.astype(X.dtype, copy=False).T
        return self.scale_ * _sigmoid(logits)

    def predict_link_proba(self, pairs):
        """Probability of an edge between pairs of training nodes.

        Parameters
        ----------
        pairs : array-like of int, shape (n_pairs, 2)
            Node indices (rows of the training matrix).

        Returns
        -------
        proba : ndarray of shape (n_pairs,)
            ``sigmoid(z_i . z_j)`` for each pair ``(i, j)``.
        """
        check_is_fitted(self)
        pairs = np.asarray(pairs)
        if pairs.dtype.kind not in "iu" or pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(
                "pairs must be an integer array of shape (n_pairs, 2) of node "
                f"indices; got dtype {pairs.dtype} and shape {pairs.shape}."
            )
        n = self.n_features_in_
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
            raise ValueError(
                f"pairs holds node indices outside [0, {n - 1}] (the training graph "
                f"has {n} nodes)."
            )
        Z = self.embedding_
        return _sigmoid(np.einsum("ij,ij->i", Z[pairs[:, 0]], Z[pairs[:, 1]]))

    def _checked(self, out, what):
        if not np.all(np.isfinite(out)):
            raise ValueError(
                f"{type(self).__name__}.{what}: the embeddings are not finite (the "
                "affinities are too large for the floating-point type)."
            )
        return out

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = True
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _sigmoid(x):
    # exp of -|x| only: no overflow warning for large logits.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
