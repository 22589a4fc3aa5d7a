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
   ``logsumexp([-0.5, -0.9]) = 0.013``). On NumPy the rows where the sum cancels are recomputed
   in extended precision (``np.longdouble``, 64-bit significand on x86). On platforms where
   ``longdouble`` is ``float64`` and on other namespaces the error there is bounded by
   ``3 ulp(max(|max x|, log n))`` in absolute terms instead.

The narrow dtypes are computed in float64 and rounded once. float64 is computed with a
compensated difference ``x - max(x)``, so small probabilities keep full relative accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from sigmax._array_api import (
    Array,
    Namespace,
    block_rows,
    compute_dtype,
    full,
    is_numpy,
    moveaxes_last,
    namespace,
    result_dtype,
)
from sigmax._validation import check_out, check_positive_scalar, check_where

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


def _elementwise(x: Any, kernel: Any, name: str, out: np.ndarray | None) -> Array:
    x, xp = namespace(x)
    dtype = result_dtype(x, xp)
    cdt = compute_dtype(dtype, xp, x)
    if not is_numpy(xp):
        if out is not None:
            check_out(out, tuple(x.shape), dtype, xp)
        return xp.astype(kernel(xp.astype(x, cdt), xp), dtype)
    shape = x.shape
    res = np.empty(shape, dtype=dtype) if out is None else check_out(out, shape, dtype, xp)
    flat_in = np.ravel(x)
    flat_out = res.reshape(-1) if res.flags.c_contiguous else np.empty(x.size, dtype=dtype)

    def run(rows: slice) -> None:
        flat_out[rows] = kernel(flat_in[rows].astype(cdt, copy=False), np)

    block_rows(flat_in.size, 1, run)
    if not res.flags.c_contiguous:
        res[...] = flat_out.reshape(shape)
    return res[()] if res.ndim == 0 and out is None else res


def sigmoid(x: Any, /, *, out: np.ndarray | None = None) -> Array:
    r"""Logistic sigmoid, elementwise.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}}

    Parameters
    ----------
    x : array, shape (...)
        Any Array API array, or a Python scalar or list. Integers and bools are promoted to
        the default float.
    out : numpy.ndarray, optional
        NumPy only: where to write the result (same shape, result dtype).

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

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid([0.0, 2.0, -720.0])
    array([5.00000000e-001, 8.80797078e-001, 2.03223080e-313])
    """
    return _elementwise(x, _sigmoid_kernel, "x", out)


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


def _logsumexp_refine(z: np.ndarray, valid: np.ndarray | None, r: np.ndarray) -> np.ndarray:
    """Recompute the rows whose result cancelled (|r| much below |m|) in ``np.longdouble``."""
    m = np.max(np.where(valid, z, -np.inf) if valid is not None else z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(r) & (np.abs(r) < 0.5 * np.abs(m))
    rows = np.flatnonzero(bad.reshape(-1))
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
) -> Array:
    """Apply ``kernel(_Parts)`` to every slice along `axis`, on NumPy blocks or generically."""
    x, xp, dtype, cdt, y, v, restore, restore_reduced, t = _prepare(x, axis, where, temperature)
    # The compensated difference only matters when the input already has the compute
    # precision; float32 inputs differ exactly enough in float64.
    compensate = dtype == cdt
    k = y.shape[-1]
    lead = tuple(y.shape[:-1])
    out_shape = lead if reduce else tuple(y.shape)

    def scaled(z: Array, ns: Namespace) -> Array:
        z = ns.astype(z, cdt)
        return z / t if t != 1.0 else z

    if k == 0:
        res = xp.full(out_shape, empty_value, dtype=dtype, device=array_api_compat.device(x))
    elif not is_numpy(xp):
        z = scaled(y, xp)
        with np.errstate(all="ignore"):  # NumPy-backed namespaces (strict, Dask) warn on inf - inf
            res = xp.astype(kernel(_Parts(z, v, xp, compensate), xp), dtype)
        if reduce:
            res = xp.reshape(res, out_shape)
    else:
        y2 = np.reshape(y, (-1, k))
        v2 = None if v is None else np.reshape(v, (-1, k))
        res2 = np.empty((y2.shape[0], 1 if reduce else k), dtype=dtype)

        def run(rows: slice) -> None:
            z = scaled(y2[rows], np)
            vb = None if v2 is None else v2[rows]
            r = kernel(_Parts(z, vb, np, compensate), np)
            if reduce and cdt == np.float64:
                r = _logsumexp_refine(z, vb, r)
            res2[rows] = r

        with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
            block_rows(y2.shape[0], k, run)
        res = res2.reshape(out_shape)
    res = restore_reduced(res, keepdims) if reduce else restore(res)
    if out is not None:
        target = check_out(out, tuple(res.shape), dtype, xp)
        np.copyto(target, res)
        return target
    if is_numpy(xp) and getattr(res, "ndim", 1) == 0:
        return res[()]
    return res


def softmax(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
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

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax([1.0, 2.0, 3.0])
    array([0.09003057, 0.24472847, 0.66524096])
    >>> sigmax.softmax([0.0, 1000.0, 300.0])  # no overflow, no false zero
    array([0.00000000e+000, 1.00000000e+000, 9.85967654e-305])
    """
    return _along_axis(x, axis, where, temperature, _softmax_kernel, out=out)


def log_softmax(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
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

    Examples
    --------
    >>> import sigmax
    >>> sigmax.log_softmax([0.0, -100.0])
    array([-3.72007598e-44, -1.00000000e+02])
    """
    return _along_axis(x, axis, where, temperature, _log_softmax_kernel, out=out)


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

    Examples
    --------
    >>> import sigmax
    >>> float(sigmax.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> float(sigmax.logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    """
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
