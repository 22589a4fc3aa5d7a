"""Optional fused numba kernels for the forward functions (``pip install sigmax[numba]``).

NumPy's path for softmax makes 8 to 15 passes over each block, one per ufunc; these kernels
make one pass over memory per row and do the rest while the row is in cache. They need an
``exp`` that LLVM can vectorize: numba's own calls scalar libm (llvmlite is built without
Intel's SVML), which is about 6 times slower than NumPy's SIMD ``exp``. So ``exp`` is written
here, branch-free, for arguments ``t <= 0`` only (every forward op needs only those, after
the max is subtracted or as ``exp(-|x|)``):

- Cody-Waite reduction ``t = k ln 2 + r``, ``|r| <= ln 2 / 2``, with ``ln 2`` split in two
  so that ``k ln2_hi`` is exact;
- a Taylor polynomial for ``exp(r)``: degree 13 for float64 results (truncation below
  ``2**-60``), degree 8 for results that are rounded to float32 (below ``2**-32``, that is
  1/256 of a float32 ULP), degree 7 in float32 arithmetic for ``precision="fast"``;
- the scale ``2**k`` built from its bits in two factors, so that a subnormal result is
  rounded once from an exact product and never flushed to zero.

The accuracy contract is NumPy's path's, checked against mpmath by the same tests
(``tests/test_accuracy.py`` runs both paths): float32 input is computed in float64 and rounded
once; float64 input carries the exact rounding error of ``x - max`` (TwoSum) into the
reduced argument, and its row sum (of the terms below the max) is rounded about once: the
terms are scaled by a power of two, split exactly into integer and fractional parts, and the
integer parts summed exactly in int64 (`_exact_rest`), which vectorizes without reassociating
any rounding. Other row sums are vectorized in chunks (1,024 entries for float32 results,
256 for float64 "fast") whose partial sums are added with Neumaier's compensation, so the
sum's error stays a few rounding errors of the sum at any row length. Softmax writes its
exps straight into the output row when the output has the compute dtype, and normalizes
them there.

A block whose rows hold a non-finite max or sum (nan, infinities, overflow) is left to the
NumPy path, which implements the IEEE rules: the kernels return False for it. The sigmoid
kernels need no such escape (``exp(-|x|)`` is in [0, 1]; nan propagates).

`rows_vjp` fuses the softmax of each row with the VJP products of
:mod:`sigmax._numba_kernels` for :mod:`sigmax.derivatives` (``softmax_vjp`` from the logits):
the row's softmax goes to a float64 scratch row and is consumed there, never to memory.

Used by :mod:`sigmax.functions` for C-contiguous float32/float64 NumPy blocks along the last
axis without masks, when numba imports and ``SIGMAX_DISABLE_NUMBA`` is unset or ``0``. The
kernels compile on first use (then are cached on disk), never at import of :mod:`sigmax`, and
release the GIL so that :func:`sigmax._array_api.block_rows` runs them on its threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax._array_api import scratch
from sigmax._numba_kernels import enabled, numba

__all__ = ["enabled", "rows_forward", "rows_vjp", "sigmoid_block", "sigmoid_prime"]

rows_forward: Callable[[np.ndarray, np.ndarray, int, float, bool], bool]
rows_vjp: Callable[[np.ndarray, np.ndarray, np.ndarray, int, float, bool], bool]
sigmoid_block: Callable[[np.ndarray, np.ndarray, bool], None]
sigmoid_prime: Callable[[np.ndarray, np.ndarray, np.ndarray], None]

#: Kinds of row kernel, as passed to `rows_forward`.
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2
#: Kinds of product, as passed to `rows_vjp`.
SOFTMAX_VJP, LOG_SOFTMAX_VJP = 0, 1

#: Coefficients ``2 / (2i + 1)`` of ``R(z) = sum_i c_i z^i``, i = 11 down to 1 (Horner order);
#: results rounded to float32 take the last six.
_ATANH = tuple(2.0 / (2 * i + 1) for i in range(11, 0, -1))

if numba is not None:
    from numba import types
    from numba.extending import intrinsic, overload

    def _bitcast(to: Any, frm: Any) -> Any:
        """An intrinsic reinterpreting the bits of an integer of type `frm` as a float of
        type `to` (numba has no scalar bit cast, and the scale 2**k is built from bits)."""

        def typer(typingctx: Any, bits: Any) -> Any:
            def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
                return builder.bitcast(args[0], context.get_value_type(to))

            return to(frm), codegen

        return intrinsic(typer)

    _f64_from_bits: Any = _bitcast(types.float64, types.int64)
    _f32_from_bits: Any = _bitcast(types.float32, types.int32)

    # FMA contraction only: it makes the polynomial more accurate, never less. Reassociation
    # would undo the range reduction, so only the row sums get it (`_jit_sum`).
    _opts: dict[str, Any] = {"nogil": True, "error_model": "numpy", "boundscheck": False}
    _jit: Any = numba.njit(cache=True, fastmath={"contract"}, **_opts)
    _jit_sum: Any = numba.njit(cache=True, fastmath={"contract", "reassoc"}, **_opts)
    # The per-row entry points (`_row`, `_softmax_into`) are inlined into the loops over rows
    # by numba itself: as calls, rows of 100 spent 10-15% of their time passing row views.
    _jit_in: Any = numba.njit(cache=True, fastmath={"contract"}, inline="always", **_opts)

    _LOG2E = 1.4426950408889634
    _LN2_HI = 6.93147180369123816490e-01  # 32 trailing zero bits: k * _LN2_HI is exact
    _LN2_LO = 1.90821492927058770002e-10
    _LOG2E_F = np.float32(1.44269504)
    _LN2_HI_F = np.float32(0.693145751953125)  # 12 trailing zero bits
    _LN2_LO_F = np.float32(1.428606765330187e-06)
    # Adding and subtracting 1.5 * 2**52 rounds to the nearest integer in two vector
    # instructions (np.floor is a scalar libm call that stops the loop from vectorizing).
    _ROUND = 6755399441055744.0
    _ROUND_F = np.float32(12582912.0)
    #: Chunk lengths: the vectorized sum of a chunk is the least accurate step of a row.
    #: Rows summed for float32 results take long chunks (the float64 sum's error vanishes
    #: in them, and float32 "fast" stays within its bound), float64 results shorter ones.
    _BLOCK32 = 1024
    _BLOCK = 256

    @_jit
    def _scale(p: float, k: float) -> float:
        # p * 2**k, k integral in [-1100, 0]: two normal factors, one rounding.
        n = np.int64(k)
        n1 = n >> 1
        return p * _f64_from_bits((n1 + 1023) << 52) * _f64_from_bits((n - n1 + 1023) << 52)

    #: Taylor coefficients 1/i! of exp, highest degree first (Horner order).
    _TAYLOR = tuple(1.0 / math.factorial(i) for i in range(13, -1, -1))

    @_jit
    def _reduce(t: float) -> tuple[float, float]:
        """k and r with t = k ln 2 + r, |r| <= ln 2 / 2 (t clamped to -1100: exp is 0 there)."""
        t = -1100.0 if t < -1100.0 else t
        k = (t * _LOG2E + _ROUND) - _ROUND
        return k, (t - k * _LN2_HI) - k * _LN2_LO

    @_jit
    def _horner(r: float, first: int) -> float:
        # A constant trip count over a global tuple: LLVM unrolls it completely.
        p = _TAYLOR[first]
        for i in range(first + 1, len(_TAYLOR)):
            p = p * r + _TAYLOR[i]
        return p

    @_jit
    def _exp_tail(t: float, lo: float) -> float:
        """exp(t + lo) for t <= 0 (nan propagates), lo a tiny correction; degree 13."""
        k, r = _reduce(t)
        return _scale(_horner(r + lo, 0), k)

    @_jit
    def _exp_tail_for32(t: float) -> float:
        """exp(t) for t <= 0 in float64, accurate to 2**-32 relative: for float32 results."""
        k, r = _reduce(t)
        return _scale(_horner(r, 5), k)

    @_jit
    def _exp_normal(t: float, floor: float, first: int) -> float:
        """exp(t) for ``t`` in [-708, 709], whose result is normal, with the Taylor
        polynomial from degree ``13 - first`` (0: `_exp_tail`'s, 5: `_exp_tail_for32`'s):
        the scale ``2**k`` is one factor (a multiplication and four integer operations fewer
        than `_scale`, and the same result). ``t`` below `floor` (>= -709) is clamped to it.
        From -708.4 down the result is below the normal range, though not exp(t) (0 from
        -709, where the factor is 0): callers recompute those entries, which a test for
        subnormals still finds."""
        t = floor if t < floor else t
        k = (t * _LOG2E + _ROUND) - _ROUND
        r = (t - k * _LN2_HI) - k * _LN2_LO
        return _horner(r, first) * _f64_from_bits((np.int64(k) + 1023) << 52)

    @_jit
    def _exp_normal_for32(t: float, floor: float) -> float:
        """`_exp_normal` for float32 results (`_exp_tail_for32`'s polynomial)."""
        return _exp_normal(t, floor, 5)

    @_jit
    def _exp_ratio_for32(t: float) -> float:
        """`_exp_tail_for32` where the float32 result is ``exp(t) / den`` with ``den >= 1``
        (softmax's rows, ``t = x - max``; sigmoid's ``e / (1 + e)``): below ``exp(-700)``
        that result rounds to float32 zero either way, so ``t`` is clamped to -700 (12% of
        float32 sigmoid, against `_exp_tail_for32`)."""
        return _exp_normal_for32(t, -700.0)

    @_jit
    def _exp_tail_f32(t: np.float32) -> np.float32:
        """exp(t) for t <= 0 in float32 arithmetic ("fast"); subnormal results kept."""
        t = np.float32(-150.0) if t < np.float32(-150.0) else t
        k = (t * _LOG2E_F + _ROUND_F) - _ROUND_F
        r = (t - k * _LN2_HI_F) - k * _LN2_LO_F
        p = np.float32(1.0 / 5040.0)
        p = p * r + np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        p = p * r + np.float32(1.0)
        n = np.int32(k)
        n1 = n >> 1
        a = _f32_from_bits(np.int32((n1 + 127) << 23))
        b = _f32_from_bits(np.int32((n - n1 + 127) << 23))
        return p * a * b

    _bits_of_f32: Any = _bitcast(types.int32, types.float32)
    _bits_of_f64: Any = _bitcast(types.int64, types.float64)
    _MAG32, _MAG64 = np.int32(0x7FFFFFFF), np.int64(0x7FFFFFFFFFFFFFFF)

    # The row max as an integer max: a float's bits, its magnitude bits flipped when the sign
    # is set, order as the floats do (an involution, so the same step maps the max back).
    # LLVM vectorizes an integer max reduction at full width with no fast-math flag, which it
    # will not do for a float max (NaN): at k = 100 this took 1.2 ms per 10^7 entries against
    # 3.0 for eight running float maxima, at k = 1,000 1.1 against 1.6. A nan with its sign
    # bit set orders below -inf and one without above +inf: either way the row's sum is nan,
    # which sends the block to the NumPy path.

    @_jit
    def _rowmax32(x: np.ndarray) -> np.float32:
        hi = np.int64(-(2**31))
        for j in range(x.shape[0]):
            b = np.int64(_bits_of_f32(x[j]))
            hi = max(hi, b ^ ((b >> 31) & _MAG32))
        return _f32_from_bits(np.int32(hi ^ ((hi >> 31) & _MAG32)))

    @_jit
    def _rowmax64(x: np.ndarray) -> float:
        hi = np.int64(-(2**63))
        for j in range(x.shape[0]):
            b = _bits_of_f64(x[j])
            hi = max(hi, b ^ ((b >> 63) & _MAG64))
        return _f64_from_bits(hi ^ ((hi >> 63) & _MAG64))

    def _rowmax(x: np.ndarray) -> Any:
        """The max of a float32 or float64 row, in its dtype (for jitted callers only)."""
        raise NotImplementedError

    _overload_opts: Any = {"cache": True, **_opts}

    @overload(_rowmax, jit_options=_overload_opts)
    def _rowmax_typed(x: Any) -> Any:
        # numba matches the implementation's signature to this one, annotations included.
        def max32(x: Any) -> Any:
            return _rowmax32(x)

        def max64(x: Any) -> Any:
            return _rowmax64(x)

        return max32 if x.dtype == types.float32 else max64

    # Inlined by numba itself: LLVM's inliner finds the element function (exp, log1p and a
    # division) too large and leaves a call in the loop, which then does not vectorize.
    _jit_inline: Any = numba.njit(cache=True, fastmath={"contract"}, inline="always", **_opts)

    @_jit
    def _series(z: float, first: int) -> float:
        # A constant trip count over a global tuple: LLVM unrolls it completely.
        p = _ATANH[first]
        for i in range(first + 1, len(_ATANH)):
            p = p * z + _ATANH[i]
        return p * z

    @_jit
    def _log1p_unit(u: float, full: bool) -> float:
        """log1p(u) for u in [0, 1] (nan propagates), branch-free; `full` for float64
        results, else for results rounded to float32."""
        big = u >= 0.5
        f = (u - 1.0) * 0.5 if big else u  # exact: 1/2 <= u <= 1 (Sterbenz)
        s = f / (2.0 + f)
        # Constant starts only: a variable index into the tuple is bounds-checked, and the
        # check's exception path stops the loop from vectorizing.
        r = _series(s * s, 0) if full else _series(s * s, 5)
        hfsq = 0.5 * f * f
        corr = hfsq - s * (hfsq + r)  # log1p(f) = f - corr, 0 <= corr <= f / 4 for f > 0
        # ln 2 + f with its exact rounding error (Fast2Sum: ln 2 > |f|), so that the sum is
        # rounded once more at the end only (at most 0.77 ULP measured, where
        # `ln2 + (f - corr)` gave 0.99).
        hi = _LN2_HI + f
        lo = (_LN2_HI - hi) + f
        return hi + ((lo + _LN2_LO) - corr) if big else f - corr

    _LN2 = 0.6931471805599453

    @_jit_inline
    def _binade(w: float) -> tuple[float, float]:
        """k and 2**-k with ``2**-k w`` in [1, 2), for w in [1, 2**1023): from the bits of
        `w` (integer operations, not a log2 or a branch, so that the loops over rows that
        call it vectorize)."""
        e = _bits_of_f64(w) >> 52  # the biased exponent (w > 0)
        return np.float64(e - 1023), _f64_from_bits((2046 - e) << 52)

    @_jit
    def _log1p_rest(rest: float) -> float:
        """log1p(rest) for finite rest >= 0, for float32 results (2**-30):
        ``1 + rest = 2**k (1 + u)`` with u in [0, 1) exact (scaling by 2**-k and subtracting
        1 round nothing), then the vectorized log1p on [0, 1]; below 1, rest itself (k = 0,
        nothing rounded)."""
        w = 1.0 + rest
        k, sc = _binade(w)
        # Below 1 take rest as it is: 1 + rest may round up to 2 there.
        small = rest < 1.0
        u = rest if small else w * sc - 1.0
        return _log1p_unit(u, False) + (0.0 if small else k * _LN2)

    # Inlined by numba: LLVM leaves a call to something this large in the loop over the
    # rows, which then runs scalar (12x slower).
    @_jit_inline
    def _log1p_rest64(rest: float) -> float:
        """log1p(rest) for finite rest >= 0 and float64 results: ``1 + rest = w + err``
        exactly (TwoSum), ``w = 2**k (1 + f)`` with the scaling and the subtraction of 1
        exact, ``u = f + err 2**-k`` rounded once, then the vectorized log1p on [0, 1] and
        ``k ln 2`` in two parts; below 1, log1p(rest) directly. About 1 ULP."""
        w = 1.0 + rest
        bb = w - rest
        err = (1.0 - bb) + (rest - (w - bb))
        k, sc = _binade(w)
        small = rest < 1.0
        u = rest if small else (w * sc - 1.0) + err * sc
        kl = 0.0 if small else k
        # k * _LN2_HI is exact; the low part and log1p(u) are added below it.
        return kl * _LN2_HI + (_log1p_unit(u, True) + kl * _LN2_LO)

    @_jit
    def _two_diff(z: float, m: float) -> tuple[float, float]:
        # TwoSum: d + lo == z - m exactly.
        d = z - m
        bb = d - z
        return d, (z - (d - bb)) + (-m - bb)

    @_jit_sum
    def _chunk64(
        x: np.ndarray, m: float, e: np.ndarray, mode: int, store: bool
    ) -> tuple[float, float]:
        """The sum of exp(x_j - m) over the entries below the max, and the number of max
        entries; the exps go to `e` (exactly 1.0 at the max entries) when `store`. `mode` 0:
        float32 results (degree 8); 1: float64, plain difference; 2: float64, compensated
        difference.

        Loops run over ``range(len)`` of slices: with a start index numba cannot prove the
        index non-negative, and its wraparound check stops the loop from vectorizing.
        """
        s = 0.0
        c = 0.0
        if mode == 0:
            for j in range(x.shape[0]):
                d = np.float64(x[j]) - m
                v = _exp_ratio_for32(d)
                if store:
                    e[j] = v
                s += 0.0 if d == 0.0 else v
                c += 1.0 if d == 0.0 else 0.0
        elif mode == 1:
            for j in range(x.shape[0]):
                d = np.float64(x[j]) - m
                v = _exp_tail(d, 0.0)
                if store:
                    e[j] = v
                s += 0.0 if d == 0.0 else v
                c += 1.0 if d == 0.0 else 0.0
        else:
            for j in range(x.shape[0]):
                d, lo = _two_diff(np.float64(x[j]), m)
                v = _exp_tail(d, lo)
                if store:
                    e[j] = v
                s += 0.0 if d == 0.0 else v
                c += 1.0 if d == 0.0 else 0.0
        return s, c

    @_jit_sum
    def _chunk32(x: np.ndarray, m: np.float32) -> tuple[float, float]:
        """`_chunk64` in float32 arithmetic ("fast"), without the store."""
        s = np.float32(0.0)
        c = np.float32(0.0)
        for j in range(x.shape[0]):
            d = x[j] - m
            v = _exp_tail_f32(d)
            s += np.float32(0.0) if d == np.float32(0.0) else v
            c += np.float32(1.0) if d == np.float32(0.0) else np.float32(0.0)
        return np.float64(s), np.float64(c)

    @_jit
    def _neumaier(s: float, comp: float, v: float) -> tuple[float, float]:
        """One step of compensated summation: ``s + v`` and its exact rounding error added
        to `comp`. The error comes from TwoSum (branch-free), which gives the same result as
        Neumaier's branch on ``|s| >= |v|`` and was 7% faster in the short rows' sums."""
        tot = s + v
        bb = tot - s
        comp += (s - (tot - bb)) + (v - bb)
        return tot, comp

    @_jit_sum
    def _split_sum(z: np.ndarray, m: float, e: np.ndarray, scale: float) -> tuple[Any, float]:
        """The exps below the max scaled by `scale`, split exactly into integer parts, summed
        exactly in int64 (integers need no reassociation to vectorize, and their sum has no
        rounding at all), and fractional parts, summed in float64."""
        q = np.int64(0)
        r = 0.0
        for j in range(z.shape[0]):
            y = (0.0 if np.float64(z[j]) == m else e[j]) * scale
            qi = np.int64(y)  # truncation: y - qi is exact
            q += qi
            r += y - np.float64(qi)
        return q, r

    @_jit
    def _exact_rest(z: np.ndarray, m: float, e: np.ndarray, s: float) -> float:
        """The sum of the exps below the max, rounded about once, from `s`, the same sum
        taken vectorized (a few roundings off).

        Scaled by ``2**p`` so that `s` lands in ``[2**59, 2**60)``, each term's integer part
        holds its leading bits and their int64 sum is exact (it stays below ``2**61``); the
        fractional parts are below 1 each, and their float64 sum, a few roundings off, is
        ``2**59`` times smaller than the total. The integer sum is then rounded once (its
        residue exact), so `rest` is within about half a ULP: a vectorized float64 sum of 32
        terms was 3 ULP off, and the max entry of log_softmax is ``-log1p(rest)``.
        ``p <= 1023``: for a sum below ``2**-963`` the integer parts hold fewer bits, which
        still leaves the fractional sum far below the total's ULP.
        """
        if not (s > 0.0 and s <= 1e300):
            return s  # 0 (no entry below the max), nan or inf: exact as it is
        p = min(60 - math.frexp(s)[1], 1023)
        q, r = _split_sum(z, m, e, math.ldexp(1.0, p))
        hi = np.float64(q)
        lo = np.float64(q - np.int64(hi))
        return (hi + (lo + r)) * math.ldexp(1.0, -p)

    @_jit
    def _row_sums(
        z: np.ndarray, e: np.ndarray, mode: int, store: bool = True
    ) -> tuple[float, float]:
        """The row's max `m` and ``rest``, the sum of exp(z_j - m) without the max entry
        (the exps into `e` when `store`, and always for `mode` 2).

        Leaving the max entry out keeps ``log1p(rest)`` accurate on confident rows. Chunks are
        summed with reassociation (vectorized), the chunk sums with Neumaier's compensation.
        The float64 result with the compensated difference (`mode` 2) sums the whole row
        vectorized and then exactly (`_exact_rest`).
        """
        k = z.shape[0]
        m = np.float64(_rowmax(z))
        if mode == 2:
            s2, ties2 = _chunk64(z, m, e, mode, True)
            # Exact: the tied maxima beyond the first count 1 each, and never cancel `s`.
            return m, _exact_rest(z, m, e, s2) + (ties2 - 1.0)
        s = 0.0
        comp = 0.0
        ties = -1.0
        blk = _BLOCK32 if mode <= 0 else _BLOCK
        for a in range(0, k, blk):
            if mode < 0:
                ps, pc = _chunk32(z[a : a + blk], np.float32(m))
            else:
                ps, pc = _chunk64(z[a : a + blk], m, e[a : a + blk], mode, store)
            s, comp = _neumaier(s, comp, ps)
            ties += pc
        return m, (s + comp) + ties

    @_jit_sum
    def _exp_chunk(z: np.ndarray, m: float, e: np.ndarray, mode: int) -> float:
        """exp(z_j - m) into `e` (`_chunk64`'s modes 0 and 1, and -1 for float32
        arithmetic); returns their sum, reassociated (vectorized)."""
        if mode < 0:
            m32 = np.float32(m)
            s32 = np.float32(0.0)
            for j in range(z.shape[0]):
                v32 = _exp_tail_f32(z[j] - m32)
                e[j] = v32
                s32 += v32
            return np.float64(s32)
        s = 0.0
        if mode == 0:
            for j in range(z.shape[0]):
                v = _exp_ratio_for32(np.float64(z[j]) - m)
                e[j] = v
                s += v
        else:
            for j in range(z.shape[0]):
                v = _exp_tail(np.float64(z[j]) - m, 0.0)
                e[j] = v
                s += v
        return s

    @_jit
    def _exp_sum(z: np.ndarray, e: np.ndarray, mode: int) -> tuple[float, float, float]:
        """Softmax's numerators exp(z_j - m) into `e`, and their sum: the row's max and the
        sum as ``s + comp`` (Neumaier over chunks). float32 results sum every entry; the
        float64 result (mode 2) sums the entries below the max in short chunks and adds the
        max entries (1 each) exactly, as `_row_sums`: the vectorized sum of a chunk is the
        least accurate step, and a 1.0 in it would cost every entry a few ULP."""
        if mode == 2:
            m, rest = _row_sums(z, e, mode)
            # 1 + rest and its exact rounding error (TwoSum: rest may exceed 1).
            den = 1.0 + rest
            bb = den - rest
            return m, den, (1.0 - bb) + (rest - (den - bb))
        m = np.float64(_rowmax(z))
        s = 0.0
        comp = 0.0
        blk = _BLOCK32 if mode <= 0 else _BLOCK
        for a in range(0, z.shape[0], blk):
            s, comp = _neumaier(s, comp, _exp_chunk(z[a : a + blk], m, e[a : a + blk], mode))
        return m, s, comp

    @_jit
    def _normalize(e: np.ndarray, mode: int, s: float, comp: float) -> None:
        """``e / (s + comp)`` in place, for `mode` -1, 1 or 2 (in place: as two arrays to
        LLVM, the load and the store could not be proven safe to vectorize, and the loop
        would run scalar). The float64 result (mode 2) takes the rounding error of the
        denominator as a first-order correction, which makes ``q - q c``, ``q = e / den``,
        one rounding fewer than ``e / den``."""
        den = s + comp
        if mode < 0:
            inv32 = np.float32(1.0 / den)
            for j in range(e.shape[0]):
                e[j] = e[j] * inv32
        elif mode == 2:
            c = ((s - den) + comp) / den  # Fast2Sum: |s| >= 1 > |comp|
            for j in range(e.shape[0]):
                q = e[j] / den
                e[j] = q - q * c
        else:
            for j in range(e.shape[0]):
                e[j] = e[j] / den

    @_jit_in
    def _softmax_into(z: np.ndarray, e: np.ndarray, o: np.ndarray, mode: int) -> bool:
        """The softmax of the row `z` into `o`, which must not overlap `z` (mode 2 re-reads
        `z` after the exps are stored). In place in `o` (which then has the compute dtype,
        and `e` is not used), except for `mode` 0 (float32 results), whose float64 exps go
        through the scratch row `e` (the product by the reciprocal rounds once more in
        float64, which vanishes in the float32 result). False, `o` partly written, when the
        max or the sum is not finite."""
        if mode == 0:
            m, s, comp = _exp_sum(z, e, mode)
            if not (np.isfinite(m) and np.isfinite(s)):
                return False
            inv = 1.0 / (s + comp)
            for j in range(o.shape[0]):
                o[j] = e[j] * inv
            return True
        m, s, comp = _exp_sum(z, o, mode)
        if not (np.isfinite(m) and np.isfinite(s)):
            return False
        _normalize(o, mode, s, comp)
        return True

    @_jit
    def _write_log(
        z: np.ndarray, o: np.ndarray, kind: int, mode: int, m: float, lse: float
    ) -> None:
        """log_softmax ``(z - m) - lse`` of the row into `o` (kind 1), or its logsumexp
        ``m + lse`` into ``o[0]``, with ``lse = log1p(rest)``."""
        if kind == 1:
            if mode < 0:
                m32 = np.float32(m)
                lse32 = np.float32(lse)
                for j in range(o.shape[0]):
                    o[j] = (z[j] - m32) - lse32
            elif mode == 2:
                for j in range(o.shape[0]):
                    d, lo = _two_diff(np.float64(z[j]), m)
                    o[j] = (d - lse) + lo
            else:
                for j in range(o.shape[0]):
                    o[j] = (np.float64(z[j]) - m) - lse
        else:
            o[0] = m + lse

    @_jit_in
    def _row(zi: np.ndarray, oi: np.ndarray, kind: int, mode: int, e: np.ndarray) -> bool:
        if kind == 0:
            return _softmax_into(zi, e, oi, mode)
        m, rest = _row_sums(zi, e, mode, False)
        if not (np.isfinite(m) and np.isfinite(rest)):
            return False
        _write_log(zi, oi, kind, mode, m, np.log1p(rest))
        return True

    #: Rows per group of `_log_rows` (at most; and at most `_GROUP_ENTRIES` entries, so that
    #: the outputs re-read the group's rows from L1: 16 rows of 1,000 took 20% longer).
    #: Rows too long for groups of 8 take libm's log1p row by row: there it costs little.
    _GROUP, _GROUP_ENTRIES = 64, 2048

    @_jit
    def _log_rows(
        x: np.ndarray, out: np.ndarray, kind: int, mode: int, e: np.ndarray, mr: np.ndarray
    ) -> bool:
        """log_softmax / logsumexp (`kind` 1 / 2) of the rows of `x` (temperature 1) into
        `out`, `_GROUP` rows at a time: each row's max and ``rest``, then ``log1p(rest)``
        of the group, vectorized across its rows (`_log1p_rest64`, about 1 ULP, or
        `_log1p_rest` for float32 results; libm's scalar log1p, row by row, took a fifth
        of the time at k = 100), then the rows' outputs. `mr` is ``(2, _GROUP)`` scratch.
        False (rows partly written) as soon as a row has a non-finite max or sum."""
        m, r = mr[0], mr[1]
        group = max(1, min(_GROUP, _GROUP_ENTRIES // x.shape[1]))
        for g in range(0, x.shape[0], group):
            n = min(group, x.shape[0] - g)
            for i in range(n):
                mi, ri = _row_sums(x[g + i], e, mode, False)
                if not (np.isfinite(mi) and np.isfinite(ri)):
                    return False
                m[i], r[i] = mi, ri
            if mode >= 1:
                for i in range(n):
                    r[i] = _log1p_rest64(r[i])
            else:
                for i in range(n):
                    r[i] = _log1p_rest(r[i])
            for i in range(n):
                _write_log(x[g + i], out[g + i], kind, mode, m[i], r[i])
        return True

    @_jit
    def _rows(
        x: np.ndarray, out: np.ndarray, kind: int, t: float, mode: int, e: np.ndarray, z: np.ndarray
    ) -> bool:
        """softmax / log_softmax / logsumexp of each row of ``x / t`` into `out` (``(n, 1)``
        for logsumexp). `mode` -1 computes float32 in float32 ("fast"), else see
        `_chunk64`; `e` and `z` are scratch rows of the compute dtype (`z` holds ``x / t``
        when ``t != 1``, divided in that dtype as the NumPy path does; softmax's exps go
        straight to `out` when it has the compute dtype). Returns False (rows partly
        written) as soon as a row has a non-finite max or sum.
        """
        if kind != 0 and t == 1.0 and x.shape[1] * 8 <= _GROUP_ENTRIES:
            return _log_rows(x, out, kind, mode, e, np.empty((2, _GROUP)))
        for i in range(x.shape[0]):
            if t == 1.0:
                ok = _row(x[i], out[i], kind, mode, e)
            else:
                for j in range(z.shape[0]):
                    z[j] = x[i, j] / t
                ok = _row(z, out[i], kind, mode, e)
            if not ok:
                return False
        return True

    from sigmax._numba_kernels import (
        _log_softmax_row,
        _log_softmax_row32,
        _softmax_row,
        _softmax_row32,
    )

    @_jit
    def _vjp_rows(
        x: np.ndarray,
        v: np.ndarray,
        out: np.ndarray,
        kind: int,
        t: float,
        mode: int,
        e: np.ndarray,
        z: np.ndarray,
    ) -> bool:
        """The softmax (`kind` 0) or log-softmax (1) VJP of each row of ``x / t`` with the
        cotangent rows of `v`, into `out`. The softmax of a row is written in place into the
        scratch row `e` (`mode` as `_rows`; `e` and `z` are float32 for -1, else float64) and
        consumed by the product kernel of :mod:`sigmax._numba_kernels` while it is in cache
        (in float32 arithmetic for `mode` -1). Returns False (rows partly written) as soon as
        a row has a non-finite max or sum.
        """
        for i in range(x.shape[0]):
            if t == 1.0:
                ok = _softmax_into(x[i], e, e, mode)
            else:
                for j in range(z.shape[0]):
                    z[j] = x[i, j] / t
                ok = _softmax_into(z, e, e, mode)
            if not ok:
                return False
            if mode < 0 and kind == 0:
                _softmax_row32(e, v[i], t, out[i])
            elif mode < 0:
                _log_softmax_row32(e, v[i], t, out[i])
            elif kind == 0:
                _softmax_row(e, v[i], t, out[i])
            else:
                _log_softmax_row(e, v[i], t, out[i])
        return True

    @_jit
    def _sigmoid(x: np.ndarray, out: np.ndarray, mode: int) -> None:
        """1 / (1 + exp(-x)) with the numerator e = exp(-|x|) below 0: never 1 - sigmoid."""
        if mode < 0:
            for j in range(x.shape[0]):
                v = x[j]
                e32 = _exp_tail_f32(-abs(v))
                num32 = np.float32(1.0) if v >= np.float32(0.0) else e32
                out[j] = num32 / (np.float32(1.0) + e32)
        elif mode == 0:
            for j in range(x.shape[0]):
                v64 = np.float64(x[j])
                e = _exp_ratio_for32(-abs(v64))
                out[j] = (1.0 if v64 >= 0.0 else e) / (1.0 + e)
        else:
            for j in range(x.shape[0]):
                v64 = np.float64(x[j])
                e = _exp_tail(-abs(v64), 0.0)
                out[j] = (1.0 if v64 >= 0.0 else e) / (1.0 + e)

    @_jit
    def _sigmoid_prime(x: np.ndarray, v: np.ndarray, out: np.ndarray, wide: bool) -> None:
        """``e / (1 + e)**2 * v`` with e = exp(-|x|) <= 1 (`sigmax.derivatives._sigmoid_prime`):
        no overflow, no cancellation, in float64 and rounded once. `wide`: float64 results,
        with the degree-13 exp; else float32 results, with the float32-accurate one."""
        if wide:
            for j in range(x.shape[0]):
                e = _exp_tail(-abs(np.float64(x[j])), 0.0)
                d = 1.0 + e
                out[j] = e / (d * d) * np.float64(v[j])
        else:
            for j in range(x.shape[0]):
                t = -abs(np.float64(x[j]))
                # Below -700 that exp is clamped to exp(-700), not 0: the float32 result
                # rounds to 0 either way, but times an infinite v it would be inf, not nan.
                e = 0.0 if t < -700.0 else _exp_ratio_for32(t)  # keeps a nan
                d = 1.0 + e
                out[j] = e / (d * d) * np.float64(v[j])

    def _mode(dtype: np.dtype, precision: str) -> int:
        if dtype == np.float32:
            return -1 if precision == "fast" else 0
        return 2 if precision == "accurate" else 1

    def _rows_forward(x: np.ndarray, out: np.ndarray, kind: int, t: float, fast: bool) -> bool:
        mode = _mode(x.dtype, "fast" if fast else "accurate")
        cdt = np.float32 if mode < 0 else np.float64
        k = x.shape[1]
        return bool(_rows(x, out, kind, float(t), mode, np.empty(k, cdt), np.empty(k, cdt)))

    def _rows_vjp(
        x: np.ndarray, v: np.ndarray, out: np.ndarray, kind: int, t: float, fast: bool
    ) -> bool:
        # The accuracy of the unfused path: float32 input differs exactly in float64 (mode 1,
        # degree 13, no compensation needed), float64 input carries the rounding error of
        # x - max (mode 2) unless `fast`; float32 "fast" is float32 throughout (mode -1).
        # Mode 0's degree-8 exp is accurate only to 2**-32, too little for a float64 s.
        mode = (-1 if fast else 1) if x.dtype == np.float32 else (1 if fast else 2)
        cdt = np.float32 if mode < 0 else np.float64
        k = x.shape[1]
        e = scratch("nb.vjp.e", (k,), cdt)
        z = scratch("nb.vjp.z", (k,), cdt)
        return bool(_vjp_rows(x, v, out, kind, float(t), mode, e, z))

    def _sigmoid_block(x: np.ndarray, out: np.ndarray, fast: bool) -> None:
        # float64 has no separate "fast" sigmoid: both precisions are the same code.
        _sigmoid(x, out, -1 if fast and x.dtype == np.float32 else _mode(x.dtype, "accurate"))

    def _sigmoid_prime_block(x: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
        # Both precisions: it streams close to memory speed, and is more accurate than the
        # float32 arithmetic of the NumPy path's "fast".
        _sigmoid_prime(x, v, out, x.dtype.char == "d")

    rows_forward = _rows_forward
    rows_vjp = _rows_vjp
    sigmoid_block = _sigmoid_block
    sigmoid_prime = _sigmoid_prime_block
