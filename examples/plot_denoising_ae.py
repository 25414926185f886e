"""
=============================================
Denoising digits with a denoising autoencoder
=============================================

A :class:`skae.DenoisingAE` learns to reconstruct clean digits from copies in
which 30% of the pixels were set to zero (masking noise, drawn afresh for
every mini-batch). A plain :class:`skae.AutoencoderTransformer` of the same
overcomplete size, trained on clean digits, comes close to copying its input,
missing pixels included.
"""

# %%
# Train both models on clean digits
# ---------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer, DenoisingAE

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 30

X, _ = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = X[:1500], X[1500:]

common = dict(
    n_components=128,
    hidden_layer_sizes=(),
    learning_rate=1e-2,
    max_iter=EPOCHS,
    random_state=0,
)
dae = DenoisingAE(noise="masking", noise_level=0.3, **common).fit(X_train)
ae = AutoencoderTransformer(**common).fit(X_train)

# %%
# Corrupt held-out digits and reconstruct them
# --------------------------------------------
rng = np.random.default_rng(0)
X_noisy = np.where(rng.random(X_test.shape) < 0.3, 0.0, X_test)
X_dae = dae.denoise(X_noisy)
X_ae = ae.inverse_transform(ae.transform(X_noisy))
for name, X_hat in [
    ("noisy", X_noisy),
    ("DenoisingAE", X_dae),
    ("AutoencoderTransformer", X_ae),
]:
    print(f"{name:>24}: MSE to the clean digits {np.mean((X_hat - X_test) ** 2):.4f}")

# %%
# Clean, noisy and reconstructed digits
# -------------------------------------
rows = [
    ("clean", X_test),
    ("noisy", X_noisy),
    ("denoising AE", X_dae),
    ("plain AE", X_ae),
]
fig, axes = plt.subplots(len(rows), 10, figsize=(10, 4.5))
for ax_row, (name, images) in zip(axes, rows):
    for ax, image in zip(ax_row, images[:10]):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.tight_layout()
plt.show()
