r"""Forward values: sigmoid, log_sigmoid, softmax, log_softmax, logsumexp and hardmax.

Every function takes any Array API array (NumPy, array-api-strict, PyTorch, JAX, CuPy, Dask)
and returns the input's namespace, device and dtype. Python scalars and lists are NumPy input.

Accuracy (tested against mpmath at 60 digits, on NumPy; see ``tests/test_accuracy.py``):

============  =================  =================
function      float16, float32   float64
============  =================  =================
sigmoid       <= 1 ULP           <= 3 ULP
log_sigmoid   <= 1 ULP           <= 3 ULP
softmax       <= 1 ULP           <= 3 ULP
log_softmax   <= 1 ULP           <= 3 ULP
logsumexp     <= 1 ULP           <= 3 ULP [1]_
============  =================  =================

.. [1] logsumexp is ill-conditioned where its result is near 0 (for example
   ``logsumexp([-0.5, -0.9]) = 0.013``): with ``m = max x < 0`` the result ``m + log1p(rest)``
   cancels. On NumPy the rows where neither term dominates (within a factor 64) are
   recomputed in extended precision (``np.longdouble``, 64-bit significand on x86), which
   keeps float64 within 3 ULP while ``|result| >= 2**-10 * max(|m|, log1p(rest))``. Closer to
   0 (a row of log-probabilities, whose logsumexp is ~1e-17) the bound is absolute:
   ``4 ulp(max(|m|, log1p(rest)))``. On platforms where ``longdouble`` is ``float64`` and on
   other namespaces that absolute bound holds wherever the result cancels.

The narrow dtypes are computed in float64 and rounded once. float64 is computed with a
compensated difference ``x - max(x)``, so small probabilities keep full relative accuracy.

On NumPy the work runs in cache-sized blocks on up to 8 threads (``SIGMAX_NUM_THREADS``), in
place in per-thread buffers. With the optional ``sigmax[numba]`` extra, sigmoid, log_sigmoid
and slices longer than 64 entries of softmax, log_softmax and logsumexp run fused kernels
instead (:mod:`sigmax._numba_forward`, :mod:`sigmax._numba_bce`: one pass over memory per
row, a vectorized ``exp`` and ``log1p`` of their own, the same algorithm and the same tested
bounds; ``SIGMAX_DISABLE_NUMBA=1`` turns them off). Shorter slices of softmax, log_softmax
and logsumexp take kernels of their own (:mod:`sigmax._numba_short`): a slice of 10 is too
short to vectorize along, so softmax skips the shift by the max (it is shift-invariant), runs
``exp`` flat over a few thousand entries at full SIMD width, and sends the rare slice whose
``exp`` would leave the normal range to the per-slice kernel; each slice's result depends on
that slice alone. That kernel also takes longer softmax slices where it measured faster
(`SHORT_SOFTMAX_MAX_K`: float32 ``"fast"`` at any length, float32 up to 160 entries,
float64 up to 100). softmax, log_softmax and logsumexp along an axis that is not the last
(the channels of ``(N, C, H, W)`` segmentation logits, ``axis=1``) of a C-contiguous array
run on column kernels (:mod:`sigmax._numba_columns`) when at least `COLUMNS_MIN_WIDTH` slices
lie side by side in memory: they vectorize across those slices instead of moving the axis
last, with the same algorithm and bounds, and return a C-contiguous array. Its results may
differ in the last bits (at most 5 ULP measured) from the same slices moved last. On a GPU,
C-contiguous float32/float64
CuPy arrays and torch CUDA tensors (when CuPy is installed) run fused CUDA kernels along the
last axis (:mod:`sigmax._cuda_forward`: one launch, computed in float64, the same IEEE rules;
``SIGMAX_DISABLE_CUDA=1`` turns them off).
``precision="fast"`` (sigmoid, softmax, log_softmax) computes
float32 in float32 and skips the compensation of float64: faster, within 3 ULP for sigmoid, but
an entry of softmax or log_softmax may be off by up to about ``|x_i - max(x)|`` ULP (tens on
small float32 probabilities, hundreds for float64 logits in +-700), still with ``log1p``, no
overflow and no false zeros (``tests/test_precision_fast.py``). float64 softmax rows of up to
100 entries are not shifted at all (the short-row kernel), and "fast" sums them without
compensation there: within 4 ULP whatever the spread of the row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from sigmax import _cuda_forward
from sigmax._array_api import (
    BLOCK_ELEMENTS,
    FUSED_BLOCK_ELEMENTS,
    Array,
    Namespace,
    block_rows,
    compute_dtype,
    full,
    fused,
    is_numpy,
    moveaxes_last,
    namespace,
    result_dtype,
    scratch,
    small_along_last,
    small_numpy,
    small_out,
    unwrap_scalar,
)
from sigmax._validation import check_axis, check_out, check_positive_scalar, check_where

__all__ = ["hardmax", "log_sigmoid", "log_softmax", "logsumexp", "sigmoid", "softmax"]

Axis = int | Sequence[int] | None


# --------------------------------------------------------------------------------------------
# Elementwise: sigmoid and log_sigmoid
# --------------------------------------------------------------------------------------------


def _sigmoid_kernel(z: Array, xp: Namespace) -> Array:
    # exp(-|z|) never overflows; the numerator picks 1 or e by sign, so 1 - sigmoid is never
    # formed and sigmoid(-720) keeps its subnormal value.
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, xp.ones_like(e), e) / (1.0 + e)


def _log_sigmoid_kernel(z: Array, xp: Namespace) -> Array:
    # log sigmoid(z) = min(z, 0) - log1p(exp(-|z|)); both terms are <= 0, so they never cancel.
    return xp.minimum(z, xp.zeros_like(z)) - xp.log1p(xp.exp(-xp.abs(z)))


def _np_sigmoid_block(x: np.ndarray, out: np.ndarray, cdt: Any) -> None:
    e = scratch("e", x.shape, cdt)
    # 1 / (1 + exp(-x)) in 4 passes is as accurate as the two-sided formula unless exp(-x)
    # overflows, where the true result may still be a (subnormal) nonzero: then fall back.
    # A nan makes the min nan, fails the test and takes the long route, which is always right.
    if x.size and np.min(x) >= _EXP_OVERFLOW[np.dtype(cdt)]:
        np.negative(x, out=e, dtype=cdt)
        np.exp(e, out=e)
        np.add(e, 1.0, out=e)
        np.divide(1.0, e, out=out, casting="same_kind")
        return
    # The same formula as _sigmoid_kernel, in place in per-thread buffers. The numerator is
    # max(e, [x >= 0]) (1 or e, nan stays nan): a masked copy would mispredict on random signs.
    den = scratch("den", x.shape, cdt)
    np.abs(x, out=e, dtype=cdt)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=den)
    pos = scratch("pos", x.shape, cdt)
    np.greater_equal(x, 0, out=pos, casting="unsafe")
    np.maximum(e, pos, out=e)
    np.divide(e, den, out=out, casting="same_kind")


def _np_log_sigmoid_block(x: np.ndarray, out: np.ndarray, cdt: Any) -> None:
    e = scratch("e", x.shape, cdt)
    low = scratch("den", x.shape, cdt)
    np.abs(x, out=e, dtype=cdt)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.log1p(e, out=e)
    np.minimum(x, 0.0, out=low, dtype=cdt)
    np.subtract(low, e, out=out, casting="same_kind")


#: exp(-x) is finite for x above this (with a margin of 1).
_EXP_OVERFLOW = {
    np.dtype(t): 1.0 - float(np.log(np.finfo(t).max)) for t in (np.float32, np.float64)
}

_NP_ELEMENTWISE = {_sigmoid_kernel: _np_sigmoid_block, _log_sigmoid_kernel: _np_log_sigmoid_block}


def _fast_dtype(dtype: Any, cdt: Any, xp: Namespace, precision: str) -> Any:
    """The compute dtype for `precision`: "fast" computes float32 in float32 (float16 and
    bfloat16 still go up to float32, which their 1-ULP bound needs anyway)."""
    if precision == "accurate":
        return cdt
    if precision != "fast":
        raise ValueError(f"`precision` must be 'accurate' or 'fast', got {precision!r}")
    if dtype in (xp.float32, xp.float64):
        return dtype
    return xp.float32 if hasattr(xp, "float32") else cdt


def _elementwise(
    x: Any, kernel: Any, name: str, out: np.ndarray | None, precision: str = "accurate"
) -> Array:
    sig = kernel is _sigmoid_kernel
    # log_sigmoid's kernel lives with the BCE kernel, which has the vectorized log1p.
    module = _FORWARD if sig else "sigmax._numba_bce"
    # A small simple call straight to the kernel, as in `_small_call`.
    if (
        small_numpy(x, precision)
        and (res := small_out(x, out)) is not None
        and (nb := fused(module)) is not None  # small_numpy and small_out checked the arrays
    ):
        if sig:
            nb.sigmoid_block(x.reshape(-1), res.reshape(-1), precision == "fast")
        else:
            nb.log_sigmoid_block(x.reshape(-1), res.reshape(-1))
        return res
    x, xp = namespace(x)
    dtype = result_dtype(x, xp)
    cdt = _fast_dtype(dtype, compute_dtype(dtype, xp, x), xp, precision)
    if not is_numpy(xp):
        if out is not None:
            check_out(out, tuple(x.shape), dtype, xp)
        fn = "sigmoid" if kernel is _sigmoid_kernel else "log_sigmoid"
        if (r := _cuda_forward.elementwise(x, fn, precision)) is not None:
            return r
        return xp.astype(kernel(xp.astype(x, cdt), xp), dtype)
    shape = x.shape
    res = np.empty(shape, dtype=dtype) if out is None else check_out(out, shape, dtype, xp)
    flat_in = np.ravel(x)
    flat_out = res.reshape(-1) if res.flags.c_contiguous else np.empty(x.size, dtype=dtype)

    np_kernel = _NP_ELEMENTWISE[kernel]
    nb = fused(module, flat_in, flat_out)

    def run(rows: slice) -> None:
        if nb is None:
            np_kernel(flat_in[rows], flat_out[rows], cdt)
        elif sig:
            nb.sigmoid_block(flat_in[rows], flat_out[rows], precision == "fast")
        else:
            nb.log_sigmoid_block(flat_in[rows], flat_out[rows])

    with np.errstate(invalid="ignore"):
        block_rows(flat_in.size, 1, run, block_elements=_block_elements(nb))
    if not res.flags.c_contiguous:
        res[...] = flat_out.reshape(shape)
    return res[()] if res.ndim == 0 and out is None else res


def sigmoid(x: Any, /, *, out: np.ndarray | None = None, precision: str = "accurate") -> Array:
    r"""Logistic sigmoid, elementwise.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}}

    Parameters
    ----------
    x : array, shape (...)
        Any Array API array, or a Python scalar or list. Integers and bools are promoted to
        the default float.
    out : numpy.ndarray, optional
        NumPy only: where to write the result (same shape, result dtype).
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 input in float32 instead of float64: about twice as fast,
        within 3 ULP instead of 1 (NumPy's float32 ``exp`` is within 2.4 ULP), and still
        without overflow or false zeros. float64 is unchanged.

    Returns
    -------
    array, shape (...)
        In ``x``'s namespace and device; float dtypes are kept.

    Raises
    ------
    TypeError
        For complex or non-numeric input.

    Notes
    -----
    With :math:`e = e^{-|x|} \le 1` the result is :math:`1/(1+e)` for :math:`x \ge 0` and
    :math:`e/(1+e)` otherwise, so nothing overflows and ``1 - sigmoid(x)`` is never formed.
    Results that are subnormal come back as the correctly rounded subnormal:
    ``sigmoid(-720.0)`` is ``2.03e-313``, not 0. Accuracy: <= 1 ULP for float16/float32 (computed
    in float64), <= 3 ULP for float64. ``sigmoid(nan)`` is nan, ``sigmoid(+-inf)`` is 1 and 0.
    CuPy arrays and torch CUDA tensors run fused CUDA kernels when CuPy is installed
    (:mod:`sigmax._cuda_forward`), computed in float64 for both precisions.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid([0.0, 2.0, -720.0])
    array([5.00000000e-001, 8.80797078e-001, 2.03223080e-313])
    """
    return _elementwise(x, _sigmoid_kernel, "x", out, precision)


def log_sigmoid(x: Any, /, *, out: np.ndarray | None = None) -> Array:
    r"""Logarithm of the sigmoid, elementwise: :math:`-\operatorname{softplus}(-x)`.

    .. math:: \log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})

    Parameters
    ----------
    x : array, shape (...)
        Any Array API array, or a Python scalar or list.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.

    Returns
    -------
    array, shape (...)
        Values <= 0, in ``x``'s namespace, device and (float) dtype.

    Notes
    -----
    Both terms are <= 0, so they never cancel, and ``log1p`` keeps the small term exact:
    ``log_sigmoid(40.0)`` is ``-4.25e-18``, not 0. Accuracy: <= 1 ULP for float16/float32,
    <= 3 ULP for float64. ``log_sigmoid(-inf)`` is ``-inf``, ``log_sigmoid(inf)`` is 0.
    CuPy arrays and torch CUDA tensors run fused CUDA kernels when CuPy is installed
    (:mod:`sigmax._cuda_forward`).

    Examples
    --------
    >>> import sigmax
    >>> sigmax.log_sigmoid([0.0, 40.0, -1000.0])
    array([-6.93147181e-01, -4.24835426e-18, -1.00000000e+03])
    """
    return _elementwise(x, _log_sigmoid_kernel, "x", out)


# --------------------------------------------------------------------------------------------
# Reductions along an axis: softmax, log_softmax, logsumexp
# --------------------------------------------------------------------------------------------


def _two_sum_error(a: Array, b: Array, s: Array, xp: Namespace) -> Array:
    """The exact rounding error of ``s = a + b`` (Knuth's TwoSum); 0 where not finite."""
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return xp.where(xp.isfinite(err), err, xp.zeros_like(err))


class _Parts:
    """What softmax, log_softmax and logsumexp share, for slices along the last axis.

    With ``m = max(z)``, ``d = z - m`` (split as ``d + lo`` when compensated) and the max
    entries (``c`` of them) taken out of the sum, ``sum(exp(z - m)) = 1 + rest`` where
    ``rest = (c - 1) + sum_{non-max} exp(d)``. ``log1p(rest)`` then keeps full relative
    accuracy however small ``rest`` is.
    """

    __slots__ = ("d", "empty", "ismax", "lo", "m", "rest", "terms")

    def __init__(self, z: Array, valid: Array | None, xp: Namespace, compensate: bool) -> None:
        if valid is not None:
            z = xp.where(valid, z, full(xp, (), -np.inf, z))
        m = xp.max(z, axis=-1, keepdims=True)
        ismax = z == m
        raw = z - m
        self.lo = _two_sum_error(z, -m, raw, xp) if compensate else None
        # At the max, d is exactly 0 (also for +inf, where inf - inf would be nan).
        d = xp.where(ismax, xp.zeros_like(raw), raw)
        e = xp.exp(d)
        if self.lo is not None:
            e = e + e * self.lo
        e = xp.where(ismax, xp.zeros_like(e), e)
        c = xp.sum(xp.astype(ismax, z.dtype), axis=-1, keepdims=True)
        self.terms = e
        self.rest = xp.sum(e, axis=-1, keepdims=True) + (c - 1.0)
        self.m = m
        self.d = d
        self.ismax = ismax
        # A slice with no finite-or-+inf entry (fully masked, or all -inf) has no mass.
        self.empty = m == -np.inf


def _softmax_kernel(p: _Parts, xp: Namespace) -> Array:
    num = xp.where(p.ismax, xp.ones_like(p.terms), p.terms)
    out = num / (1.0 + p.rest)
    return xp.where(p.empty, xp.zeros_like(out), out)


def _log_softmax_kernel(p: _Parts, xp: Namespace) -> Array:
    lse = xp.log1p(p.rest)
    other = p.d - lse
    if p.lo is not None:
        other = other + p.lo
    out = xp.where(p.ismax, -lse * xp.ones_like(other), other)
    return xp.where(p.empty, full(xp, (), -np.inf, out), out)


def _logsumexp_kernel(p: _Parts, xp: Namespace) -> Array:
    return p.m + xp.log1p(p.rest)


def _cancelled(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Where the logsumexp ``r = m + log1p(rest)`` of slices with max `m` cancelled."""
    with np.errstate(invalid="ignore"):
        # It cancels only for m < 0, and only where neither term dominates: the rounding
        # errors of the smaller one are then no longer small in ulps of r.
        lp = r - m
        return np.isfinite(r) & (m < 0) & (np.minimum(-m, lp) > 2.0**-6 * np.maximum(-m, lp))


def _logsumexp_refine(z: np.ndarray, valid: np.ndarray | None, r: np.ndarray) -> np.ndarray:
    """Recompute the rows whose result cancelled (m < 0, |m| ~ log1p(rest)) in ``np.longdouble``."""
    m = np.max(np.where(valid, z, -np.inf) if valid is not None else z, axis=-1, keepdims=True)
    rows = np.flatnonzero(_cancelled(m, r).reshape(-1))
    if rows.size == 0 or np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        return r
    zz = z.reshape(-1, z.shape[-1])[rows].astype(np.longdouble)
    if valid is not None:
        zz = np.where(valid.reshape(-1, z.shape[-1])[rows], zz, -np.inf)
    mm = np.max(zz, axis=-1, keepdims=True)
    ismax = zz == mm
    e = np.where(ismax, 0, np.exp(np.where(ismax, 0, zz - mm)))
    rest = e.sum(axis=-1, keepdims=True) + (ismax.sum(axis=-1, keepdims=True) - 1)
    flat = r.reshape(-1, 1).copy()
    flat[rows] = (mm + np.log1p(rest)).astype(r.dtype)
    return flat.reshape(r.shape)


#: Slices up to this long are processed transposed, as ``(k, rows)``: NumPy reduces a short
#: last axis one row at a time (about 45 ns a row), but a long leading axis at full SIMD speed.
SMALL_K = 64


def _np_rows_block(
    x: np.ndarray, out: np.ndarray, kind: str, t: float, cdt: Any, compensate: bool
) -> bool:
    """The _Parts algorithm for a block of finite rows, in place in per-thread buffers.

    `x` is ``(n, k)``; `out` is ``(n, k)`` or, for logsumexp, ``(n, 1)``. Returns False, having
    written nothing, for a block with a non-finite max or sum (nan, inf, overflow): the caller
    then runs the generic kernel on it, which implements the IEEE rules.
    """
    n, k = x.shape
    # A few rows go row-wise whatever their length: transposing pays only across many rows,
    # and the transposed float64 sums cost k ufunc calls per block.
    small = k <= SMALL_K and n >= 16
    shape = (k, n) if small else (n, k)
    z = x.T if small else x
    if small or t != 1.0:
        zc = scratch("z", shape, cdt)
        if t != 1.0:
            np.divide(z, t, out=zc, dtype=cdt)
        else:
            np.copyto(zc, z)
        z = zc
    if small:
        m = np.max(z, axis=0, keepdims=True).astype(cdt, copy=False)
    else:
        # argmax (faster than max here) also locates the max term to take out of the sum.
        at = (np.arange(n), np.argmax(z, axis=1))
        m = z[at].astype(cdt)[:, None]
    if not np.isfinite(m).all():
        return False
    w = scratch("w", shape, cdt)
    np.subtract(z, m, out=w, dtype=cdt)
    lo = tmp = None
    if compensate:
        # TwoSum: lo is the exact rounding error of w = z - m.
        lo = scratch("lo", shape, cdt)
        tmp = scratch("tmp", shape, cdt)
        np.subtract(w, z, out=lo)
        np.subtract(w, lo, out=tmp)
        np.subtract(z, tmp, out=tmp)
        np.subtract(-m, lo, out=lo)
        np.add(lo, tmp, out=lo)
    ismax = None
    if small:
        # z - m is 0 exactly where z == m (gradual underflow), so this marks every max entry,
        # as 1.0: subtracting and adding it is exact and much faster than a masked copy.
        ismax = scratch("ismax", shape, cdt)
        np.equal(w, 0.0, out=ismax, casting="unsafe")
    e = scratch("e", shape, cdt) if kind == "log_softmax" else w
    np.exp(w, out=e)
    # The wide float64 softmax keeps e = exp(z - m) and e * lo apart, and folds lo into the
    # final correction with the rounding error of 1 + rest: one rounding fewer on each side.
    split = lo is not None and tmp is not None and not small and kind == "softmax"
    if lo is not None and tmp is not None:
        np.multiply(e, lo, out=tmp)
        if not split:
            np.add(e, tmp, out=e)
    if ismax is not None:
        np.subtract(e, ismax, out=e)  # exp(0) - 1 = 0 at the max entries
        if lo is not None:
            rest = _compensated_column_sums(e, scratch("colsum", (5, n), cdt))
        else:
            rest = np.add.reduce(e, axis=0, keepdims=True)
        rest += np.add.reduce(ismax, axis=0, keepdims=True) - 1.0
    else:
        # Tied maxima other than the argmax stay in the sum as exact 1.0s: that is c - 1.
        e[at] = 0.0
        if lo is not None and tmp is not None:
            rest = _split_row_sums(e, scratch("split", shape, cdt))
            if split:
                rest += np.add.reduce(tmp, axis=1, keepdims=True)
        else:
            rest = np.add.reduce(e, axis=1, keepdims=True)
    if not np.isfinite(rest).all():
        return False
    dest = out.T if small and kind != "logsumexp" else out
    if split and lo is not None and tmp is not None:
        # p = e (1 + lo) / (s_hi + s_lo), s_hi + s_lo = 1 + rest exactly (TwoSum), is
        # q (1 + lo - s_lo / s_hi) to first order, with q = e / s_hi rounded once.
        s_hi = 1.0 + rest
        bb = s_hi - rest
        s_lo = (1.0 - bb) + (rest - (s_hi - bb))
        e[at] = 1.0
        np.divide(e, s_hi, out=dest)
        np.subtract(lo, s_lo / s_hi, out=tmp)
        np.multiply(tmp, dest, out=tmp)
        np.add(dest, tmp, out=dest)
    elif kind == "softmax":
        if ismax is not None:
            np.add(e, ismax, out=e)
        else:
            e[at] = 1.0
        rest += 1.0
        if np.dtype(cdt).itemsize > out.dtype.itemsize:
            # One extra float64 rounding vanishes when the result is rounded to float32.
            np.multiply(e, np.reciprocal(rest, out=rest), out=dest, casting="same_kind")
        else:
            np.divide(e, rest, out=dest)
    elif kind == "log_softmax":
        lse = np.log1p(rest, out=rest)
        if lo is not None:
            np.subtract(w, lse, out=w)
            np.add(w, lo, out=dest)
        else:
            np.subtract(w, lse, out=dest, casting="same_kind")
    else:
        r = m.reshape(-1, 1) + np.log1p(rest).reshape(-1, 1)
        if cdt == np.float64:
            r = _logsumexp_refine(x.astype(cdt, copy=False), None, r)
        out[...] = r
    return True


def _block_elements(nb: Any) -> int:
    return BLOCK_ELEMENTS if nb is None else FUSED_BLOCK_ELEMENTS


#: Adding and subtracting this rounds a number in [0, 1] to a multiple of 2**-30.
_SPLIT = 1.5 * 2.0**22


def _split_row_sums(e: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Row sums of terms in [0, 1] for the float64 bound, using `hi` as a work buffer.

    NumPy sums a row of up to 128 entries in 8 sequential accumulators, which costs the
    float64 softmax up to 3.3 ULP on rows of a few hundred entries. The terms are split into
    a multiple of 2**-30 (whose sum is exact) and a remainder below 2**-31 (whose rounding
    errors are 2**-31 smaller), so the sum is within about one rounding.
    """
    np.add(e, _SPLIT, out=hi)
    hi -= _SPLIT
    exact = np.add.reduce(hi, axis=1, keepdims=True)
    np.subtract(e, hi, out=hi)
    return exact + np.add.reduce(hi, axis=1, keepdims=True)


def _compensated_column_sums(e: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Column sums of a ``(k, n)`` block, ``(1, n)``, with TwoSum compensation; `work` is
    ``(5, n)`` scratch.

    NumPy reduces the leading axis one row after the other: k - 1 roundings in sequence,
    which cost the transposed float64 log_softmax up to 4 ULP on rows of 31 entries (a
    contiguous row alone is summed pairwise, and the same row was exact by itself; pairwise
    sums across the block still left 2.5 ULP). The rounding error of each addition is kept
    and added back once, as in Kahan's method.
    """
    s, comp, t, bb, tmp = work
    np.copyto(s, e[0])
    comp.fill(0.0)
    for j in range(1, e.shape[0]):
        v = e[j]
        # t = s + v, exactly t + (s - (t - bb)) + (v - bb) with bb = t - s (TwoSum).
        np.add(s, v, out=t)
        np.subtract(t, s, out=bb)
        np.subtract(t, bb, out=tmp)
        np.subtract(s, tmp, out=tmp)
        comp += tmp
        np.subtract(v, bb, out=tmp)
        comp += tmp
        s, t = t, s
    return (s + comp)[None, :]


_KIND = {"_softmax_kernel": "softmax", "_log_softmax_kernel": "log_softmax"}
_FUSED_KIND = {"softmax": 0, "log_softmax": 1, "logsumexp": 2}
#: The optional fused kernels (numba), used on C-contiguous float32/float64 blocks.
_FORWARD = "sigmax._numba_forward"
_SHORT = "sigmax._numba_short"
_COLUMNS = "sigmax._numba_columns"
#: softmax and log_softmax along an axis that is not the last run on the column kernels
#: when at least this many slices lie side by side in memory (the product of the axes after
#: `axis`): they vectorize across those slices. Fewer side by side, the axis is moved last.
COLUMNS_MIN_WIDTH = 16
#: ... and when the slices are at most this long: beyond, a chunk of columns no longer fits
#: in L2 and moving the axis last measured faster (softmax over axis 0 of 2 * 10^7 float32
#: entries: 0.34x the moved path's time at 21 entries a slice, 0.84x at 1,000, 1.38x at
#: 3,000; `benchmarks/results/functions.md`).
COLUMNS_MAX_K = 1024
#: Slices per call of the column kernel (one block of `block_rows` each).
_COLUMNS_PER_CALL = 1 << 13
#: Shorter slices stay on the NumPy path, which runs them transposed at SIMD speed across
#: rows; the fused kernels vectorize along a slice. (Tests set it to 0 to run every case on
#: the fused kernels.)
FUSED_MIN_K = SMALL_K + 1
#: Longer softmax slices also take the short-row kernel where it measured faster than the
#: row kernel (single-threaded, 10^7 entries; `benchmarks/results/functions.md`): float32
#: "fast" at every length measured, 10 to 50,000 (its flat float32 exps: 4.0 against 5.5 ms
#: at 50,000); float32 accurate up to 160; float64 (either precision) up to 100. Its
#: accuracy is tested at every length (the "short" test backend). FUSED_MIN_K = 0 (tests:
#: every slice on the row kernel) turns this off.
SHORT_SOFTMAX_MAX_K = {"float32 fast": 1 << 62, "float32": 160, "float64": 100}


def _prepare(
    x: Any, axis: Axis, where: Any, temperature: float
) -> tuple[Array, Namespace, Any, Any, Array, Array | None, Any, Any, float]:
    x, xp = namespace(x)
    dtype = result_dtype(x, xp)
    cdt = compute_dtype(dtype, xp, x)
    t = check_positive_scalar(temperature, "temperature")
    valid = check_where(where, x, xp) if where is not None else None
    y, restore, restore_reduced = moveaxes_last(x, axis, xp)
    v = moveaxes_last(valid, axis, xp)[0] if valid is not None else None
    return x, xp, dtype, cdt, y, v, restore, restore_reduced, t


def _short_softmax_max_k(dtype: Any, precision: str) -> int:
    if dtype == np.float64:
        return SHORT_SOFTMAX_MAX_K["float64"]
    return SHORT_SOFTMAX_MAX_K["float32 fast" if precision == "fast" else "float32"]


def _fused_route(kind: str, k: int, t: float, dtype: Any, precision: str) -> str | None:
    """The fused kernel module for rows of `k` entries without a mask, or None (the NumPy
    path). Short rows have kernels of their own (`sigmax._numba_short`): softmax, and
    log_softmax and logsumexp at temperature 1 (their log1p covers rows of up to 64).
    float64 log_softmax of short rows at other temperatures takes the row kernel, faster
    than the NumPy path's compensated sums across a transposed block. Longer softmax slices
    take the short kernel too, up to `SHORT_SOFTMAX_MAX_K`."""
    if 2 <= k < FUSED_MIN_K and (kind == "softmax" or (t == 1.0 and k <= SMALL_K)):
        return _SHORT
    if kind == "softmax" and FUSED_MIN_K and k <= _short_softmax_max_k(dtype, precision):
        return _SHORT
    if k >= FUSED_MIN_K or (
        kind == "log_softmax" and dtype == np.float64 and precision == "accurate"
    ):
        return _FORWARD
    return None


def _fused_rows(
    nb: Any,
    short: bool,
    kind: str,
    x2: np.ndarray,
    r2: np.ndarray,
    t: float,
    precision: str,
    refine: bool,
) -> bool:
    """`kind` of the rows of `x2` into `r2` on the fused module `nb` (`short`: the short-row
    one); False, `r2` partly written, when a kernel declines the block (a nan or an
    infinity). `refine`: logsumexp's float64 rows that cancelled are recomputed."""
    fast = precision == "fast"
    if short and kind == "softmax":
        return bool(nb.short_softmax(x2, r2, t, fast))
    if short and kind == "log_softmax":
        return bool(nb.short_log_softmax(x2, r2, fast))
    if short:
        # The kernel finds the rows that cancelled: only those are refined.
        cancelled = nb.short_logsumexp(x2, r2)
        if cancelled is None:
            return False
        if cancelled.size:
            r2[cancelled] = _logsumexp_refine(x2[cancelled], None, r2[cancelled])
        return True
    if not nb.rows_forward(x2, r2, _FUSED_KIND[kind], t, fast):
        return False
    if refine:
        r2[...] = _logsumexp_refine(x2, None, r2)
    return True


def _small_call(
    x: Any, axis: Axis, where: Any, t: Any, kind: str, out: Any, precision: str
) -> np.ndarray | None:
    """softmax or log_softmax of a small C-contiguous float32/float64 NumPy array along its
    last axis, straight to the fused kernel that the general path would pick: its argument
    handling costs about 10 us a call, more than the work on one sample. None when the call
    is not that simple (or the kernel declines it): the general path then takes it, and
    validates what this skipped."""
    if not (small_numpy(x, precision) and small_along_last(x, axis, where, t)):
        return None
    k = x.shape[-1]
    route = _fused_route(kind, k, float(t), x.dtype, precision)
    if route is None:
        return None
    if (res := small_out(x, out)) is None:
        return None
    nb = fused(route)  # small_numpy and small_out checked the arrays
    x2, r2 = (x, res) if x.ndim == 2 else (x.reshape(-1, k), res.reshape(-1, k))
    if nb is None or not _fused_rows(nb, route == _SHORT, kind, x2, r2, float(t), precision, False):
        return None
    return res


def _small_logsumexp(x: Any, axis: Axis, where: Any, keepdims: bool) -> np.ndarray | None:
    """`_small_call` for logsumexp of a small array of at least two axes (one axis gives a
    NumPy scalar: the general path returns it)."""
    if not (small_numpy(x, "accurate") and x.ndim > 1 and small_along_last(x, axis, where, 1.0)):
        return None
    k = x.shape[-1]
    route = _fused_route("logsumexp", k, 1.0, x.dtype, "accurate")
    if route is None:
        return None
    res = np.empty((*x.shape[:-1], 1), dtype=x.dtype)
    x2, r2 = x.reshape(-1, k), res.reshape(-1, 1)
    if (nb := fused(route)) is None or not _fused_rows(
        nb, route == _SHORT, "logsumexp", x2, r2, 1.0, "accurate", True
    ):
        return None
    return res if keepdims else res[..., 0]


def column_geometry(x: np.ndarray, axis: Axis, dtype: Any) -> tuple[int, int, int] | None:
    """``(N, C, S)`` when the column kernels (:mod:`sigmax._numba_columns`) may take `x`
    along `axis`: a C-contiguous float32/float64 array of `dtype`, one axis that is not the
    last, at least `COLUMNS_MIN_WIDTH` slices side by side and slices of at most
    `COLUMNS_MAX_K`; else None. `x` is then ``(N, C, S)``, the slices the columns of each
    ``(C, S)`` block."""
    if x.dtype != dtype or dtype.char not in "fd" or not x.flags.c_contiguous or x.ndim < 2:
        return None
    axes = check_axis(axis, x.ndim)
    if len(axes) != 1 or axes[0] == x.ndim - 1:
        return None
    ax = axes[0]
    n, c, s = math.prod(x.shape[:ax]), x.shape[ax], math.prod(x.shape[ax + 1 :])
    if s < COLUMNS_MIN_WIDTH or c > COLUMNS_MAX_K or n * c * s == 0:
        return None
    return n, c, s


def run_columns(n: int, c: int, s: int, call: Any) -> bool:
    """``call(i, s0, s1)`` (a column kernel on the columns ``s0 .. s1`` of block `i`) over
    all of an ``(N, C, S)`` array, in units of up to `_COLUMNS_PER_CALL` columns on the
    threads of `block_rows`; False when a call declined (a nan or an infinity)."""
    per = max(1, min(s, _COLUMNS_PER_CALL))
    parts = -(-s // per)
    declined: list[bool] = []

    def run(units: slice) -> None:
        for u in range(units.start, units.stop):
            i, a = divmod(u, parts)
            if not call(i, a * per, min(s, (a + 1) * per)):
                declined.append(True)
                return

    block_rows(n * parts, c * per, run, block_elements=FUSED_BLOCK_ELEMENTS)
    return not declined


def _columns_logsumexp(x: np.ndarray, axis: Axis, dtype: Any) -> np.ndarray | None:
    """logsumexp of `x` along `axis` on the column kernels (`column_geometry`), shaped as
    `x` without `axis`; the float64 results that cancelled (``m < 0`` and ``log1p(rest)``
    of the same size) are refined as on the general path, from their slices alone. None
    where the kernels do not apply or decline."""
    geometry = column_geometry(x, axis, dtype)
    if geometry is None:
        return None
    n, c, s = geometry
    res = np.empty((n, s), dtype=dtype)
    m = np.empty((n, s))
    nb = fused(_COLUMNS, x, res)
    if nb is None:
        return None
    x3 = x.reshape(n, c, s)

    def call(i: int, s0: int, s1: int) -> bool:
        return bool(nb.columns_logsumexp(x3, res, m, i, s0, s1))

    if not run_columns(n, c, s, call):
        return None
    if dtype == np.float64:
        i, j = np.nonzero(_cancelled(m, res))
        if i.size:
            res[i, j] = _logsumexp_refine(x3[i, :, j], None, res[i, j][:, None])[:, 0]
    ax = check_axis(axis, x.ndim)[0]
    return res.reshape(x.shape[:ax] + x.shape[ax + 1 :])


def _columns_call(
    x: np.ndarray,
    axis: Axis,
    kind: str,
    t: float,
    dtype: Any,
    precision: str,
    out: np.ndarray | None,
) -> np.ndarray | None:
    """softmax or log_softmax of `x` along `axis` on the column kernels (`column_geometry`),
    or None when they do not apply (numba missing or disabled too) or decline the array
    (a nan or an infinity): the general path takes it."""
    geometry = column_geometry(x, axis, dtype)
    if geometry is None:
        return None
    n, c, s = geometry
    res = (
        out
        if isinstance(out, np.ndarray)
        and out.shape == x.shape
        and out.dtype == dtype
        and out.flags.c_contiguous
        and not np.may_share_memory(out, x)
        else np.empty(x.shape, dtype=dtype)
    )
    nb = fused(_COLUMNS, x, res)
    if nb is None:
        return None
    x3, r3 = x.reshape(n, c, s), res.reshape(n, c, s)
    k, fast = _FUSED_KIND[kind], precision == "fast"

    def call(i: int, s0: int, s1: int) -> bool:
        return bool(nb.columns_forward(x3, r3, k, t, fast, i, s0, s1))

    return res if run_columns(n, c, s, call) else None


def _along_axis(
    x: Any,
    axis: Axis,
    where: Any,
    temperature: float,
    kernel: Any,
    *,
    reduce: bool = False,
    keepdims: bool = False,
    empty_value: float = 0.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    """Apply ``kernel(_Parts)`` to every slice along `axis`, on NumPy blocks or generically."""
    x, xp, dtype, cdt, y, v, restore, restore_reduced, t = _prepare(x, axis, where, temperature)
    # The compensated difference only matters when the input already has the compute
    # precision; float32 inputs differ exactly enough in float64. "fast" skips it.
    compensate = dtype == cdt and precision == "accurate"
    cdt = _fast_dtype(dtype, cdt, xp, precision)
    k = y.shape[-1]
    lead = tuple(y.shape[:-1])
    out_shape = lead if reduce else tuple(y.shape)

    def scaled(z: Array, ns: Namespace) -> Array:
        z = ns.astype(z, cdt)
        return z / t if t != 1.0 else z

    if k and v is None and is_numpy(xp):
        # A C-contiguous array along an axis that is not the last: the column kernels.
        if reduce:
            if (cols := _columns_logsumexp(x, axis, dtype)) is not None:
                return unwrap_scalar(restore_reduced(cols, keepdims), xp)
        elif (
            cols := _columns_call(x, axis, _KIND[kernel.__name__], t, dtype, precision, out)
        ) is not None:
            if out is not None and cols is not out:
                np.copyto(check_out(out, tuple(x.shape), dtype, xp), cols)
                return out
            return cols
    if k == 0:
        res = xp.full(out_shape, empty_value, dtype=dtype, device=array_api_compat.device(x))
    elif not is_numpy(xp):
        kind = "logsumexp" if reduce else _KIND[kernel.__name__]
        # CuPy arrays and torch CUDA tensors: one fused kernel instead of one per operation.
        res = None if v is not None else _cuda_forward.rows_forward(y, kind, t, precision)
        if res is None:
            z = scaled(y, xp)
            # NumPy-backed namespaces (strict, Dask) warn on inf - inf.
            with np.errstate(all="ignore"):
                res = xp.astype(kernel(_Parts(z, v, xp, compensate), xp), dtype)
            if reduce:
                res = xp.reshape(res, out_shape)
    else:
        y2 = np.reshape(y, (-1, k))
        if y2.dtype.kind in "biu":
            # Integers and bools take the same kernels as the float64 they promote to.
            y2 = y2.astype(dtype)
        v2 = None if v is None else np.reshape(v, (-1, k))
        kind = "logsumexp" if reduce else _KIND[kernel.__name__]
        # Write straight into a C-contiguous `out` when the reduced axis is already last,
        # unless `out` overlaps the input: the kernels re-read a row after writing into it,
        # and a block that a kernel declines (a nan or an infinity) is recomputed from it.
        direct = (
            out is not None
            and not reduce
            and x.ndim >= 1
            and check_axis(axis, x.ndim) == (x.ndim - 1,)
            and isinstance(out, np.ndarray)
            and out.flags.c_contiguous
            and not np.may_share_memory(out, x)
        )
        if direct:
            res2 = check_out(out, tuple(x.shape), dtype, xp).reshape(-1, k)
        else:
            res2 = np.empty((y2.shape[0], 1 if reduce else k), dtype=dtype)

        route = _fused_route(kind, k, t, y2.dtype, precision) if v2 is None else None
        nb = fused(route, y2, res2) if route is not None else None
        refine = reduce and cdt == np.float64

        def fused_block(nb: Any, rows: slice) -> bool:
            return _fused_rows(
                nb, route == _SHORT, kind, y2[rows], res2[rows], t, precision, refine
            )

        def run(rows: slice) -> None:
            if nb is not None and fused_block(nb, rows):
                return
            if v2 is None and _np_rows_block(y2[rows], res2[rows], kind, t, cdt, compensate):
                return
            z = scaled(y2[rows], np)
            vb = None if v2 is None else v2[rows]
            r = kernel(_Parts(z, vb, np, compensate), np)
            if reduce and cdt == np.float64:
                r = _logsumexp_refine(z, vb, r)
            res2[rows] = r

        with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
            block_rows(y2.shape[0], k, run, block_elements=_block_elements(nb))
        res = res2.reshape(out_shape)
        if direct:
            return out
    res = restore_reduced(res, keepdims) if reduce else restore(res)
    if out is not None:
        target = check_out(out, tuple(res.shape), dtype, xp)
        np.copyto(target, res)
        return target
    return unwrap_scalar(res, xp)


def _dask_blockwise(
    fn: Any,
    x: Any,
    axis: Axis,
    where: Any,
    *,
    reduce: bool = False,
    keepdims: bool = False,
    **options: Any,
) -> Array | None:
    """Map `fn` over a Dask array's blocks, with every reduced axis in one chunk.

    Each block then takes the NumPy fast path (cache-sized, threaded, warning-free), and the
    result stays lazy. Returns None for non-Dask input and for unknown chunk sizes, which go
    to the generic Array API path.
    """
    if not array_api_compat.is_dask_array(x) or x.ndim == 0:
        return None
    x, xp = namespace(x)
    axes = check_axis(axis, x.ndim)
    if any(np.isnan(c) for c in x.shape):
        return None
    import dask.array as da

    # A slice must sit in one block; other axes keep their chunks (Dask's own softmax does the
    # same). The blocks' work is then exact and lazy, and nothing computes outside errstate.
    if any(x.numblocks[a] > 1 for a in axes):
        x = x.rechunk({a: -1 for a in axes})

    dtype = np.dtype(result_dtype(x, xp))
    args = [x]
    if where is not None:
        args.append(da.asarray(check_where(where, x, xp)).rechunk(x.chunks))

    def block(b: np.ndarray, m: np.ndarray | None = None) -> np.ndarray:
        extra = {"keepdims": keepdims} if reduce else {}
        return np.asarray(fn(b, axis=axes, where=m, **extra, **options), dtype=dtype)

    if not reduce:
        return da.map_blocks(block, *args, dtype=dtype)
    if keepdims:
        chunks = tuple((1,) if a in axes else c for a, c in enumerate(x.chunks))
        return da.map_blocks(block, *args, chunks=chunks, dtype=dtype)
    return da.map_blocks(block, *args, drop_axis=axes, dtype=dtype)


def softmax(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Softmax along `axis`.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i / T}}{\sum_j e^{x_j / T}}

    Parameters
    ----------
    x : array, shape (..., n, ...)
        Logits. Any Array API array; integers and bools promote to the default float.
    axis : int, tuple of ints or None, default=-1
        The axes that are normalized together. ``None`` normalizes over all entries.
    where : bool array broadcastable to `x`, optional
        Entries that take part. Masked entries get probability 0.
    temperature : float, default=1.0
        :math:`T > 0`; logits are divided by it.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 input in float32 and skips the compensated difference
        (see Notes). Small probabilities then lose relative accuracy in proportion to
        ``|x - max(x)|``, as in other libraries: entry ``i`` is within about
        ``|x_i - max(x)| + 6`` ULP, measured up to 66 ULP for float32 with ``|x| <= 100``,
        130 for float64 with ``|x| <= 100`` and 512 for float64 with ``|x| <= 700``. It still
        never overflows, keeps ``log1p`` and the max term exact, and gives subnormals, not
        false zeros.

    Returns
    -------
    array, shape of `x`
        Probabilities summing to 1 along `axis`, in `x`'s namespace, device and float dtype.

    Raises
    ------
    TypeError
        For complex input, a non-boolean `where` or a non-integer `axis`.
    ValueError
        For an out-of-range `axis`, a `where` that does not broadcast, or ``temperature <= 0``.

    Notes
    -----
    Stability: with :math:`m = \max x`, every exponent :math:`x_j - m \le 0`, so nothing
    overflows, and the max entry contributes exactly 1. For float64 input the difference
    :math:`x_j - m` is carried with its rounding error (TwoSum), which keeps small probabilities
    accurate to a few ULP where naive code loses hundreds. Accuracy: <= 1 ULP for
    float16/float32, <= 3 ULP for float64 (``temperature=1``).

    IEEE rules: a nan in a slice makes that slice nan. ``+inf`` entries share the slice's mass
    equally. A fully masked slice, or one whose entries are all ``-inf``, gives zeros.
    CuPy arrays and torch CUDA tensors run fused CUDA kernels when CuPy is installed
    (:mod:`sigmax._cuda_forward`; not with `where`), computed in float64 for both precisions.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax([1.0, 2.0, 3.0])
    array([0.09003057, 0.24472847, 0.66524096])
    >>> sigmax.softmax([0.0, 1000.0, 300.0])  # no overflow, no false zero
    array([0.00000000e+000, 1.00000000e+000, 9.85967654e-305])
    """
    if (r := _small_call(x, axis, where, temperature, "softmax", out, precision)) is not None:
        return r
    if (
        out is None
        and (
            r := _dask_blockwise(
                softmax, x, axis, where, temperature=temperature, precision=precision
            )
        )
        is not None
    ):
        return r
    return _along_axis(x, axis, where, temperature, _softmax_kernel, out=out, precision=precision)


def log_softmax(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Logarithm of the softmax along `axis`.

    .. math:: \operatorname{log\_softmax}(x)_i = x_i / T - \log \sum_j e^{x_j / T}

    Parameters
    ----------
    x : array, shape (..., n, ...)
        Logits. Any Array API array.
    axis : int, tuple of ints or None, default=-1
    where : bool array broadcastable to `x`, optional
        Entries that take part. Masked entries give ``-inf``.
    temperature : float, default=1.0
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        As for :func:`softmax`: ``"fast"`` trades the last ULPs for speed (within about
        ``max |x - max(x)| + 6`` ULP) but still uses ``log1p``, never ``log(1 + S)``. One
        float32 exception: where the other entries' exps fall below float32's normal range
        (``x_j - max(x) < -87``) while their sum does not, the max entry (a log-probability
        near ``-1e-38``) may be off by up to about ``k`` ULP more.

    Returns
    -------
    array, shape of `x`
        Log-probabilities (<= 0).

    Notes
    -----
    With :math:`z = x - \max(x)` every exponent is <= 0 and the max term is exactly 1, so
    :math:`\log \sum_j e^{z_j} = \operatorname{log1p}(r)`, where :math:`r` sums the other terms.
    A common offset cancels exactly and the largest entry keeps full relative accuracy:
    ``log_softmax([0, -100])[0]`` is ``-3.72e-44``, where ``log(1 + r)`` gives 0. Accuracy:
    <= 1 ULP for float16/float32, <= 3 ULP for float64. A fully masked slice gives ``-inf``.
    CuPy arrays and torch CUDA tensors run fused CUDA kernels when CuPy is installed
    (:mod:`sigmax._cuda_forward`; not with `where`), computed in float64 for both precisions.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.log_softmax([0.0, -100.0])
    array([-3.72007598e-44, -1.00000000e+02])
    >>> import numpy as np
    >>> sigmax.log_softmax(np.float32([0.0, -100.0]), precision="fast")  # still log1p
    array([-3.8e-44, -1.0e+02], dtype=float32)
    """
    if (r := _small_call(x, axis, where, temperature, "log_softmax", out, precision)) is not None:
        return r
    if (
        out is None
        and (
            r := _dask_blockwise(
                log_softmax, x, axis, where, temperature=temperature, precision=precision
            )
        )
        is not None
    ):
        return r
    return _along_axis(
        x, axis, where, temperature, _log_softmax_kernel, out=out, precision=precision
    )


def logsumexp(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    keepdims: bool = False,
    where: Any = None,
) -> Array:
    r"""Log of the sum of exponentials along `axis`.

    .. math:: \operatorname{logsumexp}(x) = \log \sum_j e^{x_j}
              = m + \operatorname{log1p}\Big(\sum_{j \ne j^*} e^{x_j - m}\Big)

    Parameters
    ----------
    x : array, shape (..., n, ...)
    axis : int, tuple of ints or None, default=-1
    keepdims : bool, default=False
        Keep the reduced axes with length 1.
    where : bool array broadcastable to `x`, optional
        Entries that take part in the sum.

    Returns
    -------
    array
        `x`'s shape without `axis` (or with length-1 axes when `keepdims`).

    Notes
    -----
    The max (and how often it occurs) is pulled out first, so nothing overflows and a common
    offset cancels. An empty axis or a fully masked slice gives ``-inf``, a slice with ``+inf``
    gives ``+inf``, a nan gives nan. Where the result is near 0 it is ill-conditioned
    (:math:`m` and the log term cancel); on NumPy those rows are recomputed in
    ``np.longdouble``. Accuracy: <= 1 ULP for float16/float32, <= 3 ULP for float64.
    CuPy arrays and torch CUDA tensors run fused CUDA kernels when CuPy is installed
    (:mod:`sigmax._cuda_forward`; not with `where`).

    Examples
    --------
    >>> import sigmax
    >>> float(sigmax.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> float(sigmax.logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    """
    if (r := _small_logsumexp(x, axis, where, keepdims)) is not None:
        return r
    r = _dask_blockwise(logsumexp, x, axis, where, reduce=True, keepdims=keepdims)
    if r is not None:
        return r
    return _along_axis(
        x,
        axis,
        where,
        1.0,
        _logsumexp_kernel,
        reduce=True,
        keepdims=keepdims,
        empty_value=-np.inf,
    )


def hardmax(x: Any, /, *, axis: Axis = -1) -> Array:
    r"""One-hot of the argmax along `axis`: the zero-temperature limit of the softmax.

    .. math:: \operatorname{hardmax}(x)_i = [\,i = \min \arg\max_j x_j\,]

    Parameters
    ----------
    x : array, shape (..., n, ...)
    axis : int, tuple of ints or None, default=-1

    Returns
    -------
    array, shape of `x`
        1 at the first maximum of each slice and 0 elsewhere, in `x`'s float dtype. A slice
        holding a nan is all nan.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.hardmax([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    array([[0., 1., 0.],
           [1., 0., 0.]])
    """
    x, xp = namespace(x)
    dtype = result_dtype(x, xp)
    y, restore, _ = moveaxes_last(x, axis, xp)
    k = y.shape[-1]
    if k == 0:
        return restore(xp.astype(y, dtype))
    z = xp.astype(y, dtype)
    idx = xp.argmax(z, axis=-1, keepdims=True)
    cols = xp.arange(k, device=array_api_compat.device(x))
    onehot = xp.astype(cols == idx, dtype)
    hasnan = xp.any(xp.isnan(z), axis=-1, keepdims=True)
    res = xp.where(hasnan, full(xp, (), np.nan, onehot), onehot)
    return restore(res)
