"""
====================================================
Which pixels made a digit anomalous?
====================================================

An :class:`skae.OutlierDetector` learns what handwritten zeros look like from
a training set that also holds a few sixes (unlabelled contamination, as in
real data). It then judges new digits: a conformal p-value says how unusual
each one is, ``predict`` flags those below the chosen false-alarm rate, and
``feature_scores`` says which pixels the model could not explain -- the
squared reconstruction error of every pixel, in pixel units.

The model is a small autoencoder with min-max scaling: standardizing each
pixel would blow up the pixels that zeros never use (their spread is almost
nil), and a flexible network then learns to reconstruct exactly the pixels
that make the other digits different (see :ref:`anomaly`).
"""

# %%
# Train on zeros, with some sixes mixed in
# ----------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from skae import AutoencoderTransformer, OutlierDetector

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 3 if TINY else 150

X, y = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
zeros = rng.permutation(np.flatnonzero(y == 0))
sixes = rng.permutation(np.flatnonzero(y == 6))
others = rng.permutation(np.flatnonzero((y != 0) & (y != 6)))

train = np.r_[zeros[:140], sixes[:7]]  # 5% contamination
X_test = X[np.r_[zeros[140:], others[:30]]]
is_outlier = np.r_[np.zeros(len(zeros) - 140), np.ones(30)]

autoencoder = AutoencoderTransformer(
    n_components=6,
    hidden_layer_sizes=(32,),
    scaling="minmax",
    loss="mse",
    max_iter=EPOCHS,
    early_stopping=False,
    random_state=0,
)
# 30% of the training rows calibrate the p-values (44 rows: the smallest
# possible p-value is 1/45).
detector = OutlierDetector(
    autoencoder, level=0.05, calibration_fraction=0.3, random_state=0
).fit(X[train])

# %%
# Judge new digits
# ----------------
# ``p_values`` are calibrated on training rows the model never saw: a new
# zero gets a p-value below 0.05 with probability at most 0.05.
p = detector.p_values(X_test)
flagged = detector.predict(X_test) == -1
print(f"ROC-AUC, zeros against other digits: {roc_auc_score(is_outlier, -p):.3f}")
print(f"zeros flagged (false alarms): {flagged[is_outlier == 0].mean():.0%}")
print(f"other digits flagged:         {flagged[is_outlier == 1].mean():.0%}")

# %%
# Which pixels made them anomalous
# --------------------------------
# ``feature_scores`` is the squared reconstruction error of each pixel, in
# (grey level)^2. Weighted by ``feature_weights_`` (here the inverse squared
# range of each pixel in training, which the min-max scaling implies) it
# gives each pixel's share of the anomaly score, and the shares sum to the
# whole score of this autoencoder. A pixel that zeros hardly ever use weighs
# much more than one they use all the time: the shares, not the raw errors,
# say what made a digit anomalous.
F = detector.feature_scores(X_test)
shares = F * detector.feature_weights_
np.testing.assert_allclose(
    shares.sum(axis=1), -detector.score_samples(X_test), rtol=1e-5
)
reconstruction = detector.estimator_.inverse_transform(
    detector.estimator_.transform(X_test)
)

# A typical test zero, then the three test digits with the lowest scores.
scores = detector.score_samples(X_test)
typical_zero = np.argsort(scores[is_outlier == 0])[len(zeros[140:]) // 2]
shown = np.r_[typical_zero, np.argsort(scores)[:3]]
fig, axes = plt.subplots(4, len(shown), figsize=(2.2 * len(shown), 8.8))
for col, i in enumerate(shown):
    panels = [
        (X_test[i], "gray_r", 16, f"test digit, p = {p[i]:.2f}"),
        (reconstruction[i], "gray_r", 16, "reconstruction"),
        (F[i], "Reds", F[shown].max(), "squared error (grey levels²)"),
        (shares[i], "Reds", shares[shown].max(), "share of the score"),
    ]
    for ax, (image, cmap, vmax, title) in zip(axes[:, col], panels):
        ax.imshow(image.reshape(8, 8), cmap=cmap, vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
fig.suptitle("Test digits judged against zeros: the pixels a zero cannot explain")
fig.tight_layout()
plt.show()
