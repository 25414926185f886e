"""Instruction counts of a block of Python code, under valgrind's callgrind.

On the shared 2-core machines the benchmarks run on, the median time of the
same fit moves by 10-20% between runs and even between processes, more than
the overheads some benchmarks compare. The number of instructions a block
executes does not move: valgrind counts them, whatever else the machine is
doing. A count is not a time (a cache miss costs more than an addition), so
it is reported beside the timed figures, never instead of them.

The counted process is the benchmark script itself, started again under
``valgrind --tool=callgrind --instr-atstart=no``: nothing is counted until
the block calls :func:`start` (a callgrind client request, through a
four-line C library compiled here with the machine's ``gcc`` against
valgrind's header), and nothing after :func:`stop`. Where valgrind, gcc or
the header is missing, :func:`missing` says which, and the benchmark prints
that instead of the counts.

Examples
--------
In the counted process::

    from _instructions import start, stop
    start()
    fit()
    stop()

and in the benchmark, ``count([sys.executable, script, "--child", ...])``
returns the instructions between the two calls.
"""

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Where the counted process finds the compiled client-request library.
LIBRARY_VARIABLE = "SKAE_CALLGRIND_LIBRARY"

_HEADER = Path("/usr/include/valgrind/callgrind.h")

_SOURCE = """
#include <valgrind/callgrind.h>
void skae_count_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void skae_count_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def missing():
    """What this machine lacks to count instructions, or None."""
    for tool in ("valgrind", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not _HEADER.exists():
        return f"{_HEADER} not found (Debian package valgrind)"
    return None


def build_library(directory):
    """Compile the client-request library into ``directory``; its path."""
    source = Path(directory) / "skae_count.c"
    library = Path(directory) / "libskae_count.so"
    source.write_text(_SOURCE)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
    )
    return library


def _library():
    return ctypes.CDLL(os.environ[LIBRARY_VARIABLE])


def start():
    """Counted process: zero the count and start counting."""
    _library().skae_count_start()


def stop():
    """Counted process: stop counting."""
    _library().skae_count_stop()


def count(argv, library):
    """Instructions that ``argv`` (a Python command calling :func:`start` and
    :func:`stop`) executes between the two calls."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, **{LIBRARY_VARIABLE: str(library)})
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={tmp}/callgrind.out",
                *argv,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed under valgrind:\n{done.stderr[-2000:]}")
    found = re.findall(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found[-1].replace(",", ""))
