"""
================================================
Anomalies in a multichannel series, step by step
================================================

A :class:`skae.SequenceAutoencoder` (a GRU encoder and decoder) learns what
windows of a normal 2-channel series look like; windows of a new stretch of
the series that it reconstructs badly are anomalous. The per-step scores of
the windows (:meth:`~skae.SequenceAutoencoder.score_steps`), averaged over
the windows covering each time step
(:func:`skae.timeseries.window_scores_to_steps`), point at *when* the series
misbehaves. We compare with an IsolationForest on the same windows.
"""

# %%
# A series, and a stretch of it with anomalies
# --------------------------------------------
# Two coupled channels: a sine of period 30, and a mix of that sine with one
# of period 11. In the test stretch we inject a level shift on channel 1, a
# stretch where channel 0 runs at twice its frequency, and a spike.
import os
import sys

import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from skae import SequenceAutoencoder
from skae.timeseries import sliding_windows, window_scores_to_steps

# SKAE_EXAMPLES_TINY=1 shrinks the run to seconds, so that CI can execute it.
TINY = os.environ.get("SKAE_EXAMPLES_TINY") == "1"
N_TIMES = 600 if TINY else 3000
EPOCHS = 3 if TINY else 40
WINDOW, STRIDE = 30, 2


def series(n_times, seed):
    rng = np.random.RandomState(seed)
    t = np.arange(n_times)
    base = np.sin(2 * np.pi * t / 30)
    other = 0.5 * base + 0.5 * np.sin(2 * np.pi * t / 11)
    return np.column_stack([base, other]) + 0.1 * rng.randn(n_times, 2), t


train, _ = series(N_TIMES, seed=0)
test, t = series(N_TIMES, seed=1)
labels = np.zeros(N_TIMES, dtype=bool)
shift = slice(N_TIMES // 5, N_TIMES // 5 + 25)
test[shift, 1] += 1.0
fast = slice(N_TIMES // 2, N_TIMES // 2 + 30)
test[fast, 0] = np.sin(4 * np.pi * t[fast] / 30)
spike = int(0.8 * N_TIMES)
test[spike, 0] += 3.0
for part in (shift, fast, slice(spike, spike + 1)):
    labels[part] = True

# %%
# Windows in, scores per window and per step out
# ----------------------------------------------
# Each row is one window of 30 steps x 2 channels, flattened step by step.
X_train = sliding_windows(train, WINDOW, STRIDE)
X_test = sliding_windows(test, WINDOW, STRIDE)
ae = SequenceAutoencoder(
    n_components=6,
    sequence_shape=(WINDOW, 2),
    hidden_size=32,
    learning_rate=1e-2,
    max_iter=EPOCHS,
    random_state=0,
).fit(X_train)
forest = IsolationForest(random_state=0).fit(X_train)

# Higher score = more normal; an anomaly score is its negative.
ae_steps = -window_scores_to_steps(ae.score_steps(X_test), N_TIMES, WINDOW, STRIDE)
forest_steps = -window_scores_to_steps(
    forest.score_samples(X_test), N_TIMES, WINDOW, STRIDE
)
covered = ~np.isnan(ae_steps)
auc = {
    name: roc_auc_score(labels[covered], steps[covered])
    for name, steps in [
        ("SequenceAutoencoder", ae_steps),
        ("IsolationForest", forest_steps),
    ]
}
print({name: round(value, 3) for name, value in auc.items()})

# %%
# Where the scores point
# ----------------------
# Shaded: the injected anomalies. The autoencoder's per-step score peaks on
# the anomalous steps themselves, the one-step spike included. The forest's
# window scores, spread over the 15 windows covering each step, are smooth
# bumps, and the spike barely moves them: its ROC-AUC hardly notices, as the
# spike is one of 56 anomalous steps.
fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
for channel in range(2):
    axes[0].plot(t, test[:, channel], lw=0.7, label=f"channel {channel}")
axes[0].legend(loc="upper right")
axes[0].set_title("test stretch of the series")
axes[1].plot(t, ae_steps, color="C3", lw=0.8)
axes[1].set_title(
    "SequenceAutoencoder per-step anomaly score "
    f"(ROC-AUC {auc['SequenceAutoencoder']:.2f})"
)
axes[2].plot(t, forest_steps, color="C2", lw=0.8)
axes[2].set_title(
    "IsolationForest, window scores mapped to steps "
    f"(ROC-AUC {auc['IsolationForest']:.2f})"
)
axes[2].set_xlabel("time step")
for ax in axes:
    for start, stop in [
        (shift.start, shift.stop),
        (fast.start, fast.stop),
        (spike, spike + 1),
    ]:
        ax.axvspan(start, stop, color="0.85", zorder=0)
fig.tight_layout()
if len(sys.argv) > 1:  # python examples/plot_sequence_anomalies.py PATH.png
    fig.savefig(sys.argv[1], dpi=80)
plt.show()
