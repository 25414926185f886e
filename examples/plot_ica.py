"""
Independent components: unmixing signals, and more sources than sensors
========================================================================

``DictionaryLearner(code="independent")`` fits ICA, the dictionary-learning
model whose codes (the sources) are as independent as possible. First, three
signals recorded through three "microphones" are unmixed; PCA, which only
decorrelates, leaves them mixed. Then three sparse sources recorded by only
two sensors: complete ICA cannot keep more components than there are
features, overcomplete ICA by the reconstruction cost (RICA) learns three
atoms spread over the three source directions, and sparse coding, the other
overcomplete model of the family, finds the directions themselves.
"""

# %%
# Three signals, three mixtures
# -----------------------------
# A sine (sub-Gaussian), a square wave (sub-Gaussian) and spiky Laplace noise
# (super-Gaussian), mixed by a fixed matrix, plus a little sensor noise.
import os

import matplotlib

if __name__ == "__main__":
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA, FastICA

from skae import DictionaryLearner

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_SAMPLES = 500 if TINY else 2000

rng = np.random.RandomState(0)
t = np.linspace(0, 8, N_SAMPLES)
sources = np.c_[
    np.sin(3 * t),
    np.sign(np.sin(5 * t + 1)),
    rng.laplace(size=N_SAMPLES),
]
sources /= sources.std(axis=0)
mixing = np.array([[1.0, 0.5, 1.5], [0.7, 2.0, 1.0], [1.2, 1.0, 0.4]])
X = sources @ mixing.T + 0.02 * rng.standard_normal((N_SAMPLES, 3))

ica = DictionaryLearner(n_components=3, code="independent", random_state=0)
Z_ica = ica.fit_transform(X)
Z_pca = PCA(n_components=3).fit_transform(X)


def best_match(Z, S):
    """|correlation| of each true source with its best-matching code."""
    corr = np.abs(np.corrcoef(Z.T, S.T)[: Z.shape[1], Z.shape[1] :])
    return corr.max(axis=0)


print("ICA codes vs sources, |corr|:", best_match(Z_ica, sources).round(3))
print("PCA codes vs sources, |corr|:", best_match(Z_pca, sources).round(3))

fig, axes = plt.subplots(4, 1, figsize=(8, 7), sharex=True)
for ax, signals, title in zip(
    axes,
    [sources, X, Z_ica, Z_pca],
    ["True sources", "Mixtures (what is observed)", "ICA codes", "PCA codes"],
):
    signals = signals / signals.std(axis=0)
    for j in range(3):
        ax.plot(t, signals[:, j] + 4 * j, lw=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_yticks([])
axes[-1].set_xlabel("time")
fig.tight_layout()

# %%
# Each ICA code is one source, up to order, sign and scale: the printout above
# shows correlations near 1, where PCA's decorrelated codes stay mixtures.
# The fit agrees with scikit-learn's FastICA, which it reproduces (symmetric
# fixed point, ``log cosh`` contrast, unit-variance whitening):

fastica = FastICA(n_components=3, whiten="unit-variance", random_state=0).fit(X)
product = np.abs(ica.unmixing_ @ fastica.mixing_)
print("skae unmixing @ FastICA mixing (a permutation):\n", product.round(2))

# %%
# More sources than sensors
# -------------------------
# Three sparse sources (each active 20% of the time) recorded by two sensors.
# The data form three rays, one per column of the mixing matrix. FastICA keeps
# at most two components; RICA and sparse coding learn three atoms each.
n = 1000 if TINY else 4000
angles = np.deg2rad([10, 70, 140])
A = np.vstack([np.cos(angles), np.sin(angles)])  # 2 x 3, unit columns
S = rng.laplace(size=(n, 3)) * (rng.uniform(size=(n, 3)) < 0.2)
X2 = S @ A.T

rica = DictionaryLearner(n_components=3, code="independent", alpha=0.5)
rica.set_params(random_state=0).fit(X2)
two = FastICA(n_components=2, whiten="unit-variance", random_state=0).fit(X2)
sparse = DictionaryLearner(n_components=3, code="sparse", alpha=0.5, random_state=0)
sparse.fit(X2)

fig, ax = plt.subplots(figsize=(5.5, 5.5))
ax.scatter(X2[:, 0], X2[:, 1], s=2, alpha=0.3, color="grey")
lim = np.abs(X2).max()
for k, (atoms, style, label) in enumerate(
    [
        (A.T, "k--", "true directions"),
        (rica.components_, "C3-", "RICA atoms (3)"),
        (two.mixing_.T, "C0:", "FastICA atoms (2)"),
        (sparse.components_, "C2-.", "sparse coding atoms (3)"),
    ]
):
    for j, atom in enumerate(atoms):
        atom = atom / np.linalg.norm(atom) * lim
        ax.plot(
            [-atom[0], atom[0]],
            [-atom[1], atom[1]],
            style,
            lw=2.2 - 0.4 * k,
            label=label if j == 0 else None,
        )
ax.set_xlim(-lim, lim)
ax.set_ylim(-lim, lim)
ax.set_aspect("equal")
ax.legend(loc="lower right")
ax.set_title("Three sparse sources, two sensors")


def recovery(atoms):
    atoms = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    return np.abs(atoms @ A).max(axis=0).round(3)


print("best |cos| per true direction, RICA:   ", recovery(rica.components_))
print("best |cos| per true direction, FastICA:", recovery(two.mixing_.T))
print("best |cos| per true direction, sparse: ", recovery(sparse.components_))

# %%
# RICA's atoms are also its filters (tied weights, with rows of equal norm),
# a frame spread over the three rays rather than on them; its codes are a
# linear map of the data, so ``transform`` is one matrix product. Sparse
# coding puts its atoms on the rays, at the price of a lasso per sample in
# ``transform``. RICA's sparsity penalty finds sparse (super-Gaussian)
# sources only, which is why the complete case uses FastICA's fixed point,
# which finds sub-Gaussian sources as well.
plt.show()
