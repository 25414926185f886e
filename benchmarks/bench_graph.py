"""Link prediction on stochastic-block-model graphs: GraphAutoencoder beside
SpectralEmbedding.

The graphs (generated here, nothing downloaded): an undirected stochastic
block model with ``n_blocks`` equal blocks, an edge between two nodes of the
same block with probability ``p_in`` and of different blocks with ``p_out``,
no self-loops, drawn with ``np.random.RandomState(seed)``:

=========  =======  ========  =====  ======  ===================
graph      n_nodes  n_blocks  p_in   p_out   expected mean degree
=========  =======  ========  =====  ======  ===================
sbm-1000   1000     5         0.05   0.005   14
sbm-2000   2000     10        0.03   0.002   ~9.6
=========  =======  ========  =====  ======  ===================

Protocol (Kipf and Welling, 2016): for each seed, 10% of the edges are held
out as test positives together with as many node pairs that are not edges
(test negatives, drawn uniformly); every method is fitted on the graph
without the held-out edges and scores each test pair. GraphAutoencoder
(defaults: 16-dimensional codes, a 32-unit hidden layer, early stopping on
10% of the training edges, 200 epochs at most)
scores a pair with its decoder, ``sigmoid(z_i . z_j)``;
``SpectralEmbedding(n_components=16, affinity="precomputed")`` with the inner
product and with the cosine of the two embeddings. ROC-AUC and average
precision of the test pairs, mean ± standard deviation over the seeds, and
fit times.

Run (from the repository root)::

    python benchmarks/bench_graph.py            # seeds 0-4, ~40 s of CPU
    python benchmarks/bench_graph.py --quick    # seed 0, sbm-1000 only

``report(quick=False)`` returns the markdown table (used by
``benchmarks/bench_architectures.py``).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.manifold import SpectralEmbedding
from sklearn.metrics import average_precision_score, roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _common import machine_line  # noqa: E402

from skae import GraphAutoencoder  # noqa: E402

#: name: (n_nodes, n_blocks, p_in, p_out)
GRAPHS = {
    "sbm-1000": (1000, 5, 0.05, 0.005),
    "sbm-2000": (2000, 10, 0.03, 0.002),
}
SEEDS = [0, 1, 2, 3, 4]
N_COMPONENTS = 16
TEST_FRACTION = 0.1


def stochastic_block_model(n_nodes, n_blocks, p_in, p_out, seed):
    """A symmetric 0/1 sparse adjacency matrix and the block of each node."""
    rng = np.random.RandomState(seed)
    blocks = np.repeat(np.arange(n_blocks), int(np.ceil(n_nodes / n_blocks)))[:n_nodes]
    probability = np.where(blocks[:, None] == blocks[None, :], p_in, p_out)
    upper = np.triu(rng.rand(n_nodes, n_nodes) < probability, k=1)
    adjacency = sp.csr_matrix(upper | upper.T, dtype=np.float64)
    return adjacency, blocks


def split_edges(adjacency, fraction, seed):
    """Training graph without ``fraction`` of the edges; test pairs and labels.

    The test negatives are as many node pairs (i < j) that are not edges of
    the full graph, drawn uniformly.
    """
    rng = np.random.RandomState(seed + 10_000)
    upper = sp.triu(adjacency, k=1).tocoo()
    edges = np.column_stack([upper.row, upper.col])
    order = rng.permutation(len(edges))
    n_test = int(round(fraction * len(edges)))
    test_edges, train_edges = edges[order[:n_test]], edges[order[n_test:]]
    n = adjacency.shape[0]
    dense = adjacency.toarray() > 0
    negatives = set()
    while len(negatives) < n_test:
        i, j = rng.randint(n, size=2)
        if i != j and not dense[i, j]:
            negatives.add((min(i, j), max(i, j)))
    test_negatives = np.array(sorted(negatives))
    rows = np.concatenate([train_edges[:, 0], train_edges[:, 1]])
    cols = np.concatenate([train_edges[:, 1], train_edges[:, 0]])
    train = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    pairs = np.vstack([test_edges, test_negatives])
    labels = np.r_[np.ones(len(test_edges)), np.zeros(len(test_negatives))]
    return train, pairs, labels


def _scores(method, train, pairs, seed):
    start = time.perf_counter()
    if method == "GraphAutoencoder":
        model = GraphAutoencoder(n_components=N_COMPONENTS, random_state=seed)
        model.fit(train)
        seconds = time.perf_counter() - start
        return {"decoder": model.predict_link_proba(pairs)}, seconds
    embedding = SpectralEmbedding(
        n_components=N_COMPONENTS, affinity="precomputed", random_state=seed
    ).fit_transform(train)
    seconds = time.perf_counter() - start
    zi, zj = embedding[pairs[:, 0]], embedding[pairs[:, 1]]
    inner = np.einsum("ij,ij->i", zi, zj)
    norms = np.linalg.norm(zi, axis=1) * np.linalg.norm(zj, axis=1)
    return {"inner product": inner, "cosine": inner / np.maximum(norms, 1e-12)}, seconds


def run(graphs, seeds):
    """Rows ``(graph, method, score, roc_aucs, aps, fit_seconds)``."""
    results = {}
    for name in graphs:
        for seed in seeds:
            adjacency, _ = stochastic_block_model(*GRAPHS[name], seed=seed)
            train, pairs, labels = split_edges(adjacency, TEST_FRACTION, seed)
            for method in ("GraphAutoencoder", "SpectralEmbedding"):
                with warnings.catch_warnings():
                    # A held-out split can leave a node isolated: spectral
                    # embedding warns that the graph is not connected.
                    warnings.simplefilter("ignore", UserWarning)
                    scores, seconds = _scores(method, train, pairs, seed)
                for score_name, score in scores.items():
                    entry = results.setdefault((name, method, score_name), ([], [], []))
                    entry[0].append(roc_auc_score(labels, score))
                    entry[1].append(average_precision_score(labels, score))
                    entry[2].append(seconds)
    return results


def _cell(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def report(quick=False):
    """Run the benchmark; return its markdown table (with a header line)."""
    graphs = ["sbm-1000"] if quick else list(GRAPHS)
    seeds = SEEDS[:1] if quick else SEEDS
    results = run(graphs, seeds)
    lines = [
        f"Link prediction on held-out edges of SBM graphs (seeds {seeds}; "
        f"{machine_line()}). Mean ± std over seeds.",
        "",
        "| graph | method | pair score | ROC-AUC | average precision | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for (graph, method, score_name), (aucs, aps, seconds) in results.items():
        lines.append(
            f"| {graph} | {method} | {score_name} | {_cell(aucs)} | {_cell(aps)} "
            f"| {np.mean(seconds):.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, one graph")
    args = parser.parse_args()
    print(report(quick=args.quick))
