r"""Fused kernels for softmax, log_softmax, logsumexp and the softmax cross-entropy along an
axis that is not the last: the channels of an ``(N, C, H, W)`` segmentation output
(``axis=1``), or the classes of a ``(C, n)`` array (``axis=0``).

The array is taken as it lies in memory, ``(N, C, S)`` with ``S`` the product of the axes
after `axis`: each slice is a column of stride ``S``, and ``S`` columns side by side are
contiguous. So every step runs across columns, a chunk of columns at a time, at full SIMD
width and without moving the data: the running max over the ``C`` rows of a chunk, then the
exps and their sums, then the outputs. (The general path moved the axis last, which costs a
transposed copy in and a strided result out, and then ran short rows.)

Each column gets exactly the row kernels' algorithm (:mod:`sigmax._numba_forward`,
:mod:`sigmax._numba_short`), with the same modes and accuracy:

- float32 results (mode 0): ``x - m`` exactly in float64, exps to ``2**-32``, sums in
  float64, rounded once to float32;
- float64 (mode 2): ``x - m`` with its exact rounding error (TwoSum) carried into the
  degree-13 exp, the sum of the exps below the max compensated (TwoSum per step) plus the
  tied maxima, softmax divided with the denominator's rounding error as a first-order
  correction, log_softmax ``(d - log1p(rest)) + lo``;
- float64 ``"fast"`` (mode 1): plain differences, compensated sums. float32 ``"fast"``
  takes mode 0.

logsumexp returns ``m + log1p(rest)`` and each column's max, from which the caller refines
the float64 results that cancelled, as the general path does (`sigmax.functions`).

A chunk whose columns hold a non-finite max or sum (nan, infinities, overflow) makes the
kernel return False, and the caller sends the whole array to the general path, which
implements the IEEE rules.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sigmax._numba_kernels import enabled, numba

__all__ = ["columns_ce", "columns_forward", "columns_logsumexp", "enabled"]

columns_forward: Callable[[np.ndarray, np.ndarray, int, float, bool, int, int, int], bool]
columns_ce: Callable[..., bool]
columns_logsumexp: Callable[[np.ndarray, np.ndarray, np.ndarray, int, int, int], bool]

if numba is not None:
    from sigmax._numba_forward import (
        _exp_ratio_for32,
        _exp_tail,
        _jit,
        _log1p_rest,
        _log1p_rest64,
        _neumaier,
        _two_diff,
    )

    #: Columns per chunk: the chunk's float64 exps (``C x width``) stay in L2 (256 KiB,
    #: up to 512 KiB for slices of 1,024, `functions.COLUMNS_MAX_K`), and each of its rows
    #: is at least 64 entries wide: at 16, a chunk of slices of 1,000 read 1,000 short
    #: pieces of rows far apart, 1.4x slower.
    _CHUNK_ENTRIES, _MIN_WIDTH, _MAX_WIDTH = 1 << 15, 64, 1024

    @_jit
    def _col_max(xn: np.ndarray, a: int, w: int, t: float, m: np.ndarray) -> None:
        """Each column's max of ``x / t`` (float64) over the rows of `xn` (``(C, S)``)."""
        r0 = xn[0, a : a + w]
        for j in range(w):
            m[j] = np.float64(r0[j]) if t == 1.0 else np.float64(r0[j]) / t
        for c in range(1, xn.shape[0]):
            r = xn[c, a : a + w]
            for j in range(w):
                v = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                m[j] = v if v > m[j] else m[j]  # a select: max() branches on nan

    @_jit
    def _col_exps(
        r: np.ndarray,
        t: float,
        m: np.ndarray,
        e: np.ndarray,
        s: np.ndarray,
        comp: np.ndarray,
        ties: np.ndarray,
        mode: int,
    ) -> None:
        """One row of a chunk: ``exp(z - m)`` of each column into `e`, added to the column's
        sum of the terms below its max (`s`; TwoSum into `comp` for modes 1 and 2) or counted in
        `ties` at the max. One loop per mode: a branch inside kept them from vectorizing."""
        if mode == 2:
            for j in range(r.shape[0]):
                z = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                d, lo = _two_diff(z, m[j])
                v = _exp_tail(d, lo)
                e[j] = v
                s[j], comp[j] = _neumaier(s[j], comp[j], 0.0 if d == 0.0 else v)
                ties[j] += 1.0 if d == 0.0 else 0.0
        elif mode == 1:
            for j in range(r.shape[0]):
                z = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                d = z - m[j]
                v = _exp_tail(d, 0.0)
                e[j] = v
                # Compensated too: a plain running sum down a column of k terms strays by up
                # to k/2 rounding errors (the row kernel sums vectorized chunks, whose
                # partial sums are compensated), past "fast"'s bound at k = 100.
                s[j], comp[j] = _neumaier(s[j], comp[j], 0.0 if d == 0.0 else v)
                ties[j] += 1.0 if d == 0.0 else 0.0
        else:
            for j in range(r.shape[0]):
                z = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                d = z - m[j]
                v = _exp_ratio_for32(d)
                e[j] = v
                s[j] += 0.0 if d == 0.0 else v
                ties[j] += 1.0 if d == 0.0 else 0.0

    @_jit
    def _col_softmax_out(
        o: np.ndarray,
        e: np.ndarray,
        den: np.ndarray,
        inv: np.ndarray,
        err: np.ndarray,
        mode: int,
    ) -> None:
        """One output row of softmax, ``e / (den + err)`` without a division per entry (a
        division per entry took a third of the kernel): ``e * (1 / den)`` for mode 0 and 1;
        for mode 2 ``q = e (1 / den)``, its residual ``e - q den`` exact by FMA, and the
        denominator's rounding error `err` folded in, one rounding at the end, as the short
        rows' `_rows_exact`."""
        if mode == 2:
            for j in range(o.shape[0]):
                q = e[j] * inv[j]
                r = e[j] - q * den[j]
                o[j] = q + (r - q * err[j]) * inv[j]
        else:
            for j in range(o.shape[0]):
                o[j] = e[j] * inv[j]

    @_jit
    def _col_log_out(
        r: np.ndarray, o: np.ndarray, t: float, m: np.ndarray, lse: np.ndarray, mode: int
    ) -> None:
        """One output row of log_softmax: ``(z - m) - log1p(rest)``, the difference carried
        exactly for mode 2 (two terms <= 0: nothing cancels)."""
        if mode == 2:
            for j in range(o.shape[0]):
                z = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                d, lo = _two_diff(z, m[j])
                o[j] = (d - lse[j]) + lo
        else:
            for j in range(o.shape[0]):
                z = np.float64(r[j]) if t == 1.0 else np.float64(r[j]) / t
                o[j] = (z - m[j]) - lse[j]

    @_jit
    def _col_rest(
        xn: np.ndarray, a: int, w: int, t: float, mode: int, e: np.ndarray, work: np.ndarray
    ) -> bool:
        """The first steps of every column kernel: each column's max into ``work[0]``, the
        exps into `e`, and ``rest`` (the terms below the max, plus the tied maxima beyond
        the first) into ``work[1]``; False when a max or a rest is not finite."""
        m, s, comp, ties = work[0, :w], work[1, :w], work[2, :w], work[3, :w]
        _col_max(xn, a, w, t, m)
        for j in range(w):
            s[j] = 0.0
            comp[j] = 0.0
            ties[j] = -1.0
        for c in range(xn.shape[0]):
            _col_exps(xn[c, a : a + w], t, m, e[c, :w], s, comp, ties, mode)
        finite = 0.0  # x - x is 0 for a finite x, nan for an infinity or a nan
        for j in range(w):
            s[j] = (s[j] + comp[j]) + ties[j]
            finite += (m[j] - m[j]) + (s[j] - s[j])
        return finite == 0.0

    @_jit
    def _col_denominators(s: np.ndarray, den: np.ndarray, inv: np.ndarray, err: np.ndarray) -> None:
        """``1 + rest`` (`den`), its reciprocal and its exact rounding error (TwoSum)."""
        for j in range(s.shape[0]):
            d1 = 1.0 + s[j]
            bb = d1 - s[j]
            err[j] = (1.0 - bb) + (s[j] - (d1 - bb))
            den[j] = d1
            inv[j] = 1.0 / d1

    @_jit
    def _col_log1p(s: np.ndarray, out: np.ndarray, mode: int) -> None:
        """``log1p(rest)`` of each column (vectorized; float32 results need less)."""
        if mode == 0:
            for j in range(s.shape[0]):
                out[j] = _log1p_rest(s[j])
        else:
            for j in range(s.shape[0]):
                out[j] = _log1p_rest64(s[j])

    @_jit
    def _width(c_rows: int, span: int) -> int:
        """Columns per chunk (`_CHUNK_ENTRIES`), for `span` columns in all."""
        width = max(_MIN_WIDTH, min(_MAX_WIDTH, _CHUNK_ENTRIES // max(c_rows, 1)))
        return max(1, min(width, span))

    @_jit
    def _chunk(
        xn: np.ndarray,
        on: np.ndarray,
        a: int,
        w: int,
        kind: int,
        t: float,
        mode: int,
        e: np.ndarray,
        work: np.ndarray,
    ) -> bool:
        """softmax (`kind` 0) or log_softmax (1) of the columns ``a .. a + w`` of `xn`
        (``(C, S)``) into `on`; `e` is ``(C, width)`` scratch, `work` ``(6, width)``.
        False when a column's max or sum is not finite."""
        if not _col_rest(xn, a, w, t, mode, e, work):
            return False
        m, s, err, den, inv = work[0, :w], work[1, :w], work[2, :w], work[4, :w], work[5, :w]
        if kind == 0:
            _col_denominators(s, den, inv, err)
            for c in range(xn.shape[0]):
                _col_softmax_out(on[c, a : a + w], e[c, :w], den, inv, err, mode)
            return True
        _col_log1p(s, s, mode)
        for c in range(xn.shape[0]):
            _col_log_out(xn[c, a : a + w], on[c, a : a + w], t, m, s, mode)
        return True

    @_jit
    def _columns(
        x: np.ndarray, out: np.ndarray, kind: int, t: float, mode: int, n: int, s0: int, s1: int
    ) -> bool:
        """`_chunk` over the columns ``s0 .. s1`` of ``x[n]`` (``x`` ``(N, C, S)``)."""
        width = _width(x.shape[1], s1 - s0)
        e = np.empty((x.shape[1], width))
        work = np.empty((6, width))
        for a in range(s0, s1, width):
            if not _chunk(x[n], out[n], a, min(width, s1 - a), kind, t, mode, e, work):
                return False
        return True

    @_jit
    def _col_grad_out(
        o: np.ndarray,
        e: np.ndarray,
        den: np.ndarray,
        inv: np.ndarray,
        err: np.ndarray,
        q0: float,
        ww: np.ndarray,
        mode: int,
    ) -> None:
        """One row of the cross-entropy gradient ``(p - q0) w``, `p` as `_col_softmax_out`
        computes it, rounded once into `o`."""
        if mode == 2:
            for j in range(o.shape[0]):
                q = e[j] * inv[j]
                r = e[j] - q * den[j]
                o[j] = ((q + (r - q * err[j]) * inv[j]) - q0) * ww[j]
        else:
            for j in range(o.shape[0]):
                o[j] = (e[j] * inv[j] - q0) * ww[j]

    @_jit
    def _ce_chunk(
        xn: np.ndarray,
        yn: np.ndarray,
        wn: np.ndarray,
        vn: np.ndarray,
        gn: np.ndarray,
        a: int,
        w: int,
        mode: int,
        ls: float,
        grad: bool,
        e: np.ndarray,
        work: np.ndarray,
    ) -> bool:
        """Softmax cross-entropy of the columns ``a .. a + w`` of `xn` (``(C, S)``) with
        labels `yn`, weights `wn` (0 for an ignored column) and label smoothing `ls`: the
        value into `vn`, and the gradient of its weighted sum into `gn` when `grad`. As
        the row kernels (:mod:`sigmax._numba_losses`): ``(m - x_y) + log1p(rest)``, two
        terms >= 0, and at a label that holds the max the gradient ``-rest / (1 + rest)``,
        where ``p - 1`` would cancel. False when a column's max or sum is not finite."""
        c_rows = xn.shape[0]
        if not _col_rest(xn, a, w, 1.0, mode, e, work):
            return False
        m, s, err = work[0, :w], work[1, :w], work[2, :w]
        den, inv, lse, xsum = work[4, :w], work[5, :w], work[6, :w], work[7, :w]
        if ls > 0.0:
            for j in range(w):
                xsum[j] = 0.0
            for c in range(c_rows):
                r = xn[c, a : a + w]
                for j in range(w):
                    xsum[j] += m[j] - np.float64(r[j])  # >= 0: no cancellation
        _col_log1p(s, lse, mode)
        yw = yn[a : a + w]
        ww = wn[a : a + w]
        vw = vn[a : a + w]
        for j in range(w):
            xy = np.float64(xn[yw[j], a + j])
            d, lo = _two_diff(m[j], xy)
            # A label logit of -inf (the max finite) is a loss of +inf, not inf - inf in lo.
            v = (d + lse[j]) + (lo if d - d == 0.0 else 0.0)
            if ls > 0.0:
                v = (1.0 - ls) * v + ls * (xsum[j] / c_rows + lse[j])
            vw[j] = 0.0 if ww[j] == 0.0 else v * ww[j]
        if not grad:
            return True
        _col_denominators(s, den, inv, err)
        q0 = ls / c_rows
        for c in range(c_rows):
            _col_grad_out(gn[c, a : a + w], e[c, :w], den, inv, err, q0, ww, mode)
        for j in range(w):
            y = yw[j]
            xy = np.float64(xn[y, a + j])
            # p_y - (1 - ls) - ls / C: at the max -rest / (1 + rest), which does not cancel.
            g = (-s[j] / (den[j] + err[j])) if xy == m[j] else (e[y, j] * inv[j] - 1.0)
            g = (g + ls) - q0
            gn[y, a + j] = 0.0 if ww[j] == 0.0 else g * ww[j]
        return True

    @_jit
    def _ce_columns(
        x: np.ndarray,
        y: np.ndarray,
        wts: np.ndarray,
        val: np.ndarray,
        grd: np.ndarray,
        mode: int,
        ls: float,
        grad: bool,
        n: int,
        s0: int,
        s1: int,
    ) -> bool:
        """`_ce_chunk` over the columns ``s0 .. s1`` of ``x[n]`` (``x`` ``(N, C, S)``;
        `y`, `wts` and `val` ``(N, S)``; `grd` ``(N, C, S)``, or unused without `grad`)."""
        width = _width(x.shape[1], s1 - s0)
        e = np.empty((x.shape[1], width))
        work = np.empty((8, width))
        for a in range(s0, s1, width):
            wa = min(width, s1 - a)
            gn = grd[n] if grad else grd[0]
            if not _ce_chunk(x[n], y[n], wts[n], val[n], gn, a, wa, mode, ls, grad, e, work):
                return False
        return True

    def _columns_ce(
        x: np.ndarray,
        y: np.ndarray,
        wts: np.ndarray,
        val: np.ndarray,
        grd: np.ndarray | None,
        fast: bool,
        ls: float,
        n: int,
        s0: int,
        s1: int,
    ) -> bool:
        """Softmax cross-entropy along axis 1 of the ``(N, C, S)`` `x` for the columns
        ``s0 .. s1`` of ``x[n]`` (modes as `_columns_forward`; the gradient when `grd` is
        given)."""
        mode = 0 if x.dtype.char == "f" else (1 if fast else 2)
        g = grd if grd is not None else np.empty((1, 1, 1), x.dtype)
        return bool(_ce_columns(x, y, wts, val, g, mode, float(ls), grd is not None, n, s0, s1))

    @_jit
    def _lse_columns(
        x: np.ndarray, out: np.ndarray, m_out: np.ndarray, mode: int, n: int, s0: int, s1: int
    ) -> bool:
        """logsumexp ``m + log1p(rest)`` of the columns ``s0 .. s1`` of ``x[n]`` into
        ``out[n]`` (``(N, S)``, rounded once), and each column's max into the float64
        `m_out` (the caller refines the float64 results that cancelled from it)."""
        width = _width(x.shape[1], s1 - s0)
        e = np.empty((x.shape[1], width))
        work = np.empty((6, width))
        for a in range(s0, s1, width):
            w = min(width, s1 - a)
            if not _col_rest(x[n], a, w, 1.0, mode, e, work):
                return False
            m, s = work[0, :w], work[1, :w]
            _col_log1p(s, s, mode)
            o, mo = out[n, a : a + w], m_out[n, a : a + w]
            for j in range(w):
                o[j] = m[j] + s[j]
                mo[j] = m[j]
        return True

    def _columns_logsumexp(
        x: np.ndarray, out: np.ndarray, m_out: np.ndarray, n: int, s0: int, s1: int
    ) -> bool:
        """logsumexp along axis 1 of the ``(N, C, S)`` `x` (mode 0 for float32, 2 for
        float64) for the columns ``s0 .. s1`` of ``x[n]``."""
        mode = 0 if x.dtype.char == "f" else 2
        return bool(_lse_columns(x, out, m_out, mode, n, s0, s1))

    def _columns_forward(
        x: np.ndarray, out: np.ndarray, kind: int, t: float, fast: bool, n: int, s0: int, s1: int
    ) -> bool:
        """softmax / log_softmax (`kind` 0 / 1) of the columns ``s0 .. s1`` of ``x[n] / t``
        along axis 1 of the ``(N, C, S)`` C-contiguous float32/float64 `x` into `out` (same
        shape and dtype). float32: mode 0 for both precisions (its float64 exps measured
        faster here than float32 exps with float64 sums: 2.1 against 2.4 ms at (8, 21,
        128, 128)); float64: mode 2, or 1 when `fast`."""
        mode = 0 if x.dtype.char == "f" else (1 if fast else 2)
        return bool(_columns(x, out, kind, float(t), mode, n, s0, s1))

    columns_forward = _columns_forward
    columns_ce = _columns_ce
    columns_logsumexp = _columns_logsumexp
