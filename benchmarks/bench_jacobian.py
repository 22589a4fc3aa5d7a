"""The seed's einsum-tensor softmax backprop against the closed-form VJP.

The seed builds the ``(n, k, k)`` Jacobian ``J = diag(p) - p p^T`` with einsum and contracts it
with the upstream gradient; ``sigmax.softmax_vjp_from_output`` computes ``p * (g - sum(g * p))``
in O(n k). Both are timed (median) and their peak NumPy memory is read with tracemalloc.

Usage::

    python benchmarks/bench_jacobian.py          # (1000, 100) and (200, 1000)
    python benchmarks/bench_jacobian.py --quick  # smaller, for development
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import sigmax


def seed_backprop(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The seed's version: the explicit Jacobian per row, then a batched contraction."""
    jac = np.einsum("ij,jk->ijk", p, np.eye(p.shape[1])) - np.einsum("ij,ik->ijk", p, p)
    return np.einsum("ijk,ik->ij", jac, g)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    vjp = getattr(sigmax, "softmax_vjp_from_output", None)
    vjp_x = getattr(sigmax, "softmax_vjp", None)
    if vjp is None or vjp_x is None:
        print("sigmax.softmax_vjp(_from_output) not available yet; nothing to compare")
        return 0
    print(f"# machine: {harness.machine()}")
    print(f"# median of {args.repeat} runs after 1 warmup; peak = tracemalloc peak of one call\n")
    shapes = [(100, 100), (20, 1000)] if args.quick else [(1000, 100), (200, 1000)]
    rng = np.random.default_rng(0)
    rows = []
    for n, k in shapes:
        x = 3.0 * rng.standard_normal((n, k))
        g = rng.standard_normal((n, k))
        p = np.asarray(sigmax.softmax(x))
        ref = seed_backprop(p, g)
        got = np.asarray(vjp(p, g))
        # Agreement check so the timing compares like with like.
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-15)
        cases = {
            "seed einsum (n,k,k)": lambda: seed_backprop(p, g),  # noqa: B023
            "softmax_vjp_from_output": lambda: vjp(p, g),  # noqa: B023
            "softmax_vjp (from x)": lambda: vjp_x(x, g),  # noqa: B023
        }
        t = {name: harness.time_call(f, repeat=args.repeat) for name, f in cases.items()}
        m = {name: harness.peak_bytes(f) for name, f in cases.items()}
        base_t, base_m = t["seed einsum (n,k,k)"], m["seed einsum (n,k,k)"]
        for name in cases:
            rows.append(
                [
                    f"({n}, {k})",
                    name,
                    harness.fmt_seconds(t[name]),
                    harness.fmt_bytes(m[name]),
                    f"{base_t / t[name]:.0f}x" if name != "seed einsum (n,k,k)" else "1x",
                    f"{base_m / max(m[name], 1):.0f}x" if name != "seed einsum (n,k,k)" else "1x",
                ]
            )
    harness.print_table(
        rows, ["shape", "method", "time", "peak memory", "speedup vs seed", "memory saving"]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
