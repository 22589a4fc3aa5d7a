"""Speed of the fused losses against their peers, in one process.

Softmax cross-entropy with integer labels: ``sigmax.softmax_cross_entropy_value_and_grad``
(value and gradient of the summed loss in one pass) against PyTorch CPU
``F.cross_entropy(reduction="sum")`` forward + backward, a textbook NumPy version
(``p = exp(z - max) / sum``, ``-log p[y]``, ``p - onehot``) and JAX ``value_and_grad`` under
``jit`` when JAX is installed (skipped otherwise). Binary cross-entropy:
``sigmax.sigmoid_cross_entropy_value_and_grad`` against PyTorch
``F.binary_cross_entropy_with_logits`` forward + backward and textbook NumPy.

PyTorch gets ``torch.set_num_threads`` equal to sigmax's thread count (``SIGMAX_NUM_THREADS``,
default ``min(cpu_count, 8)``), so both use the same cores.

Usage::

    python benchmarks/bench_losses.py            # (1e6, 10), (1e4, 1e3), (2e3, 5e4)
    python benchmarks/bench_losses.py --quick    # 10x fewer rows, for development
    python benchmarks/bench_losses.py --markdown benchmarks/results/losses.md
    python benchmarks/bench_losses.py --accuracy # max ULP vs mpmath on the test cases
    python benchmarks/bench_losses.py --heads    # per-call cost of the heads vs sklearn's _loss

Every number is the median of ``--repeat`` runs after one warmup. The ratio column is
sigmax / fastest peer (lower is better; <= 1 meets the target).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import sigmax
from sigmax._array_api import _n_threads

SHAPES = [(1_000_000, 10), (10_000, 1_000), (2_000, 50_000)]
QUICK_SHAPES = [(100_000, 10), (1_000, 1_000), (200, 50_000)]

Fn = Callable[[], Any]


def _textbook_softmax_ce(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    p = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    value = -np.log(p[rows, y])
    p[rows, y] -= 1.0
    return value, p


def _textbook_bce(z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    value = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return value, 1.0 / (1.0 + np.exp(-z)) - t


def _torch_peers(z: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, dict[str, Fn]]:
    if importlib.util.find_spec("torch") is None:
        return {"softmax": {}, "sigmoid": {}}
    import torch
    import torch.nn.functional as F

    zt, yt, tt = torch.from_numpy(z), torch.from_numpy(y), torch.from_numpy(t)

    def ce() -> Any:
        x = zt.detach().requires_grad_()
        loss = F.cross_entropy(x, yt, reduction="sum")
        loss.backward()
        return loss, x.grad

    def bce() -> Any:
        x = zt.detach().requires_grad_()
        loss = F.binary_cross_entropy_with_logits(x, tt, reduction="sum")
        loss.backward()
        return loss, x.grad

    return {"softmax": {"torch": ce}, "sigmoid": {"torch": bce}}


def _jax_peers(z: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, dict[str, Fn]]:
    if importlib.util.find_spec("jax") is None:
        return {"softmax": {}, "sigmoid": {}}
    import jax
    import jax.numpy as jnp

    if z.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)

    @jax.jit
    def ce(a: Any, lab: Any) -> Any:
        def total(b: Any) -> Any:
            logp = jax.nn.log_softmax(b, axis=1)
            return -jnp.sum(jnp.take_along_axis(logp, lab[:, None], axis=1))

        return jax.value_and_grad(total)(a)

    @jax.jit
    def bce(a: Any, tg: Any) -> Any:
        def total(b: Any) -> Any:
            return -jnp.sum(tg * jax.nn.log_sigmoid(b) + (1 - tg) * jax.nn.log_sigmoid(-b))

        return jax.value_and_grad(total)(a)

    zj, yj, tj = jnp.asarray(z), jnp.asarray(y), jnp.asarray(t)
    return {
        "softmax": {"jax": lambda: jax.block_until_ready(ce(zj, yj))},
        "sigmoid": {"jax": lambda: jax.block_until_ready(bce(zj, tj))},
    }


def _contenders(
    loss: str, z: np.ndarray, y: np.ndarray, t: np.ndarray
) -> tuple[Fn, Fn, dict[str, Fn]]:
    """sigmax with precision="accurate", with precision="fast", and the NumPy peer."""
    if loss == "softmax":
        return (
            lambda: sigmax.softmax_cross_entropy_value_and_grad(z, y),
            lambda: sigmax.softmax_cross_entropy_value_and_grad(z, y, precision="fast"),
            {"numpy": lambda: _textbook_softmax_ce(z, y)},
        )
    return (
        lambda: sigmax.sigmoid_cross_entropy_value_and_grad(z, t),
        lambda: sigmax.sigmoid_cross_entropy_value_and_grad(z, t, precision="fast"),
        {"numpy": lambda: _textbook_bce(z, t)},
    )


def run(shapes: list[tuple[int, int]], dtypes: list[str], repeat: int) -> list[list[str]]:
    rows: list[list[str]] = []
    rng = np.random.default_rng(0)
    for n, k in shapes:
        for dtype in dtypes:
            z = (rng.standard_normal((n, k)) * 3).astype(dtype)
            y = rng.integers(0, k, n)
            t = (rng.uniform(size=(n, k)) < 0.3).astype(dtype)
            torch_fns = _torch_peers(z, y, t)
            jax_fns = _jax_peers(z, y, t)
            for loss in ("softmax", "sigmoid"):
                ours, ours_fast, peers = _contenders(loss, z, y, t)
                peers.update(torch_fns[loss])
                peers.update(jax_fns[loss])
                t_ours = harness.time_call(ours, repeat=repeat)
                t_fast = harness.time_call(ours_fast, repeat=repeat)
                times = {name: harness.time_call(fn, repeat=repeat) for name, fn in peers.items()}
                best = min(times, key=lambda name: times[name])
                cols = [
                    harness.fmt_seconds(times.get(p, math.nan)) for p in ("numpy", "torch", "jax")
                ]
                rows.append(
                    [
                        "softmax CE" if loss == "softmax" else "BCE",
                        f"({n:_}, {k:_})",
                        dtype,
                        harness.fmt_seconds(t_ours),
                        harness.fmt_seconds(t_fast),
                        *cols,
                        f"{t_ours / times[best]:.2f} ({best})",
                        f"{t_fast / times[best]:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    return rows


def accuracy() -> list[list[str]]:
    """Max ULP error vs mpmath on the cases of ``tests/test_losses.py``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import test_losses as tl

    rows = []
    for dtype in (np.float16, np.float32, np.float64):
        z, t = tl._bce_cases(dtype)
        got = sigmax.sigmoid_cross_entropy(z, t)
        ref = [tl.mp_bce(float(a), float(b)) for a, b in zip(z, t, strict=True)]
        bce = tl.ulp_errors(got, ref, dtype).max()
        zz = tl._softmax_rows(dtype, np.random.default_rng(20261127))
        nl = [tl.mp_nlogp(r) for r in zz]
        worst = 0.0
        for labels in (np.argmax(zz, axis=1), np.argmin(zz, axis=1)):
            got = sigmax.softmax_cross_entropy(zz, labels)
            ref = [nl[i][labels[i]] for i in range(len(zz))]
            worst = max(worst, tl.ulp_errors(got, ref, dtype).max())
        rows.append([np.dtype(dtype).name, f"{bce:.3f}", f"{worst:.3f}", f"{tl.BOUND[dtype]:g}"])
    return rows


HEAD_SHAPES = [(1_797, 10), (20_000, 10), (200_000, 10), (10_000, 1_000)]


def heads(repeat: int) -> list[list[str]]:
    """Per-call cost of a head's ``loss_and_grad`` (the solver's inner loop, float64) against
    scikit-learn's Cython ``HalfMultinomialLoss`` / ``HalfBinomialLoss.loss_gradient``."""
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss

    rng = np.random.default_rng(0)
    rows = []
    for n, k in HEAD_SHAPES:
        z = rng.standard_normal((n, k)) * 3
        y = rng.integers(0, k, n)
        sw = rng.uniform(0.5, 2.0, n)
        z1, t1 = z[:, 0].copy(), (y % 2).astype(np.float64)
        cases = [
            ("SoftmaxHead", f"({n:_}, {k:_})", sigmax.SoftmaxHead(), z, y),
            ("SigmoidHead (binary)", f"({n:_},)", sigmax.SigmoidHead(), z1, t1),
        ]
        refs = [
            partial(HalfMultinomialLoss(n_classes=k).loss_gradient, y.astype(float), z),
            partial(HalfBinomialLoss().loss_gradient, t1, z1),
        ]
        for (name, shape, head, logits, target), ref in zip(cases, refs, strict=True):
            t_head = harness.time_call(
                partial(head.loss_and_grad, logits, target, sw), repeat=repeat
            )
            t_trust = harness.time_call(
                partial(head.loss_and_grad, logits, target, sw, check_input=False),
                repeat=repeat,
            )
            t_ref = harness.time_call(partial(ref, sample_weight=sw), repeat=repeat)
            rows.append(
                [
                    name,
                    shape,
                    harness.fmt_seconds(t_head),
                    harness.fmt_seconds(t_trust),
                    harness.fmt_seconds(t_ref),
                    f"{t_trust / t_ref:.2f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    return rows


HEAD_HEADERS = [
    "head",
    "logits",
    "sigmax",
    "sigmax, check_input=False",
    "sklearn _loss",
    "trusted / sklearn",
]

HEADERS = [
    "loss",
    "shape",
    "dtype",
    "sigmax",
    "sigmax fast",
    "numpy",
    "torch",
    "jax",
    "sigmax / fastest peer",
    "fast / fastest peer",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--accuracy", action="store_true", help="print max ULP vs mpmath")
    parser.add_argument(
        "--heads",
        action="store_true",
        help="per-call cost of the heads' loss_and_grad against scikit-learn's _loss",
    )
    args = parser.parse_args(argv)
    if args.accuracy:
        harness.print_table(accuracy(), ["dtype", "BCE max ULP", "softmax CE max ULP", "bound"])
        return 0
    if args.heads:
        print(f"{harness.machine()}; sigmax threads: {_n_threads()}\n", flush=True)
        harness.print_table(heads(args.repeat), HEAD_HEADERS)
        return 0
    threads = _n_threads()
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)
    print(f"{harness.machine()}; sigmax and torch threads: {threads}\n", flush=True)
    rows = run(QUICK_SHAPES if args.quick else SHAPES, args.dtypes, args.repeat)
    print()
    harness.print_table(rows, HEADERS)
    if args.markdown is not None:
        cmd = "python benchmarks/bench_losses.py " + " ".join(argv or sys.argv[1:])
        lines = [
            "# Fused losses: value + gradient against peers",
            "",
            f"Command: `{cmd.strip()}`",
            "",
            f"Machine: {harness.machine()}; sigmax and torch threads: {threads}.",
            "Medians of the runs; the last column is sigmax / fastest peer (lower is better).",
            *(
                ["JAX is not installed here, so its column is empty."]
                if importlib.util.find_spec("jax") is None
                else []
            ),
            "",
            "| " + " | ".join(HEADERS) + " |",
            "|" + "|".join("---" for _ in HEADERS) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
            "",
        ]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
