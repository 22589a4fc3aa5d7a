"""Print the measured accuracy of the function core: max ULP per function and dtype.

The cases and the ULP measure are those of ``tests/test_accuracy.py`` (``tests/_mpref.py``):
mpmath references at 80 digits from the exactly rounded inputs, ULPs of the output dtype with
subnormals measured in the subnormal spacing.

    .venv/bin/python benchmarks/accuracy_table.py            # the table
    .venv/bin/python benchmarks/accuracy_table.py --cases    # and the worst case of each cell
    .venv/bin/python benchmarks/accuracy_table.py --backend numpy   # without the numba kernels
    .venv/bin/python benchmarks/accuracy_table.py --backend fused   # numba kernels, every row
    .venv/bin/python benchmarks/accuracy_table.py --backend short   # short-row softmax kernel
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _mpref import BOUND, DTYPES, FUNCTIONS, measure, near_zero_logsumexp_errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", action="store_true", help="print the worst case per cell")
    parser.add_argument(
        "--backend",
        choices=["default", "numpy", "fused", "short"],
        default="default",
        help="numpy: pure NumPy path; fused: the numba kernels on slices of every length "
        "(by default they take slices longer than 64 entries when numba is installed); "
        "short: every softmax slice on the short-row kernel (by default 2 to 64 entries)",
    )
    args = parser.parse_args(argv)
    if args.backend == "numpy":
        os.environ["SIGMAX_DISABLE_NUMBA"] = "1"
    elif args.backend in ("fused", "short"):
        from sigmax import functions

        os.environ["SIGMAX_DISABLE_NUMBA"] = "0"
        functions.FUSED_MIN_K = 0 if args.backend == "fused" else 1 << 62
    names = [np.dtype(d).name for d in DTYPES]
    print(
        f"sigmax accuracy vs mpmath, max ULP (numpy {np.__version__}, {platform.machine()}, "
        f"backend {args.backend})\n"
    )
    print(f"| {'function':<12} | " + " | ".join(f"{n:>8}" for n in names) + " |")
    print(f"|{'-' * 14}|" + "|".join("-" * 10 for _ in names) + "|")
    worst_cases = []
    ok = True
    for name in FUNCTIONS:
        cells = []
        for dtype in DTYPES:
            rng = np.random.default_rng(zlib.crc32(f"{name}-{np.dtype(dtype).name}".encode()))
            results = list(measure(name, dtype, rng))
            case, err, x = max(results, key=lambda r: r[1])
            ok &= err <= BOUND[dtype]
            cells.append(f"{err:>8.3f}")
            worst_cases.append((name, np.dtype(dtype).name, case, err, x))
        print(f"| {name:<12} | " + " | ".join(cells) + " |")
    bounds = ", ".join(f"{np.dtype(d).name} <= {BOUND[d]:g}" for d in DTYPES)
    print(f"\nbounds: {bounds} ULP: {'all met' if ok else 'NOT MET'}")
    import sigmax

    rel, absolute = near_zero_logsumexp_errors(sigmax.logsumexp, np.random.default_rng(11))
    print(
        f"logsumexp float64 where it cancels (400 rows, m < 0): {rel:.3f} ULP while "
        f"|r| >= 2**-10 max(|m|, log1p(rest)); absolute {absolute:.3f} ulp(max(|m|, log1p(rest)))"
    )
    if args.cases:
        print()
        for name, dt, case, err, x in worst_cases:
            print(f"{name:<12} {dt:<8} {err:7.3f} ULP  {case}: {np.array2string(x[:4])}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
