r"""Fused kernels for short rows (2 to 64 entries) of softmax, log_softmax and logsumexp,
and for longer softmax rows where they measured faster than the row kernel
(:data:`sigmax.functions.SHORT_SOFTMAX_MAX_K`).

The row kernels of :mod:`sigmax._numba_forward` vectorize along a row, and a row of 10 is too
short for that: the fixed cost of each row dominates. Here the rows are not shifted by their
max at all: ``exp(x)`` runs flat over a sub-block of a few thousand entries at full SIMD width
(softmax is shift-invariant, and without the shift ``x`` is exact, so nothing is rounded
before the ``exp``). Each row is then divided by its sum (softmax: compensated for float64
results, plain for float64 ``"fast"``; for float32 results a float64 sum that may
vectorize, whose few float64 eps a float32 rounding never sees), or reduced to its max
``m`` and ``rest = sum_j e_j / e_m - 1`` for ``log1p(rest)`` (log_softmax: the max entry
subtracted exactly from an integer sum, `_split_rest`), with a vectorized ``log1p`` over
the sub-block's rows. Every loop over the rows is kept free of
branches and calls that stop it from vectorizing: a row of 10 has no room for overhead.

That needs every ``exp`` of a row to be normal and its sum finite: a row with an entry below
the normal range of the compute dtype (about -87 in float32, -708 in float64) or a sum above
``exp(80)`` (float32) or ``exp(700)`` takes the per-row kernel instead, so no result loses
accuracy to underflow or overflow, and each row's result depends on that row alone. (softmax
looks for those entries row by row only in the sub-blocks where the flat exp pass flagged an
argument that low.) A nan or an infinity sends the block to the NumPy path, which implements
the IEEE rules.
log_softmax of float32 rows is computed that way in float64. For float64 results the ratio
``e_j / e_m`` would cost the max entry's ``log1p`` two more roundings than the 3-ULP budget
has room for, so float64 rows are shifted after all: each row's max is broadcast over its
entries, the exps of ``x - m`` (with the difference's exact rounding error) run flat, each
row's ``rest`` is summed with TwoSum (plain sums and differences for ``"fast"``), and
``log1p(rest)`` is vectorized with an exact reduction by powers of two. logsumexp
(float32 and float64 rows) takes the same steps and returns ``m + log1p(rest)``, with the
rows where that sum cancels flagged for
:func:`sigmax.functions._logsumexp_refine` (only those rows are refined).

Used by :mod:`sigmax.functions` for C-contiguous float32/float64 NumPy blocks when numba
imports and ``SIGMAX_DISABLE_NUMBA`` is unset or ``0``. Tests: ``tests/test_accuracy.py`` and
``tests/test_precision_fast.py`` (the ``short`` backend runs every softmax row here),
``tests/test_forward_kernels.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax._numba_forward import enabled, numba

__all__ = ["enabled", "short_log_softmax", "short_logsumexp", "short_softmax", "short_softmax_wide"]

short_softmax: Callable[[np.ndarray, np.ndarray, float, bool], bool]
short_softmax_wide: Callable[[np.ndarray, np.ndarray, float], bool]
short_log_softmax: Callable[[np.ndarray, np.ndarray, bool], bool]
short_logsumexp: Callable[[np.ndarray, np.ndarray], np.ndarray | None]

if numba is not None:
    from sigmax._numba_forward import (
        _bits_of_f64,
        _exp_normal,
        _exp_normal_for32,
        _exp_ratio_for32,
        _exp_tail,
        _exp_tail_f32,
        _f64_from_bits,
        _jit,
        _jit_sum,
        _log1p_rest,
        _log1p_rest64,
        _neumaier,
        _rows,
        _two_diff,
    )

    #: Elements per sub-block of short rows: their float64 exps stay in the L1/L2 cache.
    _SHORT_SUB = 4096
    #: exp's argument is clamped here (its 2**k is built from bits, which must not overflow);
    #: a row whose sum passes the limit below takes the per-row kernel.
    _CLAMP32, _CLAMP64 = np.float32(88.0), 709.0
    _SUM_MAX32, _SUM_MAX64 = float(np.exp(80.0)), float(np.exp(700.0))
    _TINY32, _TINY64 = float(np.finfo(np.float32).tiny), float(np.finfo(np.float64).tiny)

    #: Below these, exp(z) may be subnormal in the exps' dtype (float32 "fast": exp(-87.34) is
    #: float32's smallest normal; else float64's, exp(-708.4)): a sub-block with such an
    #: entry has its rows checked one by one (`_short_rows`).
    _LOW32, _LOW64 = np.float32(-87.0), -708.0

    @_jit
    def _short_exp(x: np.ndarray, t: float, e: np.ndarray, mode: int) -> bool:
        """exp(x_j / t) over a flat sub-block, ``x / t`` divided in the compute dtype as the
        NumPy path does (and not at all for t = 1); True when an exp may be subnormal. The
        clamps are selects that keep nan (``min`` branches on nan, which stops the loop from
        vectorizing); the flag is an OR, which vectorizes and cost nothing measurable."""
        low: Any = False  # a NumPy bool after the first OR
        if mode < 0:
            t32 = np.float32(t)
            for j in range(x.shape[0]):
                z = x[j] if t == 1.0 else x[j] / t32
                low |= z < _LOW32
                e[j] = _exp_tail_f32(_CLAMP32 if z > _CLAMP32 else z)
        elif mode == 0:
            for j in range(x.shape[0]):
                z = np.float64(x[j]) if t == 1.0 else np.float64(x[j]) / t
                low |= z < _LOW64
                # Below -708 the sub-block is flagged and those rows recomputed: the exp may
                # clamp them, and take one scale factor (8% of this loop). Clamped at -709,
                # where that factor is 0: the row's subnormal test must still see them.
                e[j] = _exp_normal_for32(_CLAMP64 if z > _CLAMP64 else z, -709.0)
        else:
            for j in range(x.shape[0]):
                z = np.float64(x[j]) if t == 1.0 else np.float64(x[j]) / t
                low |= z < _LOW64
                # The same clamp at -709 as above; the degree-13 polynomial.
                e[j] = _exp_normal(_CLAMP64 if z > _CLAMP64 else z, -709.0, 0)
        return low

    @_jit_sum
    def _wide_sum(ei: np.ndarray) -> float:
        """The row's sum in float64, reassociated so that it vectorizes: for float32 results,
        and for the float64 softmax that the products of float32 rows round to float32
        (`_short_softmax_wide`); neither rounding sees its few float64 eps."""
        s = 0.0
        for j in range(ei.shape[0]):
            s += np.float64(ei[j])
        return s

    @_jit
    def _row_min(ei: np.ndarray) -> float:
        low = np.inf
        for j in range(ei.shape[0]):
            v = np.float64(ei[j])
            low = v if v < low else low  # a select: min() branches on nan
        return low

    @_jit
    def _rows_in_place(o: np.ndarray, skipped: np.ndarray) -> int:
        """`_short_rows` for float32 "fast" (mode -1): the float32 exps in `o` scaled in
        place (one array: no aliasing check, so the loop vectorizes)."""
        n_skipped = 0
        for i in range(o.shape[0]):
            oi = o[i]
            s = _wide_sum(oi)
            # Branch-free (a branch here halved the loop's speed): the row is written anyway
            # and overwritten by the per-row kernel.
            skipped[n_skipped] = i
            n_skipped += 0 if s <= _SUM_MAX32 else 1
            inv32 = np.float32(1.0 / s)
            for j in range(oi.shape[0]):
                oi[j] *= inv32
        return n_skipped

    @_jit
    def _rows_wide(e: np.ndarray, o: np.ndarray, skipped: np.ndarray) -> int:
        """`_short_rows` for the float64 exps of mode 0 (float32 results) and mode 1
        (float64 "fast", and the products of float32 rows, `_short_softmax_wide`): plain
        row sums, reassociated, and ``e * (1 / s)``; for float64 results within 3.6 ULP
        (measured on rows of 10 to 1,000)."""
        n_skipped = 0
        for i in range(e.shape[0]):
            ei, oi = e[i], o[i]
            s = _wide_sum(ei)
            skipped[n_skipped] = i
            n_skipped += 0 if s <= _SUM_MAX64 else 1
            inv = 1.0 / s
            for j in range(ei.shape[0]):
                oi[j] = ei[j] * inv
        return n_skipped

    @_jit
    def _rows_exact(e: np.ndarray, o: np.ndarray, skipped: np.ndarray) -> int:
        """`_short_rows` for float64 results with compensated sums (mode 2)."""
        n_skipped = 0
        for i in range(e.shape[0]):
            ei, oi = e[i], o[i]
            comp = 0.0
            s = 0.0
            for j in range(ei.shape[0]):
                s, comp = _neumaier(s, comp, ei[j])
            skipped[n_skipped] = i
            n_skipped += 0 if s <= _SUM_MAX64 else 1
            # e / (s + comp) without a division per entry (ten divisions cost more than the
            # rest of the row): q = e * (1/s), its residual e - q s exact by FMA, and the
            # compensation folded in; one rounding at the end, as a division.
            inv = 1.0 / s
            for j in range(ei.shape[0]):
                q = ei[j] * inv
                r = ei[j] - q * s
                oi[j] = q + (r - q * comp) * inv
        return n_skipped

    @_jit
    def _low_rows(e: np.ndarray, tiny: float, into: np.ndarray) -> int:
        """The rows of `e` with an entry below `tiny` (or a nan), into `into`; their number."""
        n_low = 0
        for i in range(e.shape[0]):
            into[n_low] = i
            n_low += 0 if _row_min(e[i]) >= tiny else 1
        return n_low

    @_jit
    def _short_rows(e: np.ndarray, o: np.ndarray, mode: int, skipped: np.ndarray, low: bool) -> int:
        """Each row of exps `e` divided by its sum into `o` (for float32 "fast", mode -1, `e`
        is `o`). Rows whose sum passes the limit (a nan or an infinity in the row too), and,
        when `low` (`_short_exp`'s flag), rows with an exp below the normal range, are left
        out: their indices go to `skipped` (room for two per row: a row may be listed twice),
        and their number is returned. One loop per mode, and the subnormal test only where
        the flag is up: either inside the loop over rows kept the row sums from vectorizing
        (mode -1 took 7 ms a million rows of 10, against 3.2 without)."""
        n = e.shape[0]
        # Before the pass: mode -1 scales the exps in place.
        n_low = _low_rows(e, _TINY32 if mode < 0 else _TINY64, skipped[n:]) if low else 0
        if mode < 0:
            n_skipped = _rows_in_place(o, skipped)
        elif mode < 2:
            n_skipped = _rows_wide(e, o, skipped)
        else:
            n_skipped = _rows_exact(e, o, skipped)
        for i in range(n_low):  # forward: the target never passes the source (n_skipped <= n)
            skipped[n_skipped + i] = skipped[n + i]
        return n_skipped + n_low

    @_jit
    def _each_row(
        x: np.ndarray,
        o: np.ndarray,
        kind: int,
        t: float,
        mode: int,
        rows: np.ndarray,
        ez: np.ndarray,
    ) -> bool:
        k = x.shape[1]
        for i in rows:  # noqa: SIM110 (numba compiles no generator for all())
            if not _rows(x[i : i + 1], o[i : i + 1], kind, t, mode, ez[:k], ez[k : 2 * k]):
                return False
        return True

    @_jit
    def _per_row(
        x: np.ndarray, o: np.ndarray, kind: int, t: float, mode: int, rows: np.ndarray
    ) -> bool:
        """The per-row kernel on the rows the short kernels left out; False at the first
        it refuses (a nan or an infinity). Its two scratch rows have the compute dtype:
        float32 only for float32 "fast" (mode -1), where that is x's dtype."""
        k = x.shape[1]
        if mode < 0:
            return _each_row(x, o, kind, t, mode, rows, np.empty(2 * k, x.dtype))
        return _each_row(x, o, kind, t, mode, rows, np.empty(2 * k))

    @_jit
    def _short_softmax(x: np.ndarray, out: np.ndarray, t: float, mode: int) -> bool:
        """softmax of short rows, a sub-block at a time: the exps flat (float64, except for
        float32 "fast", whose exps go straight to `out`), then each row. The scratch is
        allocated here: as arguments, it cost a one-sample call 0.4 us more."""
        n, k = x.shape
        step = max(1, _SHORT_SUB // k)
        e = np.empty(0 if mode < 0 else min(step, n) * k)
        skipped = np.empty(2 * min(step, n), np.int64)
        for a in range(0, x.shape[0], step):
            xb = x[a : a + step]
            ob = out[a : a + step]
            r = xb.shape[0]
            if mode < 0:
                low = _short_exp(xb.reshape(r * k), t, ob.reshape(r * k), mode)
                n = _short_rows(ob, ob, mode, skipped, low)
            else:
                ef = e[: r * k]
                low = _short_exp(xb.reshape(r * k), t, ef, mode)
                n = _short_rows(ef.reshape((r, k)), ob, mode, skipped, low)
            if n and not _per_row(xb, ob, 0, t, mode, skipped[:n]):
                return False
        return True

    @_jit
    def _row_max(x: np.ndarray, m: np.ndarray, inside: np.ndarray, low: bool) -> None:
        """Each row's max, and whether the row lies in [-708, 700], where its exps (in
        float64) are normal and their sum finite, with its max at -650 or more (where
        `_split_rest`'s scale is a normal float64); the lower end of the entries is checked
        only when `low` (`_short_exp`'s flag: an argument below -708 in the sub-block).
        Selects: max() branches on nan (a nan first in its row makes the max nan, and the
        row outside)."""
        for i in range(x.shape[0]):
            xi = x[i]
            hi = xi[0]
            for j in range(xi.shape[0]):
                v = xi[j]
                hi = v if v > hi else hi
            m[i] = hi
        for i in range(x.shape[0]):
            mi = np.float64(m[i])
            inside[i] = (mi <= 700.0) & (mi >= _MAX_LOW)
        if low:
            for i in range(x.shape[0]):
                inside[i] = inside[i] and _row_min(x[i]) >= _LOW64

    #: The lowest row max that `_split_rest` takes (``2**(55 - E)`` stays normal).
    _MAX_LOW = -650.0

    @_jit_sum
    def _split_rest(ei: np.ndarray, em: float) -> float:
        """``rest = sum_j e_j / e_m - 1`` of a row whose max entry's exp is `em`: every
        term scaled by ``2**(55 - E)`` (E the exponent of `em`: exact), so that the max
        entry's ``y_m`` lands in ``[2**55, 2**56)`` and is an integer, and split into its
        integer part (summed exactly in int64: below ``2**62`` for rows of up to 64) and
        its fraction (exact; summed in float64). Subtracting ``y_m`` from the integer sum
        is exact, so nothing cancels however confident the row, and its ties count as 1
        each, with no comparison against the max: the fractions' sum, a few float64 eps
        of at most k, is the only rounding before the quotient. Integer sums need no
        reassociation to vectorize (the select-and-sum against the max took 1.4x the
        time). Needs `em` in ``[2**-938, 2**1010]`` (`_row_max`'s range)."""
        e_bits = _bits_of_f64(em) >> 52
        scale = _f64_from_bits((2101 - e_bits) << 52)  # 2**(55 - E), E = e_bits - 1023
        ym = em * scale
        q = np.int64(0)
        r = 0.0
        for j in range(ei.shape[0]):
            y = ei[j] * scale
            qi = np.int64(y)  # truncation: y - qi is exact
            q += qi
            r += y - np.float64(qi)
        return (np.float64(q - np.int64(ym)) + r) / ym

    @_jit
    def _short_log_rows(
        x: np.ndarray,
        e: np.ndarray,
        o: np.ndarray,
        m: np.ndarray,
        lse: np.ndarray,
        em: np.ndarray,
        inside: np.ndarray,
        skipped: np.ndarray,
        low: bool,
    ) -> int:
        """log_softmax of float32 rows from their exps ``e = exp(x)`` (float64): per row its
        max ``m``, the max entry's exp and ``rest = sum_j e_j / e_m - 1`` (`_split_rest`),
        then ``log1p(rest)``, then ``(x_j - m) - log1p(rest)``: two terms <= 0, which never
        cancel. Each step is its own loop: the per-row ones are short, and the per-row exp
        and log1p vectorize across rows (in the loop of the row sums, the exp ran scalar).
        Rows outside the exps' range are left out, as in `_short_rows`."""
        _row_max(x, m, inside, low)
        for i in range(x.shape[0]):
            # The max entry's exp, computed as each e_j was: e_j / em is exp(x_j - m).
            mi = np.float64(m[i])
            em[i] = _exp_normal_for32(_CLAMP64 if mi > _CLAMP64 else mi, -709.0)
        for i in range(x.shape[0]):
            # Rows outside the range are recomputed: keep their scale finite here.
            lse[i] = _split_rest(e[i], em[i] if inside[i] else 1.0)
        for i in range(x.shape[0]):
            lse[i] = _log1p_rest(lse[i])
        n_skipped = 0
        for i in range(x.shape[0]):
            # A nan fails the range test too. Branch-free, as in `_short_rows`.
            skipped[n_skipped] = i
            n_skipped += 0 if inside[i] else 1
        for i in range(x.shape[0]):
            xi, oi = x[i], o[i]
            mi, li = np.float64(m[i]), lse[i]
            for j in range(xi.shape[0]):
                oi[j] = (np.float64(xi[j]) - mi) - li
        return n_skipped

    @_jit
    def _short_log_softmax(x: np.ndarray, out: np.ndarray) -> bool:
        """`_short_softmax`'s sub-blocks for log_softmax of float32 rows (float64 inside)."""
        n, k = x.shape
        step = max(1, _SHORT_SUB // k)
        rows = min(step, n)
        e = np.empty(rows * k)
        m = np.empty(rows, x.dtype)
        lse = np.empty(rows)
        em = np.empty(rows)
        skipped = np.empty(rows, np.int64)
        inside = np.empty(rows, np.bool_)
        for a in range(0, x.shape[0], step):
            xb = x[a : a + step]
            ob = out[a : a + step]
            r = xb.shape[0]
            ef = e[: r * k]
            low = _short_exp(xb.reshape(r * k), 1.0, ef, 0)
            n = _short_log_rows(
                xb, ef.reshape((r, k)), ob, m[:r], lse[:r], em[:r], inside, skipped, low
            )
            if n and not _per_row(xb, ob, 1, 1.0, 0, skipped[:n]):
                return False
        return True

    @_jit
    def _max_broadcast(x: np.ndarray, m: np.ndarray, mb: np.ndarray) -> None:
        """Each row's max into `m` (float64) and into its row's k entries of the flat `mb`, in
        one pass (a max per row, then a broadcast pass, took 12 ms per 10^6 rows of 10, this
        7). Selects, as max() branches on nan; a nan may be passed over here, and still
        makes its row's ``rest`` nan (`_rests`)."""
        k = x.shape[1]
        for i in range(x.shape[0]):
            xi = x[i]
            hi = np.float64(xi[0])
            for j in range(1, k):
                v = np.float64(xi[j])
                hi = v if v > hi else hi
            m[i] = hi
            for j in range(i * k, i * k + k):
                mb[j] = hi

    #: The modes of the shifted kernels: float32 results; float64 "fast" (plain differences
    #: and sums); float64 (the differences' rounding errors carried, compensated sums).
    _F32, _F64_FAST, _F64 = 0, 1, 2

    @_jit
    def _shifted_exp(x: np.ndarray, mb: np.ndarray, e: np.ndarray, mode: int) -> None:
        """exp(x_j - m_j), flat (the max of each entry's row broadcast in `mb`), and -1 at
        the max entries: their mark for `_rests`, which then need not read `x` again.
        `_F64`: the difference's exact rounding error carried (TwoSum) into the degree-13
        exp; `_F64_FAST`: the rounded difference; `_F32`: float32 results (float32 logits
        differ exactly in float64), the shorter polynomial."""
        if mode == _F64:
            for j in range(x.shape[0]):
                d, lo = _two_diff(np.float64(x[j]), mb[j])
                e[j] = -1.0 if d == 0.0 else _exp_tail(d, lo)
        elif mode == _F64_FAST:
            for j in range(x.shape[0]):
                d = np.float64(x[j]) - mb[j]
                e[j] = -1.0 if d == 0.0 else _exp_tail(d, 0.0)
        else:
            for j in range(x.shape[0]):
                d = np.float64(x[j]) - mb[j]
                e[j] = -1.0 if d == 0.0 else _exp_ratio_for32(d)

    @_jit_sum
    def _rest_wide(ei: np.ndarray) -> float:
        """A row's ``rest`` for float32 results: its sum reassociated so that it vectorizes
        (a few float64 eps, which a float32 rounding never sees)."""
        s = 0.0
        ties = -1.0
        for j in range(ei.shape[0]):
            top = ei[j] < 0.0
            s += 0.0 if top else ei[j]
            ties += 1.0 if top else 0.0
        return s + ties

    @_jit
    def _rests(m: np.ndarray, e: np.ndarray, rest: np.ndarray, mode: int) -> bool:
        """Each row's ``rest``: the exps below its max (the entries of `e` >= 0) summed, plus
        the max entries beyond the first; False when a max or a rest is not finite (a nan or
        an infinity). `_F64`: summed in order with the rounding error of each addition
        carried (TwoSum); else `_rest_wide`. One loop over the rows each, as a branch inside
        it kept the sums from vectorizing."""
        if mode == _F64:
            for i in range(e.shape[0]):
                ei = e[i]
                s = 0.0
                comp = 0.0
                ties = -1.0
                for j in range(ei.shape[0]):
                    top = ei[j] < 0.0
                    s, comp = _neumaier(s, comp, 0.0 if top else ei[j])
                    ties += 1.0 if top else 0.0
                rest[i] = (s + comp) + ties
        else:
            for i in range(e.shape[0]):
                rest[i] = _rest_wide(e[i])
        finite = 0.0  # x - x is 0 for a finite x, nan for an infinity or a nan
        for i in range(e.shape[0]):
            finite += (m[i] - m[i]) + (rest[i] - rest[i])
        return finite == 0.0

    @_jit
    def _shifted_out(
        x: np.ndarray, m: np.ndarray, lse: np.ndarray, o: np.ndarray, exact: bool
    ) -> None:
        """``(x - m) - lse`` of each row: two terms <= 0, the difference carried exactly
        when `exact` (else rounded, "fast"). Row by row (unlike the exps: this loop is cheap
        enough that broadcasting `lse` would cost more than its short rows)."""
        if exact:
            for i in range(x.shape[0]):
                xi, oi, mi, li = x[i], o[i], m[i], lse[i]
                for j in range(xi.shape[0]):
                    d, lo = _two_diff(np.float64(xi[j]), mi)
                    oi[j] = (d - li) + lo
        else:
            for i in range(x.shape[0]):
                xi, oi, mi, li = x[i], o[i], m[i], lse[i]
                for j in range(xi.shape[0]):
                    oi[j] = (xi[j] - mi) - li

    @_jit
    def _shifted_rests(
        xb: np.ndarray, e: np.ndarray, mb: np.ndarray, m: np.ndarray, rest: np.ndarray, mode: int
    ) -> bool:
        """Each row's max into `m` (float64) and ``rest`` into `rest`, for a sub-block of
        float32 or float64 rows: each row's max, broadcast (into `mb`); the shifted exps flat
        (vectorized) into `e`, -1 at the max entries; each row's ``rest``. False when a row
        has a nan or an infinity. `mode`: `_F32`, `_F64_FAST` or `_F64` (`_shifted_exp`)."""
        n, k = xb.shape
        _max_broadcast(xb, m[:n], mb[: n * k])
        _shifted_exp(xb.reshape(n * k), mb[: n * k], e[: n * k], mode)
        return _rests(m[:n], e[: n * k].reshape((n, k)), rest[:n], mode)

    @_jit
    def _shifted_parts(
        xb: np.ndarray, e: np.ndarray, mb: np.ndarray, m: np.ndarray, r: np.ndarray, mode: int
    ) -> bool:
        """`_shifted_rests`, then ``log1p(rest)`` in place in `r`, across the rows
        (vectorized; to 1 ULP for float64 results, 2**-30 for float32 ones)."""
        if not _shifted_rests(xb, e, mb, m, r, mode):
            return False
        if mode != _F32:
            for i in range(xb.shape[0]):
                r[i] = _log1p_rest64(r[i])
        else:
            for i in range(xb.shape[0]):
                r[i] = _log1p_rest(r[i])
        return True

    @_jit
    def _shifted_scratch(
        x: np.ndarray,
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows per sub-block of `x`, and `_shifted_parts`' scratch for them: the exps
        and the broadcast maxima (flat), each row's max and its ``rest``."""
        n, k = x.shape
        step = max(1, _SHORT_SUB // k)
        rows = min(step, n)
        return step, np.empty(rows * k), np.empty(rows * k), np.empty(rows), np.empty(rows)

    @_jit
    def _short_log_softmax64(x: np.ndarray, out: np.ndarray, mode: int) -> bool:
        """log_softmax of short float64 rows (temperature 1), a sub-block at a time
        (`_shifted_parts`, then the output); `mode` `_F64`, or `_F64_FAST` ("fast": plain
        differences and sums, 1.7x faster at k = 10). False at the first sub-block with a
        nan or an infinity (the NumPy path takes the block)."""
        step, e, mb, m, r = _shifted_scratch(x)
        for a in range(0, x.shape[0], step):
            xb = x[a : a + step]
            n = xb.shape[0]
            if not _shifted_parts(xb, e, mb, m, r, mode):
                return False
            _shifted_out(xb, m[:n], r[:n], out[a : a + step], mode == _F64)
        return True

    #: `sigmax.functions._logsumexp_refine`'s test for a result that cancelled.
    _CANCEL = 2.0**-6

    @_jit
    def _short_logsumexp(x: np.ndarray, out: np.ndarray, flagged: np.ndarray, mode: int) -> int:
        """logsumexp ``m + log1p(rest)`` of short float32 or float64 rows into `out`
        (``(n, 1)``, rounded once from float64). Rows where the sum cancels (``m < 0`` and
        neither term 64 times the other) go to `flagged`, for the caller's refinement;
        returns their number, or -1 at the first sub-block with a nan or an infinity."""
        step, e, mb, m, r = _shifted_scratch(x)
        nf = 0
        for a in range(0, x.shape[0], step):
            xb = x[a : a + step]
            if not _shifted_parts(xb, e, mb, m, r, mode):
                return -1
            for i in range(xb.shape[0]):
                mi, li = m[i], r[i]
                out[a + i, 0] = mi + li
                flagged[nf] = a + i
                nf += 1 if mi < 0.0 and min(-mi, li) > _CANCEL * max(-mi, li) else 0
        return nf

    def _short_softmax_block(x: np.ndarray, out: np.ndarray, t: float, fast: bool) -> bool:
        # float64 "fast" takes the plain row sums (mode 1): 1.4x faster than the compensated
        # ones, within 3.4 ULP of mpmath on rows of 10 to 1,000 (`tests/test_precision_fast.py`),
        # where "accurate" keeps 3 ULP with room to spare (1.9 measured).
        mode = (-1 if fast else 0) if x.dtype.char == "f" else (1 if fast else 2)
        return bool(_short_softmax(x, out, float(t), mode))

    def _short_softmax_wide(x: np.ndarray, out: np.ndarray, t: float) -> bool:
        """softmax of float32 rows into float64 `out`, for the products of
        :mod:`sigmax.derivatives` that round to float32: the degree-13 float64 exps of the
        exact float64 logits and plain float64 row sums (mode 1), within about k float64
        eps of the exact softmax, far below a float32 rounding."""
        return bool(_short_softmax(x, out, float(t), 1))

    def _short_log_softmax_block(x: np.ndarray, out: np.ndarray, fast: bool) -> bool:
        """log_softmax of short rows; float32 rows take the same kernel either precision
        (float64 inside: "fast" would gain little there)."""
        if x.dtype.char == "d":
            return bool(_short_log_softmax64(x, out, _F64_FAST if fast else _F64))
        return bool(_short_log_softmax(x, out))

    def _short_logsumexp_block(x: np.ndarray, out: np.ndarray) -> np.ndarray | None:
        """The rows (indices into `x`) whose result cancelled, or None for a refused block."""
        flagged = np.empty(x.shape[0], np.int64)
        nf = _short_logsumexp(x, out, flagged, _F64 if x.dtype.char == "d" else _F32)
        return None if nf < 0 else flagged[:nf]

    short_softmax = _short_softmax_block
    short_softmax_wide = _short_softmax_wide
    short_log_softmax = _short_log_softmax_block
    short_logsumexp = _short_logsumexp_block
