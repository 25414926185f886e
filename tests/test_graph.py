"""GraphAutoencoder: the GCN propagation, the fitted model's math, inputs."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skae import GraphAutoencoder
from skae._graph import normalized_adjacency
from skae.nn._graph import GCNEncoder


def two_cliques(size=5):
    block = np.ones((size, size)) - np.eye(size)
    zeros = np.zeros((size, size))
    return np.block([[block, zeros], [zeros, block]])


def sbm(n_per_block, p_in, p_out, seed):
    rng = np.random.RandomState(seed)
    blocks = np.repeat([0, 1], n_per_block)
    probability = np.where(blocks[:, None] == blocks[None, :], p_in, p_out)
    upper = np.triu(rng.rand(len(blocks), len(blocks)) < probability, k=1)
    return (upper | upper.T).astype(float), blocks


@pytest.fixture(scope="module")
def fitted_cliques():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Every edge in training: the known answer is the whole graph's.
        model = GraphAutoencoder(
            n_components=2, early_stopping=False, random_state=0
        ).fit(two_cliques())
    return model


def test_normalized_adjacency_of_a_path_by_hand():
    # Path 0 - 1 - 2: degrees of A + I are 2, 3, 2.
    A = np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
    expected = np.array(
        [
            [1 / 2, 1 / np.sqrt(6), 0],
            [1 / np.sqrt(6), 1 / 3, 1 / np.sqrt(6)],
            [0, 1 / np.sqrt(6), 1 / 2],
        ]
    )
    np.testing.assert_allclose(normalized_adjacency(A), expected)
    sparse = normalized_adjacency(sp.csr_matrix(A))
    assert sp.issparse(sparse)
    np.testing.assert_allclose(sparse.toarray(), expected)


def test_encoder_is_two_propagated_layers():
    import torch

    A = np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])
    adjacency = torch.as_tensor(normalized_adjacency(A), dtype=torch.float64)
    features = torch.eye(3, dtype=torch.float64)
    torch.manual_seed(0)
    encoder = GCNEncoder(3, 4, 2).double()
    W0, W1 = encoder.hidden.weight.T, encoder.output.weight.T
    expected = adjacency @ torch.relu(adjacency @ features @ W0) @ W1
    torch.testing.assert_close(encoder(adjacency, features), expected)


def test_two_cliques_are_reconstructed(fitted_cliques):
    model = fitted_cliques
    Z = model.embedding_
    assert Z.shape == (10, 2)
    # Every node is nearer (in angle) to its own clique than to the other.
    unit = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = np.kron(np.eye(2), np.ones((5, 5))).astype(bool)
    assert cosine[same].min() > cosine[~same].max()
    within = np.array([[0, 1], [2, 4], [5, 6], [7, 9]])
    across = np.array([[0, 5], [1, 9], [4, 7], [3, 8]])
    assert model.predict_link_proba(within).min() > 0.9
    assert model.predict_link_proba(across).max() < 0.1
    # inverse_transform is the same decoder over all pairs.
    reconstruction = model.inverse_transform(Z)
    np.testing.assert_allclose(
        reconstruction[within[:, 0], within[:, 1]], model.predict_link_proba(within)
    )
    assert np.abs(reconstruction - (two_cliques() + np.eye(10))).max() < 0.1


def test_transform_of_the_training_graph_is_the_embedding(fitted_cliques):
    model = fitted_cliques
    A = two_cliques()
    np.testing.assert_array_equal(model.transform(A), model.embedding_)
    # One row at a time, in any order: rows are embedded independently.
    rows = np.array([model.transform(A[i : i + 1])[0] for i in range(10)])
    np.testing.assert_allclose(rows, model.embedding_, rtol=1e-12, atol=1e-12)


def test_embedding_matches_the_full_graph_formula(fitted_cliques):
    model = fitted_cliques
    A = two_cliques()
    propagation = normalized_adjacency(A)
    # Without node features each node's features are its row of A / scale_.
    X = A / model.scale_
    W0, W1 = model.hidden_weights_, model.output_weights_
    expected = propagation @ np.maximum(propagation @ X @ W0, 0) @ W1
    np.testing.assert_allclose(model.embedding_, expected, rtol=1e-10, atol=1e-12)


def test_new_node_attached_to_one_clique_lands_in_it(fitted_cliques):
    model = fitted_cliques
    new = np.zeros((1, 10))
    new[0, [0, 1, 2]] = 1.0  # linked to three nodes of the first clique
    z = model.transform(new)[0]
    Z = model.embedding_
    cos = Z @ z / (np.linalg.norm(Z, axis=1) * np.linalg.norm(z))
    assert cos[:5].min() > cos[5:].max()


def test_sparse_input_gives_the_dense_result():
    A = two_cliques()
    params = dict(n_components=2, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = GraphAutoencoder(**params).fit_transform(A)
        for fmt in ("csr", "csc", "coo"):
            sparse = GraphAutoencoder(**params).fit_transform(
                sp.csr_matrix(A).asformat(fmt)
            )
            np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
        model = GraphAutoencoder(**params).fit(A)
    np.testing.assert_allclose(model.transform(sp.csr_matrix(A)), dense, atol=1e-12)


def test_float32_input_gives_float32_embeddings(fitted_cliques):
    A = two_cliques().astype(np.float32)
    Z = fitted_cliques.transform(A)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, fitted_cliques.embedding_, rtol=1e-5, atol=1e-5)


def test_weighted_affinities_are_scaled_by_their_largest_value():
    A = two_cliques()
    params = dict(n_components=2, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = GraphAutoencoder(**params).fit(A)
        scaled = GraphAutoencoder(**params).fit(7.0 * A)
    assert scaled.scale_ == 7.0
    np.testing.assert_allclose(scaled.embedding_, unit.embedding_, rtol=1e-6)
    np.testing.assert_allclose(
        scaled.inverse_transform(scaled.embedding_),
        7.0 * unit.inverse_transform(unit.embedding_),
        rtol=1e-6,
    )


def test_node_features_are_used_and_required_again():
    A, blocks = sbm(15, 0.4, 0.05, seed=0)
    features = np.eye(2)[blocks] + 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GraphAutoencoder(n_components=2, max_iter=50, random_state=0)
        Z = model.fit_transform(A, features=features)
    assert model.n_node_features_ == 2
    assert model.hidden_weights_.shape == (2, model.hidden_layer_size)
    np.testing.assert_allclose(model.transform(A, features=features), Z, atol=1e-12)
    with pytest.raises(ValueError, match="fitted with 2 node features"):
        model.transform(A)
    with pytest.raises(ValueError, match="features has 3 columns"):
        model.transform(A, features=np.ones((30, 3)))
    with pytest.raises(ValueError, match="features has 29 rows"):
        model.transform(A, features=features[:29])
    with pytest.raises(ValueError, match="without node features"):
        GraphAutoencoder(max_iter=2).fit(A).transform(A, features=features)


def test_negative_sampling_separates_blocks():
    A, blocks = sbm(40, 0.3, 0.02, seed=1)
    model = GraphAutoencoder(n_components=4, negative_sampling=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(sp.csr_matrix(A))
    assert model.pos_weight_ == 1.0
    P = model.inverse_transform(model.embedding_)
    same = blocks[:, None] == blocks[None, :]
    assert P[same].mean() > P[~same].mean() + 0.2


def test_all_pairs_loss_weighs_edges_by_the_non_edge_ratio(fitted_cliques):
    # 10 nodes: 40 edges + 10 self-loops of A + I, 50 non-edges.
    assert fitted_cliques.pos_weight_ == pytest.approx(50 / 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GraphAutoencoder(max_iter=1, early_stopping=False).fit(two_cliques(3))
    # 6 nodes: 12 edges + 6 self-loops, 18 non-edges.
    assert model.pos_weight_ == pytest.approx(18 / 18)
    A, _ = sbm(10, 0.5, 0.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GraphAutoencoder(max_iter=1, early_stopping=False).fit(A)
    positives = A.sum() + 20
    assert model.pos_weight_ == pytest.approx((400 - positives) / positives)


def test_same_seed_same_model_and_global_rng_untouched():
    import torch

    A = two_cliques()
    state = torch.random.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GraphAutoencoder(max_iter=5, random_state=3).fit_transform(A)
        b = GraphAutoencoder(max_iter=5, random_state=3).fit_transform(A)
        c = GraphAutoencoder(max_iter=5, random_state=4).fit_transform(A)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_asymmetric_input_is_symmetrized_with_a_warning():
    A = two_cliques()
    B = A.copy()
    B[0, 1] = 0.0
    params = dict(n_components=2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="not symmetric"):
            Z = GraphAutoencoder(**params).fit_transform(B)
        expected = GraphAutoencoder(**params).fit_transform((B + B.T) / 2)
    np.testing.assert_array_equal(Z, expected)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.ones((4, 3)), "square"),
        (-two_cliques(), "Negative values"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.full((3, 3), np.inf), "infinity"),
        (np.ones(4), "2D array"),
        (np.ones((0, 0)), "0 sample"),
    ],
)
def test_bad_graphs_are_refused_and_leave_the_model_unchanged(X, match, fitted_cliques):
    model = fitted_cliques
    before = model.embedding_.copy()
    with pytest.raises(ValueError, match=match):
        model.fit(X)
    np.testing.assert_array_equal(model.embedding_, before)
    assert model.n_features_in_ == 10


def test_bad_transform_input_is_refused(fitted_cliques):
    with pytest.raises(ValueError, match="10 features"):
        fitted_cliques.transform(np.ones((2, 9)))
    with pytest.raises(ValueError, match="Negative values"):
        fitted_cliques.transform(-np.ones((2, 10)))
    with pytest.raises(ValueError, match="expecting 2 features"):
        fitted_cliques.inverse_transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="outside"):
        fitted_cliques.predict_link_proba([[0, 10]])
    with pytest.raises(ValueError, match="integer array"):
        fitted_cliques.predict_link_proba([[0.0, 1.0]])


def test_node_classification_in_a_grid_search():
    # Pairwise tag: cross-validation fits on the training nodes' subgraph and
    # transforms the test nodes' affinities to them.
    A, blocks = sbm(30, 0.3, 0.02, seed=2)
    pipe = make_pipeline(
        GraphAutoencoder(max_iter=60, random_state=0), LogisticRegression()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(
            pipe, {"graphautoencoder__n_components": [2, 4]}, cv=3
        ).fit(A, blocks)
    assert search.best_score_ > 0.9


def test_safe_format_round_trip_and_checked_arrays(fitted_cliques, tmp_path):
    import pickle

    from skae import load, save

    path = tmp_path / "gae.skae"
    save(fitted_cliques, path)
    loaded = load(path)
    A = two_cliques()
    np.testing.assert_array_equal(loaded.transform(A), fitted_cliques.transform(A))
    np.testing.assert_array_equal(loaded.embedding_, fitted_cliques.embedding_)
    # An array whose size does not fit the others is refused before writing.
    broken = pickle.loads(pickle.dumps(fitted_cliques))
    broken.hidden_ = broken.hidden_[:, :3]
    with pytest.raises(ValueError, match="hidden_ must have shape"):
        save(broken, tmp_path / "broken.skae")
    broken = pickle.loads(pickle.dumps(fitted_cliques))
    broken.degree_ = broken.degree_ * 0.0
    with pytest.raises(ValueError, match="degree_"):
        save(broken, tmp_path / "broken.skae")


def test_features_too_large_for_float32_are_refused():
    with pytest.raises(ValueError, match="too large for float32"):
        GraphAutoencoder(max_iter=2).fit(two_cliques(), features=np.full((10, 2), 1e39))


def test_early_stopping_holds_out_edges_and_keeps_the_best_weights():
    from skae._graph import _hold_out_edges

    A, _ = sbm(40, 0.3, 0.02, seed=3)
    train, validation = _hold_out_edges(A, 0.1, np.random.RandomState(0))
    rows, cols, targets, n_held = validation
    n_edges = int(np.triu(A, 1).sum())
    assert n_held == round(0.1 * n_edges)
    # The held-out edges are edges of A and are gone (both ways) from train.
    held = (rows[:n_held], cols[:n_held])
    assert np.all(A[held] == 1) and np.all(targets[:n_held] == 1)
    assert np.all(train[held] == 0) and np.all(train.T[held] == 0)
    assert train.sum() == A.sum() - 2 * n_held
    # The random pairs are pairs of distinct nodes, with their targets in A.
    assert np.all(rows[n_held:] != cols[n_held:])
    np.testing.assert_array_equal(targets[n_held:], A[rows[n_held:], cols[n_held:]])
    sparse_train, _ = _hold_out_edges(sp.csr_matrix(A), 0.1, np.random.RandomState(0))
    np.testing.assert_array_equal(sparse_train.toarray(), train)

    model = GraphAutoencoder(n_components=4, max_iter=300, random_state=0).fit(A)
    curve = model.validation_loss_curve_
    assert len(curve) == len(model.loss_curve_) == model.n_iter_ < 300
    # Stopped n_iter_no_change epochs after the best held-out loss.
    assert int(np.argmin(curve)) == model.n_iter_ - 1 - model.n_iter_no_change
    # Too few edges to hold one out: trained on all of them.
    tiny = GraphAutoencoder(max_iter=3).fit(two_cliques(2))
    assert not hasattr(tiny, "validation_loss_curve_")
