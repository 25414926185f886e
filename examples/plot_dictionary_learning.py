"""
Dictionary learning on image patches: atoms, PCA, and denoising
===============================================================

:class:`skae.DictionaryLearner` fits ``X ~ Z @ components_`` with a
constraint on the codes ``Z`` deciding the model: ``code="orthogonal"`` is
PCA, ``code="sparse"`` is sparse coding (Olshausen & Field's model of natural
image patches). Here both learn 8x8 patches of a photograph; the sparse atoms
come out as localised, oriented edges where PCA gives global, Fourier-like
components. Then the classic experiment: the right half of the image is
corrupted with Gaussian noise and rebuilt patch by patch from sparse codes
over the dictionary learned on the clean left half.
"""

# %%
# Patches from a real image
# -------------------------
# Each 8x8 patch is a 64-dimensional sample. Removing each patch's mean (its
# brightness) leaves the structure that the atoms should explain.
import copy
import os
import time

import matplotlib

if __name__ == "__main__":
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.feature_extraction.image import (
    extract_patches_2d,
    reconstruct_from_patches_2d,
)

from skae import DictionaryLearner

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_PATCHES = 1000 if TINY else 10000
EPOCHS = 1 if TINY else 10

rng = np.random.RandomState(0)
image = load_sample_image("china.jpg").mean(axis=2) / 255.0
image = image[::2, ::2]  # 214 x 320, keeps the example fast
height, width = image.shape
patch_size = (8, 8)

left = image[:, : width // 2]
patches = extract_patches_2d(left, patch_size, max_patches=N_PATCHES, random_state=0)
X = patches.reshape(len(patches), -1)
X = X - X.mean(axis=1, keepdims=True)
scale = X.std()
X /= scale
print(f"{X.shape[0]} patches of {X.shape[1]} pixels")

# %%
# Sparse atoms next to PCA components
# -----------------------------------
# 100 atoms for 64 pixels: an overcomplete dictionary, learned online with
# mini-batches of 256 patches. ``alpha`` trades reconstruction for sparsity.
t0 = time.perf_counter()
sparse = DictionaryLearner(
    100, code="sparse", alpha=1.0, batch_size=256, max_iter=EPOCHS, random_state=0
).fit(X)
print(f"sparse dictionary learned in {time.perf_counter() - t0:.1f} s")
pca = DictionaryLearner(36, code="orthogonal").fit(X)


def show_atoms(ax_grid, atoms, title, fig):
    for ax, atom in zip(ax_grid.ravel(), atoms):
        ax.imshow(atom.reshape(patch_size), cmap="gray", interpolation="nearest")
        ax.set_xticks(())
        ax.set_yticks(())
    fig.suptitle(title)


fig, axes = plt.subplots(10, 10, figsize=(6, 6.4))
show_atoms(axes, sparse.components_, "Sparse-coding atoms (100 of 64 pixels)", fig)
fig, axes = plt.subplots(6, 6, figsize=(4, 4.4))
show_atoms(axes, pca.components_, "PCA components (code='orthogonal')", fig)

Z = sparse.transform(X[:2000])
print(f"non-zeros per patch: {np.mean(np.count_nonzero(Z, axis=1)):.1f} of 100")

# %%
# Denoising the right half
# ------------------------
# Each noisy patch is coded against the dictionary and rebuilt from its code;
# noise, which the few atoms a code uses cannot express, is largely dropped.
# Overlapping patches are averaged back into an image.
sigma = 0.1
ALPHA_DENOISE = 3.0
noisy = image.copy()
noisy[:, width // 2 :] += sigma * rng.standard_normal((height, width - width // 2))
right_noisy = noisy[:, width // 2 :]

noisy_patches = extract_patches_2d(right_noisy, patch_size)
Y = noisy_patches.reshape(len(noisy_patches), -1)
means = Y.mean(axis=1, keepdims=True)
Y = (Y - means) / scale

# ``alpha`` is read by ``transform`` too: a copy with a larger alpha codes
# the noisy patches with fewer atoms, so less noise survives.
denoiser = copy.deepcopy(sparse).set_params(alpha=ALPHA_DENOISE)
t0 = time.perf_counter()
codes = denoiser.transform(Y)
restored_patches = denoiser.inverse_transform(codes) * scale + means
print(f"coded {len(Y)} noisy patches in {time.perf_counter() - t0:.1f} s")

restored = noisy.copy()
restored[:, width // 2 :] = reconstruct_from_patches_2d(
    restored_patches.reshape(noisy_patches.shape), right_noisy.shape
)


def psnr(reference, estimate):
    return 10 * np.log10(1.0 / np.mean((reference - estimate) ** 2))


clean_right = image[:, width // 2 :]
print(f"PSNR noisy:    {psnr(clean_right, right_noisy):.2f} dB")
print(f"PSNR restored: {psnr(clean_right, restored[:, width // 2 :]):.2f} dB")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, img, title in zip(
    axes,
    [image, noisy, restored],
    ["original", f"noisy right half (sigma={sigma})", "denoised with sparse codes"],
):
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks(())
    ax.set_yticks(())
plt.tight_layout()
plt.show()
