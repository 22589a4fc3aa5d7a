"""Optional fused numba kernel for softmax cross-entropy with integer labels.

The value and the gradient of a row come from one pass over memory, on the primitives of
:mod:`sigmax._numba_forward` (its vectorized ``exp``, row max and compensated row sums), with
the non-cancelling forms of the NumPy path in :mod:`sigmax.losses`:

- the value is ``log1p(rest) + (m - z_y)``, two non-negative terms, where ``rest`` leaves the
  max entry out of the sum (a loss of 1e-40 stays 1e-40);
- the gradient at a label that holds the max is ``-rest / (1 + rest)``, exact for a confident
  right prediction where ``p - 1`` would cancel; elsewhere it is ``p_j`` (or ``p_y - 1``
  with ``p_y <= 1/2``).

float32 logits are computed in float64 (degree-8 ``exp``) for both precisions: that is as fast
as float32 arithmetic here once the memory traffic is counted, and it keeps the 1-ULP
contract. float64 logits carry the rounding error of ``z_j - m`` with
``precision="accurate"``. A block with a non-finite row goes back to the NumPy path (the
kernel returns False), which implements the IEEE rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax._numba_forward import enabled, numba

__all__ = ["enabled", "labels_block"]

labels_block: Callable[..., bool]

if numba is not None:
    from sigmax._numba_forward import (
        _jit,
        _jit_sum,
        _log1p_rest,
        _log1p_rest64,
        _row_sums,
        _two_diff,
    )
    from sigmax._numba_short import _F32, _F64, _SHORT_SUB, _shifted_rests

    @_jit_sum
    def _sum_diff(x: np.ndarray, m: float, compensate: bool) -> float:
        """sum_j (x_j - m), every term <= 0 (no cancellation), with the exact rounding error
        of each difference when `compensate`."""
        s = 0.0
        if compensate:
            for j in range(x.shape[0]):
                d, lo = _two_diff(np.float64(x[j]), m)
                # A -inf logit (a class ruled out) makes lo nan (inf - inf): its term is -inf.
                s += d + (lo if d - d == 0.0 else 0.0)
        else:
            for j in range(x.shape[0]):
                s += np.float64(x[j]) - m
        return s

    @_jit
    def _row_loss(
        xi: np.ndarray,
        ei: np.ndarray,
        i: int,
        y: int,
        w: float,
        ls: float,
        m: float,
        rest: float,
        lse: float,
        compensate: bool,
        val: Any,
        grd: Any,
    ) -> None:
        """Value (into ``val[i]``) and gradient (into ``grd[i]``) of row `i`, from its max
        `m`, ``rest``, ``lse = log1p(rest)`` and exps `ei` (exactly 1 at the max entries);
        `w` the row's weight, `ls` the label smoothing."""
        k = xi.shape[0]
        zy = np.float64(xi[y])
        at_max = zy == m
        if val is not None:
            v = lse + (m - zy)
            if ls != 0.0:
                # sum_j -log p_j = k lse - sum_j (z_j - m): two non-negative terms.
                v = (1.0 - ls) * v + (ls / k) * (k * lse - _sum_diff(xi, m, compensate))
            val[i] = v * w
        if grd is not None:
            inv = 1.0 / (1.0 + rest)
            gi = grd[i]
            q = ls / k
            if ls == 0.0:
                sc = inv * w
                for j in range(k):
                    gi[j] = ei[j] * sc
            else:
                for j in range(k):
                    gi[j] = (ei[j] * inv - q) * w
            if at_max:
                gi[y] = ((1.0 - q - (1.0 - ls)) - rest * inv) * w
            else:
                gi[y] = ((ei[y] * inv - q) - (1.0 - ls)) * w

    @_jit
    def _labels(
        x: np.ndarray,
        lab: np.ndarray,
        ls: float,
        rw: Any,
        val: Any,
        grd: Any,
        mode: int,
        e: np.ndarray,
    ) -> bool:
        for i in range(x.shape[0]):
            xi = x[i]
            m, rest = _row_sums(xi, e, mode)
            if not (np.isfinite(m) and np.isfinite(rest)):
                return False
            w = 1.0 if rw is None else np.float64(rw[i])
            lse = np.log1p(rest) if val is not None else 0.0
            _row_loss(xi, e, i, lab[i], w, ls, m, rest, lse, mode == 2, val, grd)
        return True

    @_jit
    def _short_labels(
        x: np.ndarray,
        lab: np.ndarray,
        ls: float,
        rw: Any,
        val: Any,
        grd: Any,
        e: np.ndarray,
        mb: np.ndarray,
        m: np.ndarray,
        rest: np.ndarray,
        lse: np.ndarray,
        mode: int,
    ) -> bool:
        """`_labels` for rows of 2 to 64 entries, a sub-block at a time: the max, the
        shifted exps and each row's ``rest`` of the short-row kernels
        (:func:`sigmax._numba_short._shifted_rests`: the exps flat and vectorized, which a
        row of 10 is too short for), ``log1p(rest)`` vectorized across the rows, then each
        row's value and gradient. float32 logits are differenced exactly in float64 (`mode`
        `_F32`); float64 logits take `_F64` (the exps and sums of float64 results,
        `_shifted_rests`)."""
        k = x.shape[1]
        step = max(1, _SHORT_SUB // k)
        for a in range(0, x.shape[0], step):
            xb = x[a : a + step]
            n = xb.shape[0]
            if not _shifted_rests(xb, e, mb, m, rest, mode):
                return False
            for j in range(n * k):  # the max entries' marks back to their exp, 1
                e[j] = 1.0 if e[j] < 0.0 else e[j]
            if val is not None and mode == _F64:
                for r in range(n):
                    lse[r] = _log1p_rest64(rest[r])
            elif val is not None:
                for r in range(n):
                    lse[r] = _log1p_rest(rest[r])
            eb = e[: n * k].reshape((n, k))
            vb = None if val is None else val[a : a + step]
            gb = None if grd is None else grd[a : a + step]
            for r in range(n):
                w = 1.0 if rw is None else np.float64(rw[a + r])
                _row_loss(xb[r], eb[r], r, lab[a + r], w, ls, m[r], rest[r], lse[r], True, vb, gb)
        return True

    def _labels_block(
        x: np.ndarray,
        lab: np.ndarray,
        ls: float,
        rw: np.ndarray | None,
        val: np.ndarray | None,
        grd: np.ndarray | None,
        compensate: bool,
        short: bool = False,
    ) -> bool:
        """Values into `val` and gradients into `grd` (either may be None) for a block of
        rows ``(n, k)``; False when a row is not finite (the caller then runs the NumPy
        path on the block). `short`: rows of 2 to 64 entries, on the short-row kernel."""
        k = x.shape[1]
        if short:
            rows = max(1, _SHORT_SUB // k)
            e, mb = np.empty(rows * k), np.empty(rows * k)
            m, rest, lse = np.empty(rows), np.empty(rows), np.empty(rows)
            mode = _F64 if x.dtype == np.float64 else _F32
            return bool(_short_labels(x, lab, float(ls), rw, val, grd, e, mb, m, rest, lse, mode))
        mode = 0 if x.dtype == np.float32 else (2 if compensate else 1)
        e = np.empty(k, np.float64)
        return bool(_labels(x, lab, float(ls), rw, val, grd, mode, e))

    labels_block = _labels_block
