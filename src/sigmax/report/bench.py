"""``sigmax bench``: a short comparison of sigmax's functions against the installed peers.

Each function runs in this process next to a textbook NumPy version, ``scipy.special`` and
``torch`` (when importable), on the same input; the table gives median wall times and the ratio
peer / sigmax (above 1: sigmax is faster). The full benchmark scripts live in the repository's
``benchmarks/`` folder, which is not installed; ``--suite DIR`` runs them with ``--quick``.
"""

from __future__ import annotations

import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import sigmax

__all__ = ["run_builtin", "run_suite"]


def _median_ms(fn: Callable[[], Any], *, repeat: int, budget_s: float) -> float:
    t = timeit.Timer(fn)
    one = min(t.repeat(repeat=2, number=1))  # the first call also warms caches up
    number = max(1, int(budget_s / (repeat * max(one, 1e-7))))
    times = t.repeat(repeat=repeat, number=number)
    return 1e3 * float(np.median(times)) / number


def _bind(fn: Callable[[Any], Any], arg: Any) -> Callable[[], Any]:
    return lambda: fn(arg)


def _textbook() -> dict[str, Callable[[np.ndarray], Any]]:
    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def log_softmax(x: np.ndarray) -> np.ndarray:
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def logsumexp(x: np.ndarray) -> np.ndarray:
        m = x.max(axis=-1)
        return m + np.log(np.exp(x - m[:, None]).sum(axis=-1))

    return {
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
        "softmax": softmax,
        "log_softmax": log_softmax,
        "logsumexp": logsumexp,
    }


def _peers() -> dict[str, dict[str, Callable[[Any], Any]]]:
    peers: dict[str, dict[str, Callable[[Any], Any]]] = {"numpy textbook": _textbook()}
    try:
        from scipy import special
    except ImportError:
        pass
    else:
        peers["scipy.special"] = {
            "sigmoid": special.expit,
            "softmax": lambda x: special.softmax(x, axis=-1),
            "log_softmax": lambda x: special.log_softmax(x, axis=-1),
            "logsumexp": lambda x: special.logsumexp(x, axis=-1),
        }
    try:
        import torch
    except ImportError:
        pass
    else:
        peers["torch"] = {
            "sigmoid": torch.sigmoid,
            "softmax": lambda x: torch.softmax(x, dim=-1),
            "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
            "logsumexp": lambda x: torch.logsumexp(x, dim=-1),
        }
    return peers


def run_builtin(
    *, quick: bool = False, seed: int = 0, shape: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """Time sigmax and each installed peer on the same arrays; one row per (function, peer).

    Examples
    --------
    >>> rows = run_builtin(quick=True, shape=(4, 3))
    >>> sorted({r["function"] for r in rows})
    ['log_softmax', 'logsumexp', 'sigmoid', 'softmax']
    """
    if shape is None:
        shape = (500, 200) if quick else (2000, 500)
    repeat, budget = (3, 0.03) if quick else (5, 0.1)
    rng = np.random.default_rng(seed)
    ours: dict[str, Callable[[Any], Any]] = {
        "sigmoid": sigmax.sigmoid,
        "softmax": sigmax.softmax,
        "log_softmax": sigmax.log_softmax,
        "logsumexp": sigmax.logsumexp,
    }
    peers = _peers()
    rows: list[dict[str, Any]] = []
    for dtype in (np.float32, np.float64):
        x = (4 * rng.standard_normal(shape)).astype(dtype)
        for name, fn in ours.items():
            mine = _median_ms(_bind(fn, x), repeat=repeat, budget_s=budget)
            for peer, funcs in peers.items():
                arg: Any = x
                if peer == "torch":
                    import torch

                    arg = torch.from_numpy(x)
                theirs = _median_ms(_bind(funcs[name], arg), repeat=repeat, budget_s=budget)
                rows.append(
                    {
                        "function": name,
                        "shape": list(shape),
                        "dtype": np.dtype(dtype).name,
                        "sigmax_ms": mine,
                        "peer": peer,
                        "peer_ms": theirs,
                        "ratio": theirs / mine,
                    }
                )
    return rows


def run_suite(folder: Path, /, *, quiet: bool = False, timeout_s: float = 120.0) -> int:
    """Run every ``folder/bench_*.py --quick`` in turn; return 1 if any failed."""
    from sigmax.datasets import DataError

    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        raise DataError(f"no bench_*.py scripts in {folder}")
    status = 0
    for script in scripts:
        if not quiet:
            print(f"== {script.name} --quick", flush=True)
        try:
            done = subprocess.run(
                [sys.executable, str(script), "--quick"], timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            print(
                f"sigmax: {script.name} took more than {timeout_s:.0f} s; stopped", file=sys.stderr
            )
            status = 1
            continue
        if done.returncode != 0:
            print(f"sigmax: {script.name} exited with {done.returncode}", file=sys.stderr)
            status = 1
    return status
