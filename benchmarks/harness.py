"""A small shared timing harness for the scripts in ``benchmarks/``.

The API is deliberately small and stable (other benchmark scripts import it):

- ``time_call(fn, repeat=7, number=1, warmup=1) -> float``: median seconds per call.
- ``time_synced(fn, sync, repeat=20, warmup=3) -> float``: the same for a device, each call
  followed by ``sync()`` (e.g. ``torch.cuda.synchronize``), so it times launch to result.
- ``peak_bytes(fn) -> int``: peak bytes allocated by ``fn()`` as seen by :mod:`tracemalloc`
  (NumPy reports its data buffers there; PyTorch tensors are not seen).
- ``cpu_model() -> str`` and ``machine() -> str``: what to quote next to a table.
- ``print_table(rows, headers)``: a Markdown table on stdout.
- ``fmt_seconds(s)`` and ``fmt_bytes(n)``: human units.

Timings are medians of ``repeat`` runs of ``number`` calls each, after ``warmup`` calls, so a
noisy shared machine moves them less than it moves a mean or a minimum of one run.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "cpu_model",
    "fmt_bytes",
    "fmt_seconds",
    "machine",
    "peak_bytes",
    "print_table",
    "time_call",
]


def time_call(fn: Callable[[], Any], *, repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """Median wall-clock seconds of one call of ``fn()``.

    Runs ``warmup`` untimed calls, then ``repeat`` timed runs of ``number`` calls each, and
    returns the median run divided by ``number``. The garbage collector is paused while timing.
    """
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            runs.append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(runs)


def time_synced(
    fn: Callable[[], Any], sync: Callable[[], None], *, repeat: int = 20, warmup: int = 3
) -> float:
    """Median seconds of ``fn(); sync()`` over `repeat` runs after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated while ``fn()`` runs (tracemalloc; sees NumPy buffers, not torch)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or :func:`platform.processor` elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: CPU model, core count, Python and NumPy versions."""
    import numpy as np

    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}"
    )


def fmt_seconds(s: float) -> str:
    if s != s:  # nan marks a peer that was skipped
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print a Markdown table; cells are converted with ``str``."""
    cells = [[str(c) for c in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))
    print(flush=True)
