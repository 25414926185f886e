"""
======================================================
Graph autoencoder: node embeddings and link prediction
======================================================

:class:`skae.GraphAutoencoder` embeds the nodes of a graph given by its
adjacency matrix, as ``SpectralEmbedding(affinity="precomputed")`` does, with
a two-layer graph convolutional encoder trained to reconstruct the adjacency
through ``sigmoid(Z Z^T)``. We generate a stochastic block model (four
communities), hold out 10% of its edges, embed the rest, and look at the
embeddings, the reconstructed adjacency and how well held-out edges are
recovered.
"""

# %%
# A stochastic block model
# ------------------------
# Four blocks; two nodes of the same block are linked with probability 0.1,
# of different blocks with probability 0.01.
import os

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from sklearn.manifold import SpectralEmbedding
from sklearn.metrics import roc_auc_score

from skae import GraphAutoencoder

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_PER_BLOCK, EPOCHS = (30, 40) if TINY else (150, 200)

rng = np.random.RandomState(0)
blocks = np.repeat(np.arange(4), N_PER_BLOCK)
n = len(blocks)
probability = np.where(blocks[:, None] == blocks[None, :], 0.1, 0.01)
upper = np.triu(rng.rand(n, n) < probability, k=1)

# %%
# Hold out 10% of the edges and as many non-edges
# -----------------------------------------------
edges = np.argwhere(upper)
held_out = rng.rand(len(edges)) < 0.1
test_edges, train_edges = edges[held_out], edges[~held_out]
non_edges = np.argwhere(np.triu(~upper, k=1))
test_non_edges = non_edges[rng.choice(len(non_edges), len(test_edges), replace=False)]
A = sp.csr_matrix((np.ones(len(train_edges)), tuple(train_edges.T)), shape=(n, n))
A = A + A.T  # undirected: symmetric
pairs = np.vstack([test_edges, test_non_edges])
is_edge = np.r_[np.ones(len(test_edges)), np.zeros(len(test_non_edges))]

# %%
# Embed the training graph
# ------------------------
# The graph autoencoder with 2-dimensional codes (to draw them) and spectral
# embedding, both from the same sparse adjacency matrix.
gae = GraphAutoencoder(n_components=2, max_iter=EPOCHS, random_state=0)
Z = gae.fit_transform(A)
spectral = SpectralEmbedding(n_components=2, affinity="precomputed", random_state=0)
S = spectral.fit_transform(A)

auc_gae = roc_auc_score(is_edge, gae.predict_link_proba(pairs))
auc_spectral = roc_auc_score(
    is_edge, np.einsum("ij,ij->i", S[pairs[:, 0]], S[pairs[:, 1]])
)
print(f"held-out edges, ROC-AUC: GAE {auc_gae:.3f}, spectral {auc_spectral:.3f}")

# %%
# Embeddings and the reconstructed adjacency
# ------------------------------------------
# The decoder's edge probabilities, ``inverse_transform(Z)``, have the block
# structure of the model that generated the graph.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, (name, E, auc) in zip(
    axes[:2],
    [("GraphAutoencoder", Z, auc_gae), ("SpectralEmbedding", S, auc_spectral)],
):
    ax.scatter(E[:, 0], E[:, 1], c=blocks, cmap="tab10", vmax=9, s=8)
    ax.set_title(f"{name}\nheld-out edges ROC-AUC {auc:.2f}")
    ax.set_xticks([])
    ax.set_yticks([])
image = axes[2].imshow(gae.inverse_transform(Z), cmap="viridis", vmin=0, vmax=1)
axes[2].set_title("GAE edge probabilities sigmoid(Z Z^T)")
axes[2].set_xticks([])
axes[2].set_yticks([])
fig.colorbar(image, ax=axes[2], fraction=0.046)
fig.tight_layout()
plt.show()
