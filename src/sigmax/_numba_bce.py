"""Optional fused numba kernels for the sigmoid (binary) cross-entropy and log_sigmoid.

The NumPy path (:func:`sigmax.losses._sigmoid_fast_block`) makes about 15 passes over each
block, one per ufunc; this kernel reads each logit and target once and writes the value and
the gradient in the same loop. It uses the forms of the NumPy path, which never cancel:

- the value ``w_+ t' softplus(-x) + (1 - t') softplus(x)`` is summed as
  ``w_+ t' max(-x, 0) + (1 - t') max(x, 0) + (w_+ t' + 1 - t') log1p(e)``, ``e = exp(-|x|)``,
  non-negative terms, where a term whose weight is 0 is 0 even when ``|x|`` is infinite
  (``x = +inf`` with ``t = 1`` gives 0, not nan);
- the gradient is ``((1 - t') a - w_+ t' b) / (1 + e)``, where one of ``a = exp(min(x, 0))``
  and ``b = exp(-max(x, 0))`` is 1 and the other is ``e``: exact at the confident ends, and
  finite at infinite logits;
- the smoothed targets ``t' = t (1 - eps) + eps / 2`` and ``1 - t' = (1 - t)(1 - eps) + eps / 2``
  are sums of non-negative terms (``eps = 0`` gives ``t`` and ``1 - t`` exactly).

It needs a ``log1p`` that LLVM can vectorize (numba's is a scalar libm call, see
:mod:`sigmax._numba_forward`), and only on [0, 1]. :func:`_log1p_unit` reduces ``u`` to an
``f`` with ``log1p(u) = k ln 2 + log1p(f)`` *without rounding*: ``f = u`` (``k = 0``) below
1/2, and ``f = (u - 1) / 2`` (``k = 1``, exact by Sterbenz's lemma) from 1/2, so ``f`` lies in
[-1/4, 1/2). Then ``log1p(f) = 2 atanh(s)``, ``s = f / (2 + f)``, ``|s| <= 1/5``, written as
fdlibm does, ``f - (f^2/2 - s (f^2/2 + R(s^2)))``: the leading ``f`` is exact and the
correction is at most a quarter of it, so its rounding errors shrink by that factor; for
``k = 1`` the sum ``ln 2 + f`` carries its exact rounding error (Fast2Sum). ``R`` is the atanh
series ``sum_i 2 s^(2i) / (2i + 1)``, 11 terms for float64 results (truncation below
``2**-60`` relative), 6 for results rounded to float32 (below ``2**-36``). Measured against
mpmath over [0, 1] (subnormals included): 0.77 ULP in float64 (``tests/test_bce_kernel.py``);
about 1.2 ns per element on AVX-512, NumPy's ``log1p`` 1.5.

float32 logits are computed in float64 and rounded once, for both precisions: that keeps the
1-ULP contract, within the documented bound of ``precision="fast"``, and already runs in less
than half the time of the fastest peer (a float32-arithmetic variant, with twice the SIMD
lanes, is not written). nan logits give nan, as on the NumPy
path. ``where`` and per-element weights (the heads' sample weights) are applied in the same
loop: an excluded entry or a weight of 0 gives exactly 0.

Used by :func:`sigmax.losses._sigmoid_run` for NumPy float32/float64 logits when numba imports
and ``SIGMAX_DISABLE_NUMBA`` is unset or ``0``; the kernel compiles on first use (cached on
disk) and releases the GIL, so :func:`sigmax._array_api.block_rows` runs it on its threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax._numba_forward import enabled, numba

__all__ = ["bce_block", "enabled", "log1p_unit", "log_sigmoid_block"]

bce_block: Callable[..., None]
log_sigmoid_block: Callable[[np.ndarray, np.ndarray], None]
log1p_unit: Callable[[np.ndarray, np.ndarray, bool], None]

if numba is not None:
    from sigmax._numba_forward import (
        _exp_tail,
        _exp_tail_for32,
        _jit,
        _jit_inline,
        _log1p_unit,
    )

    @_jit
    def _log1p_array(u: np.ndarray, out: np.ndarray, full: bool) -> None:
        if full:
            for j in range(u.shape[0]):
                out[j] = _log1p_unit(u[j], True)
        else:
            for j in range(u.shape[0]):
                out[j] = _log1p_unit(u[j], False)

    @_jit_inline
    def _elem(x: float, tj: float, pwj: float, keep: float, half: float, full: bool) -> Any:
        """Value and gradient of one entry, in float64."""
        tp = tj * keep + half
        tn = (1.0 - tj) * keep + half
        tpw = tp * pwj
        ax = abs(x)
        e = _exp_tail(-ax, 0.0) if full else _exp_tail_for32(-ax)
        l1p = _log1p_unit(e, full)
        pos = x >= 0.0
        # tpw max(-x, 0) + tn max(x, 0) + (tpw + tn) log1p(e), as the NumPy path: |x| is not
        # rounded together with log1p(e) before the weight multiplies it, and the two weights
        # multiply log1p(e) apiece (fused into the sums: max 2.2 ULP on the tests' cases in
        # float64, where (tpw + tn) log1p(e) gave 2.5). A select, not a product, where the
        # weight of |x| is 0: that is a right prediction at an infinite x.
        c = tn if pos else tpw
        v = ((c * ax if c > 0.0 else 0.0) + tn * l1p) + tpw * l1p
        g = (tn * (1.0 if pos else e) - tpw * (e if pos else 1.0)) / (1.0 + e)
        return v, g

    @_jit_inline
    def _loop(
        x: np.ndarray,
        t: np.ndarray,
        pw: Any,
        valid: Any,
        w: Any,
        keep: float,
        half: float,
        val: Any,
        grd: Any,
        full: bool,
    ) -> None:
        for j in range(x.shape[0]):
            pwj = 1.0 if pw is None else np.float64(pw[j])
            v, g = _elem(np.float64(x[j]), np.float64(t[j]), pwj, keep, half, full)
            if valid is not None:
                v = v if valid[j] else 0.0
                g = g if valid[j] else 0.0
            if w is not None:
                wj = np.float64(w[j])
                v = v * wj if wj > 0.0 else 0.0
                g = g * wj if wj > 0.0 else 0.0
            if val is not None:
                val[j] = v
            if grd is not None:
                grd[j] = g

    @_jit
    def _bce(
        x: np.ndarray,
        t: np.ndarray,
        pw: Any,
        valid: Any,
        w: Any,
        ls: float,
        val: Any,
        grd: Any,
        full: bool,
    ) -> None:
        # Two inlined copies of the loop, so that `full` is a constant in each.
        if full:
            _loop(x, t, pw, valid, w, 1.0 - ls, 0.5 * ls, val, grd, True)
        else:
            _loop(x, t, pw, valid, w, 1.0 - ls, 0.5 * ls, val, grd, False)

    def _as_float(a: np.ndarray | None) -> np.ndarray | None:
        # Targets and weights of other dtypes (bool, integers, float16) become float64 here,
        # block by block, so that the kernel compiles for two dtypes only.
        if a is None:
            return a
        floating = a.dtype in (np.float32, np.float64)
        if floating and a.flags.c_contiguous:
            return a
        return np.ascontiguousarray(a, dtype=a.dtype if floating else np.float64)

    def _bce_block(
        x: np.ndarray,
        t: np.ndarray,
        pw: np.ndarray | None,
        valid: np.ndarray | None,
        w: np.ndarray | None,
        ls: float,
        val: np.ndarray | None,
        grd: np.ndarray | None,
    ) -> None:
        """Values into `val` and gradients into `grd` (either may be None) for contiguous
        1-D blocks: logits `x` (float32 or float64), targets `t`, and optionally the
        positive weight `pw`, the mask `valid` and the weights `w`, all of `x`'s length."""
        _bce(
            x,
            _as_float(t),
            _as_float(pw),
            valid,
            _as_float(w),
            float(ls),
            val,
            grd,
            x.dtype == np.float64,
        )

    def _log1p_unit_array(u: np.ndarray, out: np.ndarray, full: bool) -> None:
        """:func:`_log1p_unit` over a float64 array (for the tests)."""
        _log1p_array(u, out, full)

    @_jit
    def _log_sigmoid(x: np.ndarray, out: np.ndarray, full: bool) -> None:
        """log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): two terms <= 0, never cancelling."""
        if full:
            for j in range(x.shape[0]):
                v = np.float64(x[j])
                e = _exp_tail(-abs(v), 0.0)
                out[j] = min(v, 0.0) - _log1p_unit(e, True)
        else:
            for j in range(x.shape[0]):
                v = np.float64(x[j])
                e = _exp_tail_for32(-abs(v))
                out[j] = min(v, 0.0) - _log1p_unit(e, False)

    def _log_sigmoid_block(x: np.ndarray, out: np.ndarray) -> None:
        """:func:`sigmax.log_sigmoid` of a float32/float64 block into `out` (same dtype)."""
        _log_sigmoid(x, out, x.dtype == np.float64)

    bce_block = _bce_block
    log1p_unit = _log1p_unit_array
    log_sigmoid_block = _log_sigmoid_block
