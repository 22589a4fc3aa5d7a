r"""Closed-form derivatives of the functions in :mod:`sigmax.functions`.

Naming: ``*_jvp`` is the Jacobian-vector product :math:`J v` (forward mode, the `tangent` has
the input's shape), ``*_vjp`` is the vector-Jacobian product :math:`J^\top g` (reverse mode, the
`cotangent` has the output's shape) and ``*_jacobian`` builds the explicit tensor. The
``*_from_output`` forms take the saved forward output instead of the logits, so backprop never
recomputes the forward pass.

Every function follows the policy of :mod:`sigmax.functions`: any Array API array in, the same
namespace, device and float dtype out (float16, bfloat16 and float32 are computed in float64 and
rounded once), masked entries (``where=False``) get exactly 0, and a fully masked slice gives
all-zero derivatives.

Accuracy. The softmax Jacobian is :math:`J = (\operatorname{diag}(s) - s s^\top)/T`. Written
directly, :math:`J v = s \odot (v - \langle s, v\rangle)` cancels at the largest entry when its
probability is close to 1 (:math:`s_m (1 - s_m)` is computed as ``s_m * (1 - s_m)``, and
``1 - s_m`` has lost every digit below ``eps / (1 - s_m)``). Only an entry with
:math:`s_m > 1/2` can cancel, and a slice has at most one. sigmax pivots on it: with
:math:`w = v - v_m` (which leaves :math:`J v` unchanged because :math:`\sum_j s_j = 1`),

.. math:: J v = s \odot \big(w - \textstyle\sum_{j \ne m} s_j w_j\big) / T,

and the term at :math:`m` is formed from the small probabilities only, so it keeps full relative
accuracy. The same holds for the ``*_from_output`` forms of the softmax, since the small
probabilities of a saved output are accurate. The sigmoid derivative from the logits is
:math:`\sigma(x)\sigma(-x) = e/(1+e)^2` with :math:`e = e^{-|x|}`, which never cancels.

Speed. With numba installed (``pip install sigmax[numba]``), the derivatives run numba
kernels on C-contiguous float32 and float64 NumPy arrays along the last axis, without masks
(``SIGMAX_DISABLE_NUMBA=1`` turns them off):

- The ``*_from_output`` forms, and the products of the other softmax derivatives, one kernel
  per block (:mod:`sigmax._numba_kernels`): one pass over memory per row, float64 arithmetic
  and one rounding on the store, the NumPy path's results bit for bit except the float64 row
  sums, added in another order (a few rounding errors of that sum). ``precision="fast"``
  float32 rows of the softmax and log_softmax VJPs use float32 arithmetic (1.5x faster at
  ``k = 10``), as the NumPy path's "fast" does.
- From the logits, :func:`softmax_vjp`, :func:`softmax_jvp` and :func:`log_softmax_vjp` on rows
  longer than 64 run one fused kernel per block
  (:func:`sigmax._numba_forward.rows_vjp`): each row's softmax into a scratch row, with the
  forward kernels' ``exp``, then the product while the row is in cache. That softmax is the
  unfused path's bit for bit (float32 input in float64 without compensation, float64 input with
  the compensated difference), and a block with a non-finite row takes the unfused path.
  ``precision="fast"`` takes the same kernel, in float32 arithmetic for float32 input and
  without the compensated difference for float64.
- Shorter rows compute the softmax per block (the short-row kernels of
  :mod:`sigmax._numba_short`, which were 1.3 to 3.3x faster there than the fused kernel), then
  the product kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from sigmax import functions as _fn
from sigmax._array_api import (
    BLOCK_ELEMENTS,
    FUSED_BLOCK_ELEMENTS,
    Array,
    Namespace,
    block_rows,
    compute_dtype,
    fused,
    is_numpy,
    moveaxes_last,
    namespace,
    plain_ndarray,
    result_dtype,
    scratch,
    small_along_last,
    small_numpy,
    small_out,
)
from sigmax._validation import (
    check_axis,
    check_out,
    check_positive_scalar,
    check_real_input,
    check_real_numpy_dtype,
    check_where,
)
from sigmax.functions import softmax

__all__ = [
    "log_softmax_jvp",
    "log_softmax_vjp",
    "logsumexp_jvp",
    "logsumexp_vjp",
    "sigmoid_jvp",
    "sigmoid_jvp_from_output",
    "sigmoid_vjp",
    "sigmoid_vjp_from_output",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_jvp_from_output",
    "softmax_vjp",
    "softmax_vjp_from_output",
]

Axis = int | Sequence[int] | None
# core(s, v, valid, xp, t) on (..., k) arrays in the compute dtype.
Core = Callable[[Array, Array, Array | None, Namespace, float], Array]


# --------------------------------------------------------------------------------------------
# Operands
# --------------------------------------------------------------------------------------------


def _operand(v: Any, x: Array, xp: Namespace, name: str, x_name: str) -> tuple[Array, bool]:
    """Bring a tangent or cotangent into `x`'s namespace and device.

    Returns ``(array, weak)``. Python scalars and lists are *weak*: they carry no dtype of their
    own and take the result dtype of `x`, as Python scalars do in Array API promotion.
    """
    if type(v) is np.ndarray and type(x) is np.ndarray:
        # Both NumPy: the common case, without array-api-compat's dispatch.
        check_real_numpy_dtype(v.dtype, name)
        return v, False
    if isinstance(v, np.ndarray) and type(v) is not np.ndarray:
        v = plain_ndarray(v, name)
    weak = isinstance(v, (list, tuple, int, float, bool))
    if weak or isinstance(v, np.generic) or not array_api_compat.is_array_api_obj(v):
        try:
            v = np.asarray(v)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"`{name}` must be an array or a nested sequence of numbers, "
                f"got {type(v).__name__}: {exc}"
            ) from None
        if v.dtype.kind not in "fiub":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {v.dtype}")
        if not is_numpy(xp):
            v = xp.asarray(v, device=array_api_compat.device(x))
    else:
        try:
            array_api_compat.array_namespace(x, v)
        except TypeError:
            raise TypeError(
                f"`{name}` must be an array of the same library as `{x_name}` "
                f"({type(x).__module__}.{type(x).__name__}), got "
                f"{type(v).__module__}.{type(v).__name__}"
            ) from None
    check_real_input(v, xp, name)
    return v, weak


def _check_shape(v: Array, expected: tuple[int, ...], name: str, what: str) -> None:
    if tuple(v.shape) != tuple(expected):
        raise ValueError(f"`{name}` must have {what} {tuple(expected)}, got shape {tuple(v.shape)}")


def _out_dtype(x: Array, v: Array, weak: bool, xp: Namespace) -> Any:
    dtype = result_dtype(x, xp)
    if type(v) is np.ndarray:
        return dtype if weak or v.dtype.kind != "f" else np.result_type(dtype, v.dtype)
    if weak or not xp.isdtype(v.dtype, "real floating"):
        return dtype
    return xp.result_type(dtype, v.dtype)


def _compute_dtype(dtype: Any, xp: Namespace, x: Array, precision: str) -> Any:
    """The dtype to compute in: float64 for the narrow dtypes ("accurate"), or float32 for
    them and float64 for float64 ("fast", the policy of :mod:`sigmax.functions`)."""
    if precision == "accurate":
        return compute_dtype(dtype, xp, x)
    if precision != "fast":
        raise ValueError(f"`precision` must be 'accurate' or 'fast', got {precision!r}")
    if dtype in (xp.float32, xp.float64) or not hasattr(xp, "float32"):
        return dtype
    return xp.float32


#: Elements per call of an elementwise numba kernel (one block of `block_rows` each).
_NB_CHUNK = 1 << 18


def _numba(*arrays: np.ndarray) -> ModuleType | None:
    """:mod:`sigmax._numba_kernels` when its fused kernels may run on `arrays`, else None."""
    return fused("sigmax._numba_kernels", *arrays)


def _finish_numpy(res: np.ndarray, out: np.ndarray | None) -> Array:
    if out is not None:
        return out
    return res[()] if res.ndim == 0 else res


def _small_pair(x: Any, v: Any, precision: str) -> bool:
    """`x` a small simple NumPy array (`sigmax._array_api.small_numpy`) and `v` one of its
    shape and dtype, C-contiguous."""
    return (
        small_numpy(x, precision)
        and type(v) is np.ndarray
        and v.shape == x.shape
        and v.dtype == x.dtype
        and v.flags.c_contiguous
    )


# --------------------------------------------------------------------------------------------
# Elementwise: the sigmoid
# --------------------------------------------------------------------------------------------


def _sigmoid_prime(z: Array, v: Array, xp: Namespace) -> Array:
    # sigma(z) sigma(-z) = e / (1 + e)^2 with e = exp(-|z|) <= 1: no overflow, no cancellation.
    e = xp.exp(-xp.abs(z))
    d = 1.0 + e
    return e / (d * d) * v


def _sigmoid_prime_from_output(s: Array, v: Array, xp: Namespace) -> Array:
    return s * (1.0 - s) * v


def _as_compute(a: np.ndarray, cdt: Any, slot: str) -> np.ndarray:
    """`a` in the compute dtype: a view when it already is, else a per-thread buffer.

    One explicit cast pass, so that every ufunc after it runs on a single dtype: mixed-dtype
    ufuncs (``dtype=`` or a float32 ``out``) go through buffered casts, several times slower.
    """
    if a.dtype == cdt:
        return a
    buf = scratch(slot, a.shape, cdt)
    np.copyto(buf, a, casting="unsafe")
    return buf


def _store(r: np.ndarray, out: np.ndarray) -> None:
    """Round the compute-dtype result `r` into `out` (a no-op when `r` is `out`)."""
    if r is not out:
        np.copyto(out, r, casting="same_kind")


def _np_sigmoid_prime(z: np.ndarray, v: np.ndarray, out: np.ndarray, cdt: Any) -> None:
    # In place on per-thread buffers, all in the compute dtype.
    z = _as_compute(z, cdt, "dv.z")
    v = _as_compute(v, cdt, "dv.v")
    e = scratch("dv.e", z.shape, cdt)
    d = scratch("dv.d", z.shape, cdt)
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=d)
    np.multiply(d, d, out=d)
    np.divide(e, d, out=e)
    r = out if out.dtype == cdt else e
    np.multiply(e, v, out=r)
    _store(r, out)


def _np_sigmoid_prime_from_output(s: np.ndarray, v: np.ndarray, out: np.ndarray, cdt: Any) -> None:
    s = _as_compute(s, cdt, "dv.z")
    v = _as_compute(v, cdt, "dv.v")
    b = out if out.dtype == cdt else scratch("dv.b", s.shape, cdt)
    np.subtract(1.0, s, out=b)
    np.multiply(b, s, out=b)
    np.multiply(b, v, out=b)
    _store(b, out)


_NP_ELEMENTWISE: dict[Callable[..., Array], Callable[..., None]] = {
    _sigmoid_prime: _np_sigmoid_prime,
    _sigmoid_prime_from_output: _np_sigmoid_prime_from_output,
}
#: The fused numba kernels of the elementwise cores: (module, function). "fast" runs them
#: too: they stream close to memory speed, so computing in float64 costs nothing there, and
#: they beat the float32 NumPy path.
_NB_ELEMENTWISE: dict[Callable[..., Array], tuple[str, str]] = {
    _sigmoid_prime: ("sigmax._numba_forward", "sigmoid_prime"),
    _sigmoid_prime_from_output: ("sigmax._numba_kernels", "sigmoid_prime_from_output"),
}


def _elementwise(
    x: Any,
    v: Any,
    core: Callable[[Array, Array, Namespace], Array],
    x_name: str,
    v_name: str,
    out: np.ndarray | None,
    precision: str,
) -> Array:
    module, name = _NB_ELEMENTWISE[core]
    if (
        _small_pair(x, v, precision)
        and (res := small_out(x, out, v)) is not None
        and (nb := fused(module)) is not None  # _small_pair and small_out checked the arrays
    ):
        # A small simple call straight to the kernel, as in `sigmax.functions._small_call`.
        getattr(nb, name)(x.reshape(-1), v.reshape(-1), res.reshape(-1))
        return res
    x, xp = namespace(x, x_name)
    v, weak = _operand(v, x, xp, v_name, x_name)
    _check_shape(v, tuple(x.shape), v_name, f"the shape of `{x_name}`")
    dtype = _out_dtype(x, v, weak, xp)
    cdt = _compute_dtype(dtype, xp, x, precision)
    if not is_numpy(xp):
        if out is not None:
            check_out(out, tuple(x.shape), dtype, xp)
        with np.errstate(all="ignore"):
            return xp.astype(core(xp.astype(x, cdt), xp.astype(v, cdt), xp), dtype)
    shape = tuple(x.shape)
    target = None if out is None else check_out(out, shape, dtype, xp)
    # `out` may be an input (in-place backprop): the kernels write before they finish reading.
    alias = target is not None and (
        np.may_share_memory(target, x) or np.may_share_memory(target, v)
    )
    res = target if target is not None and not alias else np.empty(shape, dtype=dtype)
    fx, fv = np.ravel(x), np.ravel(v)
    flat = res.reshape(-1) if res.flags.c_contiguous else np.empty(res.size, dtype=dtype)
    np_core = _NP_ELEMENTWISE[core]
    nb = fused(module, x, v, flat)

    def run(rows: slice) -> None:
        with np.errstate(all="ignore"):
            np_core(fx[rows], fv[rows], flat[rows], cdt)

    if nb is not None:
        # The fused kernel streams: chunks larger than the NumPy path's cache-sized blocks
        # halve the calls and were 10-20% faster at 10^8 elements (2 threads).
        size = fx.size
        kernel = getattr(nb, name)

        def run_chunk(chunks: slice) -> None:
            part = slice(chunks.start * _NB_CHUNK, min(chunks.stop * _NB_CHUNK, size))
            kernel(fx[part], fv[part], flat[part])

        block_rows(-(-size // _NB_CHUNK), _NB_CHUNK, run_chunk)
    else:
        block_rows(fx.size, 1, run)
    if not res.flags.c_contiguous:
        res[...] = flat.reshape(shape)
    if target is not None and alias:
        np.copyto(target, res)
    return _finish_numpy(res, target)


def sigmoid_jvp(
    x: Any,
    tangent: Any,
    /,
    *,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Jacobian-vector product of the sigmoid: :math:`\sigma'(x) \odot v`.

    .. math:: \sigma'(x) = \sigma(x)\,\sigma(-x) = \frac{e^{-|x|}}{(1 + e^{-|x|})^2}

    Parameters
    ----------
    x : array, shape (...)
        The logits (the sigmoid's input).
    tangent : array, shape (...)
        The direction :math:`v`, same shape as `x`, same namespace (Python lists and scalars
        take `x`'s dtype).
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape (...)
        In `x`'s namespace and device; the dtype is `x`'s result dtype promoted with a floating
        `tangent`'s.

    Raises
    ------
    TypeError
        For complex input or a `tangent` from another array library.
    ValueError
        If `tangent` does not have `x`'s shape.

    Notes
    -----
    The Jacobian is diagonal, so the JVP and the VJP are the same product. With
    :math:`e = e^{-|x|} \le 1` the derivative :math:`e / (1+e)^2` never overflows and never
    forms ``1 - sigmoid(x)``: ``sigmoid_jvp(40.0, 1.0)`` is ``4.25e-18``, where the seed's
    ``a * (1 - a)`` gives 0. A NaN gives NaN and :math:`x = \pm\infty` gives 0.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_jvp([0.0, 40.0, -40.0], [1.0, 1.0, 2.0])
    array([2.50000000e-01, 4.24835426e-18, 8.49670852e-18])
    """
    return _elementwise(x, tangent, _sigmoid_prime, "x", "tangent", out, precision)


def sigmoid_vjp(
    x: Any,
    cotangent: Any,
    /,
    *,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Vector-Jacobian product of the sigmoid: :math:`\sigma'(x) \odot g`.

    .. math:: \frac{\partial L}{\partial x} = \sigma(x)\,\sigma(-x)\, g

    Parameters
    ----------
    x : array, shape (...)
        The logits.
    cotangent : array, shape (...)
        :math:`g = \partial L / \partial \sigma(x)`, same shape as `x`.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape (...)
        :math:`\partial L / \partial x`.

    Raises
    ------
    TypeError
        For complex input or a `cotangent` from another array library.
    ValueError
        If `cotangent` does not have `x`'s shape.

    Notes
    -----
    Computed as :math:`g\, e / (1 + e)^2` with :math:`e = e^{-|x|}`: accurate to a few ULP for
    every finite `x`, including the tails where ``1 - sigmoid(x)`` would cancel.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_vjp([0.0, 2.0], [1.0, -1.0])
    array([ 0.25      , -0.10499359])
    """
    return _elementwise(x, cotangent, _sigmoid_prime, "x", "cotangent", out, precision)


def sigmoid_jvp_from_output(
    s: Any,
    tangent: Any,
    /,
    *,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Sigmoid JVP from the saved output :math:`s = \sigma(x)`: :math:`s (1 - s) v`.

    .. math:: \sigma'(x) = s\,(1 - s)

    Parameters
    ----------
    s : array, shape (...)
        The saved output of :func:`sigmax.sigmoid`.
    tangent : array, shape (...)
        Same shape as `s`.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape (...)

    Notes
    -----
    This is the seed's ``a * (1 - a)``. It avoids recomputing the exponential, but ``1 - s``
    cancels when :math:`s` is close to 1: for :math:`x \gtrsim 37` in float64 (:math:`\gtrsim 17`
    in float32) ``s`` rounds to 1 and the result is 0 instead of :math:`e^{-x}`. Use
    :func:`sigmoid_jvp` on the logits where those tails matter; it is exact.

    Examples
    --------
    >>> import sigmax
    >>> s = sigmax.sigmoid([0.0, 40.0])
    >>> sigmax.sigmoid_jvp_from_output(s, [1.0, 1.0])  # the second entry has cancelled
    array([0.25, 0.  ])
    """
    return _elementwise(s, tangent, _sigmoid_prime_from_output, "s", "tangent", out, precision)


def sigmoid_vjp_from_output(
    s: Any,
    cotangent: Any,
    /,
    *,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Sigmoid VJP from the saved output :math:`s = \sigma(x)`: :math:`s (1 - s) g`.

    .. math:: \frac{\partial L}{\partial x} = s\,(1 - s)\, g

    Parameters
    ----------
    s : array, shape (...)
        The saved output of :func:`sigmax.sigmoid`.
    cotangent : array, shape (...)
        Same shape as `s`.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape (...)

    Notes
    -----
    As :func:`sigmoid_jvp_from_output`: ``1 - s`` cancels for :math:`s` near 1, where
    :func:`sigmoid_vjp` (from the logits) stays exact.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_vjp_from_output([0.5, 0.25], [1.0, 2.0])
    array([0.25 , 0.375])
    """
    return _elementwise(s, cotangent, _sigmoid_prime_from_output, "s", "cotangent", out, precision)


# --------------------------------------------------------------------------------------------
# Along an axis: softmax, log_softmax, logsumexp
# --------------------------------------------------------------------------------------------


def _pivot(s: Array, v: Array, xp: Namespace) -> Array:
    """`v` at the entry whose probability exceeds 1/2, or 0 where none does; ``(..., 1)``.

    At most one entry of a slice can exceed 1/2, and only there does ``1 - s`` cancel, so this
    is the pivot the accurate form needs, found without an argmax.
    """
    return xp.sum(xp.where(s > 0.5, v, xp.zeros_like(v)), axis=-1, keepdims=True)


def _masked(v: Array, valid: Array | None, xp: Namespace) -> Array:
    return v if valid is None else xp.where(valid, v, xp.zeros_like(v))


def _scale(r: Array, t: float) -> Array:
    return r / t if t != 1.0 else r


def _softmax_core(s: Array, v: Array, valid: Array | None, xp: Namespace, t: float) -> Array:
    # J is symmetric, so this is both the JVP and the VJP. Pivoting on the largest entry
    # keeps s_m (1 - s_m) accurate when s_m is near 1 (see the module notes).
    v = _masked(v, valid, xp)
    w = v - _pivot(s, v, xp)
    r = s * (w - xp.sum(s * w, axis=-1, keepdims=True))
    return _masked(_scale(r, t), valid, xp)


def _log_softmax_jvp_core(
    s: Array, v: Array, valid: Array | None, xp: Namespace, t: float
) -> Array:
    v = _masked(v, valid, xp)
    w = v - _pivot(s, v, xp)
    r = w - xp.sum(s * w, axis=-1, keepdims=True)
    return _masked(_scale(r, t), valid, xp)


def _log_softmax_vjp_core(
    s: Array, g: Array, valid: Array | None, xp: Namespace, t: float
) -> Array:
    g = _masked(g, valid, xp)
    r = g - s * xp.sum(g, axis=-1, keepdims=True)
    return _masked(_scale(r, t), valid, xp)


def _logsumexp_jvp_core(s: Array, v: Array, valid: Array | None, xp: Namespace, t: float) -> Array:
    return xp.sum(s * _masked(v, valid, xp), axis=-1, keepdims=True)


def _logsumexp_vjp_core(s: Array, g: Array, valid: Array | None, xp: Namespace, t: float) -> Array:
    # g has shape (..., 1); a non-finite g times a masked s = 0 would be nan.
    return _masked(g * s, valid, xp)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product, shape ``(n, 1)``.

    einsum runs its own loop: several times faster than ``(a * b).sum(-1)`` on short rows, and
    unlike ``np.vecdot`` it never calls a multithreaded BLAS, whose threads stall on a busy
    machine and oversubscribe the cores that the blocks already use.
    """
    return np.einsum("ij,ij->i", a, b)[:, None]


def _np_shifted(s: np.ndarray, v: np.ndarray, w: np.ndarray) -> None:
    """``w = (v - v_m) - <s, v - v_m>`` per row, pivoted as `_softmax_core`."""
    # The pivot (see `_pivot`): the indicator of s > 1/2 dotted with v, in two fast passes.
    np.greater(s, 0.5, out=w)
    np.subtract(v, _rowdot(w, v), out=w)
    np.subtract(w, _rowdot(s, w), out=w)


def _np_shifted_no_pivot(s: np.ndarray, v: np.ndarray, w: np.ndarray) -> bool:
    """`_np_shifted` bit for bit in three fewer passes for a block without a pivot; False (and
    `w` undefined) when it does not apply.

    Where no probability exceeds 1/2 (every block of long rows but confident ones) the pivot is
    +0 and ``w = v - <s, v>`` exactly, unless an operand is infinite or NaN (the pivot's
    ``0 * inf`` makes that row NaN): a non-finite sum sends the block to the full path.
    Handling only the rows with a pivot on the full path was slower at k = 1000.
    """
    if s.size == 0 or s.max() > 0.5:
        return False
    c = _rowdot(s, v)
    if not np.isfinite(c).all():
        return False
    np.subtract(v, c, out=w)
    return True


def _np_softmax_core(
    s: np.ndarray, v: np.ndarray, valid: np.ndarray | None, t: float, out: np.ndarray
) -> None:
    """`_softmax_core` on a NumPy block, in place on one per-thread buffer."""
    if valid is not None:
        v = np.where(valid, v, 0.0)
    w = scratch("dv.w", s.shape, s.dtype)
    if not _np_shifted_no_pivot(s, v, w):
        _np_shifted(s, v, w)
    if t != 1.0:
        np.divide(w, t, out=w)
    r = out if out.dtype == w.dtype else w
    np.multiply(s, w, out=r)
    if valid is not None:
        np.copyto(r, 0.0, where=~valid)
    _store(r, out)


_NP_ROWS: dict[Callable[..., Array], Callable[..., None]] = {_softmax_core: _np_softmax_core}
#: The products that :mod:`sigmax._numba_kernels` computes from the softmax, by name there
#: (float64 arithmetic, one rounding on the store; "fast" float32 rows of the softmax and
#: log_softmax VJPs in float32 arithmetic, as the NumPy path's float32 operations).
_NB_ROWS: dict[Callable[..., Array], str] = {
    _softmax_core: "softmax_rows",
    _log_softmax_vjp_core: "log_softmax_rows",
    _log_softmax_jvp_core: "log_softmax_jvp_rows",
    _logsumexp_vjp_core: "logsumexp_vjp_rows",
    _logsumexp_jvp_core: "logsumexp_jvp_rows",
}
#: The products that :func:`sigmax._numba_forward.rows_vjp` fuses with the softmax, by kind.
_FUSED_VJP: dict[Callable[..., Array], int] = {_softmax_core: 0, _log_softmax_vjp_core: 1}
_FORWARD = "sigmax._numba_forward"


def _fused_vjp_min_k() -> int:
    """The shortest rows that the fused VJP from the logits takes, either precision. Shorter
    rows take the unfused path: the short-row kernel's softmax (across rows) and the numba
    product, 1.3 to 3.3x faster than the fused kernel at k = 16 to 48 for "accurate" (10^7
    entries, 2 threads; 11.0 against 20.7 ms for the float32 softmax product at k = 32),
    and 1.4 to 4.8x for "fast" (float32 k = 16: 6.3 against 30.5 ms)."""
    return _fn.FUSED_MIN_K  # tests set FUSED_MIN_K = 0 to run every k fused


def _small_rows(
    x: Any,
    v: Any,
    core: Core,
    from_output: bool,
    axis: Axis,
    where: Any,
    temperature: Any,
    out: Any,
    precision: str,
) -> np.ndarray | None:
    """A small simple call straight to the fused kernel that `_along_axis` would pick (its
    argument handling costs about 10 us a call); None when there is none, or when the kernel
    declines the rows: `_along_axis` then takes the call."""
    if not (_small_pair(x, v, precision) and small_along_last(x, axis, where, temperature)):
        return None
    if (res := small_out(x, out, v)) is None:
        return None
    k, t = x.shape[-1], float(temperature)
    x2, v2, r2 = (x, v, res) if x.ndim == 2 else (a.reshape(-1, k) for a in (x, v, res))
    # _small_pair and small_out checked the arrays: `fused` and `_numba` need not.
    if not from_output and core in _FUSED_VJP and k >= _fused_vjp_min_k():
        fwd = fused(_FORWARD)
        if fwd is None or not fwd.rows_vjp(x2, v2, r2, _FUSED_VJP[core], t, precision == "fast"):
            return None
        return res
    if core not in _NB_ROWS or (nb := _numba()) is None:
        return None
    fast = precision == "fast"
    if not from_output:
        # "fast" computes in x's dtype (`_compute_dtype`), "accurate" in float64.
        cdt = x2.dtype if fast else np.dtype(np.float64)
        x2 = _product_softmax(x2, cdt, t, precision, False)
    getattr(nb, _NB_ROWS[core])(x2, v2, t, r2, fast and x2.dtype == np.float32)
    return res


def _small_reduced(
    x: Any, v: Any, core: Core, axis: Axis, where: Any, keepdims: bool, v_reduced: bool
) -> np.ndarray | None:
    """`_small_rows` for logsumexp's derivatives, whose cotangent (VJP, `v_reduced`) or
    result (JVP) has one entry a row: a small simple call straight to the numba product.
    None when the call is not that simple (the general path then takes it)."""
    if not (small_numpy(x, "accurate") and x.ndim > 1 and small_along_last(x, axis, where, 1.0)):
        return None
    lead, k = tuple(x.shape[:-1]), x.shape[-1]
    reduced = (*lead, 1) if keepdims else lead
    if not (
        type(v) is np.ndarray
        and v.shape == (reduced if v_reduced else x.shape)
        and v.dtype == x.dtype
        and v.flags.c_contiguous
        and (nb := _numba()) is not None  # the checks above cover what `_numba` checks
    ):
        return None
    res = np.empty(x.shape if v_reduced else reduced, dtype=x.dtype)
    s = _product_softmax(x.reshape(-1, k), np.dtype(np.float64), 1.0, "accurate", False)
    v2, r2 = v.reshape(-1, 1 if v_reduced else k), res.reshape(-1, k if v_reduced else 1)
    getattr(nb, _NB_ROWS[core])(s, v2, 1.0, r2, False)
    return res


def _product_softmax(z: np.ndarray, cdt: Any, t: float, precision: str, block: bool) -> np.ndarray:
    """The softmax of the C-contiguous float32/float64 rows `z` (no mask) for the products
    of `_NB_ROWS`, in the compute dtype `cdt`. float32 rows are exact in float64, so their
    softmax needs no compensated difference: "fast" on the widened copy, or, for short
    rows, the short kernel's float64 result straight from the float32 rows (no copy, and
    plain row sums: within a few float64 eps, which the float32 product never sees).
    Short rows in their own dtype take the short kernel directly, as `softmax` would.
    `block`: a block of `_along_axis` (a per-thread buffer holds the short kernel's result)."""
    k = z.shape[-1]
    narrow = z.dtype == np.float32 and cdt == np.float64
    sm_precision = "fast" if narrow or precision == "fast" else "accurate"
    if 2 <= k < _fn.FUSED_MIN_K and (short := fused(_fn._SHORT)) is not None:
        s = scratch("dv.sw", z.shape, cdt) if block else np.empty(z.shape, cdt)
        if narrow and short.short_softmax_wide(z, s, t):
            return s
        # In z's dtype: the kernel that `softmax` would pick, without its argument handling
        # (a third of a one-sample VJP's time).
        if z.dtype == cdt and short.short_softmax(z, s, t, sm_precision == "fast"):
            return s
    zc = _as_compute(z, cdt, "dv.s")
    return softmax(zc, axis=-1, temperature=t, precision=sm_precision)


def _along_axis(
    x: Any,
    v: Any,
    core: Core,
    *,
    axis: Axis,
    where: Any,
    temperature: float,
    x_name: str,
    v_name: str,
    from_output: bool = False,
    v_reduced: bool = False,
    out_reduced: bool = False,
    keepdims: bool = False,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    """Apply ``core(s, v, valid, xp, t)`` to every slice along `axis`.

    ``s`` is the softmax of the slice (computed from `x`, or `x` itself when `from_output`).
    On NumPy the work runs on cache-sized row blocks (the softmax of a block is computed and
    consumed while it is in cache); elsewhere it is one vectorized expression.
    """
    if not (v_reduced or out_reduced) and (
        (r := _small_rows(x, v, core, from_output, axis, where, temperature, out, precision))
        is not None
    ):
        return r
    if (
        (v_reduced or out_reduced)
        and core in _NB_ROWS
        and out is None
        and precision == "accurate"
        and (r := _small_reduced(x, v, core, axis, where, keepdims, v_reduced)) is not None
    ):
        return r
    x, xp = namespace(x, x_name)
    t = check_positive_scalar(temperature, "temperature")
    v, weak = _operand(v, x, xp, v_name, x_name)
    valid = check_where(where, x, xp) if where is not None else None
    y, restore, restore_reduced = moveaxes_last(x, axis, xp)
    lead, k = tuple(y.shape[:-1]), y.shape[-1]
    axes = check_axis(axis, x.ndim)
    reduced = tuple(1 if a in axes else n for a, n in enumerate(x.shape)) if keepdims else lead
    if v_reduced:
        _check_shape(v, reduced, v_name, "the shape of the reduced output")
        vy = xp.reshape(v, (*lead, 1))
    else:
        _check_shape(v, tuple(x.shape), v_name, f"the shape of `{x_name}`")
        vy = moveaxes_last(v, axis, xp)[0]
    vm = None if valid is None else moveaxes_last(valid, axis, xp)[0]
    dtype = _out_dtype(x, v, weak, xp)
    cdt = _compute_dtype(dtype, xp, x, precision)
    width = 1 if out_reduced else k
    # A narrower input differs exactly in the compute dtype, so its softmax needs no
    # compensated difference: "fast" on the widened copy skips it. float64 input keeps it.
    sm_precision = "accurate" if precision == "accurate" and y.dtype == cdt else "fast"

    def finish(res: Array) -> Array:
        if out_reduced:
            return restore_reduced(xp.reshape(res, lead), keepdims)
        return restore(res)

    if k == 0 or not is_numpy(xp):
        if k == 0:
            # No entries: the derivative of an empty softmax, or of logsumexp = -inf, is 0.
            res = xp.zeros((*lead, width), dtype=dtype, device=array_api_compat.device(x))
        else:
            z = xp.astype(y, cdt)
            with np.errstate(all="ignore"):
                s = (
                    z
                    if from_output
                    else softmax(z, axis=-1, where=vm, temperature=t, precision=sm_precision)
                )
                res = xp.astype(core(s, xp.astype(vy, cdt), vm, xp, t), dtype)
        res = finish(res)
        if out is not None:
            target = check_out(out, tuple(res.shape), dtype, xp)
            target[...] = res
            return target
        return res

    y2 = np.reshape(y, (-1, k))
    v2 = np.reshape(vy, (-1, vy.shape[-1]))
    m2 = None if vm is None else np.reshape(vm, (-1, k))
    final_shape = reduced if out_reduced else tuple(x.shape)
    target = None if out is None else check_out(out, final_shape, dtype, xp)
    # Write straight into `out` when no axis moves (the common axis=-1 case).
    alias = target is not None and (
        np.may_share_memory(target, x) or np.may_share_memory(target, v)
    )
    direct = target is not None and target.flags.c_contiguous and y is x and not alias
    if target is not None and direct:
        res2 = target.reshape(-1, width)
    else:
        res2 = np.empty((y2.shape[0], width), dtype=dtype)

    np_core = _NP_ROWS.get(core)
    # The fused kernels, along the last axis, in one dtype, without masks. From the logits one
    # kernel computes each row's softmax into a scratch row and consumes it there;
    # a block with a non-finite row goes on to the unfused path.
    nb = fwd = None
    if m2 is None and y is x:
        if core in _NB_ROWS:
            nb = _numba(y2, v2, res2)
        # "fast" takes the fused kernel too (float32 arithmetic for float32).
        if not from_output and core in _FUSED_VJP and k >= _fused_vjp_min_k():
            fwd = fused(_FORWARD, y2, v2, res2)
    kind = _FUSED_VJP.get(core, 0)
    fast = precision == "fast"
    # float32 arithmetic in the numba products: "fast" float32 only (float64 is float64).
    fast32 = fast and y2.dtype == np.float32
    nb_rows = None if nb is None else getattr(nb, _NB_ROWS[core])

    def run(rows: slice) -> None:
        if fwd is not None and fwd.rows_vjp(y2[rows], v2[rows], res2[rows], kind, t, fast):
            return
        if nb_rows is not None:
            if from_output:
                s = y2[rows]
            else:
                with np.errstate(all="ignore"):
                    s = _product_softmax(y2[rows], cdt, t, precision, True)
            nb_rows(s, v2[rows], t, res2[rows], fast32)
            return
        with np.errstate(all="ignore"):
            mb = None if m2 is None else m2[rows]
            if from_output:
                s = _as_compute(y2[rows], cdt, "dv.s")
            else:
                z = _as_compute(y2[rows], cdt, "dv.s")
                s = softmax(z, axis=-1, where=mb, temperature=t, precision=sm_precision)
            vb = _as_compute(v2[rows], cdt, "dv.v")
            if np_core is not None:
                np_core(s, vb, mb, t, res2[rows])
            else:
                res2[rows] = core(s, vb, mb, np, t)

    block_rows(
        y2.shape[0], k, run, block_elements=BLOCK_ELEMENTS if fwd is None else FUSED_BLOCK_ELEMENTS
    )
    if direct:
        return target
    res = finish(res2.reshape(*lead, width))
    if target is not None:
        np.copyto(target, res)
        return target
    return _finish_numpy(np.asarray(res), None)


def softmax_jvp(
    x: Any,
    tangent: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Jacobian-vector product of the softmax, in :math:`O(nk)` without building :math:`J`.

    .. math:: J v = \frac{1}{T}\, s \odot \big(v - \langle s, v \rangle\big),
              \qquad s = \operatorname{softmax}(x / T)

    Parameters
    ----------
    x : array, shape (..., k, ...)
        Logits.
    tangent : array, shape of `x`
        The direction :math:`v`.
    axis : int, tuple of ints or None, default=-1
        The softmax axes, as in :func:`sigmax.softmax`.
    where : bool array broadcastable to `x`, optional
        Entries that take part. Masked entries get exactly 0 (their tangent is ignored).
    temperature : float, default=1.0
        :math:`T > 0`.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `x`
        Sums to 0 along `axis`.

    Raises
    ------
    TypeError
        For complex input or a `tangent` from another array library.
    ValueError
        For a `tangent` whose shape is not `x`'s, a bad `axis` or `where`, or
        ``temperature <= 0``.

    Notes
    -----
    The softmax Jacobian is symmetric, so this equals :func:`softmax_vjp`. The product is
    pivoted on the largest probability :math:`s_m` (:math:`v - v_m` in place of :math:`v`), so
    its entry keeps full relative accuracy when :math:`s_m` is near 1:
    ``softmax_jvp([0.0, -40.0], [1.0, 0.0])[0]`` is ``4.25e-18``, not 0. A fully masked slice
    gives zeros, a NaN logit makes the slice NaN.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_jvp([1.0, 2.0, 3.0], [1.0, 0.0, 0.0])
    array([ 0.08192507, -0.02203304, -0.05989202])
    >>> sigmax.softmax_jvp([0.0, -40.0], [1.0, 0.0])
    array([ 4.24835426e-18, -4.24835426e-18])
    """
    return _along_axis(
        x,
        tangent,
        _softmax_core,
        axis=axis,
        where=where,
        temperature=temperature,
        x_name="x",
        v_name="tangent",
        out=out,
        precision=precision,
    )


def softmax_vjp(
    x: Any,
    cotangent: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Vector-Jacobian product of the softmax, in :math:`O(nk)` without building :math:`J`.

    .. math:: J^\top g = \frac{1}{T}\, s \odot \big(g - \langle g, s \rangle\big),
              \qquad s = \operatorname{softmax}(x / T)

    Parameters
    ----------
    x : array, shape (..., k, ...)
        Logits.
    cotangent : array, shape of `x`
        :math:`g = \partial L / \partial s`.
    axis : int, tuple of ints or None, default=-1
    where : bool array broadcastable to `x`, optional
        Entries that take part. Masked entries get exactly 0, whatever their cotangent.
    temperature : float, default=1.0
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `x`
        :math:`\partial L / \partial x`.

    Raises
    ------
    TypeError
        For complex input or a `cotangent` from another array library.
    ValueError
        For a `cotangent` whose shape is not `x`'s, a bad `axis` or `where`, or
        ``temperature <= 0``.

    Notes
    -----
    Memory is :math:`O(nk)`, where the seed's einsum over the explicit :math:`(n, k, k)`
    Jacobian needs :math:`O(nk^2)`. On NumPy the softmax of each cache-sized block of rows is
    computed and consumed in place. Pivoted on the largest probability like
    :func:`softmax_jvp`, so the result keeps relative accuracy for confident rows.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_vjp([[1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0]])
    array([[-0.05989202, -0.1628034 ,  0.22269543]])
    """
    return _along_axis(
        x,
        cotangent,
        _softmax_core,
        axis=axis,
        where=where,
        temperature=temperature,
        x_name="x",
        v_name="cotangent",
        out=out,
        precision=precision,
    )


def softmax_jvp_from_output(
    s: Any,
    tangent: Any,
    /,
    *,
    axis: Axis = -1,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Softmax JVP from the saved output :math:`s`, without recomputing the exponentials.

    .. math:: J v = \frac{1}{T}\, s \odot \big(v - \langle s, v \rangle\big)

    Parameters
    ----------
    s : array, shape (..., k, ...)
        The saved output of :func:`sigmax.softmax` (with the same `axis` and `temperature`).
    tangent : array, shape of `s`
    axis : int, tuple of ints or None, default=-1
    temperature : float, default=1.0
        The temperature the output was computed with.
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `s`

    Notes
    -----
    Masked entries of a saved output are 0, so their result is 0 for a finite tangent. The
    product is pivoted on the largest entry of `s` as in :func:`softmax_jvp`, which uses only
    the small probabilities for the cancelling term; it is as accurate as `s` itself.

    Examples
    --------
    >>> import sigmax
    >>> s = sigmax.softmax([1.0, 2.0, 3.0])
    >>> sigmax.softmax_jvp_from_output(s, [1.0, 0.0, 0.0])
    array([ 0.08192507, -0.02203304, -0.05989202])
    """
    return _along_axis(
        s,
        tangent,
        _softmax_core,
        axis=axis,
        where=None,
        temperature=temperature,
        x_name="s",
        v_name="tangent",
        from_output=True,
        out=out,
        precision=precision,
    )


def softmax_vjp_from_output(
    s: Any,
    cotangent: Any,
    /,
    *,
    axis: Axis = -1,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Softmax VJP from the saved output :math:`s`: the backprop step that reuses the forward.

    .. math:: J^\top g = \frac{1}{T}\, s \odot \big(g - \langle g, s \rangle\big)

    Parameters
    ----------
    s : array, shape (..., k, ...)
        The saved output of :func:`sigmax.softmax`.
    cotangent : array, shape of `s`
    axis : int, tuple of ints or None, default=-1
    temperature : float, default=1.0
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `s`

    Notes
    -----
    See :func:`softmax_jvp_from_output`; the Jacobian is symmetric, so both are one product.

    Examples
    --------
    >>> import sigmax
    >>> s = sigmax.softmax([[1.0, 2.0, 3.0]])
    >>> sigmax.softmax_vjp_from_output(s, [[0.0, 0.0, 1.0]])
    array([[-0.05989202, -0.1628034 ,  0.22269543]])
    """
    return _along_axis(
        s,
        cotangent,
        _softmax_core,
        axis=axis,
        where=None,
        temperature=temperature,
        x_name="s",
        v_name="cotangent",
        from_output=True,
        out=out,
        precision=precision,
    )


def softmax_jacobian(
    x: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
) -> Array:
    r"""The explicit softmax Jacobian :math:`\partial s_i / \partial x_j`, shape ``(..., k, k)``.

    .. math:: J = \frac{1}{T}\big(\operatorname{diag}(s) - s s^\top\big),
              \qquad s = \operatorname{softmax}(x / T)

    Parameters
    ----------
    x : array, shape (..., k, ...)
        Logits.
    axis : int, tuple of ints or None, default=-1
        The softmax axes. The batch dimensions of the result are `x`'s dimensions without
        `axis`, in order. With several axes, ``k`` is their product and the entries are
        numbered in C order over the (sorted) axes.
    where : bool array broadcastable to `x`, optional
        Masked entries get zero rows and columns.
    temperature : float, default=1.0

    Returns
    -------
    array, shape (..., k, k)
        Symmetric, with rows summing to 0.

    Notes
    -----
    **Memory is** :math:`O(n k^2)`: at ``(200, 1000)`` in float64 that is 1.6 GB. Prefer
    :func:`softmax_vjp` / :func:`softmax_jvp`, which give the same products in :math:`O(nk)`.
    The diagonal entry of the largest probability is formed as
    :math:`s_m \sum_{j \ne m} s_j` rather than :math:`s_m (1 - s_m)`, so it keeps relative
    accuracy for confident rows.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_jacobian([0.0, 0.0])
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    x, xp = namespace(x)
    t = check_positive_scalar(temperature, "temperature")
    valid = check_where(where, x, xp) if where is not None else None
    y, _, _ = moveaxes_last(x, axis, xp)
    vm = None if valid is None else moveaxes_last(valid, axis, xp)[0]
    dtype = result_dtype(x, xp)
    cdt = compute_dtype(dtype, xp, x)
    lead, k = tuple(y.shape[:-1]), y.shape[-1]
    dev = array_api_compat.device(x)
    if k == 0:
        return xp.zeros((*lead, 0, 0), dtype=dtype, device=dev)
    with np.errstate(all="ignore"):
        s = softmax(xp.astype(y, cdt), axis=-1, where=vm, temperature=t)
        cols = xp.arange(k, device=dev)
        top = s > 0.5  # the one entry where 1 - s can cancel (see `_pivot`)
        rest = xp.sum(xp.where(top, xp.zeros_like(s), s), axis=-1, keepdims=True)
        diag = xp.where(top, s * rest, s * (1.0 - s))
        outer = xp.expand_dims(s, axis=-1) * xp.expand_dims(s, axis=-2)
        eye = xp.expand_dims(cols, axis=-1) == xp.expand_dims(cols, axis=0)
        jac = xp.where(eye, xp.expand_dims(diag, axis=-1), -outer)
        return xp.astype(_scale(jac, t), dtype)


def log_softmax_jvp(
    x: Any,
    tangent: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Jacobian-vector product of the log-softmax.

    .. math:: J v = \frac{1}{T}\big(v - \langle s, v \rangle\big),
              \qquad s = \operatorname{softmax}(x / T)

    Parameters
    ----------
    x : array, shape (..., k, ...)
        Logits.
    tangent : array, shape of `x`
    axis : int, tuple of ints or None, default=-1
    where : bool array broadcastable to `x`, optional
        Masked entries (whose log-probability is the constant ``-inf``) get exactly 0.
    temperature : float, default=1.0
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `x`

    Raises
    ------
    TypeError, ValueError
        As :func:`softmax_jvp`.

    Notes
    -----
    Pivoted on the largest probability (:math:`v - v_m` in place of :math:`v`), so the entry
    of a confident class is :math:`-\sum_{j \ne m} s_j (v_j - v_m)`, formed from the small
    probabilities only, with full relative accuracy.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.log_softmax_jvp([0.0, 0.0], [1.0, 0.0])
    array([ 0.5, -0.5])
    >>> sigmax.log_softmax_jvp([0.0, -40.0], [1.0, 0.0])
    array([ 4.24835426e-18, -1.00000000e+00])
    """
    return _along_axis(
        x,
        tangent,
        _log_softmax_jvp_core,
        axis=axis,
        where=where,
        temperature=temperature,
        x_name="x",
        v_name="tangent",
        out=out,
        precision=precision,
    )


def log_softmax_vjp(
    x: Any,
    cotangent: Any,
    /,
    *,
    axis: Axis = -1,
    where: Any = None,
    temperature: float = 1.0,
    out: np.ndarray | None = None,
    precision: str = "accurate",
) -> Array:
    r"""Vector-Jacobian product of the log-softmax (the cross-entropy backward step).

    .. math:: J^\top g = \frac{1}{T}\Big(g - s \sum_j g_j\Big),
              \qquad s = \operatorname{softmax}(x / T)

    Parameters
    ----------
    x : array, shape (..., k, ...)
        Logits.
    cotangent : array, shape of `x`
        :math:`g = \partial L / \partial \log s`.
    axis : int, tuple of ints or None, default=-1
    where : bool array broadcastable to `x`, optional
        Masked entries get exactly 0, and their cotangent is ignored.
    temperature : float, default=1.0
    out : numpy.ndarray, optional
        NumPy only: where to write the result.
    precision : {"accurate", "fast"}, default="accurate"
        ``"fast"`` computes float32 in float32 (float16 and bfloat16 in float32) instead of
        float64: faster on NumPy, a few ULP instead of one rounding.

    Returns
    -------
    array, shape of `x`

    Raises
    ------
    TypeError, ValueError
        As :func:`softmax_vjp`.

    Notes
    -----
    With ``g = -onehot(y)`` this is the familiar cross-entropy gradient ``s - onehot(y)``.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.log_softmax_vjp([1.0, 2.0, 3.0], [0.0, 0.0, -1.0])
    array([ 0.09003057,  0.24472847, -0.33475904])
    """
    return _along_axis(
        x,
        cotangent,
        _log_softmax_vjp_core,
        axis=axis,
        where=where,
        temperature=temperature,
        x_name="x",
        v_name="cotangent",
        out=out,
        precision=precision,
    )


def logsumexp_jvp(
    x: Any,
    tangent: Any,
    /,
    *,
    axis: Axis = -1,
    keepdims: bool = False,
    where: Any = None,
) -> Array:
    r"""Jacobian-vector product of logsumexp: the softmax-weighted mean of the tangent.

    .. math:: J v = \sum_j \operatorname{softmax}(x)_j\, v_j

    Parameters
    ----------
    x : array, shape (..., k, ...)
    tangent : array, shape of `x`
    axis : int, tuple of ints or None, default=-1
    keepdims : bool, default=False
        Keep the reduced axes with length 1, as :func:`sigmax.logsumexp`.
    where : bool array broadcastable to `x`, optional
        Masked entries do not contribute; a fully masked slice gives 0.

    Returns
    -------
    array
        The shape of ``logsumexp(x, axis=axis, keepdims=keepdims)``.

    Examples
    --------
    >>> import sigmax
    >>> float(sigmax.logsumexp_jvp([0.0, 0.0], [1.0, 3.0]))
    2.0
    """
    return _along_axis(
        x,
        tangent,
        _logsumexp_jvp_core,
        axis=axis,
        where=where,
        temperature=1.0,
        x_name="x",
        v_name="tangent",
        out_reduced=True,
        keepdims=keepdims,
    )


def logsumexp_vjp(
    x: Any,
    cotangent: Any,
    /,
    *,
    axis: Axis = -1,
    keepdims: bool = False,
    where: Any = None,
) -> Array:
    r"""Vector-Jacobian product of logsumexp: the cotangent spread by the softmax.

    .. math:: \frac{\partial L}{\partial x_j} = g\, \operatorname{softmax}(x)_j

    Parameters
    ----------
    x : array, shape (..., k, ...)
    cotangent : array
        :math:`g`, the shape of ``logsumexp(x, axis=axis, keepdims=keepdims)``.
    axis : int, tuple of ints or None, default=-1
    keepdims : bool, default=False
        Whether `cotangent` keeps the reduced axes with length 1.
    where : bool array broadcastable to `x`, optional
        Masked entries get exactly 0.

    Returns
    -------
    array, shape of `x`

    Raises
    ------
    ValueError
        If `cotangent` does not have the reduced shape.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.logsumexp_vjp([[0.0, 0.0], [0.0, 1000.0]], [2.0, 1.0])
    array([[1., 1.],
           [0., 1.]])
    """
    return _along_axis(
        x,
        cotangent,
        _logsumexp_vjp_core,
        axis=axis,
        where=where,
        temperature=1.0,
        x_name="x",
        v_name="cotangent",
        v_reduced=True,
        keepdims=keepdims,
    )
