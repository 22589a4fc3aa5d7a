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
