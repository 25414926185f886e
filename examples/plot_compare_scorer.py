"""
Comparing PCA, NMF, KMeans and an autoencoder on one scale
==========================================================

PCA, NMF and KMeans each have their own idea of a ``score`` (a log-likelihood,
none, a negative inertia), so their scores cannot be compared. The uniform
reconstruction scorer of :mod:`skae.metrics` measures the same thing for all
of them: the held-out mean squared error between the data and its
reconstruction, in the units of the data (KMeans reconstructs each sample by
its centroid).

This example uses it three ways: on one fitted model, as ``scoring=`` in a
grid search, and through :func:`skae.model_selection.compare_reconstruction`,
which cross-validates a list of models and returns a table that
:func:`skae.model_selection.plot_comparison` draws.
"""

# %%
# One fitted model
# ----------------
# :func:`~skae.metrics.reconstruction_error` takes any fitted transformer with
# ``inverse_transform``, a KMeans, or a pipeline ending in one of them. For a
# pipeline, the error is measured after undoing the scaling: in pixel units.
import os
import warnings

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from skae.metrics import neg_reconstruction_error, reconstruction_error
from skae.model_selection import compare_reconstruction, plot_comparison

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_ROWS = 300 if TINY else 1797  # all of load_digits
SEARCH_EPOCHS, COMPARE_EPOCHS = (2, 2) if TINY else (30, 60)
SIZES = (2, 4) if TINY else (2, 4, 8)

warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X, y = X[:N_ROWS], y[:N_ROWS]
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

for model in [
    PCA(n_components=8),
    make_pipeline(StandardScaler(), PCA(n_components=8)),
    KMeans(n_clusters=8, n_init=4, random_state=0),
]:
    model.fit(X_train)
    print(f"{reconstruction_error(model, X_test):6.2f}  {model}")

# %%
# As a scorer in a grid search
# ----------------------------
# :func:`~skae.metrics.neg_reconstruction_error` is greater-is-better, like
# every scikit-learn scorer. More components always reconstruct better, so a
# search over ``n_components`` alone picks the largest; tune other parameters
# at a fixed size instead, here the autoencoder's L2 penalty.
search = GridSearchCV(
    AutoencoderTransformer(
        n_components=4, scaling="none", max_iter=SEARCH_EPOCHS, random_state=0
    ),
    {"alpha": [1e-5, 1e-2]},
    scoring=neg_reconstruction_error,
    cv=KFold(2, shuffle=True, random_state=0),
).fit(X)
print("best alpha:", search.best_params_["alpha"])
print("held-out MSE per setting:", (-search.cv_results_["mean_test_score"]).round(2))

# %%
# A comparison table
# ------------------
# One row per model: held-out error (mean and spread over folds), the accuracy
# of an ``SVC`` trained on the codes (the same as ``Pipeline([model, SVC()])``)
# and the fit and transform times. The autoencoder is trained on the raw
# pixels with ``scaling="none"``, so it minimizes exactly the error measured.
models = {
    "PCA": [PCA(n_components=k) for k in SIZES],
    "NMF": [
        NMF(n_components=k, init="nndsvda", max_iter=400, random_state=0) for k in SIZES
    ],
    "KMeans": [KMeans(n_clusters=k, n_init=4, random_state=0) for k in SIZES],
    "Autoencoder": [
        AutoencoderTransformer(
            n_components=k, scaling="none", max_iter=COMPARE_EPOCHS, random_state=0
        )
        for k in SIZES
    ],
}
df = compare_reconstruction(models, X, y, cv=KFold(3, shuffle=True, random_state=0))
print(df.round(3).to_string(index=False))

# %%
# Error against latent size
# -------------------------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
plot_comparison(df, ax=ax1)
ax1.set_title("Held-out reconstruction MSE (pixel units)")
plot_comparison(df, ax=ax2, metric="accuracy")
ax2.set_title("Accuracy of Pipeline([model, SVC()])")
plt.show()
