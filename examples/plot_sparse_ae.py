"""
=====================================================
Sparse autoencoders: sparse codes and learned filters
=====================================================

An overcomplete :class:`skae.SparseAE` (256 code units for 64 pixels) trained
on the digits with the three kinds of sparsity: the KL penalty on the mean
activation of sigmoid units, the L1 penalty on ReLU units and the top-k code.
We look at how many units are active per digit, and at the encoder filters.
"""

# %%
# Fit the three variants
# ----------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import SparseAE

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 20

X, _ = load_digits(return_X_y=True)
X = X / 16.0

models = {
    "KL (rho=0.05)": SparseAE(
        256, sparsity="kl", sparsity_target=0.05, sparsity_weight=0.5
    ),
    "L1": SparseAE(256, sparsity="l1", sparsity_weight=0.05),
    "top-k (k=16)": SparseAE(256, sparsity="topk", k=16),
}
for model in models.values():
    model.set_params(max_iter=EPOCHS, learning_rate=1e-2, random_state=0).fit(X)

# %%
# How sparse are the codes?
# -------------------------
# For the sigmoid (KL) units a unit counts as active above 0.5; ReLU and top-k
# units are exactly zero when inactive.
fig, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    Z = model.transform(X)
    active = (Z > 0.5) if name.startswith("KL") else (Z != 0)
    ax.hist(active.sum(axis=1), bins=30)
    ax.set_title(f"{name}\ndead units: {model.dead_fraction_:.0%}")
    ax.set_xlabel("active units per digit")
axes[0].set_ylabel("digits")
fig.tight_layout()

# %%
# Learned features
# ----------------
# Each column of the (linear) decoder is the pattern a unit adds to the
# reconstruction when it fires: here the 12 most often active units.
fig, axes = plt.subplots(3, 12, figsize=(11, 3))
for row, (name, model) in zip(axes, models.items()):
    Z = model.transform(X)
    active = (Z > 0.5) if name.startswith("KL") else (Z != 0)
    D = model.decoder_[0].weight.detach().cpu().numpy()  # (64, 256)
    for ax, j in zip(row, np.argsort(-active.mean(axis=0))[:12]):
        ax.imshow(D[:, j].reshape(8, 8), cmap="RdBu_r")
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name.split()[0], rotation=0, labelpad=25)
fig.suptitle("Decoder atoms of the most active units")
plt.show()
