r"""Cross-entropy losses for sigmoid and softmax outputs, with fused gradients and Hessians.

Every loss returns **one value per example** (per element for the sigmoid, per slice along
`axis` for the softmax); reductions belong to the heads and estimators. The ``*_value_and_grad``
forms return a :class:`ValueAndGrad` pair whose ``grad`` is the gradient of ``value.sum()`` with
respect to the logits, computed in the same pass as the value (``softmax - onehot``,
``sigmoid - target``). The ``*_hvp`` and ``*_hessian_diag`` forms give the Hessian of
``value.sum()`` with respect to the logits.

Accuracy (tested against mpmath at 60 digits, see ``tests/test_losses.py``): the values are
within 1 ULP for float16/float32 (computed in float64 and rounded once) and within 3 ULP for
float64, including confident correct predictions (a loss of ``1e-40`` comes back as ``1e-40``),
huge common offsets, soft targets near 0 and 1 at large ``|logit|``, and infinite logits with
hard targets (0 where the prediction is right, ``inf`` where it is wrong, never nan).

``precision="fast"`` (:func:`sigmoid_cross_entropy` and :func:`softmax_cross_entropy` and their
``*_value_and_grad`` forms, as in :mod:`sigmax.derivatives`) computes float32 in float32 and
float64 without the carried rounding error of ``z - max(z)``. It keeps the non-cancelling forms
(``log1p`` of the non-max terms, never ``log(1 + S)``) and never returns a false 0; on the same
test cases its values are within 4 ULP for float32, 1 ULP for float16 and 3 ULP for float64.

Speed. With the optional ``sigmax[numba]`` extra, the sigmoid cross-entropy and the softmax
cross-entropy with integer labels (rows longer than 64 classes, no `where` mask) compute the
value and the gradient in one pass over memory (:mod:`sigmax._numba_bce`,
:mod:`sigmax._numba_losses`), with the same forms and the same tested bounds; float32 is then
computed in float64 for both precisions. The softmax cross-entropy with integer labels
along an axis that is not the last (segmentation logits ``(N, C, H, W)`` with ``axis=1``)
runs on the column kernels of :mod:`sigmax._numba_columns`, vectorized across the pixels
with no transposed copy, with the same forms and bounds (`tests/test_columns.py`).
``SIGMAX_DISABLE_NUMBA=1`` selects the NumPy path.

Integer labels and probability targets go to separate functions; nothing is guessed from the
dtype.

Under JAX's transformations (``jax.jit``, ``jax.grad``, ``jax.vmap``) the losses trace like
any JAX function. Labels, targets and weights that are traced there cannot be read on the
host, so only their shapes and dtypes are checked: a label out of range or a target outside
[0, 1] gives a meaningless value instead of an error, as in optax. Called eagerly, the
same inputs raise ``ValueError`` (``tests/test_jax_transforms.py``).
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

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
    unwrap_scalar,
)
from sigmax._validation import (
    check_label_smoothing,
    check_labels,
    check_nonnegative_weights,
    check_probability_rows,
    check_shape,
    check_unit_interval,
    check_where,
    is_traced,
    to_numpy,
)
from sigmax.functions import _Parts, _softmax_kernel, column_geometry, run_columns

__all__ = [
    "ValueAndGrad",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_hessian_diag",
    "sigmoid_cross_entropy_hvp",
    "sigmoid_cross_entropy_value_and_grad",
    "softmax_cross_entropy",
    "softmax_cross_entropy_hessian_diag",
    "softmax_cross_entropy_hvp",
    "softmax_cross_entropy_value_and_grad",
    "softmax_cross_entropy_with_targets",
    "softmax_cross_entropy_with_targets_value_and_grad",
]


_NUMPY = array_api_compat.array_namespace(np.empty(0))


class ValueAndGrad(NamedTuple):
    """A loss value and its gradient with respect to the logits, from one pass."""

    value: Array
    """Per-example losses."""
    grad: Array
    """Gradient of ``value.sum()`` with respect to the logits (the logits' shape)."""


def _compute_dtype(dtype: Any, xp: Namespace, x: Array, precision: str) -> Any:
    """The dtype to compute in: float64 for float16/float32 ("accurate"), or the input's own
    float32/float64 ("fast"; float16 goes to float32), as in :mod:`sigmax.derivatives`."""
    if precision == "accurate":
        return compute_dtype(dtype, xp, x)
    if precision != "fast":
        raise ValueError(f"`precision` must be 'accurate' or 'fast', got {precision!r}")
    if dtype in (xp.float32, xp.float64) or not hasattr(xp, "float32"):
        return dtype
    return xp.float32


def _operand(a: Any, xp: Namespace, like: Array, dtype: Any) -> Array:
    """`a` (already checked, as NumPy) in `like`'s namespace and device, in `dtype`."""
    if is_numpy(xp):
        return np.asarray(a, dtype=dtype)
    return xp.asarray(np.asarray(a), dtype=dtype, device=array_api_compat.device(like))


def _traced(a: Array, xp: Namespace, dtype: Any, name: str) -> Array:
    """A JAX tracer (`is_traced`: inside ``jax.jit``, ``grad`` or ``vmap``) in `dtype`, for
    logits in the same namespace: its values are not checked, as they cannot be read."""
    if array_api_compat.array_namespace(a) is not xp:
        raise TypeError(
            f"`{name}` must be an array of the same library as `logits`, got a JAX tracer"
        )
    return xp.astype(a, dtype)


def _weights(w: Any, name: str, xp: Namespace, like: Array, dtype: Any) -> Array:
    """`pos_weight` or `class_weight` in `like`'s namespace: finite and >= 0 (checked when
    its values can be read)."""
    if is_traced(w):
        return _traced(w, xp, dtype, name)
    return _operand(check_nonnegative_weights(w, name), xp, like, dtype)


# --------------------------------------------------------------------------------------------
# Sigmoid (binary and multi-label) cross-entropy
# --------------------------------------------------------------------------------------------


def _sigmoid_kernel(
    z: Array,
    t: Array,
    pw: Array | None,
    valid: Array | None,
    ls: float,
    xp: Namespace,
    want: str,
) -> tuple[Array | None, Array | None]:
    """Value and/or gradient of the elementwise BCE, in the compute dtype.

    ``want`` is ``"value"``, ``"grad"`` or ``"both"``. ``t`` is the target, ``pw`` the
    positive-class weight or None.
    """
    zero = xp.zeros_like(z)
    # Smoothed targets: both t' and 1 - t' as sums of non-negative terms, so 1 - t' keeps full
    # relative accuracy when t is close to 1.
    tp = t * (1.0 - ls) + ls / 2 if ls else t
    tn = (1.0 - t) * (1.0 - ls) + ls / 2 if ls else 1.0 - t
    tpw = tp * pw if pw is not None else tp
    e = xp.exp(-xp.abs(z))
    value = grad = None
    if want != "grad":
        l1p = xp.log1p(e)
        sp_pos = xp.maximum(z, zero) + l1p  # softplus(z) = -log sigmoid(-z)
        sp_neg = xp.maximum(-z, zero) + l1p  # softplus(-z) = -log sigmoid(z)
        # A zero weight times an infinite softplus is 0 here (a right prediction at +-inf).
        a = xp.where(tpw > 0, tpw * sp_neg, zero)
        b = xp.where(tn > 0, tn * sp_pos, zero)
        value = a + b
        if valid is not None:
            value = xp.where(valid, value, zero)
    if want != "value":
        one = xp.ones_like(z)
        d = 1.0 + e
        s_pos = xp.where(z >= 0, one, e) / d  # sigmoid(z)
        s_neg = xp.where(z >= 0, e, one) / d  # sigmoid(-z)
        # (1 - t) sigmoid(z) - t sigmoid(-z) equals sigmoid(z) - t, but stays exact at the
        # confident ends and never forms inf - inf.
        grad = tn * s_pos - tpw * s_neg
        if valid is not None:
            grad = xp.where(valid, grad, zero)
    return value, grad


def _sigmoid_setup(
    logits: Any,
    targets: Any,
    pos_weight: Any,
    label_smoothing: Any,
    where: Any,
    *,
    targets_required: bool = True,
    precision: str = "accurate",
    check: bool = True,
) -> tuple[Array, Namespace, Any, Any, Array | None, Array | None, Array | None, float]:
    if not check and isinstance(logits, np.ndarray) and logits.dtype.kind == "f":
        x, xp = logits, _NUMPY  # trusted: the namespace checks cost more than a small kernel
    else:
        x, xp = namespace(logits, "logits")
    dtype = result_dtype(x, xp)
    cdt = _compute_dtype(dtype, xp, x, precision)
    ls = check_label_smoothing(label_smoothing)
    t = None
    if targets is not None and not check and is_numpy(xp):
        # Trusted targets (a solver's loop over data it checked once).
        t = np.asarray(targets)
    elif targets is not None:
        tx = namespace(targets, "targets")[0]
        check_shape(tx, tuple(x.shape), "targets", "the shape of `logits`")
        if is_traced(tx):
            t = _traced(tx, xp, cdt, "targets")
        else:
            tn = to_numpy(tx)
            check_unit_interval(tn, "targets")
            # NumPy targets are converted block by block, not copied whole into float64.
            t = tn if is_numpy(xp) else _operand(tn, xp, x, cdt)
    elif targets_required:
        raise TypeError("`targets` is required")
    pw = None
    if pos_weight is not None:
        pw = _weights(pos_weight, "pos_weight", xp, x, cdt)
        pw_shape = tuple(np.shape(pw))
        try:
            if np.broadcast_shapes(pw_shape, tuple(x.shape)) != tuple(x.shape):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"`pos_weight` must be broadcastable to the shape of `logits` {tuple(x.shape)}, "
                f"got shape {pw_shape}"
            ) from None
    valid = check_where(where, x, xp) if where is not None else None
    return x, xp, dtype, cdt, t, pw, valid, ls


def _sigmoid_fast_block(
    xin: np.ndarray,
    t: np.ndarray,
    pw: np.ndarray | None,
    ls: float,
    cdt: Any,
    val: np.ndarray | None,
    grd: np.ndarray | None,
    w: np.ndarray | None = None,
) -> bool:
    """The NumPy fast path for one block of finite logits `xin`: the kernel's formulas
    without ``where``, in the compute dtype `cdt`, scaled by the weights `w` (if any) before
    the single rounding. Returns False (having written nothing) when a logit is not finite;
    the general kernel then handles the block.

    ``np.where`` on a mask of random signs costs a branch misprediction per element (measured
    at 13 ns per element, more than the rest of the kernel together), so the two cases of the
    sign of `x` are formed arithmetically: with ``a = exp(min(x, 0))`` and
    ``b = exp(-max(x, 0))`` one of the two is exactly 1 and the other is ``e = exp(-|x|)``.
    Every pass reads the input or writes the output directly (no copy passes).
    """
    # A sum is finite only when every term is (one that overflows takes the general path).
    if not np.isfinite(np.add.reduce(xin, dtype=cdt)):
        return False
    # Per-thread scratch blocks (see the softmax kernel): no page faults per call.
    shape = xin.shape
    rp = np.maximum(xin, 0.0, dtype=cdt, out=_buf("bce_rp", shape, cdt))
    mn = np.minimum(xin, 0.0, dtype=cdt, out=_buf("bce_mn", shape, cdt))
    a = np.exp(mn, out=_buf("bce_a", shape, cdt))  # sigma(x) (1 + e)
    b = np.negative(rp, out=_buf("bce_b", shape, cdt))
    np.exp(b, out=b)  # sigma(-x) (1 + e)
    e = np.multiply(a, b, out=_buf("bce_e", shape, cdt))  # exact: one factor is 1
    t = t.astype(cdt, copy=False)
    if ls:
        tp = t * (1.0 - ls) + ls / 2
        tn = (1.0 - t) * (1.0 - ls) + ls / 2
    else:
        tp, tn = t, np.subtract(1.0, t, out=_buf("bce_tn", shape, cdt))
    if pw is not None:
        tp = tp * pw
    if val is not None:
        # tp max(-x, 0) + tn max(x, 0) + (tp + tn) log1p(e): non-negative terms only.
        l1p = np.log1p(e, out=_buf("bce_l1p", shape, cdt))
        if pw is not None:
            l1p *= tp + tn
        mn *= tp  # -tp max(-x, 0) <= 0
        l1p -= mn
        rp *= tn
        if w is None:
            np.add(l1p, rp, out=val, casting="unsafe")
        else:
            l1p += rp
            np.multiply(l1p, w, out=val, casting="unsafe")
    if grd is not None:
        # (1 - t) sigma(x) - t sigma(-x) over the common denominator 1 + e.
        a *= tn
        b *= tp
        a -= b
        if w is not None:
            a *= w
        e += 1.0
        np.divide(a, e, out=grd, casting="unsafe")
    return True


#: Elements per block of the loss kernels, which allocate their temporaries (unlike the
#: function core's buffers): the elementwise BCE keeps about eight float64 temporaries alive,
#: so its blocks are smaller. The softmax kernel keeps fewer.
_SIGMOID_BLOCK = 1 << 14
_SOFTMAX_BLOCK = 1 << 15


#: Below this many elements a temporary comes from ``np.empty`` (malloc, no page faults)
#: rather than from the per-thread scratch, whose lookup costs more at that size.
_SCRATCH_MIN = 1 << 13


def _buf(slot: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A work block for a kernel: per-thread scratch when it is large, else ``np.empty``."""
    if math.prod(shape) < _SCRATCH_MIN:
        return np.empty(shape, dtype=dtype)
    return scratch(slot, shape, dtype)


def _block_scale(block: int, k: int = 1) -> int:
    """The `k` to pass to :func:`block_rows` so that its blocks hold about `block` elements."""
    return max(1, k * BLOCK_ELEMENTS // block)


#: Elements from which the optional fused numba kernel (:mod:`sigmax._numba_bce`) runs the
#: elementwise BCE. It is faster at every size (20 against 30 us per call at 8 elements, 24
#: against 38 at 1024), but a first call imports numba (a fraction of a second), which a few
#: small one-off calls should not pay. Its blocks are larger: it keeps no temporaries.
_SIGMOID_FUSED_MIN = 1 << 8
_SIGMOID_FUSED_BLOCK = 1 << 16


def _sigmoid_run(
    logits: Any,
    targets: Any,
    pos_weight: Any,
    label_smoothing: Any,
    where: Any,
    want: str,
    precision: str = "accurate",
    check: bool = True,
    weight: np.ndarray | None = None,
    val_dtype: Any = None,
) -> tuple[Array | None, Array | None]:
    """The elementwise loss and gradient. NumPy only: `weight` (non-negative, one per row of
    `logits`) scales both, where an entry of weight 0 gives exactly 0 (even where its loss is
    inf), and `val_dtype` overrides the values' dtype (for callers who sum them)."""
    x, xp, dtype, cdt, t, pw, valid, ls = _sigmoid_setup(
        logits, targets, pos_weight, label_smoothing, where, precision=precision, check=check
    )
    assert t is not None
    if not is_numpy(xp):
        with np.errstate(all="ignore"):
            v, g = _sigmoid_kernel(xp.astype(x, cdt), t, pw, valid, ls, xp, want)
        return (
            None if v is None else xp.astype(v, dtype),
            None if g is None else xp.astype(g, dtype),
        )
    shape = tuple(x.shape)
    n = math.prod(shape)
    flat = [np.ravel(x), np.ravel(t)]
    pwf = None if pw is None else np.ravel(np.broadcast_to(pw, shape))
    vf = None if valid is None else np.ravel(np.broadcast_to(valid, shape))
    wf = None
    if weight is not None:
        wf = weight if len(shape) == 1 else np.repeat(weight, shape[1])
    val = np.empty(n, dtype=val_dtype or dtype) if want != "grad" else None
    grd = np.empty(n, dtype=dtype) if want != "value" else None
    nb = fused("sigmax._numba_bce", flat[0]) if n >= _SIGMOID_FUSED_MIN else None
    block = _SIGMOID_BLOCK if nb is None else _SIGMOID_FUSED_BLOCK

    def run(rows: slice) -> None:
        wb = None if wf is None else wf[rows]
        if nb is not None:
            nb.bce_block(
                flat[0][rows],
                flat[1][rows],
                None if pwf is None else pwf[rows],
                None if vf is None else vf[rows],
                wb,
                ls,
                None if val is None else val[rows],
                None if grd is None else grd[rows],
            )
            return
        if vf is None and _sigmoid_fast_block(
            flat[0][rows],
            flat[1][rows],
            None if pwf is None else pwf[rows],
            ls,
            cdt,
            None if val is None else val[rows],
            None if grd is None else grd[rows],
            wb,
        ):
            return
        v, g = _sigmoid_kernel(
            flat[0][rows].astype(cdt),
            flat[1][rows].astype(cdt, copy=False),
            None if pwf is None else pwf[rows],
            None if vf is None else vf[rows],
            ls,
            np,
            want,
        )
        if wb is not None:
            # Select before scaling: inf * 0 would be nan.
            v = None if v is None else np.where(wb > 0, v, 0.0) * wb
            g = None if g is None else np.where(wb > 0, g, 0.0) * wb
        if val is not None:
            val[rows] = v
        if grd is not None:
            grd[rows] = g

    with np.errstate(all="ignore"):
        if n <= block:  # one block: no scheduling
            run(slice(0, n))
        else:
            block_rows(n, _block_scale(block), run)
    return (
        None if val is None else unwrap_scalar(val.reshape(shape), xp),
        None if grd is None else unwrap_scalar(grd.reshape(shape), xp),
    )


_SIGMOID_PARAMS = r"""    logits : array, shape (...)
        Logits. Any Array API array; integers promote to the default float.
    targets : array, shape of `logits`
        Targets in [0, 1]: 0/1 for binary and multi-label indicator data, or soft targets
        (not checked when traced by ``jax.jit``; see the module notes).
    pos_weight : float or array broadcastable to `logits`, optional
        Weight :math:`w_+ \ge 0` of the positive term (as in PyTorch's ``pos_weight``), for
        example one per label of shape ``(n_labels,)``.
    label_smoothing : float in [0, 1), default=0.0
        Targets become :math:`t' = t (1 - \epsilon) + \epsilon / 2`.
    where : bool array broadcastable to `logits`, optional
        Entries that take part; the others give a loss and gradient of exactly 0.
    precision : {"accurate", "fast"}, default="accurate"
        ``"accurate"`` computes float16/float32 in float64 (within 1 ULP); ``"fast"`` computes
        float32 in float32 (float16 in float32), with the same non-cancelling forms: no false
        0 and no nan at infinite logits, values within a few ULP (see Notes)."""


def sigmoid_cross_entropy(
    logits: Any,
    targets: Any,
    /,
    *,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    precision: str = "accurate",
) -> Array:
    r"""Binary cross-entropy of a sigmoid output, elementwise (binary and multi-label data).

    .. math:: \ell(z, t) = w_+\, t \operatorname{softplus}(-z) + (1 - t)\operatorname{softplus}(z)
              = -w_+\, t \log\sigma(z) - (1 - t)\log\sigma(-z)

    Parameters
    ----------
    {params}

    Returns
    -------
    array, shape of `logits`
        Non-negative losses, in the logits' namespace, device and float dtype.

    Raises
    ------
    TypeError
        For complex or non-numeric input.
    ValueError
        If `targets` has another shape or a value outside [0, 1] (the message gives the first
        offending index and value), or for a negative or non-finite `pos_weight`.

    Notes
    -----
    Both terms are non-negative, so they never cancel:
    :math:`\operatorname{softplus}(z) = \max(z, 0) + \operatorname{log1p}(e^{-|z|})`. A term
    whose weight is exactly 0 is 0 even where its softplus is infinite, so ``z = +inf`` with
    ``t = 1`` gives 0 and ``z = -inf`` with ``t = 1`` gives ``inf``, never nan (every peer gives
    nan at the first). :math:`1 - t` is exact for :math:`t \ge 1/2`, so soft targets near 1 keep
    their accuracy. Accuracy: <= 1 ULP for float16/float32 (computed in float64), <= 3 ULP for
    float64. A nan logit gives nan. ``precision="fast"`` uses the same forms in float32 for
    float32 input: tested within 4 ULP (float16: 1, float64: 3) on the same extreme cases.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_cross_entropy([92.0, -30.0, float("inf")], [1.0, 0.0, 1.0])
    array([1.10893902e-40, 9.35762297e-14, 0.00000000e+00])
    """
    v, _ = _sigmoid_run(logits, targets, pos_weight, label_smoothing, where, "value", precision)
    return v


def sigmoid_cross_entropy_value_and_grad(
    logits: Any,
    targets: Any,
    /,
    *,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    precision: str = "accurate",
) -> ValueAndGrad:
    r""":func:`sigmoid_cross_entropy` and its gradient with respect to the logits, in one pass.

    .. math:: \frac{\partial \ell}{\partial z} = (1 - t)\,\sigma(z) - w_+\, t\,\sigma(-z)
              \;\overset{w_+ = 1}{=}\; \sigma(z) - t

    Parameters
    ----------
    {params}

    Returns
    -------
    ValueAndGrad
        ``value`` as :func:`sigmoid_cross_entropy`, ``grad`` of the logits' shape.

    Notes
    -----
    The gradient is written as :math:`(1 - t)\sigma(z) - t\sigma(-z)`: at a confident right
    prediction it is :math:`-\sigma(-z)` with full relative accuracy, where
    ``sigmoid(z) - 1`` would round to 0 or lose digits; at infinite logits it is finite.
    Measured against mpmath: float16/float32 gradients within 0.5 ULP; float64 within 2 ULP
    for hard targets, and within an absolute ``2**-52`` for soft targets (whose gradient
    :math:`\sigma(z) - t` loses relative accuracy where :math:`\sigma(z) \approx t`).

    Examples
    --------
    >>> import sigmax
    >>> r = sigmax.sigmoid_cross_entropy_value_and_grad([0.0, 40.0], [1.0, 1.0])
    >>> r.grad
    array([-5.00000000e-01, -4.24835426e-18])
    """
    v, g = _sigmoid_run(logits, targets, pos_weight, label_smoothing, where, "both", precision)
    return ValueAndGrad(v, g)


def _sigmoid_curvature(
    logits: Any, targets: Any, pos_weight: Any, label_smoothing: Any, where: Any
) -> tuple[Array, Namespace, Any, Any]:
    """The Hessian diagonal in the compute dtype: ``sigma(z) sigma(-z) ((1 - t') + w_+ t')``."""
    x, xp, dtype, cdt, t, pw, valid, ls = _sigmoid_setup(
        logits, targets, pos_weight, label_smoothing, where, targets_required=False
    )
    if pw is not None and t is None:
        raise TypeError("`targets` is required with `pos_weight`: the Hessian depends on them")
    z = xp.astype(x, cdt)
    e = xp.exp(-xp.abs(z))
    h = e / ((1.0 + e) * (1.0 + e))
    if pw is not None and t is not None:
        tp = t * (1.0 - ls) + ls / 2 if ls else t
        tn = (1.0 - t) * (1.0 - ls) + ls / 2 if ls else 1.0 - t
        h = h * (tn + tp * pw)
    if valid is not None:
        h = xp.where(valid, h, xp.zeros_like(h))
    return h, xp, dtype, cdt


def sigmoid_cross_entropy_hessian_diag(
    logits: Any,
    /,
    *,
    targets: Any = None,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    where: Any = None,
) -> Array:
    r"""The Hessian of ``sigmoid_cross_entropy(...).sum()`` with respect to the logits.

    The loss is elementwise, so its Hessian is diagonal; this returns that diagonal exactly:

    .. math:: \frac{\partial^2 \ell}{\partial z^2} = \sigma(z)\,\sigma(-z)\,
              \big((1 - t') + w_+ t'\big) \;\overset{w_+ = 1}{=}\; p (1 - p)

    Parameters
    ----------
    logits : array, shape (...)
    targets : array, shape of `logits`, optional
        Needed only with `pos_weight` (otherwise the Hessian does not depend on the targets).
    pos_weight, label_smoothing, where
        As in :func:`sigmoid_cross_entropy`.

    Returns
    -------
    array, shape of `logits`

    Notes
    -----
    :math:`\sigma(z)\sigma(-z) = e / (1 + e)^2` with :math:`e = e^{-|z|}`: no cancellation, no
    overflow, and 0 at infinite logits.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_cross_entropy_hessian_diag([0.0, 50.0])
    array([2.50000000e-01, 1.92874985e-22])
    """
    h, xp, dtype, _ = _sigmoid_curvature(logits, targets, pos_weight, label_smoothing, where)
    return unwrap_scalar(xp.astype(h, dtype), xp)


def sigmoid_cross_entropy_hvp(
    logits: Any,
    vector: Any,
    /,
    *,
    targets: Any = None,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    where: Any = None,
) -> Array:
    r"""Hessian-vector product of ``sigmoid_cross_entropy(...).sum()`` w.r.t. the logits.

    .. math:: (H v)_i = \sigma(z_i)\,\sigma(-z_i)\,\big((1 - t'_i) + w_+ t'_i\big)\, v_i

    Parameters
    ----------
    logits : array, shape (...)
    vector : array, shape of `logits`
    targets, pos_weight, label_smoothing, where
        As in :func:`sigmoid_cross_entropy_hessian_diag`.

    Returns
    -------
    array, shape of `logits`

    Examples
    --------
    >>> import sigmax
    >>> sigmax.sigmoid_cross_entropy_hvp([0.0, 0.0], [1.0, 2.0])
    array([0.25, 0.5 ])
    """
    h, xp, dtype, cdt = _sigmoid_curvature(logits, targets, pos_weight, label_smoothing, where)
    v, _ = namespace(vector, "vector")
    check_shape(v, tuple(h.shape), "vector", "the shape of `logits`")
    if array_api_compat.array_namespace(v) is not xp and not is_numpy(xp):
        v = _operand(to_numpy(v), xp, h, cdt)
    return unwrap_scalar(xp.astype(h * xp.astype(v, cdt), dtype), xp)


sigmoid_cross_entropy.__doc__ = (sigmoid_cross_entropy.__doc__ or "").replace(
    "{params}", _SIGMOID_PARAMS.strip()
)
sigmoid_cross_entropy_value_and_grad.__doc__ = (
    sigmoid_cross_entropy_value_and_grad.__doc__ or ""
).replace("{params}", _SIGMOID_PARAMS.strip())


# --------------------------------------------------------------------------------------------
# Softmax cross-entropy
# --------------------------------------------------------------------------------------------


def _check_int_axis(axis: Any) -> int:
    if isinstance(axis, bool):
        raise TypeError(f"`axis` must be an int, got {axis!r}")
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"`axis` must be an int, got {axis!r}") from None


class _Rows:
    """Logits moved so that the class axis is last, and what the kernels need from them."""

    def __init__(self, logits: Any, axis: Any, where: Any, precision: str = "accurate") -> None:
        x, xp = namespace(logits, "logits")
        axis = _check_int_axis(axis)
        if x.ndim == 0:
            raise ValueError("`logits` must have at least one dimension (the class axis)")
        self.x, self.xp = x, xp
        self.dtype = result_dtype(x, xp)
        self.cdt = _compute_dtype(self.dtype, xp, x, precision)
        self.axis = axis
        self.valid = check_where(where, x, xp) if where is not None else None
        self.y, self.restore, _ = moveaxes_last(x, axis, xp)
        self.v = moveaxes_last(self.valid, axis, xp)[0] if self.valid is not None else None
        self.k = int(self.y.shape[-1])
        self.lead = tuple(self.y.shape[:-1])
        # The compensated difference only pays when the input has the compute precision.
        self.compensate = self.dtype == self.cdt and precision == "accurate"

    def moved(self, a: Array) -> Array:
        """An array of the logits' shape, with the class axis moved last."""
        return moveaxes_last(a, self.axis, self.xp)[0]

    @classmethod
    def trusted(cls, x: np.ndarray, precision: str) -> _Rows:
        """NumPy float logits ``(n, k)``, classes last, taken as they are: no checks, for
        solvers that call a loss in a loop (the checks cost more than the kernel on small
        data)."""
        self = cls.__new__(cls)
        self.x, self.xp = x, _NUMPY
        self.dtype = x.dtype
        self.cdt = _compute_dtype(self.dtype, _NUMPY, x, precision)
        self.axis = -1
        self.valid = self.v = None
        self.y = x
        self.restore = _identity
        self.k = int(x.shape[1])
        self.lead = (int(x.shape[0]),)
        self.compensate = self.dtype == self.cdt and precision == "accurate"
        return self


def _identity(a: Array) -> Array:
    return a


def _softmax_ce_kernel(
    z: Array,
    valid: Array | None,
    target: Array,
    hard: bool,
    ls: float,
    xp: Namespace,
    compensate: bool,
    want: str,
) -> tuple[Array | None, Array | None]:
    """Per-row cross-entropy and its gradient, classes on the last axis, compute dtype.

    ``target`` is a boolean one-hot (``hard``) or probability rows. Label smoothing applies to
    the one-hot form: ``q = (1 - eps) onehot + eps / k_valid``.
    """
    parts = _Parts(z, valid, xp, compensate)
    zero = xp.zeros_like(z)
    validf = None if valid is None else xp.astype(valid, z.dtype)
    if ls:
        kv = (
            float(z.shape[-1])
            if validf is None
            # A fully masked row counts as 1 class so that it gives inf, not nan.
            else xp.maximum(xp.sum(validf, axis=-1, keepdims=True), xp.ones_like(parts.rest))
        )
    value = grad = None
    if want != "grad":
        lse = xp.log1p(parts.rest)
        # -log p_j >= 0: lse at the max entries, lse - (z_j - m) (with its rounding error)
        # elsewhere. Summing these non-negative terms never cancels.
        nl = lse - parts.d
        if parts.lo is not None:
            nl = nl - parts.lo
        nl = xp.where(parts.empty, full(xp, (), np.inf, nl), nl)
        if hard:
            value = xp.sum(xp.where(target, nl, zero), axis=-1)
        else:
            value = xp.sum(xp.where(target > 0, target * nl, zero), axis=-1)
        if ls:
            inside = nl if valid is None else xp.where(valid, nl, zero)
            smooth = xp.sum(inside, axis=-1, keepdims=True) / kv
            value = (1.0 - ls) * value + ls * smooth[..., 0]
    if want != "value":
        one = xp.ones_like(z)
        denom = 1.0 + parts.rest
        p = xp.where(parts.ismax, one, parts.terms) / denom
        q = xp.astype(target, z.dtype) if hard else target
        if ls:
            q = (1.0 - ls) * q + (ls / kv) * (one if validf is None else validf)
        # At a max entry p = 1 / (1 + rest), so p - q = (1 - q) - rest / (1 + rest): exact
        # when the prediction is confident and right, where p - 1 would lose every digit.
        g = xp.where(parts.ismax, (1.0 - q) - parts.rest / denom, p - q)
        grad = xp.where(parts.empty, -q, g)
    return value, grad


def _scale_rows(
    v: Array | None, g: Array | None, rw: Array | None, ig: Array | None, xp: Namespace
) -> tuple[Any, Any]:
    """Scale rows by their weight; ignored rows become exactly 0 (even where inf or nan)."""
    if rw is not None:
        v = None if v is None else v * rw
        g = None if g is None else g * rw[..., None]
    if ig is not None:
        v = None if v is None else xp.where(ig, xp.zeros_like(v), v)
        g = None if g is None else xp.where(ig[..., None], xp.zeros_like(g), g)
    return v, g


def _row_sums(a: np.ndarray) -> np.ndarray:
    """Row sums of a C-ordered block.

    NumPy's ``sum(axis=1)`` runs an inner loop per row, which costs far more than the adds for
    short rows; a matrix-vector product sums short rows several times faster.
    """
    k = a.shape[1]
    if k <= _MATVEC_MAX_K and a.flags.c_contiguous:
        return a @ np.ones(k, dtype=a.dtype)
    return a.sum(axis=1)


def _per_row(a: np.ndarray, k: int) -> np.ndarray:
    """A per-row vector as an operand against an ``(n, k)`` block.

    Broadcasting ``a[:, None]`` runs an inner loop per row; for short rows a contiguous
    repeat is faster even with its extra pass.
    """
    return np.repeat(a, k).reshape(-1, k) if k <= _MATVEC_MAX_K else a[:, None]


#: float32 terms below ``2**-126`` (subnormal) lose digits; a row sum below ``k`` times this
#: may be made of them (relative weight ``<= 2**-24``, half a float32 ULP, otherwise).
_F32_UNDERFLOW = 2.0**-102

#: Rows up to this long are summed by a matrix-vector product (see :func:`_row_sums`).
_MATVEC_MAX_K = 64
#: Longer rows take the optional fused kernel (:mod:`sigmax._numba_losses`) that vectorizes
#: along a row; rows of 2 to this many take its short-row kernel, which vectorizes the exps
#: across rows (the per-row kernel is slower than the NumPy path on them).
_FUSED_MIN_K = 64


def _fast_labels_block(
    zb: np.ndarray,
    lab: np.ndarray,
    ls: float,
    cdt: Any,
    compensate: bool,
    rw: np.ndarray | None,
    val: np.ndarray | None,
    grd: np.ndarray | None,
) -> bool:
    """The NumPy fast path for integer labels, no mask: fills `val` and `grd` for one block.

    Returns False (having written nothing) when a row max is not finite (or, when
    compensating, any entry is not finite); the general kernel then handles the block. Flat
    index arithmetic replaces the one-hot mask and the row-wise fancy indexing, so each pass
    over the block is one ufunc.
    """
    nb, k = zb.shape
    zf = zb.reshape(-1)
    base = np.arange(0, nb * k, k)
    idx = np.argmax(zb, axis=1)
    at = base + idx  # flat positions of the row maxima
    m = zf.take(at).astype(cdt, copy=False)
    # (A sum is finite only when every term is; one that overflows takes the general path.)
    if not np.isfinite(m.sum()) or (compensate and not np.isfinite(zb.min())):
        return False
    lat = base + lab  # flat positions of the labels
    zy = zf.take(lat).astype(cdt, copy=False)
    # The difference goes straight from the input into a compute-dtype block (no copy pass);
    # for float32 input it is exact in float64.
    # Per-thread scratch blocks: fresh (nb, k) temporaries would fault their pages in on
    # every call, which costs as much as the arithmetic on small problems.
    mk = _per_row(m, k)
    z = np.subtract(zb, mk, dtype=cdt, out=_buf("loss_z", (nb, k), cdt))
    lo = None
    if compensate:
        # z - m rounds, which would cost a small p_j up to |z_j - m| 2^-53 of relative
        # accuracy. Carry the exact rounding error (TwoSum) into the exponential.
        bb = np.subtract(z, zb, out=_buf("loss_bb", (nb, k), cdt))
        lo = np.subtract(z, bb, out=_buf("loss_lo", (nb, k), cdt))
        np.subtract(zb, lo, out=lo)
        np.add(mk, bb, out=bb)
        lo -= bb
    if ls:
        sum_d = _row_sums(z) if lo is None else _row_sums(z) + _row_sums(lo)
    np.exp(z, out=z)
    if lo is not None:
        lo *= z
        z += lo
    ez = z.reshape(-1)
    # The max entry contributes exactly 1; leave it out so that log1p(rest) keeps every digit.
    ez.put(at, 0.0)
    rest = _row_sums(z)
    if cdt == np.float32 and k > 1 and rest.min() < k * _F32_UNDERFLOW:
        # precision="fast" on float32: terms below float32's normal range have lost digits
        # or flushed to 0, and a sum of many of them may be all of a tiny loss. Such a block
        # (confident rows) is computed in float64 instead, so a loss is never a false 0.
        return _fast_labels_block(zb, lab, ls, np.float64, False, rw, val, grd)
    at_max = lab == idx
    if val is not None:
        lse = np.log1p(rest)
        v = lse + (m - zy)  # both >= 0; exactly lse when the label holds the max
        if ls:
            # sum_j -log p_j = k * lse - sum_j (z_j - m): two non-negative terms
            v = (1.0 - ls) * v + (ls / k) * (k * lse - sum_d)
        # Scale before the single rounding to the output dtype.
        val[...] = v if rw is None else v * rw
    if grd is not None:
        inv = 1.0 / (1.0 + rest)
        gf = grd.reshape(-1) if grd.flags.c_contiguous else None  # a view
        if not ls and gf is not None:
            # p_j = e_j / (1 + rest), scaled and rounded in one pass into the output; then the
            # label and max entries are overwritten (the max last: it may hold the label).
            sc = inv if rw is None else inv * rw
            np.multiply(z, _per_row(sc, k), out=grd, casting="unsafe")
            # A label off the max has p <= 1/2, so p - 1 does not cancel.
            g_lab = ez.take(lat) * inv
            g_lab -= 1.0
            if rw is not None:
                g_lab *= rw
            gf.put(lat, g_lab)
            # At the max p = 1 / (1 + rest), so p - 1 = -rest / (1 + rest): exact for a
            # confident right prediction, where p - 1 would cancel.
            g_max = np.where(at_max, np.negative(rest), 1.0)
            g_max *= sc
            gf.put(at, g_max)
            return True
        off = np.flatnonzero(~at_max)
        q_max = ls / k + (1.0 - ls) * at_max
        g_max = (1.0 - q_max) - rest * inv
        lat_off = lat.take(off)
        g_lab = ez.take(lat_off) * inv.take(off) - ls / k - (1.0 - ls)
        scale = inv if rw is None else inv * rw
        if ls:
            # p - ls / k in the compute dtype, then rounded once.
            z *= inv[:, None]
            z -= ls / k
            if rw is not None:
                z *= rw[:, None]
            grd[...] = z
        else:
            np.multiply(z, scale[:, None], out=grd, casting="unsafe")
        if rw is not None:
            g_max = g_max * rw
            g_lab = g_lab * rw.take(off)
        if gf is not None:
            gf.put(at, g_max)
            gf.put(lat_off, g_lab)
        else:
            grd[np.arange(nb), idx] = g_max
            grd[off, lab.take(off)] = g_lab
    return True


def _run_rows(
    rows: _Rows,
    target: Array,
    hard: bool,
    ls: float,
    row_weight: Array | None,
    ignored: Array | None,
    want: str,
    val_dtype: Any = None,
) -> tuple[Array | None, Array | None]:
    """Apply the kernel over all rows (cache-sized blocks on NumPy) and the row weights.

    ``target`` holds integer labels of shape ``lead`` when ``hard``, else probability rows.
    ``val_dtype`` (NumPy only) overrides the dtype of the values, so that a caller who sums
    them can keep the compute dtype.
    """
    xp, cdt, dtype, k = rows.xp, rows.cdt, rows.dtype, rows.k
    if k == 0 or not is_numpy(xp):
        if k == 0:
            v = xp.zeros(rows.lead, dtype=cdt, device=array_api_compat.device(rows.x))
            g = xp.astype(rows.y, cdt) * 0.0
        else:
            t = target
            if hard:
                t = target[..., None] == xp.arange(k, device=array_api_compat.device(rows.x))
            with np.errstate(all="ignore"):
                v, g = _softmax_ce_kernel(
                    xp.astype(rows.y, cdt), rows.v, t, hard, ls, xp, rows.compensate, want
                )
        v, g = _scale_rows(v, g, row_weight, ignored, xp)
        return (
            None if v is None else unwrap_scalar(xp.astype(v, dtype), xp),
            None if g is None else rows.restore(xp.astype(g, dtype)),
        )

    y2 = np.reshape(rows.y, (-1, k))
    n = y2.shape[0]
    v2 = None if rows.v is None else np.reshape(rows.v, (-1, k))
    t2 = np.reshape(target, (n,) if hard else (n, k))
    rw2 = None if row_weight is None else np.reshape(row_weight, (n,))
    ig2 = None if ignored is None else np.reshape(ignored, (n,))
    val = np.empty(n, dtype=val_dtype or dtype) if want != "grad" else None
    grd = np.empty((n, k), dtype=dtype) if want != "value" else None
    cols = np.arange(k)

    def _zero_ignored(b: slice) -> None:
        # Ignored rows are exactly 0, even where their loss would be inf or nan.
        if ig2 is not None:
            igb = ig2[b]
            if val is not None:
                val[b][igb] = 0.0
            if grd is not None:
                grd[b][igb] = 0.0

    fast = hard and v2 is None
    arrays = (y2,) if grd is None else (y2, grd)
    # Rows of 2 to 64 take the short-row kernel (tests set _FUSED_MIN_K = 0 to send every
    # length to the per-row one).
    short = 2 <= k <= _FUSED_MIN_K
    nb = fused("sigmax._numba_losses", *arrays) if fast and (short or k > _FUSED_MIN_K) else None

    def run(b: slice) -> None:
        rwb = None if rw2 is None else rw2[b]
        if nb is not None and nb.labels_block(
            y2[b],
            t2[b],
            ls,
            rwb,
            None if val is None else val[b],
            None if grd is None else grd[b],
            rows.compensate,
            short,
        ):
            _zero_ignored(b)
            return
        if fast and _fast_labels_block(
            y2[b],
            t2[b],
            ls,
            cdt,
            rows.compensate,
            rwb,
            None if val is None else val[b],
            None if grd is None else grd[b],
        ):
            _zero_ignored(b)
            return
        # The one-hot mask is built per block, so memory stays at a block, not n * k bools.
        t = t2[b][:, None] == cols if hard else t2[b]
        v, g = _softmax_ce_kernel(
            y2[b].astype(cdt, copy=False),
            None if v2 is None else v2[b],
            t,
            hard,
            ls,
            np,
            rows.compensate,
            want,
        )
        v, g = _scale_rows(
            v, g, None if rw2 is None else rw2[b], None if ig2 is None else ig2[b], np
        )
        if val is not None:
            val[b] = v
        if grd is not None:
            grd[b] = g

    with np.errstate(all="ignore"):
        if n * k <= _SOFTMAX_BLOCK:  # one block: no scheduling
            run(slice(0, n))
        elif nb is not None:
            block_rows(n, k, run, block_elements=FUSED_BLOCK_ELEMENTS)
        else:
            block_rows(n, _block_scale(_SOFTMAX_BLOCK, k), run)
    return (
        None if val is None else unwrap_scalar(val.reshape(rows.lead), xp),
        None if grd is None else rows.restore(grd.reshape(rows.y.shape)),
    )


def _labels_setup(
    rows: _Rows, labels: Any, class_weight: Any, ignore_index: Any
) -> tuple[Array, Array | None, Array | None]:
    """Checked labels (ignored ones set to 0), per-row weights and the ignored rows."""
    xp, k = rows.xp, rows.k
    lab_x = namespace(labels, "labels")[0]
    check_shape(lab_x, rows.lead, "labels", "the shape of `logits` without `axis`")
    if ignore_index is not None:
        if isinstance(ignore_index, bool):
            raise TypeError(f"`ignore_index` must be an int or None, got {ignore_index!r}")
        try:
            ignore_index = operator.index(ignore_index)
        except TypeError:
            raise TypeError(
                f"`ignore_index` must be an int or None, got {ignore_index!r}"
            ) from None
    if is_traced(lab_x) or is_traced(class_weight):
        return _traced_labels(rows, lab_x, class_weight, ignore_index)
    lab = check_labels(to_numpy(lab_x), k, ignore_index)
    ignored_np = None
    if ignore_index is not None:
        ignored_np = lab == ignore_index
        lab = np.where(ignored_np, 0, lab)
        if not ignored_np.any():
            ignored_np = None
    row_w_np = None
    if class_weight is not None:
        cw = check_nonnegative_weights(class_weight, "class_weight", (k,))
        row_w_np = cw[lab] if k else np.zeros(lab.shape)
    if is_numpy(xp):
        rw = None if row_w_np is None else row_w_np.astype(rows.cdt)
        return lab, rw, ignored_np
    dev = array_api_compat.device(rows.x)
    lab_x = xp.asarray(lab, device=dev)
    rw = None if row_w_np is None else _operand(row_w_np, xp, rows.x, rows.cdt)
    ig = None if ignored_np is None else xp.asarray(ignored_np, device=dev)
    return lab_x, rw, ig


def _traced_labels(
    rows: _Rows, labels: Array, class_weight: Any, ignore_index: int | None
) -> tuple[Array, Array | None, Array | None]:
    """`_labels_setup` inside a JAX transformation, where the labels' (or the class
    weights') values cannot be read: their dtype and shape are checked, not their range."""
    xp = rows.xp
    if xp.isdtype(labels.dtype, "bool") or not xp.isdtype(
        labels.dtype, ("integral", "real floating")
    ):
        raise TypeError(f"`labels` must hold integer class indices, got dtype {labels.dtype}")
    if array_api_compat.array_namespace(labels) is not xp:
        raise TypeError("`labels` must be an array of the same library as `logits`")
    if xp.isdtype(labels.dtype, "real floating"):
        labels = xp.astype(labels, xp.int32)
    ig = None
    if ignore_index is not None:
        ig = labels == ignore_index
        labels = xp.where(ig, xp.zeros_like(labels), labels)
    rw = None
    if class_weight is not None:
        cw = _weights(class_weight, "class_weight", xp, rows.x, rows.cdt)
        if tuple(cw.shape) != (rows.k,):
            raise ValueError(f"`class_weight` must have shape {(rows.k,)}, got {tuple(cw.shape)}")
        # Array API take: 1-D indices.
        rw = xp.reshape(xp.take(cw, xp.reshape(labels, (-1,))), tuple(labels.shape))
    return labels, rw, ig


def _softmax_labels_run(
    logits: Any,
    labels: Any,
    axis: Any,
    class_weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    where: Any,
    want: str,
    precision: str = "accurate",
) -> tuple[Array | None, Array | None]:
    rows = _Rows(logits, axis, where, precision)
    ls = check_label_smoothing(label_smoothing)
    lab, rw, ig = _labels_setup(rows, labels, class_weight, ignore_index)
    if rows.valid is None and is_numpy(rows.xp):
        cols = _columns_ce(rows, lab, rw, ig, ls, want, precision)
        if cols is not None:
            return cols
    return _run_rows(rows, lab, True, ls, rw, ig, want)


def _columns_ce(
    rows: _Rows,
    lab: np.ndarray,
    rw: np.ndarray | None,
    ig: np.ndarray | None,
    ls: float,
    want: str,
    precision: str,
) -> tuple[Array | None, Array | None] | None:
    """Softmax cross-entropy along an axis that is not the last (the channels of ``(N, C,
    H, W)`` segmentation logits) on the column kernels (:mod:`sigmax._numba_columns`,
    `sigmax.functions.column_geometry`), or None where they do not apply or decline (a
    nan or an infinity)."""
    x = rows.x
    geometry = column_geometry(x, rows.axis, rows.dtype)
    if geometry is None:
        return None
    n, c, s = geometry
    val = np.empty(rows.lead, dtype=rows.dtype)
    grd = np.empty(x.shape, dtype=rows.dtype) if want != "value" else None
    nb = fused("sigmax._numba_columns", x, val, *([] if grd is None else [grd]))
    if nb is None:
        return None
    y2 = np.ascontiguousarray(lab, dtype=np.int64).reshape(n, s)
    w2 = np.ones((n, s)) if rw is None else np.array(rw, dtype=np.float64).reshape(n, s)
    if ig is not None:
        w2[np.reshape(ig, (n, s))] = 0.0
    x3, v2 = x.reshape(n, c, s), val.reshape(n, s)
    g3 = None if grd is None else grd.reshape(n, c, s)
    fast = precision == "fast"

    def call(i: int, s0: int, s1: int) -> bool:
        return bool(nb.columns_ce(x3, y2, w2, v2, g3, fast, ls, i, s0, s1))

    if not run_columns(n, c, s, call):
        return None
    return (None if want == "grad" else unwrap_scalar(val, np)), grd


def _softmax_labels_total(
    logits: np.ndarray,
    labels: np.ndarray,
    row_weight: np.ndarray,
    label_smoothing: float,
    want: str,
    precision: str = "accurate",
) -> tuple[float, np.ndarray | None]:
    """``sum_i row_weight_i * l_i`` and its gradient, for the heads and estimators.

    Trusted input, nothing is checked: NumPy logits ``(n, k)``, labels in ``[0, k)`` (ignored
    rows already mapped into range) and non-negative float64 row weights that fold in the
    sample and class weights, the ignored rows (weight 0) and the mean's denominator, so the
    scaling costs no pass of its own. The values are summed in the compute dtype (float64). A
    row of weight 0 counts as exactly 0 (value and gradient), even where its loss is inf.
    """
    rows = _Rows.trusted(logits, precision)
    ig = row_weight == 0
    ig_any = bool(ig.any())
    v, g = _run_rows(
        rows, labels, True, label_smoothing, row_weight, ig if ig_any else None, want, np.float64
    )
    return (0.0 if v is None else float(np.sum(v))), g


_SOFTMAX_LABEL_PARAMS = r"""    logits : array, shape (..., n_classes, ...)
        Logits, classes along `axis`. Any Array API array.
    labels : array of ints, shape of `logits` without `axis`
        Class indices in ``[0, n_classes)``. Floats are accepted when they are whole numbers.
        (Not checked when traced by ``jax.jit``; see the module notes.)
    axis : int, default=-1
        The class axis.
    class_weight : array, shape (n_classes,), optional
        Non-negative weights; row :math:`i` is scaled by :math:`c_{y_i}`.
    ignore_index : int, optional
        Rows with this label give a loss and gradient of exactly 0. It may lie outside
        ``[0, n_classes)`` (such as PyTorch's -100).
    label_smoothing : float in [0, 1), default=0.0
        The target becomes :math:`q = (1 - \epsilon)\,\mathrm{onehot}(y) + \epsilon / k`, where
        :math:`k` counts the classes that take part (see `where`).
    where : bool array broadcastable to `logits`, optional
        Classes that take part in each softmax. A label on a masked class gives ``inf``.
    precision : {"accurate", "fast"}, default="accurate"
        ``"accurate"`` computes float16/float32 in float64 (values within 1 ULP) and carries
        the rounding error of :math:`z_j - m` for float64 (within 3 ULP). ``"fast"`` computes
        float32 in float32 and float64 without that carried error (float16 in float32). It
        keeps the non-cancelling forms, so it never returns a false 0 for a tiny loss, but a
        value may be off by about :math:`(4 + z_{max} - z_{min})` units of the dtype's
        epsilon, relative (see Notes)."""


def softmax_cross_entropy(
    logits: Any,
    labels: Any,
    /,
    *,
    axis: int = -1,
    class_weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    precision: str = "accurate",
) -> Array:
    r"""Cross-entropy of a softmax output with integer labels, one value per row.

    .. math:: \ell(z, y) = c_y \Big( -(1 - \epsilon)\log p_y
              - \frac{\epsilon}{k}\sum_j \log p_j \Big),
              \qquad p = \operatorname{softmax}(z)

    Parameters
    ----------
    {params}

    Returns
    -------
    array, shape of `logits` without `axis`
        Non-negative losses, in the logits' namespace, device and float dtype.

    Raises
    ------
    TypeError
        For complex logits, bool or non-numeric labels, or a non-integer `axis`.
    ValueError
        For labels out of range (other than `ignore_index`) or not whole numbers, a shape
        mismatch, or a bad `class_weight`; the message names the first offending index and value.

    Notes
    -----
    :math:`-\log p_j = \operatorname{log1p}(r) - (z_j - m)`, where :math:`m` is the row max and
    :math:`r` sums :math:`e^{z_j - m}` over the non-max entries. Both parts are non-negative, so a
    common offset cancels exactly (all logits at ``1e8`` are fine) and a confident right
    prediction keeps full relative accuracy (``log1p(r)``, not ``log(1 + r)``). For float64 the
    difference :math:`z_j - m` carries its rounding error. Accuracy: <= 1 ULP for
    float16/float32, <= 3 ULP for float64 (``precision="fast"``: 4 ULP for float32 on the
    tested cases; see `precision`).

    Class weights and label smoothing combine as a per-row scale of the smoothed loss (PyTorch
    instead weights each smoothing term by its own class; the two agree when either is off).
    When every row is ignored the losses are all 0 (a mean over no rows is the caller's
    choice; :class:`sigmax.heads.SoftmaxHead` returns 0). Infinite logits with a hard label give
    0 where the label holds the unique ``+inf`` and ``inf`` where it does not; a nan gives nan.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_cross_entropy([[0.0, -92.0], [1e8, 1e8]], [0, 1])
    array([1.10893902e-40, 6.93147181e-01])
    """
    v, _ = _softmax_labels_run(
        logits, labels, axis, class_weight, ignore_index, label_smoothing, where, "value", precision
    )
    return v


def softmax_cross_entropy_value_and_grad(
    logits: Any,
    labels: Any,
    /,
    *,
    axis: int = -1,
    class_weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    where: Any = None,
    precision: str = "accurate",
) -> ValueAndGrad:
    r""":func:`softmax_cross_entropy` and its gradient with respect to the logits, in one pass.

    .. math:: \frac{\partial \ell}{\partial z} = c_y\,(p - q), \qquad
              q = (1 - \epsilon)\,\mathrm{onehot}(y) + \epsilon / k

    Parameters
    ----------
    {params}

    Returns
    -------
    ValueAndGrad
        ``value`` of the logits' shape without `axis`; ``grad`` of the logits' shape.

    Notes
    -----
    At the row's max entry :math:`p = 1/(1 + r)`, so the gradient there is formed as
    :math:`(1 - q) - r/(1 + r)`: a confident right prediction gets the tiny gradient
    :math:`-r/(1+r)` with full relative accuracy. Masked classes and ignored rows get 0.

    Speed: on NumPy, integer labels without `where` take a fast path that replaces the one-hot
    mask by flat index arithmetic (one ufunc per pass over a cache-sized block, in per-thread
    scratch buffers). With ``precision="accurate"`` float64 input pays about 1.3-1.5x for the
    compensated difference :math:`z_j - m`; ``precision="fast"`` drops it (and computes
    float32 in float32), so each probability :math:`p_j` is then within about
    :math:`(8 + |z_j - m|)\,\epsilon` of the accurate one, relative. A float32 block whose
    non-max terms fall below float32's normal range (a confident row) is recomputed in
    float64, so a tiny loss never comes back as a false 0.

    Examples
    --------
    >>> import sigmax
    >>> r = sigmax.softmax_cross_entropy_value_and_grad([[2.0, 0.0, -50.0]], [0])
    >>> r.grad
    array([[-1.19202922e-01,  1.19202922e-01,  2.29912618e-23]])
    """
    v, g = _softmax_labels_run(
        logits, labels, axis, class_weight, ignore_index, label_smoothing, where, "both", precision
    )
    return ValueAndGrad(v, g)


def _targets_run(logits: Any, targets: Any, axis: Any, where: Any, want: str) -> Any:
    rows = _Rows(logits, axis, where)
    xp = rows.xp
    tx = namespace(targets, "targets")[0]
    check_shape(tx, tuple(rows.x.shape), "targets", "the shape of `logits`")
    if is_traced(tx):
        t = rows.moved(_traced(tx, xp, rows.cdt, "targets"))
        return _run_rows(rows, t, False, 0.0, None, None, want)
    tn = to_numpy(tx)
    tn_moved = np.moveaxis(tn, rows.axis, -1) if tn.ndim else tn
    check_probability_rows(tn_moved, float(xp.finfo(rows.dtype).eps), "targets")
    t = _operand(tn_moved, xp, rows.x, rows.cdt)
    if is_numpy(xp):
        t = np.ascontiguousarray(t)
    return _run_rows(rows, t, False, 0.0, None, None, want)


def softmax_cross_entropy_with_targets(
    logits: Any, targets: Any, /, *, axis: int = -1, where: Any = None
) -> Array:
    r"""Cross-entropy of a softmax output with probability targets, one value per row.

    .. math:: \ell(z, t) = -\sum_j t_j \log \operatorname{softmax}(z)_j

    Parameters
    ----------
    logits : array, shape (..., n_classes, ...)
    targets : array, shape of `logits`
        Probability rows along `axis`: entries in [0, 1] summing to 1 within
        ``max(16, n_classes) * eps`` of the logits' dtype (not checked when traced by
        ``jax.jit``; see the module notes).
    axis : int, default=-1
    where : bool array broadcastable to `logits`, optional
        Classes that take part; a positive target on a masked class gives ``inf``.

    Returns
    -------
    array, shape of `logits` without `axis`

    Raises
    ------
    ValueError
        For a shape mismatch, a target outside [0, 1] or a row that does not sum to 1 (the
        message gives the first offending index and value).

    Notes
    -----
    The sum runs over non-negative terms :math:`t_j(-\log p_j)`, skipping :math:`t_j = 0`, so
    an infinite logit with a hard target gives 0 or ``inf``, never nan. Accuracy as
    :func:`softmax_cross_entropy`.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_cross_entropy_with_targets([[0.0, 0.0]], [[0.25, 0.75]])
    array([0.69314718])
    """
    v, _ = _targets_run(logits, targets, axis, where, "value")
    return v


def softmax_cross_entropy_with_targets_value_and_grad(
    logits: Any, targets: Any, /, *, axis: int = -1, where: Any = None
) -> ValueAndGrad:
    r""":func:`softmax_cross_entropy_with_targets` and its gradient :math:`p - t`, in one pass.

    .. math:: \frac{\partial \ell}{\partial z} = \operatorname{softmax}(z) - t

    Parameters
    ----------
    logits : array, shape (..., n_classes, ...)
    targets : array, shape of `logits`
    axis : int, default=-1
    where : bool array broadcastable to `logits`, optional

    Returns
    -------
    ValueAndGrad

    Notes
    -----
    Uses :math:`\sum_j t_j = 1`. At the max entry the gradient is :math:`(1 - t_m) - r/(1+r)`
    (see :func:`softmax_cross_entropy_value_and_grad`).

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_cross_entropy_with_targets_value_and_grad([[0.0, 0.0]], [[0.25, 0.75]]).grad
    array([[ 0.25, -0.25]])
    """
    v, g = _targets_run(logits, targets, axis, where, "both")
    return ValueAndGrad(v, g)


def _row_scale(rows: _Rows, sample_weight: Any) -> Array | None:
    if sample_weight is None:
        return None
    sw, _ = namespace(sample_weight, "sample_weight")
    check_shape(sw, rows.lead, "sample_weight", "one weight per row of `logits`")
    if is_traced(sw):
        return _traced(sw, rows.xp, rows.cdt, "sample_weight")
    return _operand(to_numpy(sw).astype(np.float64), rows.xp, rows.x, rows.cdt)


def _softmax_probs(rows: _Rows) -> tuple[Array, Array, _Parts]:
    z = rows.xp.astype(rows.y, rows.cdt)
    xp = rows.xp
    with np.errstate(all="ignore"):
        parts = _Parts(z, rows.v, xp, rows.compensate)
        p = _softmax_kernel(parts, xp)
    return z, p, parts


def softmax_cross_entropy_hvp(
    logits: Any,
    vector: Any,
    /,
    *,
    axis: int = -1,
    where: Any = None,
    sample_weight: Any = None,
) -> Array:
    r"""Hessian-vector product of the softmax cross-entropy with respect to the logits.

    .. math:: H v = s_i\,\big(\operatorname{diag}(p) - p p^\top\big) v
              = s_i\,\big(p \odot v - p \,\langle p, v\rangle\big)

    This is the Hessian of ``value.sum()`` for :func:`softmax_cross_entropy_with_targets`
    (any targets: :math:`\sum_j t_j = 1`) and for :func:`softmax_cross_entropy` without
    options. The Hessian does not depend on the labels except through a per-row scale:
    with `class_weight` :math:`c`, `ignore_index` and label smoothing, the Hessian of
    ``softmax_cross_entropy(...).sum()`` is this product with
    ``sample_weight = c[labels] * (labels != ignore_index)`` (label smoothing leaves it unchanged,
    because the smoothed target still sums to 1).

    Parameters
    ----------
    logits : array, shape (..., n_classes, ...)
    vector : array, shape of `logits`
    axis : int, default=-1
    where : bool array broadcastable to `logits`, optional
        Masked classes get 0.
    sample_weight : array, shape of `logits` without `axis`, optional
        The per-row scale :math:`s_i` (default 1).

    Returns
    -------
    array, shape of `logits`

    Notes
    -----
    Pivoting on the row's largest entry :math:`m` (with :math:`w = v - v_m`, which leaves
    :math:`Hv` unchanged because :math:`\sum_j p_j = 1`), :math:`Hv = p \odot (w - \sum_{j \ne m}
    p_j w_j)`, so the entry at :math:`m` is formed from the small probabilities and keeps its
    relative accuracy when :math:`p_m` is close to 1.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_cross_entropy_hvp([[0.0, 0.0]], [[1.0, 0.0]])
    array([[ 0.25, -0.25]])
    """
    rows = _Rows(logits, axis, where)
    xp = rows.xp
    v, _ = namespace(vector, "vector")
    check_shape(v, tuple(rows.x.shape), "vector", "the shape of `logits`")
    if not is_numpy(xp) and array_api_compat.array_namespace(v) is not xp:
        v = _operand(to_numpy(v), xp, rows.x, rows.cdt)
    sw = _row_scale(rows, sample_weight)
    if rows.k == 0:
        return rows.restore(xp.astype(rows.y, rows.dtype) * 0.0)
    _, p, _ = _softmax_probs(rows)
    vv = xp.astype(rows.moved(v), rows.cdt)
    if rows.v is not None:
        vv = xp.where(rows.v, vv, xp.zeros_like(vv))
    cols = xp.arange(rows.k, device=array_api_compat.device(rows.x))
    pivot = xp.argmax(p, axis=-1, keepdims=True) == cols
    vm = xp.sum(xp.where(pivot, vv, xp.zeros_like(vv)), axis=-1, keepdims=True)
    w = vv - vm
    inner = xp.sum(xp.where(pivot, xp.zeros_like(w), p * w), axis=-1, keepdims=True)
    r = p * (w - inner)
    if sw is not None:
        r = r * sw[..., None]
    return rows.restore(xp.astype(r, rows.dtype))


def softmax_cross_entropy_hessian_diag(
    logits: Any,
    /,
    *,
    axis: int = -1,
    where: Any = None,
    sample_weight: Any = None,
) -> Array:
    r"""The exact diagonal of the softmax cross-entropy Hessian: :math:`s_i\, p_j (1 - p_j)`.

    Parameters
    ----------
    logits : array, shape (..., n_classes, ...)
    axis : int, default=-1
    where : bool array broadcastable to `logits`, optional
    sample_weight : array, shape of `logits` without `axis`, optional
        Per-row scale, as in :func:`softmax_cross_entropy_hvp`.

    Returns
    -------
    array, shape of `logits`

    Notes
    -----
    At the max entry :math:`1 - p_m = r / (1 + r)` is formed directly, so a confident row keeps
    its tiny curvature instead of rounding to 0.

    Examples
    --------
    >>> import sigmax
    >>> sigmax.softmax_cross_entropy_hessian_diag([[0.0, 0.0], [0.0, -60.0]])
    array([[2.50000000e-01, 2.50000000e-01],
           [8.75651076e-27, 8.75651076e-27]])
    """
    rows = _Rows(logits, axis, where)
    xp = rows.xp
    sw = _row_scale(rows, sample_weight)
    if rows.k == 0:
        return rows.restore(xp.astype(rows.y, rows.dtype) * 0.0)
    _, p, parts = _softmax_probs(rows)
    one_minus = xp.where(parts.ismax, parts.rest / (1.0 + parts.rest), 1.0 - p)
    h = p * one_minus
    h = xp.where(parts.empty, xp.zeros_like(h), h)
    if sw is not None:
        h = h * sw[..., None]
    return rows.restore(xp.astype(h, rows.dtype))


for _f in (softmax_cross_entropy, softmax_cross_entropy_value_and_grad):
    _f.__doc__ = (_f.__doc__ or "").replace("{params}", _SOFTMAX_LABEL_PARAMS.strip())
del _f
