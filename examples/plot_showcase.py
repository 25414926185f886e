"""
PCA, NMF, KMeans and an autoencoder, side by side
=================================================

Every model here is a scikit-learn transformer fitted on raw ``load_digits``
pixels, so they are compared the same way: held-out reconstruction error (in
pixel units, KMeans reconstructing each digit by its nearest centroid),
accuracy of ``Pipeline([model, SVC()])`` and fit time. The figure shows 2-D
embeddings side by side and a grid of held-out reconstructions.

Run it from the repository root with ``make showcase`` (sets up ``.venv``) or
``python examples/plot_showcase.py``.
"""

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from skae import AutoencoderTransformer

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 200  # 200: the estimator's default

warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)


def make_models(k):
    return {
        "PCA": PCA(n_components=k, random_state=0),
        "NMF": NMF(n_components=k, init="nndsvda", max_iter=500, random_state=0),
        "KMeans": KMeans(n_clusters=k, n_init=4, random_state=0),
        "Autoencoder": AutoencoderTransformer(
            n_components=k, scaling="none", max_iter=EPOCHS, random_state=0
        ),
    }


def reconstruct(model, X):
    if isinstance(model, KMeans):  # a quantizer: the nearest centroid
        return model.cluster_centers_[model.predict(X)]
    return model.inverse_transform(model.transform(X))


# %%
# Compare at two latent sizes
# ---------------------------
rows, fitted = [], {}
for k in (2, 8):
    for name, model in make_models(k).items():
        start = time.perf_counter()
        model.fit(X_train)
        fit_time = time.perf_counter() - start
        mse = np.mean((reconstruct(model, X_test) - X_test) ** 2)
        accuracy = (
            make_pipeline(model, SVC()).fit(X_train, y_train).score(X_test, y_test)
        )
        rows.append(
            {
                "model": name,
                "n_components": k,
                "held-out MSE": round(mse, 3),
                "SVC accuracy": round(accuracy, 3),
                "fit time (s)": round(fit_time, 2),
            }
        )
        fitted[name, k] = model
table = pd.DataFrame(rows)
print(table.to_string(index=False))

# %%
# 2-D embeddings and reconstructions
# ----------------------------------
names = list(make_models(2))
fig = plt.figure(figsize=(16, 8), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
axes = top.subplots(1, len(names))
for ax, name in zip(axes, names):
    Z = fitted[name, 2].transform(X_test)
    points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
    ax.set_title(f"{name} (k=2)")
    ax.set_xticks([])
    ax.set_yticks([])
top.colorbar(points, ax=axes, label="digit")

n_show = 10
grid = bottom.subplots(len(names) + 1, n_show)
images = [X_test[:n_show]] + [
    reconstruct(fitted[name, 8], X_test[:n_show]) for name in names
]
for r, (label, imgs) in enumerate(zip(["original", *names], images)):
    for c in range(n_show):
        ax = grid[r, c]
        ax.imshow(imgs[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
        if c == 0:
            ax.set_ylabel(label, rotation=0, ha="right", va="center")
bottom.suptitle("Held-out reconstructions, n_components=8")

if __name__ == "__main__":
    fig.savefig("showcase.png", dpi=100)
    print("wrote showcase.png")
plt.show()
