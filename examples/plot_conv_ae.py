"""
==========================================
A convolutional autoencoder for digits
==========================================

A :class:`skae.ConvAutoencoder` reads every row as an image
(``image_shape=(1, 8, 8)`` here, inferred because 64 is a square) and
encodes it with strided convolutions, whose weights are shared across the
image, then decodes it with transposed convolutions. Beside it, an MLP
:class:`skae.AutoencoderTransformer` with a similar number of weights and
PCA, all with a code of 8 numbers: held-out reconstructions and their error.
"""

# %%
# Fit the three models on the same digits
# ---------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer, ConvAutoencoder

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 60

X, _ = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = X[:1500], X[1500:]

common = dict(
    n_components=8, loss="mse", max_iter=EPOCHS, batch_size=50, random_state=0
)
conv = ConvAutoencoder(channels=(16, 32), **common).fit(X_train)
mlp = AutoencoderTransformer(hidden_layer_sizes=(64,), **common).fit(X_train)
pca = PCA(8).fit(X_train)

models = {"PCA": pca, "MLP autoencoder": mlp, "ConvAutoencoder": conv}
for name, model in models.items():
    n_weights = model.components_.size if name == "PCA" else model._n_parameters()
    X_hat = model.inverse_transform(model.transform(X_test))
    print(
        f"{name:>16}: {n_weights:6d} weights, held-out MSE "
        f"{np.mean((X_hat - X_test) ** 2):.4f}"
    )

# %%
# Held-out digits and their reconstructions
# -----------------------------------------
# The scaling is per channel (one offset and scale for all pixels of the
# image), so the dark border of the digits stays dark instead of being
# standardized pixel by pixel.
rows = [("original", X_test)] + [
    (name, model.inverse_transform(model.transform(X_test)))
    for name, model in models.items()
]
fig, axes = plt.subplots(len(rows), 10, figsize=(8, 3.6))
for r, (name, images) in enumerate(rows):
    for c in range(10):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
fig.suptitle("Held-out digits, codes of 8 numbers")
plt.tight_layout()
plt.show()
