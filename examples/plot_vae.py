"""
=================================================
Variational autoencoder: latent space and samples
=================================================

A :class:`~skae.VAE` with a two-dimensional latent space, fitted to the 8x8
digits with a Bernoulli likelihood (pixel intensities scaled to [0, 1]). A VAE
is a density model as well as a transformer: ``transform`` gives each digit's
posterior mean code, ``sample`` draws new digits from the prior, and
``score_samples`` estimates each digit's log-likelihood.
"""

# %%
# Fit the model
# -------------
# ``transform`` returns the posterior mean :math:`\mu(x)` of
# :math:`q(z \mid x)`. The training ELBO is recorded split into its
# reconstruction and KL terms.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import VAE

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 150

X, y = load_digits(return_X_y=True)
X = X / 16.0

vae = VAE(
    n_components=2,
    hidden_layer_sizes=(128, 64),
    likelihood="bernoulli",
    batch_size=64,
    max_iter=EPOCHS,
    random_state=0,
)
Z = vae.fit_transform(X)
print(f"{vae.n_iter_} epochs, final training ELBO {vae.elbo_curve_[-1]:.2f} nats")

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
points = axes[0].scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=6)
fig.colorbar(points, ax=axes[0], label="digit")
axes[0].set(title="Posterior means (transform)", xlabel="$z_1$", ylabel="$z_2$")
epochs = np.arange(1, vae.n_iter_ + 1)
axes[1].plot(epochs, vae.elbo_curve_, label="ELBO")
axes[1].plot(epochs, vae.reconstruction_curve_, label=r"$E_q \log p(x|z)$")
axes[1].plot(epochs, np.negative(vae.kl_curve_), label="$-$KL")
axes[1].set(title="Training curves (nats per digit)", xlabel="epoch")
axes[1].legend()
fig.tight_layout()

# %%
# Samples from the prior
# ----------------------
# ``sample`` draws :math:`z \sim \mathcal N(0, I)` and decodes it; by default
# it returns the decoder mean (pixel probabilities), like a smooth image.


def show_grid(images, n_cols, title):
    n_rows = int(np.ceil(len(images) / n_cols))
    canvas = np.zeros((n_rows * 9 - 1, n_cols * 9 - 1))
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = image.reshape(8, 8)
    plt.figure(figsize=(n_cols * 0.6, n_rows * 0.6))
    plt.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    plt.title(title)
    plt.axis("off")


show_grid(vae.sample(100, random_state=0), 10, "vae.sample(100)")

# %%
# Latent traversal
# ----------------
# Decoding a regular grid of codes (``inverse_transform``) shows how the
# digits morph into one another across the latent plane. The grid follows the
# quantiles of the prior, so it covers where the codes lie.
from scipy.stats import norm  # noqa: E402

ticks = norm.ppf(np.linspace(0.05, 0.95, 12))
grid = np.array([[z1, z2] for z2 in ticks[::-1] for z1 in ticks])
show_grid(vae.inverse_transform(grid), 12, "Traversal of the 2-D latent space")

# %%
# Likelihoods and the least typical digits
# ----------------------------------------
# ``score_samples`` returns the ELBO, a lower bound on :math:`\log p(x)` in
# nats; with ``n_importance_samples=K`` it returns the tighter importance
# weighted bound, which grows with K. Low scores flag unusual digits.
for k in (1, 10, 100):
    vae.set_params(n_importance_samples=k)
    print(f"K={k:3d}: mean bound {vae.score(X):.2f} nats")
vae.set_params(n_importance_samples=1)

scores = vae.score_samples(X)
worst = np.argsort(scores)[:20]
show_grid(X[worst], 10, "The 20 digits with the lowest ELBO")
plt.show()
