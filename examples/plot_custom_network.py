"""
=============================================
Your own encoder and decoder in an skae model
=============================================

:class:`skae.AutoencoderTransformer`, :class:`skae.DenoisingAE`,
:class:`skae.SparseAE`, :class:`skae.ContractiveAE` and :class:`skae.VAE`
accept your own torch networks through ``encoder=`` and ``decoder=``, as
skorch users pass ``module=``. The estimator still scales the inputs, trains with its
objective (here masking noise), stops early, and gives ``transform``,
``inverse_transform``, ``score_samples`` and ``partial_fit``.

A network is given either as a module instance (deep-copied at every fit:
your instance is never changed) or as a class, called as
``encoder(n_features, n_components)`` and ``decoder(n_components,
n_features)``, the signature of :class:`torch.nn.Linear`.
"""

# %%
# A residual MLP encoder, as a class
# ----------------------------------
import os
import pickle

import numpy as np
import torch
from sklearn.datasets import load_digits

import skae
from skae import VAE, DenoisingAE

TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 40


class ResidualEncoder(torch.nn.Module):
    """A linear map plus a small non-linear correction."""

    def __init__(self, n_in, n_out, hidden=64):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)
        self.correction = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden),
            torch.nn.GELU(),
            torch.nn.Linear(hidden, n_out),
        )

    def forward(self, x):
        return self.linear(x) + self.correction(x)


# The decoder as an instance: a plain torch.nn.Sequential (codes -> logits
# of the 64 pixels, since the pixels in [0, 1] make the loss BCE).
decoder = torch.nn.Sequential(
    torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 64)
)

X, _ = load_digits(return_X_y=True)
X = X / 16.0
model = DenoisingAE(
    n_components=16,
    encoder=ResidualEncoder,
    decoder=decoder,
    noise="masking",
    noise_level=0.3,
    early_stopping=True,
    max_iter=EPOCHS,
    random_state=0,
).fit(X[:1500])

X_test = X[1500:]
X_hat = model.inverse_transform(model.transform(X_test))
print("loss:", model.loss_, "| epochs:", model.n_iter_)
print("held-out MSE:", round(float(np.mean((X_hat - X_test) ** 2)), 4))
print("your decoder is untouched:", model.decoder is decoder)

# %%
# The same networks in a VAE
# ---------------------------
# The VAE's encoder returns the posterior's mean and log-variance, so the
# class is called as ``ResidualEncoder(64, 2 * n_components)``: the first
# ``n_components`` outputs are the mean (what ``transform`` returns), the last
# the log-variance. The decoder returns the Bernoulli logits of the pixels;
# the model keeps its ELBO, ``score_samples`` and ``sample``.
vae = VAE(
    n_components=16,
    likelihood="bernoulli",
    encoder=ResidualEncoder,
    decoder=decoder,
    max_iter=EPOCHS,
    random_state=0,
).fit(X[:1500])
print("VAE encoder outputs per row:", vae.encoder_.linear.out_features)
print("held-out ELBO (nats per image):", round(vae.score(X_test), 1))
print("samples:", vae.sample(4, random_state=0).shape)

# %%
# Persistence
# -----------
# pickle and joblib keep the fitted network whole (they import your classes
# when loading: trusted files only). ``skae.save`` never runs code from a
# file, so it cannot rebuild your classes and refuses with a clear error.
again = pickle.loads(pickle.dumps(model))
print(
    "pickled model identical:",
    np.array_equal(again.transform(X_test), model.transform(X_test)),
)
try:
    skae.save(model, "model.skae")
except TypeError as exc:
    print("skae.save:", str(exc)[:60], "...")
