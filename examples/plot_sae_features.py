"""
==========================================================
Finding features in a network's activations with BatchTopK
==========================================================

Sparse autoencoders are how interpretability research looks for features in
the activations of trained networks: an overcomplete dictionary of directions
in activation space, of which each input uses a few. Here the network is a
small multi-layer perceptron trained on MNIST digits (scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier`, one hidden layer of 64 ReLU
units, 10000 training images); a :class:`skae.SparseAE` with
``sparsity="batchtopk"`` learns 256 latents (4x overcomplete) from its
hidden-layer activations, and each latent is shown through the digits that
activate it most.

MNIST is read from the shared data folder (``SKAE_DATA_DIR``, see
:func:`skae.datasets.load_mnist`); nothing is downloaded.
"""

# %%
# Train the network and record its hidden layer
# ---------------------------------------------
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from skae import SparseAE
from skae.datasets import load_mnist
from skae.metrics import sparse_code_metrics

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_TRAIN = 2000 if TINY else 10000

X_train, y_train, X_test, y_test = load_mnist()
X = X_train[:N_TRAIN] / 255.0
y = y_train[:N_TRAIN]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    mlp = MLPClassifier(
        hidden_layer_sizes=(64,), max_iter=5 if TINY else 30, random_state=0
    ).fit(X, y)
print(f"MLP test accuracy: {mlp.score(X_test[:2000] / 255.0, y_test[:2000]):.3f}")


def hidden_activations(images):
    """The MLP's hidden layer: ReLU(X W1 + b1)."""
    return np.maximum(images @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)


H = hidden_activations(X)

# %%
# A BatchTopK sparse autoencoder on the activations
# -------------------------------------------------
# ``k=8``: eight active latents per image on average while training; at
# inference a learned threshold decides, one image at a time.
sae = SparseAE(
    256,
    sparsity="batchtopk",
    k=8,
    learning_rate=3e-3,
    max_iter=3 if TINY else 40,
    tol=0,
    dead_window=N_TRAIN,
    random_state=0,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    sae.fit(H)
H_test = hidden_activations(X_test[:2000] / 255.0)
for name, value in sparse_code_metrics(sae, H_test).items():
    print(f"{name}: {value:.3f}")

# %%
# The digits that activate a latent most
# --------------------------------------
# Each row is one latent (among the most often active ones): its eight
# strongest training images, and the share of them per class in its title.
Z = sae.transform(H)
frequency = (Z > 0).mean(axis=0)
latents = np.argsort(frequency)[::-1][: 6 if not TINY else 3]
fig, axes = plt.subplots(len(latents), 8, figsize=(8, 1.2 * len(latents)))
for row, latent in zip(np.atleast_2d(axes), latents):
    top = np.argsort(Z[:, latent])[::-1][:8]
    labels = np.bincount(y[top], minlength=10)
    row[0].set_title(
        f"latent {latent}: mostly {labels.argmax()}s, fires on {frequency[latent]:.0%}",
        loc="left",
        fontsize=8,
    )
    for ax, index in zip(row, top):
        ax.imshow(X[index].reshape(28, 28), cmap="gray_r")
        ax.axis("off")
fig.tight_layout()

# %%
# Sparser than the network's own units
# ------------------------------------
# The hidden units themselves are dense (most fire on most digits); the
# latents each fire on a small share of the images.
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist((H > 0).mean(axis=0), bins=20, alpha=0.6, label="MLP hidden units")
ax.hist(frequency, bins=40, alpha=0.6, label="SAE latents")
ax.set_xlabel("share of images on which it is active")
ax.set_ylabel("count")
ax.legend()
fig.tight_layout()
plt.show()
