"""skae's CPU computations treat subnormal floats as zero, and only inside
its own calls (the thread's previous mode is restored)."""

import numpy as np
import torch

from skae import AutoencoderTransformer
from skae.utils._float_mode import flush_subnormals, flushing_subnormals


class _RecordingLinear(torch.nn.Linear):
    """A linear layer that notes whether subnormals were flushed when it ran."""

    modes = []

    def forward(self, x):
        _RecordingLinear.modes.append(flushing_subnormals())
        return super().forward(x)


def _fit_recording(X):
    _RecordingLinear.modes = []
    model = AutoencoderTransformer(
        n_components=2,
        encoder=_RecordingLinear,
        decoder=_RecordingLinear,
        max_iter=2,
        random_state=0,
        device="cpu",
    ).fit(X)
    during_fit = list(_RecordingLinear.modes)
    _RecordingLinear.modes = []
    model.transform(X)
    return during_fit, list(_RecordingLinear.modes)


def test_training_and_inference_flush_subnormals_and_restore_the_mode():
    X = np.random.RandomState(0).randn(60, 5)
    assert not flushing_subnormals()
    during_fit, during_transform = _fit_recording(X)
    assert during_fit and all(during_fit)
    assert during_transform and all(during_transform)
    assert not flushing_subnormals()


def test_a_caller_who_flushes_keeps_flushing():
    X = np.random.RandomState(0).randn(60, 5)
    torch.set_flush_denormal(True)
    try:
        _fit_recording(X)
        assert flushing_subnormals()
    finally:
        torch.set_flush_denormal(False)


def test_flush_subnormals_zeroes_only_subnormal_results():
    x = torch.tensor([1e-40, 1e-30, 1.0])
    with flush_subnormals():
        inside = (x * 1.0).tolist()
    assert inside[0] == 0.0 and inside[1] > 0 and inside[2] == 1.0
    assert (x * 1.0)[0].item() > 0
