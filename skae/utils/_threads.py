"""Intra-op thread counts sized to the work, set only around skae's own calls.

Small models train fastest on one thread: their matrix products take
microseconds, and the barrier waits of a second thread cost more than it
saves, many times more when other processes keep the cores busy (a default
2-thread fit measured about 10x slower than a 1-thread fit on a busy 2-core
machine). Large models gain from more threads, but only from cores that no
other process is using: a second thread that has to share a core with another
CPU-bound process makes every step wait for it. ``threads_for`` picks the
count from the work per step and, for large work, from the cores idle at
the call, and :func:`intra_op_threads` sets it for the
duration of a call and restores the caller's setting afterwards (as
``threadpoolctl`` does for BLAS), so a user's own torch code is unaffected.
:func:`threads_sized_to` does both, and while a fit whose count was chosen by
the load runs, :func:`follow_the_load` (called between steps) reads the load
again: a process that starts computing beside a fit takes its core back
within a quarter of a second instead of slowing every remaining step. A reading that
would cost a thread is confirmed by a few milliseconds more of sampling
(``LOAD_CONFIRM_SECONDS``): a burst of runnable threads is not a busy core.
Readings spin between their samples instead of sleeping: on a machine whose
cores are all taken a sleeping process waits long for its turn back.
"""

import contextlib
import numbers
import os
import threading
import time

import torch

#: Multiply-adds per step (rows x parameters) from which a CPU fit may use
#: more than one intra-op thread: on a quiet 2-core machine every model
#: measured from here up (the digits default, 2^22.7, to 2^26.4) ran 1.09-1.36x
#: faster on both cores (benchmarks/bench_threads.py --sweep). Below it one
#: thread is as fast, and far faster where other processes keep cores busy.
PARALLEL_MIN_WORK = 2**22

#: Seconds between two readings of the load during a fit that follows it and
#: runs on one thread. A reading costs about 0.2 ms where the cores are
#: idle, about ``LOAD_SAMPLE_SECONDS`` where none is (bench_threads.py
#: --readings).
LOAD_RECHECK_SECONDS = 1.0

#: The same while the fit runs on more than one thread. Wrong there, a fit
#: loses far more: beside one CPU-bound process per core, two threads ran the
#: default MNIST model 2.7-5x slower than one, while one thread where two
#: cores are idle ran it 1.3-1.4x slower (bench_threads.py). Four readings a
#: second, 0.2 ms each on an idle machine, are under 0.1% of the fit.
LOAD_RECHECK_PARALLEL_SECONDS = 0.25

#: One reading of the load samples it over this many seconds (ending at the
#: first sample that finds no other thread running): one thread waking for
#: an instant is not a busy core. Where other processes keep the cores busy
#: every reading lasts the whole window, so it is kept short. Right after
#: this process's own two-thread work on a quiet 2-core machine, windows of
#: 0.5, 1 and 2 ms saw other threads in 14, 1 and 3 of 600 readings, and
#: beside two CPU-bound processes took 0.69, 1.16 and 2.33 ms (medians;
#: bench_threads.py --readings 600 --windows 0.5 1 2; a first script with
#: 2,000 readings per window: 1.05%, 0.6% and 0.35%). A quiet machine
#: misread at the call costs a fit a thread for 0.1 s (about 30 ms for the
#: default MNIST model, 0.3-0.7 ms per call on average at 0.5 ms); every call
#: on a busy one pays the window. Readings that would take a thread from a
#: running fit are confirmed for longer (``LOAD_CONFIRM_SECONDS``).
LOAD_SAMPLE_SECONDS = 0.0005

#: Seconds between two samples of a reading.
LOAD_SAMPLE_GAP_SECONDS = 0.00025

#: A fit that the load keeps below its ceiling re-reads it first after this
#: many seconds, then after twice as long each time, up to
#: ``LOAD_RECHECK_SECONDS``: a start beside a short-lived process (a command
#: of tens of milliseconds is real load at that instant) costs the fit a
#: thread for a tenth of a second, not a second.
LOAD_RECHECK_FIRST_SECONDS = 0.1

#: A reading that finds the cores taken is confirmed by sampling this many
#: seconds more before it may cost the fit a thread: a burst of runnable
#: threads (another process waking, or this process's own workers finishing
#: between the two counts a sample subtracts) lasts a millisecond or two; a
#: CPU-bound neighbour does not (benchmarks/bench_threads.py --readings).
LOAD_CONFIRM_SECONDS = 0.005


class _SharedSetting:
    """torch's process-wide thread count, as changed by concurrent calls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = 0
        self.previous = None


_SETTING = _SharedSetting()

# Per calling thread: when the fit that follows the load reads it next, and
# the wait after that reading (``state`` None: the running fit's count was
# not chosen by the load).
_LOAD_READ_AT = threading.local()


def _longest_wait(threads):
    """The longest wait between two readings of a fit on ``threads``."""
    return LOAD_RECHECK_PARALLEL_SECONDS if threads > 1 else LOAD_RECHECK_SECONDS


def _next_wait(wait, held_back, threads):
    """The wait before the next reading of a fit now on ``threads``: doubling
    from ``LOAD_RECHECK_FIRST_SECONDS`` while the load holds the fit below its
    ceiling, the longest (:func:`_longest_wait`) once it does not."""
    if not held_back:
        return _longest_wait(threads)
    return min(2 * wait, _longest_wait(threads))


def available_cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read_proc(path):
    """The start of a /proc file, read by raw system calls: a reading of the
    load reads one file per thread of this process, and Python's buffered
    ``open`` costs twice as much per file (about 25 against 12 us)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 512)
    finally:
        os.close(fd)


def _own_running_threads():
    """Threads of this process in the running state (Linux), or None."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    # The calling thread is running while it reads: counted without a read.
    me = str(threading.get_native_id())
    count = 1
    for task in tasks:
        if task == me:
            continue
        try:
            stat = _read_proc(f"/proc/self/task/{task}/stat")
            # The state follows the command name, which ends with ")".
            state = stat.rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended since the listing
        count += state == b"R"
    return count


def _runnable_threads():
    """The kernel's count of threads ready to run, all processes (Linux), or
    None."""
    try:
        loadavg = _read_proc("/proc/loadavg")
        return int(loadavg.split()[3].partition(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


def other_running_threads(seconds=None):
    """Threads of other processes ready to run (Linux), or None where the
    system does not say.

    The kernel's count of runnable threads (``/proc/loadavg``) minus this
    process's own, the fewest seen in samples over ``seconds`` (default
    ``LOAD_SAMPLE_SECONDS``), so that one thread waking for an instant does
    not count as a busy core; the first sample that sees none ends it.
    """
    seconds = LOAD_SAMPLE_SECONDS if seconds is None else seconds
    deadline = time.perf_counter() + seconds
    fewest = None
    while True:
        running = _runnable_threads()
        # A count of one is the reading thread itself: no other thread, of
        # this process or another, needs to be looked at.
        own = 1 if running is not None and running <= 1 else _own_running_threads()
        if running is None or own is None:
            return None
        others = max(0, running - own)
        fewest = others if fewest is None else min(fewest, others)
        if fewest == 0 or time.perf_counter() >= deadline:
            return fewest
        # Waited for by spinning, not sleeping: on a machine whose cores are
        # all taken, a process that sleeps gives up its turn, and waking
        # costs it far more than the sleep (beside two CPU-bound processes
        # on two cores, a 12-ms sleep lengthened a fit by about 45 ms, a
        # 12-ms spin by 27).
        next_sample = time.perf_counter() + LOAD_SAMPLE_GAP_SECONDS
        while time.perf_counter() < next_sample:
            pass


def idle_cores(confirm=True):
    """Available cores not taken by other processes' running threads.

    With ``confirm``, a reading that finds cores taken is followed by
    ``LOAD_CONFIRM_SECONDS`` more of sampling and the fewest busy cores seen
    stand, so a burst of a few milliseconds does not count as a busy core.
    """
    cores = available_cores()
    others = other_running_threads()
    if confirm and others:
        again = other_running_threads(LOAD_CONFIRM_SECONDS)
        others = others if again is None else min(others, again)
    return cores if others is None else max(1, cores - others)


def _parallel_from(min_work):
    """The work from which more than one thread may pay (read at each call,
    so that the module's threshold can be changed)."""
    return PARALLEL_MIN_WORK if min_work is None else min_work


def threads_for(work, device, n_jobs=None, min_work=None):
    """The intra-op thread count for a CPU call doing ``work`` multiply-adds
    per step, or None to leave torch's setting alone.

    Parameters
    ----------
    work : int
        Multiply-adds per step (e.g. batch rows times model parameters).
    device : torch.device
        Only CPU calls are sized.
    n_jobs : int or None, default=None
        None sizes to ``work``: one thread below ``min_work``, else
        torch's current setting, capped at the cores that other processes
        leave idle at the call (:func:`idle_cores`). -1 uses every available
        core; a positive int that many threads.
    min_work : int or None, default=None
        Work from which more than one thread may pay; None is
        ``PARALLEL_MIN_WORK`` (measured on the autoencoders' steps).

    Examples
    --------
    >>> import torch
    >>> from skae.utils._threads import threads_for
    >>> threads_for(1000, torch.device("cpu"))
    1
    >>> threads_for(1000, torch.device("cpu"), n_jobs=3)
    3
    """
    if device.type != "cpu":
        return None
    # Read at every call (like scikit-learn's n_jobs at predict time), so it
    # is checked here too: set_params does not validate.
    if n_jobs is not None and (
        not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool)
    ):
        raise ValueError(f"n_jobs must be None or an int, got {n_jobs!r}.")
    if n_jobs is None:
        if work < _parallel_from(min_work):
            return 1
        # One reading, unconfirmed: on a busy machine a confirmation costs
        # every call 5 ms of sampling (8% of a 60-ms fit), while a burst
        # misread as load costs a fit that follows the load a thread only
        # until its first re-reading, a tenth of a second later.
        return min(torch.get_num_threads(), idle_cores(confirm=False))
    if n_jobs < 0:
        return max(1, available_cores() + 1 + n_jobs)
    return n_jobs


@contextlib.contextmanager
def intra_op_threads(n_threads):
    """Run the block with ``n_threads`` intra-op threads (None: unchanged),
    then restore the caller's setting.

    torch's setting is process-wide: concurrent calls in threads share one
    setting, the first one's, until the last one ends.
    """
    if n_threads is None:
        yield
        return
    setting = _SETTING
    with setting.lock:
        setting.users += 1
        if setting.users == 1:
            setting.previous = torch.get_num_threads()
            torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        with setting.lock:
            setting.users -= 1
            if setting.users == 0:
                torch.set_num_threads(setting.previous)


@contextlib.contextmanager
def threads_sized_to(work, device, n_jobs=None, min_work=None):
    """Run the block with :func:`threads_for`'s count, re-read between steps
    by :func:`follow_the_load` where that count came from the load.

    Examples
    --------
    >>> import torch
    >>> from skae.utils._threads import threads_sized_to
    >>> with threads_sized_to(1000, torch.device("cpu")):
    ...     torch.get_num_threads()
    1
    """
    ceiling = torch.get_num_threads()
    n_threads = threads_for(work, device, n_jobs, min_work)
    follows_load = (
        n_threads is not None and n_jobs is None and work >= _parallel_from(min_work)
    )
    with intra_op_threads(n_threads):
        outer = getattr(_LOAD_READ_AT, "state", None)
        state = None
        if follows_load:
            held_back = n_threads < ceiling
            if held_back:
                wait = min(LOAD_RECHECK_FIRST_SECONDS, _longest_wait(n_threads))
            else:
                wait = _longest_wait(n_threads)
            state = (time.monotonic() + wait, wait)
        _LOAD_READ_AT.state = state
        try:
            yield
        finally:
            _LOAD_READ_AT.state = outer


def follow_the_load():
    """Between steps: re-size the running fit's threads to the idle cores,
    at most once every ``LOAD_RECHECK_SECONDS`` on one thread and every
    ``LOAD_RECHECK_PARALLEL_SECONDS`` on more (one clock read otherwise;
    sooner while the load holds the fit below its ceiling, see
    ``LOAD_RECHECK_FIRST_SECONDS``).

    A no-op unless the fit in this thread chose its count from the load
    (:func:`threads_sized_to` with ``n_jobs=None`` and large work). Fits
    running concurrently in threads share torch's process-wide setting, so
    it is changed only while a single skae call holds it.
    """
    state = getattr(_LOAD_READ_AT, "state", None)
    if state is None:
        return
    now = time.monotonic()
    due, wait = state
    if now < due:
        return
    with _SETTING.lock:
        if _SETTING.users != 1:
            _LOAD_READ_AT.state = (now + LOAD_RECHECK_SECONDS, LOAD_RECHECK_SECONDS)
            return
        # The caller's own setting stays the ceiling, as at the start.
        ceiling = _SETTING.previous
    current = torch.get_num_threads()
    # The load is read outside the lock: a confirmed reading takes 7 ms, and
    # a fit starting or ending in another thread should not wait for it.
    wanted = min(ceiling, idle_cores(confirm=False))
    if wanted < current:
        # Only a reading that would take a thread away is confirmed: a fit
        # already on one thread beside a busy neighbour pays for one sample
        # a second, not two.
        wanted = min(ceiling, idle_cores())
    with _SETTING.lock:
        # Another skae call may have begun meanwhile: then the setting is
        # shared and stays as it is.
        if _SETTING.users == 1 and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
    wait = _next_wait(wait, held_back=wanted < ceiling, threads=wanted)
    _LOAD_READ_AT.state = (time.monotonic() + wait, wait)
