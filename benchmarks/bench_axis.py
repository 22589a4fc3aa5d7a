"""softmax and log_softmax along an axis that is not the last, against peers.

The layouts: segmentation logits ``(N, C, H, W)`` normalized over the channels (``axis=1``,
as ``torch.softmax(x, 1)`` and ``F.cross_entropy`` take them), and a ``(C, n)`` array over
``axis=0``. "cross_entropy" is the training step: the per-pixel softmax cross-entropy with
integer labels and its gradient (sigmax's ``softmax_cross_entropy_value_and_grad``; torch's
``F.cross_entropy(reduction="none")`` then ``autograd.grad``; textbook NumPy from
``log_softmax``). sigmax runs them on its column kernels (:mod:`sigmax._numba_columns`); "moved"
is sigmax's general path on the same call (the axis moved last, then the row kernels), as
it ran before those kernels. Peers: textbook NumPy (max-subtracted, along the axis),
``scipy.special`` and torch CPU with the same number of threads, in the same process. Each
cell is the median of ``--repeat`` calls after a warmup (``benchmarks/harness.py``).

Usage::

    python benchmarks/bench_axis.py              # float32 and float64
    python benchmarks/bench_axis.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import sigmax
from sigmax import functions

CASES = [((8, 21, 128, 128), 1), ((16, 150, 64, 64), 1), ((1000, 100_000), 0)]


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.exp(x - m).sum(axis=axis))


def np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _ce(labels: np.ndarray, x: np.ndarray, axis: int, precision: str = "accurate") -> Any:
    """sigmax's softmax cross-entropy and its gradient (the training step's call)."""
    return sigmax.softmax_cross_entropy_value_and_grad(x, labels, axis=axis, precision=precision)


def _np_ce(labels: np.ndarray, x: np.ndarray, axis: int) -> Any:
    logp = np_log_softmax(x, axis)
    value = -np.take_along_axis(logp, np.expand_dims(labels, axis), axis=axis)
    grad = np.exp(logp)
    np.put_along_axis(grad, np.expand_dims(labels, axis), np.exp(-value) - 1.0, axis=axis)
    return value, grad


def _moved(fn: Any, x: np.ndarray, axis: int) -> Any:
    """sigmax's general path for the call: the column kernels turned off."""

    def call() -> Any:
        saved = functions.COLUMNS_MIN_WIDTH
        functions.COLUMNS_MIN_WIDTH = 1 << 62
        try:
            return fn(x, axis=axis)
        finally:
            functions.COLUMNS_MIN_WIDTH = saved

    return call


def _candidates(
    op: str,
    fn: Any,
    np_fn: Any,
    x: np.ndarray,
    labels: np.ndarray,
    axis: int,
    tx: Any,
    special: Any,
    torch: Any,
) -> dict[str, Any]:
    cands: dict[str, Any] = {
        "sigmax": partial(fn, x, axis=axis),
        # logsumexp has one precision.
        "fast": partial(fn, x, axis=axis, precision="fast") if op != "logsumexp" else None,
        "moved": _moved(fn, x, axis),
        "numpy": partial(np_fn, x, axis),
        "copy": x.copy,
    }
    if special is not None and op != "cross_entropy":
        cands["scipy"] = partial(getattr(special, op), x, axis=axis)
    if tx is not None and op == "cross_entropy":
        cands["torch"] = partial(_torch_ce, torch, tx, torch.from_numpy(labels), axis)
    elif tx is not None:
        cands["torch"] = partial(getattr(torch, op), tx, axis)
    return cands


def _torch_ce(torch: Any, tx: Any, labels: Any, axis: int) -> Any:
    """torch's cross-entropy per pixel and its gradient (autograd: forward, backward)."""
    z = tx.detach().requires_grad_(True)
    z2 = z.movedim(axis, 1) if axis != 1 else z
    value = torch.nn.functional.cross_entropy(z2, labels, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), z)
    return value, grad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    args = ap.parse_args(argv)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a test dependency
        torch = None
    try:
        from scipy import special
    except ImportError:  # pragma: no cover
        special = None
    print(f"# machine: {harness.machine()}")
    print(f"# threads: sigmax default, torch set_num_threads({threads}); median of {args.repeat}")
    head = ["op", "shape", "axis", "dtype", "sigmax", "fast", "moved", "numpy", "scipy", "torch"]
    head += ["copy", "sigmax/best peer", "sigmax/moved", "sigmax/copy"]
    rows = []
    rng = np.random.default_rng(0)
    for shape, axis in CASES:
        for dtype in args.dtypes:
            x = rng.standard_normal(shape).astype(dtype)
            tx = torch.from_numpy(x) if torch is not None else None
            labels = rng.integers(0, shape[axis], shape[:axis] + shape[axis + 1 :])
            for op, fn, np_fn in [
                ("softmax", sigmax.softmax, np_softmax),
                ("log_softmax", sigmax.log_softmax, np_log_softmax),
                ("logsumexp", sigmax.logsumexp, np_logsumexp),
                ("cross_entropy", partial(_ce, labels), partial(_np_ce, labels)),
            ]:
                times: dict[str, float] = {}
                cands = _candidates(op, fn, np_fn, x, labels, axis, tx, special, torch)
                for name, f in cands.items():
                    if f is not None:
                        times[name] = harness.time_call(f, repeat=args.repeat)
                peers = [times[p] for p in ("numpy", "scipy", "torch") if p in times]
                row = [op, "x".join(map(str, shape)), str(axis), dtype]
                row += [harness.fmt_seconds(times.get(c, float("nan"))) for c in head[4:11]]
                row += [
                    f"{times['sigmax'] / min(peers):.2f}",
                    f"{times['sigmax'] / times['moved']:.2f}",
                    f"{times['sigmax'] / times['copy']:.2f}",
                ]
                rows.append(row)
                print(" | ".join(row), flush=True)
    print()
    harness.print_table(rows, head)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
