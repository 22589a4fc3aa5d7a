"""The optional fused forward kernels (:mod:`sigmax._numba_forward`).

Their end results are held to the same mpmath bounds as the NumPy path in
``test_accuracy.py`` and ``test_precision_fast.py`` (the `backend` fixture). Here: their own
``exp`` against mpmath over its whole domain, including the subnormal range, and the block
logic (chunk boundaries, temperature, rows that must fall back to the NumPy path).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sigmax
from _mpref import ref_log_softmax, ulp_errors
from sigmax import _numba_kernels, functions

numba = pytest.importorskip("numba")
if _numba_kernels.numba is None:  # pragma: no cover
    pytest.skip("numba is not installed", allow_module_level=True)

from sigmax import _numba_forward as F  # noqa: E402
from sigmax import _numba_short as S  # noqa: E402


@numba.njit
def _apply(f, x, out):  # type: ignore[no-untyped-def]
    for i in range(x.shape[0]):
        out[i] = f(x[i])


@numba.njit
def _exp64(t):  # type: ignore[no-untyped-def]
    return F._exp_tail(t, 0.0)


def _exp_args(dtype: type, n: int = 4000) -> np.ndarray:
    """Arguments t <= 0 across the domain: near 0, moderate, and down to underflow."""
    rng = np.random.default_rng(7)
    lo = float(np.log(np.finfo(dtype).smallest_subnormal)) - 1.0
    t = np.concatenate(
        [-rng.uniform(0, 1e-6, 100), -rng.uniform(0, 2, n), rng.uniform(lo, 0, n), [0.0, lo]]
    )
    return t.astype(dtype)


def _rel_err(got: np.ndarray, t: np.ndarray, dtype: type) -> np.ndarray:
    """|got - exp(t)| in ULPs of `dtype` (mpmath reference at 40 digits)."""
    ref = np.array([float(mpmath.exp(mpmath.mpf(float(v)))) for v in t.tolist()])
    tiny = float(np.finfo(dtype).smallest_subnormal)
    spacing = np.spacing(np.maximum(ref, tiny).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


@numba.njit
def _rowmax_each(x, out):  # type: ignore[no-untyped-def]
    for i in range(x.shape[0]):
        out[i] = F._rowmax(x[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rowmax_as_an_integer_max(dtype: type) -> None:
    """The row kernel's max (an integer max of the bits, sign-magnitude ordered) equals
    NumPy's on rows of every sign, zeros, subnormals, infinities and the extremes; a nan
    without its sign bit comes back as a nan (one with it may be passed over: the row's sum
    is nan either way, which the kernel checks)."""
    fi = np.finfo(dtype)
    rng = np.random.default_rng(5)
    special = [0.0, -0.0, fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny, -fi.tiny]
    special += [fi.max, -fi.max, np.inf, -np.inf, 1.0, -1.0]
    rows = [rng.standard_normal(k) * s for k in (1, 2, 7, 10, 16, 33, 100) for s in (1, 1e30)]
    rows += [-np.abs(r) for r in rows]  # all negative: the flipped magnitudes order
    rows += [rng.choice(special, size=k) for k in (1, 3, 17, 64) for _ in range(20)]
    for r in rows:
        x = np.asarray(r, dtype=dtype).reshape(1, -1)
        got = np.empty(1, dtype)
        _rowmax_each(x, got)
        want = x.max()
        assert got[0] == want, (x, got, want)
        if want == 0:  # -0.0 orders below +0.0 here; either is the max of a row of zeros
            assert np.signbit(got[0]) == np.all(np.signbit(x[x == 0]))
    x = np.array([[1.0, np.nan, 3.0]], dtype=dtype)
    got = np.empty(1, dtype)
    _rowmax_each(x, got)
    assert np.isnan(got[0])


def test_exp_float64_within_one_ulp() -> None:
    t = _exp_args(np.float64)
    out = np.empty_like(t)
    with mpmath.workdps(40):
        _apply(_exp64, t, out)
        err = _rel_err(out, t, np.float64)
    assert err.max() <= 1.0, (err.max(), t[err.argmax()])
    assert np.all(out[t > -745.0] > 0.0)  # subnormal results are kept, never flushed


def test_exp_for_float32_results_is_accurate_to_2_to_the_minus_30() -> None:
    t = _exp_args(np.float64)
    t = t[t > -700]  # the relative measure below is for normal float64 results
    out = np.empty_like(t)
    _apply(F._exp_tail_for32, t, out)
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.exp(mpmath.mpf(float(v)))) for v in t.tolist()])
    assert (np.abs(out - ref) / ref).max() < 2.0**-30


def test_exp_float32_arithmetic_within_two_ulp_and_no_false_zero() -> None:
    t = _exp_args(np.float32)
    out = np.empty_like(t)
    _apply(F._exp_tail_f32, t, out)
    with mpmath.workdps(40):
        err = _rel_err(out, t, np.float32)
    assert err.max() <= 2.0, (err.max(), t[err.argmax()])
    assert np.all(out[t > np.float32(-103.0)] > 0.0)


def _log1p_rest_args() -> np.ndarray:
    """rest >= 0: in [0, 63] (rows of up to 64 entries) across each reduction boundary
    2**k - 1, at both ends, and where 1 + rest is inexact in float64; then up to 1e300
    (the row kernels: long rows, and rows of huge logits at a low temperature)."""
    rng = np.random.default_rng(11)
    edges = np.array([2.0**k - 1 for k in [*range(1, 7), 20, 52, 53, 54, 100, 1000]])
    rest = np.concatenate(
        [
            [0.0, 5e-324, 1e-300, 1e-17, 0.5, 63.0, 1e300, 2.0**1022],
            rng.uniform(0, 1, 2000),
            rng.uniform(0, 63, 2000),
            np.exp(rng.uniform(np.log(63.0), np.log(1e300), 2000)),
            np.nextafter(edges, 0.0),
            edges,
            np.nextafter(edges, np.inf),
            1.0 + rng.uniform(0, 1, 500) * 2.0**-40,
            rng.uniform(1, 63, 500) + 2.0**-30,
        ]
    )
    return rest


def test_rows_log1p_is_accurate_to_2_to_the_minus_30() -> None:
    """The log1p of float32 results' rows (short rows and the row kernel), rest >= 0."""
    rest = _log1p_rest_args()
    out = np.empty_like(rest)
    _apply(F._log1p_rest, rest, out)
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.log1p(mpmath.mpf(float(v)))) for v in rest.tolist()])
    pos = ref > 0
    assert np.all(out[~pos] == 0.0)
    assert (np.abs(out[pos] - ref[pos]) / ref[pos]).max() < 2.0**-30


@numba.njit
def _log1p64(r, out):  # type: ignore[no-untyped-def]
    # _log1p_rest64 is inlined by numba: it has no Python entry point of its own.
    for i in range(r.shape[0]):
        out[i] = F._log1p_rest64(r[i])


def test_rows_log1p_float64_within_about_one_ulp() -> None:
    """The log1p of float64 results' rows, rest >= 0: the error of 1 + rest is carried
    (TwoSum), so it stays within 1.5 ULP of log1p(rest) (measured 1.0)."""
    rest = _log1p_rest_args()
    out = np.empty_like(rest)
    _log1p64(rest, out)
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.log1p(mpmath.mpf(float(v)))) for v in rest.tolist()])
    pos = ref > 0
    assert np.all(out[~pos] == 0.0)
    ulps = np.abs(out[pos] - ref[pos]) / np.spacing(ref[pos])
    assert ulps.max() <= 1.5, (ulps.max(), rest[pos][ulps.argmax()])


def test_short_log_softmax_where_one_plus_rest_rounds_to_two(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exp(-1.1e-16) is 1 - 2**-53 in float64, so rest rounds 1 + rest up to 2: the log1p
    must still be of rest itself (a regression: it once added ln 2 twice)."""
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
    x = np.array([[0.0, -1.1e-16]] * 3, dtype=np.float32)
    got = sigmax.log_softmax(x)
    np.testing.assert_allclose(got, -np.log(2.0), rtol=float(np.finfo(np.float32).eps))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("precision", ["accurate", "fast"])
@pytest.mark.parametrize("k", [2, 10, 64, 65, 257, 1000, 20_000])
@pytest.mark.parametrize("temperature", [1.0, 0.37])
def test_fused_matches_numpy_path(
    monkeypatch: pytest.MonkeyPatch, dtype: type, precision: str, k: int, temperature: float
) -> None:
    """Chunk boundaries (32 and 256 entries), long rows, short rows (the short-row softmax
    kernel, its sub-blocks, and one sub-block too wide for its window), temperature: the fused
    kernels and the NumPy path agree to within their two error bounds."""
    rng = np.random.default_rng(k)
    x = (rng.standard_normal((64 if k > 64 else 3000, k)) * 6).astype(dtype)
    x[::5, 1] += 60.0  # confident rows
    x[1::7] = x[1::7, :1]  # rows of equal logits (every entry a tied max)
    if k <= 64:
        x[2000:2010] *= 150.0  # a range beyond any window: that sub-block takes the row kernel
    results = {}
    for disable in ("1", "0"):
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", disable)
        results[disable] = [
            sigmax.softmax(x, temperature=temperature, precision=precision),
            sigmax.log_softmax(x, temperature=temperature, precision=precision),
        ]
        if precision == "accurate" and temperature == 1.0:
            results[disable].append(sigmax.logsumexp(x))
    # "fast" moves an entry by up to |x_i/t - max(x/t)| + 6 ULP on either path.
    gap = float(np.ptp(x.astype(np.float64) / temperature, axis=-1).max())
    tol = (4.0 if precision == "accurate" else 2 * (gap + 6)) * np.finfo(dtype).eps
    for ref, got in zip(results["1"], results["0"], strict=True):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=tol, atol=np.finfo(dtype).tiny)


def test_longer_softmax_slices_take_the_short_kernel_where_it_is_faster() -> None:
    """`SHORT_SOFTMAX_MAX_K`: float32 "fast" at every length, float32 accurate up to 160,
    float64 up to 100; log_softmax keeps the row kernel beyond 64. A long float32 "fast"
    row whose exps would overflow the sum (logits near 200) takes the per-row kernel."""
    route, f32, f64 = functions._fused_route, np.dtype(np.float32), np.dtype(np.float64)
    short, row = functions._SHORT, functions._FORWARD
    assert route("softmax", 50_000, 1.0, f32, "fast") == short
    assert route("softmax", 160, 0.5, f32, "accurate") == short
    assert route("softmax", 161, 1.0, f32, "accurate") == row
    assert route("softmax", 100, 1.0, f64, "fast") == short
    assert route("softmax", 101, 1.0, f64, "accurate") == row
    assert route("log_softmax", 100, 1.0, f32, "fast") == row
    x = np.random.default_rng(13).standard_normal((50, 1000)).astype(np.float32)
    x[7, 10] = 200.0
    x[9] += 150.0
    got = np.asarray(sigmax.softmax(x, precision="fast"))
    want = np.asarray(sigmax.softmax(x))  # accurate: the row kernel
    # "fast" is within |x_i - max| + 6 ULP (its docstring); accurate within 1.
    gap = x.max(axis=-1, keepdims=True).astype(np.float64) - x
    tol = (gap + 7.0) * np.finfo(np.float32).eps * np.abs(want)
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol)
    assert got[7, 10] == np.float32(1.0)


@pytest.mark.parametrize(
    ("dtype", "precision"),
    [(np.float32, "fast"), (np.float32, "accurate"), (np.float64, "accurate")],
)
def test_short_rows_with_subnormal_exps_do_not_depend_on_their_neighbours(
    dtype: type, precision: str
) -> None:
    """The short-row softmax checks its rows for exps below the normal range only in the
    sub-blocks where the flat exp pass saw an argument that low. Rows that need the check
    (a subnormal true probability, or every exp subnormal) take the per-row kernel, and a
    row gives the same bits whatever its neighbours: alone, among ordinary rows, or in a
    sub-block that another low row sent down the checked pass."""
    rng = np.random.default_rng(11)
    low = -100.0 if precision == "fast" and dtype == np.float32 else -800.0
    if dtype == np.float32 and precision == "accurate":
        low = -1e3  # float32 logits, exps in float64: below -708 is float64's subnormal range
    x = (rng.standard_normal((3000, 10)) * 3).astype(dtype)
    x[5] = np.linspace(low, low - 2.0, 10)  # every exp subnormal, probabilities normal
    x[7, 3] = low  # one probability far below the others
    x[2500, 0] = 2.0 * low  # alone in its sub-block of rows
    got = np.asarray(sigmax.softmax(x, precision=precision))
    for i in (0, 5, 6, 7, 2500, 2999):
        alone = np.asarray(sigmax.softmax(x[i : i + 1], precision=precision))[0]
        np.testing.assert_array_equal(got[i], alone)
    # The rows that took the checked pass are right: the mpmath softmax, rounded.
    with mpmath.workdps(60):
        for i in (5, 7):
            row = [mpmath.mpf(float(v)) for v in x[i]]
            top = max(row)
            den = mpmath.fsum(mpmath.exp(v - top) for v in row)
            ref = np.array([float(mpmath.exp(v - top) / den) for v in row]).astype(dtype)
            np.testing.assert_allclose(got[i], ref, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_short_log_softmax_rows_out_of_range_do_not_depend_on_their_neighbours() -> None:
    """float32 log_softmax of short rows checks a row's lowest entry only in sub-blocks whose
    exp pass flagged an argument below -708 (where a float64 exp is no longer normal); such
    rows, and rows above 700, take the per-row kernel, whatever their neighbours."""
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((3000, 10)) * 3).astype(np.float32)
    x[5, 3] = -1e3
    x[7] = np.linspace(-2e3, -2e3 - 5.0, 10)
    x[9, 0] = 800.0
    x[2500, 1] = -3e38
    got = np.asarray(sigmax.log_softmax(x))
    for i in (0, 5, 7, 9, 2500, 2999):
        alone = np.asarray(sigmax.log_softmax(x[i : i + 1]))[0]
        np.testing.assert_array_equal(got[i], alone)
    with mpmath.workdps(60):
        for i in (5, 7, 9, 2500):
            row = [mpmath.mpf(float(v)) for v in x[i]]
            lse = max(row) + mpmath.log(mpmath.fsum(mpmath.exp(v - max(row)) for v in row))
            ref = np.array([float(v - lse) for v in row]).astype(np.float32)
            np.testing.assert_allclose(got[i], ref, rtol=2 * np.finfo(np.float32).eps, atol=0)


@numba.njit
def _split_rests(e, em, out):  # type: ignore[no-untyped-def]
    for i in range(e.shape[0]):
        out[i] = S._split_rest(e[i], em[i])


def test_split_rest_is_the_sum_of_its_terms() -> None:
    """``rest = sum_j e_j / e_m - 1`` from the integer and fractional parts of the scaled
    terms: within 2**-50 of the exact sum of the terms below the max plus the extra ties
    (`math.fsum`), for confident rows (rest down to 1e-300), ties, equal rows, and maxima
    across the range `_row_max` admits."""
    rng = np.random.default_rng(13)
    rows, ems = [], []
    for k in (2, 3, 10, 33, 64):
        for lo, hi in ((-1.0, 1.0), (-30.0, 0.0), (-700.0, 0.0)):
            for top in (-650.0, -3.0, 0.0, 40.0, 700.0):
                d = -np.abs(rng.uniform(lo, hi, k))  # the max is `top`
                d[rng.integers(k)] = 0.0
                if rng.random() < 0.3:
                    d[rng.integers(k)] = 0.0  # a tie
                e = np.exp(top + d)
                rows.append(e)
                ems.append(float(e.max()))  # bit for bit the max entry's exp, as the kernel
    rows.append(np.full(10, math.exp(2.0)))  # equal entries: rest = 9
    ems.append(math.exp(2.0))
    got = np.empty(len(rows))
    for i, (r, em) in enumerate(zip(rows, ems, strict=True)):
        out = np.empty(1)
        _split_rests(r[None, :], np.array([em]), out)
        got[i] = out[0]
        terms = sorted(r.tolist())
        terms.remove(max(terms))  # one max entry out: the others count, ties included
        want = math.fsum(terms) / em
        assert abs(out[0] - want) <= 2.0**-50 * want, (r, out[0], want)
    assert got.min() < 1e-250  # confident rows were in the test


def test_short_log_softmax_rows_around_the_lowest_max() -> None:
    """Rows whose max is just above or below -650 (the lowest `_split_rest` takes; below
    it the per-row kernel) are within 1 ULP of mpmath on both sides."""
    rng = np.random.default_rng(14)
    tops = np.array([-649.0, -650.0, -650.5, -651.0, -700.0], np.float32)
    x = (tops[:, None] - rng.uniform(0, 30, (5, 10))).astype(np.float32)
    x[np.arange(5), rng.integers(0, 10, 5)] = tops
    got = np.asarray(sigmax.log_softmax(x))
    for i in range(5):
        ref = ref_log_softmax(x[i].astype(np.float64))
        assert ulp_errors(got[i], ref, np.float32).max() <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [10, 100])
def test_non_finite_rows_fall_back_to_the_ieee_rules(
    monkeypatch: pytest.MonkeyPatch, dtype: type, k: int
) -> None:
    """A block holding a nan row, a +inf row and an overflowing row among finite rows: those
    rows follow the documented rules, the others are unaffected (rows of 10 on the short-row
    kernel, of 100 on the row kernel)."""
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
    monkeypatch.setattr(functions, "FUSED_MIN_K", 0 if k > 64 else functions.FUSED_MIN_K)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, k)).astype(dtype)
    x[1, 5] = np.nan
    x[2, [4, 9]] = np.inf
    x[3, :] = -np.inf
    p = sigmax.softmax(x)
    assert np.isnan(p[1]).all()
    np.testing.assert_array_equal(p[2, [4, 9]], [0.5, 0.5])
    np.testing.assert_array_equal(p[3], 0.0)  # no mass, as a fully masked slice
    np.testing.assert_array_equal(sigmax.log_softmax(x)[3], -np.inf)
    ok = [0, 4, 5]
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    np.testing.assert_allclose(p[ok], sigmax.softmax(x[ok]), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("fn", [sigmax.sigmoid, sigmax.log_sigmoid])
def test_sigmoid_fused_matches_numpy_path(monkeypatch: pytest.MonkeyPatch, fn) -> None:
    x = np.concatenate([np.linspace(-800, 800, 5001), [np.nan, np.inf, -np.inf, 0.0, -0.0]])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
        ref = fn(xd)
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
        got = fn(xd)
        np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(dtype).eps, atol=0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))


# --------------------------------------------------------------------------------------------
# Properties on the fused kernels, every row length (hypothesis)
# --------------------------------------------------------------------------------------------


_rows = st.integers(1, 300).flatmap(
    lambda k: arrays(
        np.float64,
        (3, k),
        elements=st.floats(-700, 700, allow_nan=False, allow_infinity=False),
    )
)


@pytest.mark.parametrize("route", ["row kernel", "short-row kernel"])
@settings(max_examples=200, deadline=None)
@given(x=_rows, c=st.floats(-100, 100), dtype=st.sampled_from([np.float32, np.float64]))
def test_fused_properties(route: str, x: np.ndarray, c: float, dtype: type) -> None:
    """On the fused kernels: rows sum to 1, a common shift changes nothing (beyond the
    rounding of the shifted input), log_softmax is the log of softmax, and a 2-entry softmax
    is the sigmoid of the difference."""
    # Hypothesis cannot take the function-scoped `backend` fixture; the same switch by hand.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMAX_DISABLE_NUMBA", "0")
        mp.setattr(functions, "FUSED_MIN_K", 0 if route == "row kernel" else 1 << 62)
        xd = x.astype(dtype)
        eps = float(np.finfo(dtype).eps)
        for precision in ("accurate", "fast"):
            p = sigmax.softmax(xd, precision=precision)
            np.testing.assert_allclose(
                p.sum(axis=-1, dtype=np.float64), 1.0, rtol=4 * x.shape[1] * eps
            )
        p = sigmax.softmax(xd)
        shifted = (xd.astype(np.float64) + c).astype(dtype)
        # Rounding the shifted input moves each x_i by up to ulp(x_i + c) / 2, which moves p
        # by as much relative: the tolerance holds that plus 3 ULP on each side.
        big = float(np.max(np.abs(shifted.astype(np.float64)), axis=None))
        np.testing.assert_allclose(sigmax.softmax(shifted), p, rtol=(8 + 2 * big) * eps, atol=0)
        lp = sigmax.log_softmax(xd).astype(np.float64)
        # exp turns the rounding of lp (|lp| eps / 2 absolute) into a relative error.
        tol = (8.0 + np.abs(lp)) * eps * p + float(np.finfo(dtype).tiny)
        assert np.all(np.abs(np.exp(lp) - p) <= tol)
        # "fast" log_softmax: within its documented max |x_j - max(x)| + 6 ULP of the row,
        # plus "accurate"'s own 3 (float64 "fast" takes plain sums on the short kernel), and
        # for float32 up to k more where subnormal float32 exps make up a normal `rest`
        # (hypothesis found [92.25, 0, ..., 0] of 130 entries: 102 ULP on the max entry).
        x64 = xd.astype(np.float64)
        gap = np.max(x64.max(axis=-1, keepdims=True) - x64, axis=-1, keepdims=True)
        lpf = sigmax.log_softmax(xd, precision="fast").astype(np.float64)
        ulp = np.spacing(np.abs(lp).astype(dtype)).astype(np.float64)  # subnormal steps too
        k = x.shape[1] if dtype == np.float32 else 0
        assert np.all(np.abs(lpf - lp) <= (gap + 9.0 + k) * ulp)
        pair = xd[:, :2] if x.shape[1] >= 2 else np.concatenate([xd, xd], axis=1)
        diff = pair[:, 0].astype(np.float64) - pair[:, 1]
        want = sigmax.sigmoid(diff)
        # The reference rounds the difference: |diff| eps of relative error, plus 3 ULP each.
        tol = (8.0 + np.abs(diff)) * eps * want + float(np.finfo(dtype).tiny)
        assert np.all(np.abs(sigmax.softmax(pair)[:, 0] - want) <= tol)


@numba.njit
def _rest64(z, e):  # type: ignore[no-untyped-def]
    return F._row_sums(z, e, 2)


@pytest.mark.parametrize(
    "row",
    [
        np.random.default_rng(1).standard_normal(31) * 100,  # the rows of the 3.4-ULP bug
        np.random.default_rng(2).standard_normal(5000),
        np.concatenate([[0.0], -740.0 - np.arange(20.0)]),  # subnormal exps (p capped)
        np.concatenate([[0.0, 0.0], np.random.default_rng(3).uniform(-60, -40, 200)]),
        np.array([0.0, -1e-17, 2**-60, -(2.0**-60)]),  # exps that round to 1
        np.array([5.0]),  # nothing below the max
    ],
)
def test_rest_is_the_rounded_sum_of_its_terms(row: np.ndarray) -> None:
    # float64 with the compensated difference: `rest` is the sum of the exps below the max
    # (stored in `e`) plus the ties beyond the first, rounded once up to the rounding of
    # the fractional parts' sum: within 1 ULP of math.fsum, and exact on most rows (a
    # vectorized sum of 32 terms was 3 ULP off).
    import math

    e = np.empty_like(row)
    m, rest = _rest64(row, e)
    assert m == row.max()
    below = row < m
    want = math.fsum(e[below].tolist()) + float(np.sum(row == m) - 1)
    assert np.all(e[~below] == 1.0)
    assert abs(rest - want) <= np.spacing(want), (rest, want)
