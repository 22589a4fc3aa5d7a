"""Accuracy of the function core against mpmath, in ULPs of the output dtype.

Bounds (stated in the docstrings of ``sigmax.functions``): <= 1 ULP for float16 and float32,
<= 3 ULP for float64, for all five functions, on every case of ``tests/_mpref.py``.
``benchmarks/accuracy_table.py`` prints the measured maxima. Every test runs on the pure-NumPy
path and on the optional fused numba kernels (the `backend` fixture).
"""

from __future__ import annotations

import zlib

import mpmath
import numpy as np
import pytest

import sigmax
from _mpref import (
    BOUND,
    DTYPES,
    FUNCTIONS,
    max_ulp,
    measure,
    near_zero_logsumexp_errors,
    ref_log_softmax,
    ref_sigmoid,
    ref_softmax,
    ulp_errors,
)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_max_ulp_bound(name: str, dtype: type, backend: str) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{name}-{np.dtype(dtype).name}".encode()))
    failures = [
        f"{case}: {err:.3g} ULP at {worst.tolist()[:6]}"
        for case, err, worst in measure(name, dtype, rng)
        if not err <= BOUND[dtype]
    ]
    assert not failures, f"{name} {np.dtype(dtype).name} > {BOUND[dtype]} ULP: {failures}"


# --------------------------------------------------------------------------------------------
# Named values from the issue: subnormal results come back as the correctly rounded subnormal
# --------------------------------------------------------------------------------------------


def test_sigmoid_subnormal_float64(backend: str) -> None:
    got = sigmax.sigmoid(np.float64(-720.0))
    assert float(got) == pytest.approx(2.0322308e-313, rel=1e-7)
    assert max_ulp(np.array([got]), ref_sigmoid(np.array([-720.0])), np.float64) <= 0.5


def test_log_softmax_keeps_tiny_log_probability(backend: str) -> None:
    for dtype in (np.float32, np.float64):
        x = np.array([0.0, -100.0], dtype=dtype)
        got = sigmax.log_softmax(x)
        assert got[0] < 0, "log(1 + S) would give 0"
        assert max_ulp(got, ref_log_softmax(x.astype(np.float64)), dtype) <= BOUND[dtype]
    assert float(sigmax.log_softmax(np.array([0.0, -100.0]))[0]) == pytest.approx(-3.72e-44, 1e-3)
    # -3.72e-44 is subnormal in float32: the correctly rounded subnormal, not 0.
    assert sigmax.log_softmax(np.array([0.0, -100.0], np.float32))[0] == np.float32(-3.72e-44)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_subnormal_probabilities_are_not_flushed(dtype: type, backend: str) -> None:
    fi = np.finfo(dtype)
    # exp(-gap) lies half way (in log) through the subnormal range of the dtype.
    gap = -np.log(float(fi.smallest_subnormal)) - 0.5 * np.log(2.0**fi.nmant)
    x = np.array([0.0, -gap, -gap - 1.0], dtype=dtype)
    got = sigmax.softmax(x)
    assert np.all(got[1:] > 0)
    assert np.all(got[1:] < fi.tiny)
    assert max_ulp(got, ref_softmax(x.astype(np.float64)), dtype) <= BOUND[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_of_large_negative_is_exact_where_1_minus_sigmoid_cancels(
    dtype: type, backend: str
) -> None:
    # sigmoid(-x) = 1 - sigmoid(x) would be exactly 0 here; the right answer is ~exp(-x).
    x = np.linspace(1.0, -np.log(float(np.finfo(dtype).eps)) + 5, 50).astype(dtype)
    got = sigmax.sigmoid(-x)
    assert np.all(got > 0)
    assert max_ulp(got, ref_sigmoid(-x.astype(np.float64)), dtype) <= BOUND[dtype]


# --------------------------------------------------------------------------------------------
# logsumexp in float64 where the result is near 0
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    np.finfo(np.longdouble).nmant <= 52, reason="the refinement needs an extended long double"
)
def test_logsumexp_float64_near_zero(backend: str) -> None:
    """Documented bound (``sigmax.functions``, note [1]): <= 3 ULP while
    ``|r| >= 2**-10 * max(|m|, log1p(rest))``, and below that (where the result cancels
    beyond what ``np.longdouble`` recovers) an absolute error of at most 4 ulp of
    ``max(|m|, log1p(rest))``. A log-probability row such as ``log(dirichlet(...))`` sums to 1
    up to rounding, so its logsumexp is ~1e-17 and only the absolute bound applies."""
    rel, absolute = near_zero_logsumexp_errors(sigmax.logsumexp, np.random.default_rng(11))
    assert rel <= 3.0
    assert absolute <= 4.0


def test_logsumexp_float64_near_zero_without_longdouble(backend: str) -> None:
    """Off NumPy there is no refinement: the absolute bound still holds."""
    torch = pytest.importorskip("torch")

    def lse(x: np.ndarray) -> np.ndarray:
        return sigmax.logsumexp(torch.asarray(x)).numpy()

    _, absolute = near_zero_logsumexp_errors(lse, np.random.default_rng(12), n=200)
    assert absolute <= 4.0


def test_ulp_measure_itself() -> None:
    f32 = np.float32
    one = [mpmath.mpf(1)]
    assert ulp_errors(np.array([1.0]), one, f32)[0] == 0
    assert ulp_errors(np.array([np.nextafter(f32(1), f32(2))]), one, f32)[0] == pytest.approx(1)
    tiny = float(np.finfo(f32).smallest_subnormal)
    assert ulp_errors(np.array([2 * tiny]), [mpmath.mpf(tiny)], f32)[0] == 1
    assert ulp_errors(np.array([0.0]), [mpmath.mpf(tiny)], f32)[0] == 1
    assert ulp_errors(np.array([tiny]), [mpmath.mpf(0)], f32)[0] == np.inf
    assert ulp_errors(np.array([np.inf]), [mpmath.mpf(1e39)], f32)[0] == 0


def test_float64_block_of_short_rows(backend: str) -> None:
    """Rows of 31 summed transposed as a block: row 32 of this block was 3.7 ULP off in
    log_softmax (NumPy adds the leading axis one row after another), while alone it was
    exact. A regression test for the compensated column sums."""
    x = np.random.default_rng(0).standard_normal((40, 31)) * 10
    for fn, ref in ((sigmax.log_softmax, ref_log_softmax), (sigmax.softmax, ref_softmax)):
        got = np.asarray(fn(x))
        err = max(max_ulp(got[i], ref(x[i]), np.float64) for i in range(len(x)))
        assert err <= BOUND[np.float64], (fn.__name__, err)


def test_float64_log_softmax_rows_where_the_sum_decides(backend: str) -> None:
    """Rows of 31 N(0, 100) logits on which the row kernel's chunked sum once left
    log_softmax at 3.1 and 3.4 ULP (chunks of 32 summed with reassociation)."""
    rows = [
        np.random.default_rng(100).standard_normal((400, 31))[231] * 10,
        np.random.default_rng(101).standard_normal((400, 31))[19] * 10,
    ]
    x = np.stack(rows)
    for got in (sigmax.log_softmax(x), np.stack([sigmax.log_softmax(r) for r in rows])):
        err = max(max_ulp(got[i], ref_log_softmax(rows[i]), np.float64) for i in range(2))
        assert err <= BOUND[np.float64], err
