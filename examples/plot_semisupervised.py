"""
====================================================
Few labels: pretrain an autoencoder, then fine-tune
====================================================

:class:`skae.AutoencoderClassifier` learns from every row of X, labeled or
not: unlabeled rows carry ``y = -1`` (scikit-learn's semi-supervised
convention). A :class:`skae.DenoisingAE` is pretrained on all rows, a softmax
head is trained on its codes of the labeled rows, then the whole network is
fine-tuned with the reconstruction loss kept as a regularizer; last, the
labels are propagated to the unlabeled rows over a kNN graph of their codes
(Iscen et al., 2019) and the network is trained again on the true labels and
these confidence-weighted pseudo-labels (``semi_supervised=None`` skips it).

The first part draws a learning curve on MNIST (10,000 training images, when
``$SKAE_DATA_DIR`` holds MNIST; on ``load_digits`` otherwise) beside an
:class:`~sklearn.neural_network.MLPClassifier` of the same shape trained from
scratch on the labeled rows, and
:class:`~sklearn.semi_supervised.LabelSpreading`. Pretraining pays against
the network trained from scratch; the kNN graph of ``LabelSpreading`` is a
strong competitor with few labels (see the benchmark in the user guide).

The second part transfers an encoder: pretrained on MNIST images shrunk to
digits' 8x8 format, it starts a classifier of the digits with ``encoder=``;
the fitted encoder itself is never modified.
"""

# %%
# A learning curve
# ----------------
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.semi_supervised import LabelSpreading

from skae import AutoencoderClassifier, DenoisingAE
from skae.datasets import data_available, load_mnist

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
EPOCHS = 2 if TINY else 50
# The classifiers' own fine-tuning epochs: their default, fewer in tiny mode.
FINE_TUNING = {"max_iter": 5} if TINY else {}
warnings.simplefilter("ignore", ConvergenceWarning)

X_digits, y_digits = load_digits(return_X_y=True)
X_digits = X_digits / 16.0
if data_available("mnist"):
    name, LABELS = "MNIST", [100, 1000] if TINY else [100, 300, 1000]
    X_mnist, y_mnist, X_mnist_test, y_mnist_test = load_mnist()
    n_train = 2000 if TINY else 10000
    X_train, y_train = X_mnist[:n_train] / 255.0, y_mnist[:n_train]
    X_test, y_test = X_mnist_test[:5000] / 255.0, y_mnist_test[:5000]
else:
    name, LABELS = "digits", [50, 100] if TINY else [50, 100, 200]
    X_train, X_test, y_train, y_test = train_test_split(
        X_digits, y_digits, test_size=0.3, random_state=0, stratify=y_digits
    )


def semi_supervised_labels(y, n_labels, seed=0):
    """y with all but n_labels rows (n_labels / 10 per class) set to -1."""
    rng = np.random.RandomState(seed)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), n_labels // 10, replace=False)
            for c in range(10)
        ]
    )
    y_semi = np.full(len(y), -1)
    y_semi[keep] = y[keep]
    return y_semi


# The default autoencoder, with fewer epochs in tiny mode.
autoencoder = DenoisingAE(
    n_components=64, hidden_layer_sizes=(512, 256), max_iter=EPOCHS
)
curves = {
    "AutoencoderClassifier": [],
    "MLPClassifier (labeled rows)": [],
    "LabelSpreading": [],
}
for n_labels in LABELS:
    y_semi = semi_supervised_labels(y_train, n_labels)
    labeled = y_semi != -1
    clf = AutoencoderClassifier(autoencoder, random_state=0, **FINE_TUNING)
    clf.fit(X_train, y_semi)
    curves["AutoencoderClassifier"].append(clf.score(X_test, y_test))
    mlp = MLPClassifier((512, 256, 64), max_iter=EPOCHS * 4, random_state=0)
    mlp.fit(X_train[labeled], y_semi[labeled])
    curves["MLPClassifier (labeled rows)"].append(mlp.score(X_test, y_test))
    spreading = LabelSpreading(kernel="knn").fit(X_train, y_semi)
    curves["LabelSpreading"].append(spreading.score(X_test, y_test))
    scores = ", ".join(f"{k} {v[-1]:.3f}" for k, v in curves.items())
    print(f"{name}, {n_labels:4d} labels: {scores}")

fig, ax = plt.subplots(figsize=(6, 4))
for method, accuracy in curves.items():
    ax.plot(LABELS, accuracy, marker="o", label=method)
ax.set_xscale("log")
ax.set_xlabel(f"labeled rows (of {len(X_train)}; the rest unlabeled)")
ax.set_ylabel("test accuracy")
ax.set_title(name)
ax.legend()
fig.tight_layout()

# %%
# Transfer: an encoder pretrained on MNIST, shrunk to 8x8
# -------------------------------------------------------
# digits are 32x32 bitmaps counted in 4x4 blocks (values 0-16); MNIST images
# padded to 32x32, binarized and counted the same way live in the same
# 64-feature space, in the same units. The encoder is fitted once on them and
# handed to classifiers of the digits; it stays untouched. The two sources
# differ (MNIST digits are drawn and centred otherwise): a classifier
# pretrained on the digits themselves is printed for comparison.
if data_available("mnist"):
    X_mnist = load_mnist()[0][: 2000 if TINY else 10000]
    bitmaps = np.pad(X_mnist.reshape(-1, 28, 28) > 127, ((0, 0), (2, 2), (2, 2)))
    X_mnist8 = bitmaps.reshape(-1, 8, 4, 8, 4).sum(axis=(2, 4)).reshape(-1, 64) / 16.0
    encoder = DenoisingAE(
        n_components=64, hidden_layer_sizes=(512, 256), max_iter=EPOCHS, random_state=0
    ).fit(X_mnist8)
    weights = {k: v.clone() for k, v in encoder.module_.state_dict().items()}
    X_train, X_test, y_train, y_test = train_test_split(
        X_digits, y_digits, test_size=0.3, random_state=0, stratify=y_digits
    )
    y_semi = semi_supervised_labels(y_train, 50)
    for fine_tune in ("head", "all"):
        transfer = AutoencoderClassifier(
            encoder=encoder, fine_tune=fine_tune, random_state=0, **FINE_TUNING
        ).fit(X_train, y_semi)
        print(
            f"digits, 50 labels, MNIST-pretrained encoder, fine_tune={fine_tune!r}: "
            f"test accuracy {transfer.score(X_test, y_test):.3f}"
        )
    unchanged = all(
        (v == weights[k]).all() for k, v in encoder.module_.state_dict().items()
    )
    print(f"the MNIST encoder is unchanged: {unchanged}")
    in_domain = AutoencoderClassifier(autoencoder, random_state=0, **FINE_TUNING)
    in_domain.fit(X_train, y_semi)
    print(
        "digits, 50 labels, pretrained on the digits themselves: test accuracy "
        f"{in_domain.score(X_test, y_test):.3f}"
    )
else:
    print("MNIST not found under $SKAE_DATA_DIR: the transfer part is skipped.")

plt.show()
