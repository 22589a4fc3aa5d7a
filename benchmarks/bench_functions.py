"""Speed of the function core against its peers, in one process.

Ops: softmax, log_softmax, logsumexp, the softmax VJP (from the saved output and from the
logits), the log_softmax VJP (from the logits), sigmoid and the sigmoid VJP (from the saved
output, and from the logits). Peers: textbook NumPy, ``scipy.special`` and PyTorch CPU with
``torch.set_num_threads(os.cpu_count())``. The floor, "copy", is a copy of the same array in the
same calling convention: ``np.copyto(o, x)`` for ``out=`` calls, ``x.copy()`` for allocating
ones (a fresh array's first writes fault its pages in, which ``np.copyto`` into a reused array
never pays). ``sigmax`` uses the fused numba kernels when numba is installed (sigmoid, softmax
and log_softmax on rows longer than 64, the VJPs) and ``no numba`` is the pure-NumPy path of
the same call (``SIGMAX_DISABLE_NUMBA=1``). Each op
is timed in two calling conventions, compared only with each other:
allocating (a new result per call) and ``out=`` (into a preallocated array).

Usage::

    python benchmarks/bench_functions.py            # the shapes of issue 2 (a few minutes)
    python benchmarks/bench_functions.py --quick    # 100x fewer rows, for development
    python benchmarks/bench_functions.py --ops softmax sigmoid --dtypes float32
    python benchmarks/bench_functions.py --threads 1     # one thread each, sigmax and torch

Every number is the median of ``--repeat`` runs after one warmup; the ratio columns are
sigmax / fastest peer and sigmax / copy (lower is better).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import sigmax

SHAPES = [(1_000_000, 10), (10_000, 1_000), (2_000, 50_000), (1, 10), (100_000, 100)]
#: The issue's shapes; (1, 10), one sample, times the fixed cost of a call (`--shapes 3`),
#: and (100_000, 100) a hundred classes, between the short-row and row kernels (`--shapes 4`).
DEFAULT_SHAPES = SHAPES[:3]
OPS = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp_from_output",
    "softmax_vjp",
    "log_softmax_vjp",
    "sigmoid",
    "sigmoid_vjp",
    "sigmoid_vjp_from_logits",
]

Fn = Callable[[], Any]


def _optional(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


special = _optional("scipy.special")
torch = _optional("torch")
derivatives = _optional("sigmax.derivatives")


def _sigmax(name: str) -> Any:
    return getattr(sigmax, name, None) or getattr(derivatives, name, None)


def _no_numba(fn: Fn | None) -> Fn | None:
    """`fn` on the pure-NumPy path (sigmax.derivatives reads the variable on every call)."""
    if fn is None:
        return None

    def call() -> Any:
        os.environ["SIGMAX_DISABLE_NUMBA"] = "1"
        try:
            return fn()
        finally:
            os.environ.pop("SIGMAX_DISABLE_NUMBA")

    return call


# Textbook NumPy: what a user writes without a library.
def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def np_softmax_vjp_from_output(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    return s * (g - (g * s).sum(axis=-1, keepdims=True))


def np_log_softmax_vjp(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g - np_softmax(x) * g.sum(axis=-1, keepdims=True)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_sigmoid_vjp_from_output(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g * s * (1.0 - s)


def np_sigmoid_vjp(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np_sigmoid_vjp_from_output(np_sigmoid(x), g)


def candidates(
    op: str, x: np.ndarray, g: np.ndarray, s: np.ndarray, sg: np.ndarray, o: np.ndarray
) -> dict[str, tuple[Fn | None, Fn | None]]:
    """name -> (allocating call, out= call); None where a convention is not offered."""
    c: dict[str, tuple[Fn | None, Fn | None]] = {}
    tx: Any = None
    tg = ts = tsg = to = tx
    if torch is not None:
        tx, tg, ts, tsg, to = (torch.from_numpy(a) for a in (x, g, s, sg, o))
    if op == "softmax":
        c["sigmax"] = (lambda: sigmax.softmax(x), lambda: sigmax.softmax(x, out=o))
        c["fast"] = (
            lambda: sigmax.softmax(x, precision="fast"),
            lambda: sigmax.softmax(x, out=o, precision="fast"),
        )
        c["no numba"] = (_no_numba(c["sigmax"][0]), _no_numba(c["sigmax"][1]))
        c["numpy"] = (lambda: np_softmax(x), None)
        if special is not None:
            c["scipy"] = (lambda: special.softmax(x, axis=-1), None)
        if torch is not None:
            c["torch"] = (lambda: torch.softmax(tx, -1), lambda: torch.softmax(tx, -1, out=to))
    elif op == "log_softmax":
        c["sigmax"] = (lambda: sigmax.log_softmax(x), lambda: sigmax.log_softmax(x, out=o))
        c["fast"] = (
            lambda: sigmax.log_softmax(x, precision="fast"),
            lambda: sigmax.log_softmax(x, out=o, precision="fast"),
        )
        c["no numba"] = (_no_numba(c["sigmax"][0]), _no_numba(c["sigmax"][1]))
        c["numpy"] = (lambda: np_log_softmax(x), None)
        if special is not None:
            c["scipy"] = (lambda: special.log_softmax(x, axis=-1), None)
        if torch is not None:
            c["torch"] = (
                lambda: torch.log_softmax(tx, -1),
                lambda: torch.log_softmax(tx, -1, out=to),
            )
    elif op == "logsumexp":
        # A reduction: allocating only (sigmax has no `out=` for it).
        c["sigmax"] = (lambda: sigmax.logsumexp(x), None)
        c["no numba"] = (_no_numba(c["sigmax"][0]), None)
        c["numpy"] = (lambda: np_logsumexp(x), None)
        if special is not None:
            c["scipy"] = (lambda: special.logsumexp(x, axis=-1), None)
        if torch is not None:
            c["torch"] = (lambda: torch.logsumexp(tx, -1), None)
    elif op == "softmax_vjp_from_output":
        _derivative(c, "softmax_vjp_from_output", s, g, o)
        c["numpy"] = (lambda: np_softmax_vjp_from_output(s, g), None)
        if torch is not None:
            # The kernel autograd runs for softmax's backward.
            c["torch"] = (lambda: torch._softmax_backward_data(tg, ts, -1, ts.dtype), None)
    elif op == "softmax_vjp":
        _derivative(c, "softmax_vjp", x, g, o)
        c["numpy"] = (lambda: np_softmax_vjp_from_output(np_softmax(x), g), None)
        if torch is not None:
            c["torch"] = (
                lambda: torch._softmax_backward_data(tg, torch.softmax(tx, -1), -1, tx.dtype),
                None,
            )
    elif op == "log_softmax_vjp":
        _derivative(c, "log_softmax_vjp", x, g, o)
        c["numpy"] = (lambda: np_log_softmax_vjp(x, g), None)
        if torch is not None:
            c["torch"] = (
                lambda: torch._log_softmax_backward_data(
                    tg, torch.log_softmax(tx, -1), -1, tx.dtype
                ),
                None,
            )
    elif op == "sigmoid":
        c["sigmax"] = (lambda: sigmax.sigmoid(x), lambda: sigmax.sigmoid(x, out=o))
        if x.dtype == np.float32:
            c["fast"] = (
                lambda: sigmax.sigmoid(x, precision="fast"),
                lambda: sigmax.sigmoid(x, out=o, precision="fast"),
            )
        c["no numba"] = (_no_numba(c["sigmax"][0]), _no_numba(c["sigmax"][1]))
        c["numpy"] = (lambda: np_sigmoid(x), None)
        if special is not None:
            c["scipy"] = (lambda: special.expit(x), lambda: special.expit(x, out=o))
        if torch is not None:
            c["torch"] = (lambda: torch.sigmoid(tx), lambda: torch.sigmoid(tx, out=to))
    elif op == "sigmoid_vjp":
        _derivative(c, "sigmoid_vjp_from_output", sg, g, o)
        c["numpy"] = (lambda: np_sigmoid_vjp_from_output(sg, g), None)
        if torch is not None:
            aten = torch.ops.aten.sigmoid_backward
            c["torch"] = (
                lambda: aten(tg, tsg),
                lambda: aten.grad_input(tg, tsg, grad_input=to),
            )
    elif op == "sigmoid_vjp_from_logits":
        _derivative(c, "sigmoid_vjp", x, g, o)
        c["numpy"] = (lambda: np_sigmoid_vjp(x, g), None)
        if torch is not None:
            # torch has no backward from the logits: its forward, then its backward.
            c["torch"] = (lambda: torch.ops.aten.sigmoid_backward(tg, torch.sigmoid(tx)), None)
    return c


def _derivative(
    c: dict[str, tuple[Fn | None, Fn | None]],
    name: str,
    a: np.ndarray,
    g: np.ndarray,
    o: np.ndarray,
) -> None:
    """sigmax's derivative `name` of (`a`, `g`) into `c`, on both paths, and with
    ``precision="fast"`` where it takes that option."""
    f = _sigmax(name)
    if f is not None:
        c["sigmax"] = (lambda: f(a, g), _with_out(f, a, g, o))
        c["no numba"] = (_no_numba(c["sigmax"][0]), _no_numba(c["sigmax"][1]))
        if "precision" in inspect.signature(f).parameters:
            c["fast"] = (
                lambda: f(a, g, precision="fast"),
                _with_out(functools.partial(f, precision="fast"), a, g, o),
            )


def _with_out(f: Any, a: np.ndarray, b: np.ndarray, o: np.ndarray) -> Fn | None:
    try:
        f(a[:2], b[:2], out=o[:2])
    except TypeError:
        return None
    return lambda: f(a, b, out=o)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a == a and b == b else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100x fewer rows")
    p.add_argument("--ops", nargs="+", default=OPS, choices=OPS)
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--shapes", nargs="+", type=int, default=None, help="indices into SHAPES")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for sigmax (SIGMAX_NUM_THREADS) and torch; default: the CPUs this "
        "process may use",
    )
    args = p.parse_args(argv)

    # os.cpu_count() ignores taskset; the CPUs this process may use are what threads get.
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.threads or threads or 1
    if args.threads:
        os.environ["SIGMAX_NUM_THREADS"] = str(args.threads)
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"# machine: {harness.machine()}")
    print(
        f"# torch {getattr(torch, '__version__', 'absent')} with set_num_threads({threads}) "
        f"(the CPUs this process may use); "
        f"sigmax threads: {os.environ.get('SIGMAX_NUM_THREADS', 'default')}; "
        f"NumPy and SciPy single-threaded ufuncs"
    )
    print(f"# median of {args.repeat} runs after 1 warmup; ratios: lower is better\n")
    shapes = [SHAPES[i] for i in args.shapes] if args.shapes else DEFAULT_SHAPES
    rng = np.random.default_rng(0)
    headers = ["op", "shape", "dtype", "call", "sigmax", "fast", "no numba", "numpy", "scipy"]
    headers += ["torch"]
    headers += ["copy", "sigmax/best peer", "sigmax/copy", "fast/best peer", "fast/copy"]
    rows: list[list[str]] = []
    for shape in shapes:
        if args.quick:
            shape = (max(1, shape[0] // 100), shape[1])
        for dname in args.dtypes:
            dt = np.dtype(dname)
            x = (3.0 * rng.standard_normal(shape)).astype(dt)
            g = rng.standard_normal(shape).astype(dt)
            s = np.asarray(sigmax.softmax(x))
            sg = np.asarray(sigmax.sigmoid(x))
            o = np.empty_like(x)
            # Tiny arrays: many calls per timed run, so that the timer's resolution is moot.
            number = 1 if x.size >= 10_000 else 2_000
            copies = {
                "alloc": harness.time_call(x.copy, repeat=args.repeat, number=number),
                "out=": harness.time_call(
                    lambda: np.copyto(o, x),  # noqa: B023
                    repeat=args.repeat,
                    number=number,
                ),
            }
            for op in args.ops:
                cands = candidates(op, x, g, s, sg, o)
                for conv, idx in (("alloc", 0), ("out=", 1)):
                    copy = copies[conv]
                    times: dict[str, float] = {}
                    for name in ("sigmax", "fast", "no numba", "numpy", "scipy", "torch"):
                        fn = cands.get(name, (None, None))[idx]
                        times[name] = (
                            harness.time_call(fn, repeat=args.repeat, number=number)
                            if fn
                            else float("nan")
                        )
                    ours_ = ("sigmax", "fast", "no numba")
                    peers = [v for k, v in times.items() if k not in ours_ and v == v]
                    if not peers and conv == "out=" and times["sigmax"] != times["sigmax"]:
                        continue
                    best = min(peers) if peers else float("nan")
                    ours, fast = times["sigmax"], times["fast"]
                    rows.append(
                        [
                            op,
                            "x".join(map(str, shape)),
                            dname,
                            conv,
                            *(harness.fmt_seconds(times[n]) for n in times),
                            harness.fmt_seconds(copy),
                            _ratio(ours, best),
                            _ratio(ours, copy),
                            _ratio(fast, best),
                            _ratio(fast, copy),
                        ]
                    )
                    print("  " + " | ".join(rows[-1]), flush=True)
    print()
    harness.print_table(rows, headers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
