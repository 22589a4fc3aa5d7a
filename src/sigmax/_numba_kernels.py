"""Optional fused numba kernels for :mod:`sigmax.derivatives` (``pip install sigmax[numba]``).

The NumPy path of a derivative makes 5 to 8 passes over each block (one per ufunc). These
kernels make one pass over memory per row (the reductions re-read a row while it is in cache),
so they run close to the speed of a copy. They follow the NumPy path's algorithm and accuracy
contract exactly (float64 arithmetic for float32 data, one rounding on the store, the softmax
products pivoted on the probability above 1/2), and its NaN and infinity rules: only the order
of the row sums differs, which moves a float64 result by a few rounding errors of the sum.

The row helpers (`_softmax_row`, `_log_softmax_row`) also run inside the fused VJP from the
logits, :func:`sigmax._numba_forward.rows_vjp`.

Used by :mod:`sigmax.derivatives` only for C-contiguous float32/float64 NumPy arrays along the
last axis, without masks (either precision), when numba imports and the environment
variable ``SIGMAX_DISABLE_NUMBA`` is unset or ``0``. The kernels compile on first use (a fraction
of a second per dtype, then cached on disk with ``cache=True``), never at import of
:mod:`sigmax`; they release the GIL, so :func:`sigmax._array_api.block_rows` runs them on its
threads. numba's cache checks only the file of the function it caches: after editing a kernel
that another module calls or inlines (the row helpers here are inlined into
:mod:`sigmax._numba_forward`), delete the ``*.nbi``/``*.nbc`` files in ``__pycache__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax._array_api import env_flag

__all__ = [
    "enabled",
    "log_softmax_jvp_rows",
    "log_softmax_rows",
    "logsumexp_jvp_rows",
    "logsumexp_vjp_rows",
    "sigmoid_prime_from_output",
    "softmax_rows",
]

numba: Any
try:
    import numba
except ImportError:  # the pure-NumPy path is used instead
    numba = None


def enabled(*arrays: np.ndarray) -> bool:
    """Whether the kernels may run on `arrays`: numba is importable, not disabled by the
    environment, and every array is C-contiguous with one dtype, float32 or float64. With no
    arrays, numba and the environment only: for the small calls, whose arrays were checked
    (`sigmax._array_api.small_numpy`, `small_out`)."""
    if numba is None or env_flag("SIGMAX_DISABLE_NUMBA"):
        return False
    if not arrays:
        return True
    dt = arrays[0].dtype
    # float32 or float64 in native byte order (cheaper than ``dt == np.float32``)
    if dt.char not in "fd" or not dt.isnative:
        return False
    for a in arrays:  # noqa: SIM110 (a generator costs more than this loop)
        if a.dtype != dt or not a.flags.c_contiguous:
            return False
    return True


softmax_rows: Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool], None]
log_softmax_rows: Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool], None]
log_softmax_jvp_rows: Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool], None]
logsumexp_vjp_rows: Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool], None]
logsumexp_jvp_rows: Callable[[np.ndarray, np.ndarray, float, np.ndarray, bool], None]
sigmoid_prime_from_output: Callable[[np.ndarray, np.ndarray, np.ndarray], None]

if numba is not None:
    # Only the two row sums may be reassociated (so that they vectorize). Every other operation
    # keeps IEEE semantics: no contraction into FMA, NaN and infinities as in NumPy.
    _jit: Any = numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
    _jit_sum: Any = numba.njit(
        cache=True, nogil=True, error_model="numpy", boundscheck=False, fastmath={"reassoc"}
    )
    # The row helpers are inlined into the loops over rows (numba's IR inlining, same flags):
    # as calls, passing three row views cost about 7 ns a row, a third of the time at k = 10.
    _jit_row: Any = numba.njit(
        cache=True, nogil=True, error_model="numpy", boundscheck=False, inline="always"
    )

    @_jit_sum
    def _pivot(s: np.ndarray, v: np.ndarray) -> float:
        # The indicator of s > 1/2 dotted with v, as the NumPy path: v at the one entry above
        # 1/2 (or 0), and NaN when any v is NaN or infinite (0 * inf), as there.
        acc = 0.0
        for j in range(s.shape[0]):
            acc += (1.0 if np.float64(s[j]) > 0.5 else 0.0) * np.float64(v[j])
        return acc

    @_jit_sum
    def _dot_shifted(s: np.ndarray, v: np.ndarray, pv: float) -> float:
        acc = 0.0
        for j in range(s.shape[0]):
            acc += np.float64(s[j]) * (np.float64(v[j]) - pv)
        return acc

    @_jit_row
    def _softmax_row(si: np.ndarray, vi: np.ndarray, t: float, oi: np.ndarray) -> None:
        """The pivoted product ``s (w - <s, w>) / T`` of one row (`_softmax_core`)."""
        pv = _pivot(si, vi)
        c = _dot_shifted(si, vi, pv)
        if t == 1.0:
            for j in range(si.shape[0]):
                oi[j] = np.float64(si[j]) * ((np.float64(vi[j]) - pv) - c)
        else:
            for j in range(si.shape[0]):
                oi[j] = np.float64(si[j]) * (((np.float64(vi[j]) - pv) - c) / t)

    @_jit_sum
    def _pivot_select(s: np.ndarray, v: np.ndarray) -> float:
        # v at the one entry above 1/2 (or 0), selected as the generic path's `where` does:
        # an infinite v elsewhere leaves it finite (`_pivot`'s product would make it NaN).
        acc = 0.0
        for j in range(s.shape[0]):
            acc += np.float64(v[j]) if np.float64(s[j]) > 0.5 else 0.0
        return acc

    @_jit_row
    def _log_softmax_jvp_row(si: np.ndarray, vi: np.ndarray, t: float, oi: np.ndarray) -> None:
        """The pivoted ``(v - <s, v>) / T`` of one row (`_log_softmax_jvp_core`): the
        softmax product without its factor s."""
        pv = _pivot_select(si, vi)
        c = _dot_shifted(si, vi, pv)
        if t == 1.0:
            for j in range(si.shape[0]):
                oi[j] = (np.float64(vi[j]) - pv) - c
        else:
            for j in range(si.shape[0]):
                oi[j] = ((np.float64(vi[j]) - pv) - c) / t

    @_jit_sum
    def _row_sum(g: np.ndarray) -> float:
        acc = 0.0
        for j in range(g.shape[0]):
            acc += np.float64(g[j])
        return acc

    @_jit_row
    def _log_softmax_row(si: np.ndarray, gi: np.ndarray, t: float, oi: np.ndarray) -> None:
        """``(g - s sum(g)) / T`` of one row (`_log_softmax_vjp_core`)."""
        c = _row_sum(gi)
        if t == 1.0:
            for j in range(si.shape[0]):
                oi[j] = np.float64(gi[j]) - np.float64(si[j]) * c
        else:
            for j in range(si.shape[0]):
                oi[j] = (np.float64(gi[j]) - np.float64(si[j]) * c) / t

    # float32 arithmetic for ``precision="fast"``, as the NumPy path's float32 operations
    # (the temperature rounded to float32 as NumPy rounds a Python float against float32).

    @_jit_sum
    def _pivot32(s: np.ndarray, v: np.ndarray) -> np.float32:
        acc = np.float32(0.0)
        for j in range(s.shape[0]):
            acc += (np.float32(1.0) if s[j] > np.float32(0.5) else np.float32(0.0)) * v[j]
        return acc

    @_jit_sum
    def _dot_shifted32(s: np.ndarray, v: np.ndarray, pv: np.float32) -> np.float32:
        acc = np.float32(0.0)
        for j in range(s.shape[0]):
            acc += s[j] * (v[j] - pv)
        return acc

    @_jit_sum
    def _row_sum32(g: np.ndarray) -> np.float32:
        acc = np.float32(0.0)
        for j in range(g.shape[0]):
            acc += g[j]
        return acc

    @_jit_row
    def _softmax_row32(si: np.ndarray, vi: np.ndarray, t: float, oi: np.ndarray) -> None:
        """`_softmax_row` of float32 rows in float32."""
        pv = _pivot32(si, vi)
        c = _dot_shifted32(si, vi, pv)
        t32 = np.float32(t)
        if t == 1.0:
            for j in range(si.shape[0]):
                oi[j] = si[j] * ((vi[j] - pv) - c)
        else:
            for j in range(si.shape[0]):
                oi[j] = si[j] * (((vi[j] - pv) - c) / t32)

    @_jit_row
    def _log_softmax_row32(si: np.ndarray, gi: np.ndarray, t: float, oi: np.ndarray) -> None:
        """`_log_softmax_row` of float32 rows in float32."""
        c = _row_sum32(gi)
        t32 = np.float32(t)
        if t == 1.0:
            for j in range(si.shape[0]):
                oi[j] = gi[j] - si[j] * c
        else:
            for j in range(si.shape[0]):
                oi[j] = (gi[j] - si[j] * c) / t32

    # Every product over rows takes `fast`, which callers set for "fast" float32 rows only:
    # float32 arithmetic where the product has a float32 row helper (the softmax and
    # log_softmax VJPs; 1.5x faster at k = 10), float64 arithmetic in the others. (The
    # helpers round the temperature to float32.) The branch on it is loop invariant: LLVM
    # moves it out of the loop.

    @_jit
    def _softmax_rows(s: np.ndarray, v: np.ndarray, t: float, out: np.ndarray, fast: bool) -> None:
        for i in range(s.shape[0]):
            if fast:
                _softmax_row32(s[i], v[i], t, out[i])
            else:
                _softmax_row(s[i], v[i], t, out[i])

    @_jit
    def _log_softmax_rows(
        s: np.ndarray, g: np.ndarray, t: float, out: np.ndarray, fast: bool
    ) -> None:
        for i in range(s.shape[0]):
            if fast:
                _log_softmax_row32(s[i], g[i], t, out[i])
            else:
                _log_softmax_row(s[i], g[i], t, out[i])

    @_jit
    def _log_softmax_jvp_rows(
        s: np.ndarray, v: np.ndarray, t: float, out: np.ndarray, fast: bool
    ) -> None:
        for i in range(s.shape[0]):
            _log_softmax_jvp_row(s[i], v[i], t, out[i])

    @_jit
    def _logsumexp_vjp_rows(
        s: np.ndarray, g: np.ndarray, t: float, out: np.ndarray, fast: bool
    ) -> None:
        """``g_i s_i`` of each row (`_logsumexp_vjp_core`: `g` has one entry a row)."""
        for i in range(s.shape[0]):
            si, oi = s[i], out[i]
            gi = np.float64(g[i, 0])
            for j in range(si.shape[0]):
                oi[j] = np.float64(si[j]) * gi

    @_jit_sum
    def _row_dot(s: np.ndarray, v: np.ndarray) -> float:
        acc = 0.0
        for j in range(s.shape[0]):
            acc += np.float64(s[j]) * np.float64(v[j])
        return acc

    @_jit
    def _logsumexp_jvp_rows(
        s: np.ndarray, v: np.ndarray, t: float, out: np.ndarray, fast: bool
    ) -> None:
        """``<s_i, v_i>`` of each row into ``out[i, 0]`` (`_logsumexp_jvp_core`)."""
        for i in range(s.shape[0]):
            out[i, 0] = _row_dot(s[i], v[i])

    @_jit
    def _sigmoid_prime_from_output(s: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
        for j in range(s.shape[0]):
            sj = np.float64(s[j])
            out[j] = ((1.0 - sj) * sj) * np.float64(v[j])

    softmax_rows = _softmax_rows
    log_softmax_rows = _log_softmax_rows
    log_softmax_jvp_rows = _log_softmax_jvp_rows
    logsumexp_vjp_rows = _logsumexp_vjp_rows
    logsumexp_jvp_rows = _logsumexp_jvp_rows
    sigmoid_prime_from_output = _sigmoid_prime_from_output
