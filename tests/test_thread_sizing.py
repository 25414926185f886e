"""Intra-op threads are sized to the work and scoped to skae's calls."""

import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer
from skae.utils import _threads


@pytest.fixture
def three_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(previous)


def _spy(monkeypatch):
    seen = []
    original = _threads.intra_op_threads

    def spy(n_threads):
        seen.append(n_threads)
        return original(n_threads)

    monkeypatch.setattr("skae._base.intra_op_threads", spy)
    return seen


def test_small_models_train_on_one_thread_and_restore_the_setting(
    three_threads, monkeypatch
):
    seen = _spy(monkeypatch)
    X = np.random.RandomState(0).rand(100, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = AutoencoderTransformer(n_components=2, max_iter=2).fit(X)
    ae.transform(X)
    assert seen and all(n == 1 for n in seen)
    assert torch.get_num_threads() == 3


def test_n_jobs_overrides_the_choice(three_threads, monkeypatch):
    seen = _spy(monkeypatch)
    X = np.random.RandomState(0).rand(100, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(n_components=2, max_iter=1, n_jobs=2).fit(X)
    assert seen[0] == 2
    assert torch.get_num_threads() == 3


def test_large_work_uses_torchs_setting_on_idle_cores(three_threads, monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_threads, "available_cores", lambda: 4)
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 0)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 3
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK - 1, cpu) == 1
    # Cores that other processes keep busy are left to them.
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 2)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 2
    monkeypatch.setattr(_threads, "other_running_threads", lambda: 9)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 1
    # Where the system does not say, every core counts as idle.
    monkeypatch.setattr(_threads, "other_running_threads", lambda: None)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 3


def test_running_threads_are_read_from_the_system():
    others = _threads.other_running_threads()
    if not os.path.exists("/proc/loadavg"):
        assert others is None
        return
    assert isinstance(others, int) and others >= 0
    # This process is running while it reads, so it counts itself.
    assert _threads._own_running_threads() >= 1


def test_other_limits_of_the_choice():
    cpu = torch.device("cpu")
    assert _threads.threads_for(10, cpu, n_jobs=-1) == _threads.available_cores()
    assert _threads.threads_for(10, torch.device("meta")) is None


def test_nested_and_concurrent_scopes_restore_the_first_setting(three_threads):
    with _threads.intra_op_threads(1):
        assert torch.get_num_threads() == 1
        with _threads.intra_op_threads(2):
            assert torch.get_num_threads() == 1  # the first scope's setting
    assert torch.get_num_threads() == 3
