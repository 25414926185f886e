"""Intra-op threads are sized to the work and scoped to skae's calls."""

import os
import threading
import time
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


def _spy(monkeypatch, works=None):
    """The thread counts skae's calls choose (and, into ``works``, the work
    each call declared)."""
    seen = []
    original = _threads.threads_for

    def spy(work, device, n_jobs=None, min_work=None):
        if works is not None:
            works.append(work)
        seen.append(original(work, device, n_jobs, min_work))
        return seen[-1]

    monkeypatch.setattr(_threads, "threads_for", spy)
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
    monkeypatch.setattr(_threads, "other_running_threads", lambda seconds=None: 0)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 3
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK - 1, cpu) == 1
    # Cores that other processes keep busy are left to them.
    monkeypatch.setattr(_threads, "other_running_threads", lambda seconds=None: 2)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 2
    monkeypatch.setattr(_threads, "other_running_threads", lambda seconds=None: 9)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 1
    # Where the system does not say, every core counts as idle.
    monkeypatch.setattr(_threads, "other_running_threads", lambda seconds=None: None)
    assert _threads.threads_for(_threads.PARALLEL_MIN_WORK, cpu) == 3


def test_running_threads_are_read_from_the_system():
    others = _threads.other_running_threads()
    if not os.path.exists("/proc/loadavg"):
        assert others is None
        return
    assert isinstance(others, int) and others >= 0
    # This process is running while it reads, so it counts itself.
    assert _threads._own_running_threads() >= 1


def test_a_machine_running_only_the_reader_needs_no_scan_of_threads(monkeypatch):
    # One runnable thread in the whole system is the reading thread itself:
    # the per-thread scan (most of a reading's cost) is skipped.
    def scan():
        raise AssertionError("scanned this process's threads")

    monkeypatch.setattr(_threads, "_runnable_threads", lambda: 1)
    monkeypatch.setattr(_threads, "_own_running_threads", scan)
    assert _threads.other_running_threads() == 0
    # With more runnable threads, this process's own are looked at.
    monkeypatch.setattr(_threads, "_runnable_threads", lambda: 3)
    monkeypatch.setattr(_threads, "_own_running_threads", lambda: 2)
    assert _threads.other_running_threads(0.0) == 1


def test_own_running_threads_count_a_busy_thread():
    if not os.path.exists("/proc/self/task"):
        pytest.skip("no /proc/self/task on this system")
    # A thread computing outside the GIL (a large matrix product) is running.
    stop = threading.Event()
    seen = []

    def busy():
        a = torch.randn(400, 400)
        while not stop.is_set():
            a @ a

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and max(seen, default=0) < 2:
            seen.append(_threads._own_running_threads())
    finally:
        stop.set()
        worker.join()
    assert max(seen) >= 2


@pytest.mark.parametrize(
    "runnable, seconds, expected, samples",
    [
        # The first sample that sees no other thread ends the reading.
        ([4, 3, 1, 4], 10.0, 0, 3),
        # Otherwise the fewest seen over the window: here a single sample.
        ([4, 3], 0.0, 3, 1),
        # Where the system does not say: None.
        ([None], 10.0, None, 1),
    ],
)
def test_a_reading_samples_without_sleeping(
    monkeypatch, runnable, seconds, expected, samples
):
    # A process that sleeps on a machine whose cores are all taken waits
    # long for its turn back: the samples are spaced by spinning.
    taken = []

    def sample():
        taken.append(runnable[len(taken)])
        return taken[-1]

    monkeypatch.setattr(_threads, "_runnable_threads", sample)
    monkeypatch.setattr(_threads, "_own_running_threads", lambda: 1)
    monkeypatch.setattr(_threads, "LOAD_SAMPLE_GAP_SECONDS", 0.0)

    def no_sleep(seconds):
        raise AssertionError("a reading slept")

    monkeypatch.setattr(_threads.time, "sleep", no_sleep)
    assert _threads.other_running_threads(seconds) == expected
    assert len(taken) == samples


def test_a_confirmed_reading_samples_for_longer(monkeypatch):
    windows = []
    monkeypatch.setattr(_threads, "available_cores", lambda: 4)
    monkeypatch.setattr(
        _threads,
        "other_running_threads",
        lambda seconds=None: windows.append(seconds) or 2,
    )
    assert _threads.idle_cores(confirm=False) == 2
    assert _threads.idle_cores() == 2
    assert windows == [None, None, _threads.LOAD_CONFIRM_SECONDS]


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


def _load_sequence(monkeypatch, others):
    """Other processes' running threads read as ``others``, one per reading
    (the last one repeated); each reading is recorded."""
    readings = []

    def reading(seconds=None):
        readings.append(others[min(len(readings), len(others) - 1)])
        return readings[-1]

    monkeypatch.setattr(_threads, "available_cores", lambda: 4)
    monkeypatch.setattr(_threads, "other_running_threads", reading)
    monkeypatch.setattr(_threads, "LOAD_RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(_threads, "LOAD_RECHECK_PARALLEL_SECONDS", 0.0)
    monkeypatch.setattr(_threads, "LOAD_RECHECK_FIRST_SECONDS", 0.0)
    monkeypatch.setattr(_threads, "LOAD_CONFIRM_SECONDS", 0.0)
    return readings


def test_a_fit_sized_by_the_load_gives_cores_back_when_others_start(
    three_threads, monkeypatch
):
    # Quiet at the start (three threads), then two other processes start
    # (two idle cores), then seven (one thread). A reading that would take
    # threads away is confirmed by a second one.
    readings = _load_sequence(monkeypatch, [0, 2, 2, 2, 7])
    counts = []
    with _threads.threads_sized_to(_threads.PARALLEL_MIN_WORK, torch.device("cpu")):
        counts.append(torch.get_num_threads())
        for _ in range(2):
            _threads.follow_the_load()
            counts.append(torch.get_num_threads())
    assert counts == [3, 2, 1]
    # One at the call; then per recheck a sample, the confirmation's two.
    assert len(readings) == 7
    assert torch.get_num_threads() == 3  # the caller's setting, restored


def test_a_burst_of_other_threads_costs_a_thread_only_until_the_next_reading(
    three_threads, monkeypatch
):
    cpu = torch.device("cpu")
    work = _threads.PARALLEL_MIN_WORK
    # At the call: one reading, unconfirmed (a confirmation would cost every
    # call on a busy machine milliseconds). A burst read then costs the fit
    # its threads until the first re-reading, which gives them back.
    readings = _load_sequence(monkeypatch, [5, 0])
    with _threads.threads_sized_to(work, cpu):
        assert torch.get_num_threads() == 1
        _threads.follow_the_load()
        assert torch.get_num_threads() == 3
    assert readings == [5, 0]
    # During a fit, a reading that would take a thread away is confirmed:
    # quiet, a burst, quiet again.
    readings = _load_sequence(monkeypatch, [0, 5, 0])
    with _threads.threads_sized_to(work, cpu):
        _threads.follow_the_load()
        assert torch.get_num_threads() == 3
    assert readings == [0, 5, 0]


def test_a_fit_already_on_one_thread_reads_the_load_once_per_recheck(
    three_threads, monkeypatch
):
    # Busy throughout: one reading at the call and one per recheck (a
    # reading that changes nothing is not confirmed).
    readings = _load_sequence(monkeypatch, [7])
    with _threads.threads_sized_to(_threads.PARALLEL_MIN_WORK, torch.device("cpu")):
        assert torch.get_num_threads() == 1
        for _ in range(3):
            _threads.follow_the_load()
    assert len(readings) == 1 + 3


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize(
    "others, read_at",
    [
        # Busy at the call: re-read soon, then twice as long each time, up to
        # once a second (times in binary fractions: exact sums).
        (7, [0.125, 0.375, 0.875, 1.875, 2.875]),
        # Quiet at the call: on every core, every half second here (a fit
        # on more than one thread loses most when a neighbour starts).
        (0, [0.5, 1.0, 1.5, 2.0, 2.5]),
        # Held back to two of three threads: soon, then doubling up to the
        # wait of a fit on more than one thread.
        (2, [0.125, 0.375, 0.875, 1.375, 1.875, 2.375, 2.875]),
    ],
)
def test_a_fit_held_back_by_the_load_reads_it_again_sooner(
    three_threads, monkeypatch, others, read_at
):
    readings = _load_sequence(monkeypatch, [others])
    monkeypatch.setattr(_threads, "LOAD_RECHECK_SECONDS", 1.0)
    monkeypatch.setattr(_threads, "LOAD_RECHECK_PARALLEL_SECONDS", 0.5)
    monkeypatch.setattr(_threads, "LOAD_RECHECK_FIRST_SECONDS", 0.125)
    clock = _Clock()
    monkeypatch.setattr(_threads, "time", clock)
    seen_at = []
    with _threads.threads_sized_to(_threads.PARALLEL_MIN_WORK, torch.device("cpu")):
        start = len(readings)
        for step in range(1, 373):  # a step every 1/128 s for 2.9 s
            clock.now = step / 128
            before = len(readings)
            _threads.follow_the_load()
            if len(readings) > before:
                seen_at.append(clock.now)
        assert len(readings) - start == len(seen_at)
    assert seen_at == read_at


def test_the_load_is_not_followed_where_it_did_not_choose(three_threads, monkeypatch):
    readings = _load_sequence(monkeypatch, [0, 7])
    cpu = torch.device("cpu")
    for work, n_jobs in [(_threads.PARALLEL_MIN_WORK, 2), (10, None)]:
        with _threads.threads_sized_to(work, cpu, n_jobs):
            before = torch.get_num_threads()
            _threads.follow_the_load()
            assert torch.get_num_threads() == before
    # Nor outside any skae call.
    _threads.follow_the_load()
    assert torch.get_num_threads() == 3
    assert readings == []


def test_a_shared_setting_is_not_resized(three_threads, monkeypatch):
    _load_sequence(monkeypatch, [0, 7])
    cpu = torch.device("cpu")
    with _threads.intra_op_threads(2):  # another skae call in another thread
        with _threads.threads_sized_to(_threads.PARALLEL_MIN_WORK, cpu):
            _threads.follow_the_load()
            assert torch.get_num_threads() == 2


def test_the_load_is_read_without_holding_the_shared_setting(
    three_threads, monkeypatch
):
    # A confirmed reading samples for milliseconds: a call starting in
    # another thread meanwhile must not wait for it, and once it has started
    # the setting is shared, so the reading is not applied.
    _load_sequence(monkeypatch, [0])  # quiet at the start: three threads
    held = []

    def reading(seconds=None):
        held.append(_threads._SETTING.lock.locked())
        if len(held) == 1:  # another call begins between the two samples
            _threads._SETTING.users += 1
        return 7

    with _threads.threads_sized_to(_threads.PARALLEL_MIN_WORK, torch.device("cpu")):
        assert torch.get_num_threads() == 3
        monkeypatch.setattr(_threads, "other_running_threads", reading)
        _threads.follow_the_load()
        _threads._SETTING.users -= 1
        assert torch.get_num_threads() == 3
    assert held == [False, False, False]  # a reading, then a confirmed one (two)


def test_training_epochs_follow_the_load(three_threads, monkeypatch):
    # Every size counts as large here, so the default model follows the load.
    monkeypatch.setattr(_threads, "PARALLEL_MIN_WORK", 1)
    readings = _load_sequence(monkeypatch, [0, 7])
    seen = []
    original = torch.set_num_threads
    monkeypatch.setattr(
        torch, "set_num_threads", lambda n: (seen.append(n), original(n))
    )
    X = np.random.RandomState(0).rand(100, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(n_components=2, max_iter=3, init="random").fit(X)
    # Three at the start, one from the first epoch's reading on, 3 restored.
    assert seen[0] == 3 and 1 in seen and seen[-1] == 3
    assert len(readings) >= 2


def test_classifier_fine_tuning_and_inference_are_sized(three_threads, monkeypatch):
    from skae import AutoencoderClassifier, AutoencoderTransformer

    seen = []
    original = _threads.threads_for

    def spy(work, device, n_jobs=None, min_work=None):
        seen.append(n_jobs)
        return original(work, device, n_jobs, min_work)

    monkeypatch.setattr(_threads, "threads_for", spy)
    rng = np.random.RandomState(0)
    X, y = rng.rand(60, 6), np.arange(60) % 2
    auto = AutoencoderTransformer(n_components=2, max_iter=2, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AutoencoderClassifier(auto, max_iter=2, n_jobs=2).fit(X, y)
        clf.predict(X)
    # Pretraining with the autoencoder's n_jobs, the rest with the classifier's.
    assert 1 in seen and seen.count(2) >= 2
    assert torch.get_num_threads() == 3


def test_the_pca_start_runs_on_the_sized_threads(three_threads, monkeypatch):
    # Its eigendecomposition costs as much as an epoch: on torch's default
    # threads it was 10x slower on a busy machine than the whole training.
    seen = []
    original = AutoencoderTransformer._initialize_module

    def spy(self, module, rows):
        seen.append(torch.get_num_threads())
        return original(self, module, rows)

    monkeypatch.setattr(AutoencoderTransformer, "_initialize_module", spy)
    X = np.random.RandomState(0).rand(100, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(n_components=2, max_iter=2).fit(X)
    assert seen == [1]
    assert torch.get_num_threads() == 3


def test_vae_importance_sampling_runs_on_the_sized_threads(three_threads, monkeypatch):
    from skae import VAE

    seen = []
    original = VAE._score_pass

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VAE, "_score_pass", spy)
    X = np.random.RandomState(0).rand(50, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VAE(n_components=2, max_iter=2).fit(X)
    vae.score_samples(X)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 3


def test_dictionary_learner_sizes_its_calls_to_the_work(three_threads, monkeypatch):
    from skae import DictionaryLearner

    works = []
    seen = _spy(monkeypatch, works)
    X = np.random.RandomState(0).rand(40, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dl = DictionaryLearner(n_components=3, max_iter=3, random_state=0).fit(X)
        dl.partial_fit(X)
    dl.transform(X)
    dl.score_samples(X)
    # fit, partial_fit, transform, score_samples: rows x atoms x features.
    assert works == [40 * 3 * 6] * 4
    assert seen == [1] * 4
    assert torch.get_num_threads() == 3


def test_dictionary_learner_n_jobs_overrides_the_choice(three_threads, monkeypatch):
    from skae import DictionaryLearner

    seen = _spy(monkeypatch)
    X = np.random.RandomState(0).rand(40, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dl = DictionaryLearner(n_components=3, max_iter=2, n_jobs=2).fit(X)
    dl.set_params(n_jobs=1).transform(X)
    assert seen == [2, 1]
    assert torch.get_num_threads() == 3


def test_dictionary_fits_follow_the_load(three_threads, monkeypatch):
    from skae import DictionaryLearner, _dictionary

    monkeypatch.setattr(_dictionary, "PARALLEL_MIN_WORK", 1)
    readings = _load_sequence(monkeypatch, [0, 7])
    X = np.random.RandomState(0).rand(60, 6)
    for params in ({}, {"batch_size": 10}):  # full batch, then online
        readings.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            DictionaryLearner(n_components=3, max_iter=3, **params).fit(X)
        # One reading at the call, more between iterations or batches.
        assert len(readings) >= 2
        assert torch.get_num_threads() == 3


def test_dictionary_learner_uses_its_own_lower_threshold(three_threads, monkeypatch):
    from skae import DictionaryLearner, _dictionary

    seen = _spy(monkeypatch)
    monkeypatch.setattr(_threads, "idle_cores", lambda confirm=True: 4)
    # 200 rows x 8 atoms x 700 features = 2^20.1: parallel for a dictionary
    # (its code steps iterate over each block), one thread for an autoencoder.
    X = np.random.RandomState(0).rand(200, 700)
    assert _dictionary.PARALLEL_MIN_WORK <= 200 * 8 * 700 < _threads.PARALLEL_MIN_WORK
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        DictionaryLearner(n_components=8, max_iter=1, random_state=0).fit(X)
    assert seen[0] == 3
    assert _threads.threads_for(200 * 8 * 700, torch.device("cpu")) == 1
    assert torch.get_num_threads() == 3
