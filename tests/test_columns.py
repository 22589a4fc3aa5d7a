"""softmax and log_softmax along an axis that is not the last, on the column kernels
(:mod:`sigmax._numba_columns`): an ``(N, C, H, W)`` array normalized over ``axis=1`` or a
``(C, n)`` array over ``axis=0``.

References: mpmath for every accuracy row of ``_mpref`` laid out as columns (the bounds of
the docstrings: 1 ULP for float32, 3 for float64, and "fast"'s ``|x_i - max(x)| + 6``), and
the last-axis path of the same values moved (``np.moveaxis``), which the rest of the suite
tests, for layouts, temperatures, `out=`, threads and the IEEE cases.
"""

from __future__ import annotations

import numpy as np
import pytest

import sigmax
from _mpref import max_ulp, ref_log_softmax, ref_softmax, row_cases, ulp_errors
from sigmax import _numba_kernels, functions

FNS = {
    "softmax": (sigmax.softmax, ref_softmax),
    "log_softmax": (sigmax.log_softmax, ref_log_softmax),
}
BOUND = {np.float32: 1.0, np.float64: 3.0}
FAST_SLACK = 6.0


@pytest.fixture(autouse=True)
def _numba(monkeypatch: pytest.MonkeyPatch) -> None:
    if _numba_kernels.numba is None:
        pytest.skip("numba is not installed")
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")


def _taken(x: np.ndarray, axis: int, fn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test unless the column kernel takes (and does not decline) the call."""
    calls: list[np.ndarray | None] = []
    real = functions._columns_call

    def spy(*args: object, **kwargs: object) -> np.ndarray | None:
        r = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(r)
        return r

    monkeypatch.setattr(functions, "_columns_call", spy)
    FNS[fn][0](x, axis=axis)
    monkeypatch.setattr(functions, "_columns_call", real)
    assert calls, "not routed to the column kernels"
    assert calls[0] is not None, "the column kernels declined"


@pytest.mark.parametrize("fn", list(FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("precision", ["accurate", "fast"])
def test_accuracy_rows_as_columns(fn, dtype, precision, monkeypatch):
    """Every accuracy row as the columns of a ``(k, 20)`` array normalized over axis 0 (and
    as the middle axis of a ``(2, k, 10)`` one), against mpmath."""
    func, ref_fn = FNS[fn]
    rng = np.random.default_rng(11)
    checked = 0
    for case, rows in row_cases(dtype, rng):
        with np.errstate(over="ignore"):
            finite = [r.astype(dtype) for r in rows if np.all(np.isfinite(r.astype(dtype)))]
        for row in finite:
            # Columns 0 and 19 hold the row; the others hold shuffles of it, so each
            # column of a chunk differs from its neighbours.
            cols = [rng.permutation(row) for _ in range(20)]
            cols[0] = cols[19] = row
            x = np.stack(cols, axis=1)
            if checked == 0:
                _taken(x, 0, fn, monkeypatch)
            got = np.asarray(func(x, axis=0, precision=precision))
            got3 = np.asarray(
                func(
                    x.reshape(x.shape[0], 2, 10).transpose(1, 0, 2).copy(),
                    axis=1,
                    precision=precision,
                )
            )
            ref = ref_fn(row.astype(np.float64))
            for g in (got[:, 0], got[:, 19], got3[0, :, 0], got3[1, :, 9]):
                if precision == "accurate":
                    err = max_ulp(g, ref, dtype)
                    assert err <= BOUND[dtype], (case, row, err)
                else:
                    errs = ulp_errors(g, ref, dtype)
                    gaps = np.abs(row.astype(np.float64) - row.astype(np.float64).max())
                    bound = (gaps if fn == "softmax" else gaps.max()) + FAST_SLACK
                    assert np.all(errs <= bound), (case, row, errs.max())
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("fn", list(FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((4, 21, 33, 17), 1),  # segmentation logits, NCHW
        ((3, 5, 40), 1),
        ((7, 3000), 0),  # several calls per block (columns beyond one call's share)
        ((2, 9, 1, 40), 1),
        ((5, 6, 16), 0),
        ((130, 2, 300), 1),  # many blocks: threads
    ],
)
@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_matches_the_last_axis_path(fn, dtype, shape, axis, temperature, monkeypatch):
    func = FNS[fn][0]
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype(dtype)
    _taken(x, axis, fn, monkeypatch)
    got = func(x, axis=axis, temperature=temperature)
    assert got.dtype == dtype
    assert got.flags.c_contiguous
    want = np.moveaxis(func(np.moveaxis(x, axis, -1).copy(), temperature=temperature), -1, axis)
    # Two implementations of the same algorithm, each within the bound of mpmath.
    tol = 2 * BOUND[dtype] * np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    np.testing.assert_array_less(np.abs(got.astype(np.float64) - want), tol + 1e-300)


def test_out_and_layouts():
    x = np.random.default_rng(4).standard_normal((3, 8, 20))
    want = np.moveaxis(sigmax.softmax(np.moveaxis(x, 1, -1).copy()), -1, 1)
    out = np.empty_like(x)
    assert sigmax.softmax(x, axis=1, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-15)
    # A non-contiguous `out` is filled from a fresh result.
    big = np.zeros((3, 8, 40))
    view = big[:, :, ::2]
    assert sigmax.softmax(x, axis=1, out=view) is view
    np.testing.assert_allclose(view, want, rtol=1e-15)
    # In place: the input is read before it is overwritten.
    y = x.copy()
    sigmax.softmax(y, axis=1, out=y)
    np.testing.assert_allclose(y, want, rtol=1e-15)
    # Fewer than COLUMNS_MIN_WIDTH columns side by side: the axis is moved last instead.
    narrow = x[:, :, :5].copy()
    assert (
        functions._columns_call(narrow, 1, "log_softmax", 1.0, narrow.dtype, "accurate", None)
        is None
    )
    # Slices longer than COLUMNS_MAX_K: moved last too.
    long = np.zeros((functions.COLUMNS_MAX_K + 1, 20))
    assert functions._columns_call(long, 0, "softmax", 1.0, long.dtype, "accurate", None) is None
    np.testing.assert_allclose(sigmax.softmax(long, axis=0), 1.0 / long.shape[0], rtol=1e-15)
    np.testing.assert_allclose(
        sigmax.log_softmax(narrow, axis=1),
        np.moveaxis(sigmax.log_softmax(np.moveaxis(narrow, 1, -1).copy()), -1, 1),
        rtol=1e-15,
    )


@pytest.mark.parametrize("fn", list(FNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ieee_cases_take_the_general_path(fn, dtype):
    """A nan, an infinity or an overflowing column makes the kernel decline; the general
    path then gives the documented results for every column."""
    func = FNS[fn][0]
    x = np.random.default_rng(5).standard_normal((2, 6, 24)).astype(dtype)
    x[0, 2, 3] = np.nan
    x[1, 4, 7] = np.inf
    x[1, :, 9] = -np.inf
    x[0, :, 11] = np.finfo(dtype).max
    got = func(x, axis=1)
    want = np.moveaxis(func(np.moveaxis(x, 1, -1).copy()), -1, 1)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.isnan(got[0, :, 3]))
    if fn == "softmax":
        assert got[1, 4, 7] == 1.0


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy along a non-last axis (segmentation: logits (N, C, H, W), axis=1)
# --------------------------------------------------------------------------------------------


def _ce_taken(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record what the column cross-entropy returned (None: not taken or declined)."""
    from sigmax import losses

    calls: list[object] = []
    real = losses._columns_ce

    def spy(*args: object, **kwargs: object) -> object:
        r = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(r)
        return r

    monkeypatch.setattr(losses, "_columns_ce", spy)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_as_columns_against_mpmath(dtype, monkeypatch):
    """test_losses' accuracy rows as the columns of a ``(k, 25)`` array (axis 0): the value
    within 1 / 3 ULP, the gradient within 1 / 5 ULP (as test_losses bounds them)."""
    import mpmath

    from test_losses import MP, _softmax_rows, mp_nlogp, mp_softmax_grad

    calls = _ce_taken(monkeypatch)
    rng = np.random.default_rng(8)
    z = _softmax_rows(dtype, rng)
    n, k = z.shape
    zc = np.ascontiguousarray(z.T)
    nl = [mp_nlogp(row) for row in z]
    for labels in (np.argmax(z, axis=1), rng.integers(0, k, n), np.argmin(z, axis=1)):
        r = sigmax.softmax_cross_entropy_value_and_grad(zc, labels, axis=0)
        assert r.value.dtype == dtype
        assert r.grad.shape == zc.shape
        ref = [nl[i][labels[i]] for i in range(n)]
        assert ulp_errors(r.value, ref, dtype).max() <= BOUND[dtype]
        gref = mp_softmax_grad(z, labels)
        gbound = {np.float32: 1.0, np.float64: 5.0}[dtype]
        assert ulp_errors(np.ascontiguousarray(r.grad.T), gref, dtype).max() <= gbound
    cw = np.linspace(0.5, 2.0, k)
    labels = rng.integers(0, k, n)
    got = sigmax.softmax_cross_entropy(zc, labels, axis=0, class_weight=cw, label_smoothing=0.2)
    ref = [
        MP(float(cw[labels[i]])) * (MP(0.8) * nl[i][labels[i]] + MP(0.2) / k * mpmath.fsum(nl[i]))
        for i in range(n)
    ]
    assert ulp_errors(got, ref, dtype).max() <= BOUND[dtype] + (dtype == np.float64)
    assert calls
    assert all(c is not None for c in calls)


def test_cross_entropy_confident_columns_keep_their_tiny_loss():
    z = np.zeros((2, 16))
    z[1] = -92.0
    r = sigmax.softmax_cross_entropy_value_and_grad(z, np.zeros(16, int), axis=0)
    np.testing.assert_allclose(r.value, 1.1089390193121365e-40, rtol=1e-15)
    np.testing.assert_allclose(r.grad[0], -1.1089390193121365e-40, rtol=1e-15)
    np.testing.assert_allclose(r.grad[1], 1.1089390193121365e-40, rtol=1e-15)
    v32 = sigmax.softmax_cross_entropy(z.astype(np.float32), np.zeros(16, int), axis=0)
    assert np.all(v32 == np.float32(1.1089390193121365e-40))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.1},
        {"class_weight": np.linspace(0.5, 3.0, 21), "ignore_index": 255},
        {"precision": "fast"},
    ],
)
def test_cross_entropy_matches_the_last_axis_path(dtype, options, monkeypatch):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((3, 21, 9, 13)) * 4).astype(dtype)
    y = rng.integers(0, 21, (3, 9, 13))
    if "ignore_index" in options:
        y[0, 0, :4] = 255
    moved = sigmax.softmax_cross_entropy_value_and_grad(np.moveaxis(x, 1, -1), y, **options)
    calls = _ce_taken(monkeypatch)
    r = sigmax.softmax_cross_entropy_value_and_grad(x, y, axis=1, **options)
    value = sigmax.softmax_cross_entropy(x, y, axis=1, **options)
    assert len(calls) == 2
    assert all(c is not None for c in calls)
    np.testing.assert_array_equal(value, r.value)
    tol = 8 * np.spacing(np.abs(moved.value).astype(dtype)).astype(np.float64)
    np.testing.assert_array_less(np.abs(r.value - moved.value), tol + 1e-300)
    g = np.moveaxis(moved.grad, -1, 1)
    np.testing.assert_allclose(r.grad, g, rtol=0, atol=8 * float(np.finfo(dtype).eps))
    if "ignore_index" in options:
        assert np.all(r.value[0, 0, :4] == 0)
        assert np.all(r.grad[0, :, 0, :4] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_minus_inf_logits(dtype):
    """-inf logits are legal (a class ruled out): a label there is a loss of +inf, never
    nan, and the other columns are unaffected, as on the last-axis path."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 20)).astype(dtype)
    x[2, 3] = x[1, 8] = x[4, 8] = -np.inf
    y = rng.integers(0, 5, 20)
    y[3], y[8], y[9] = 2, 1, 0
    for ls in (0.0, 0.1):
        r = sigmax.softmax_cross_entropy_value_and_grad(x, y, axis=0, label_smoothing=ls)
        moved = sigmax.softmax_cross_entropy_value_and_grad(x.T, y, label_smoothing=ls)
        assert r.value[3] == np.inf
        assert r.value[8] == np.inf
        np.testing.assert_array_equal(np.isfinite(r.value), np.isfinite(moved.value))
        fin = np.isfinite(moved.value)
        np.testing.assert_allclose(r.value[fin], moved.value[fin], rtol=8 * np.finfo(dtype).eps)
        np.testing.assert_allclose(r.grad, moved.grad.T, rtol=0, atol=8 * np.finfo(dtype).eps)


def test_cross_entropy_ieee_cases_take_the_general_path(monkeypatch):
    calls = _ce_taken(monkeypatch)
    x = np.random.default_rng(10).standard_normal((2, 5, 20))
    x[0, 1, 3] = np.nan
    x[1, 2, 4] = np.inf
    y = np.zeros((2, 20), int)
    r = sigmax.softmax_cross_entropy_value_and_grad(x, y, axis=1)
    assert calls == [None]
    moved = sigmax.softmax_cross_entropy_value_and_grad(np.moveaxis(x, 1, -1), y)
    np.testing.assert_array_equal(r.value, moved.value)
    np.testing.assert_array_equal(r.grad, np.moveaxis(moved.grad, -1, 1))


# --------------------------------------------------------------------------------------------
# logsumexp along a non-last axis
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_as_columns_against_mpmath(dtype, monkeypatch):
    """Every accuracy row as the columns of a ``(k, 20)`` array, reduced over axis 0."""
    from _mpref import ref_logsumexp

    calls: list[object] = []
    real = functions._columns_logsumexp

    def spy(*args: object) -> object:
        r = real(*args)  # type: ignore[arg-type]
        calls.append(r)
        return r

    monkeypatch.setattr(functions, "_columns_logsumexp", spy)
    rng = np.random.default_rng(13)
    for case, rows in row_cases(dtype, rng):
        with np.errstate(over="ignore"):
            finite = [r.astype(dtype) for r in rows if np.all(np.isfinite(r.astype(dtype)))]
        for row in finite:
            cols = [rng.permutation(row) for _ in range(20)]
            cols[0] = row
            x = np.stack(cols, axis=1)
            calls.clear()
            got = sigmax.logsumexp(x, axis=0)
            # Rows whose sum overflows are declined, longer ones not taken (the general path
            # takes both).
            skipped = case == "up to the overflow limit" or row.size > functions.COLUMNS_MAX_K
            assert calls[0] is not None or skipped
            assert got.shape == (20,)
            assert sigmax.logsumexp(x, axis=0, keepdims=True).shape == (1, 20)
            err = max_ulp(got[:1], ref_logsumexp(row.astype(np.float64)), dtype)
            assert err <= BOUND[dtype], (case, row, err)


@pytest.mark.skipif(
    np.finfo(np.longdouble).nmant <= 52, reason="the refinement needs an extended long double"
)
def test_logsumexp_columns_near_zero():
    """The float64 results that cancel are refined from their slices alone, to the bounds of
    the last-axis path (test_accuracy's test of the same rows)."""
    from _mpref import near_zero_logsumexp_errors

    def by_columns(block: np.ndarray) -> np.ndarray:
        cols = np.ascontiguousarray(block.T)
        if cols.shape[1] < functions.COLUMNS_MIN_WIDTH:  # too few to take the kernels
            cols = np.tile(cols, (1, functions.COLUMNS_MIN_WIDTH))
        return sigmax.logsumexp(cols, axis=0)[: block.shape[0]]

    rel, absolute = near_zero_logsumexp_errors(by_columns, np.random.default_rng(11))
    assert rel <= 3.0
    assert absolute <= 4.0
