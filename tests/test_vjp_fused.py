"""The fused VJP kernels from the logits (:func:`sigmax._numba_forward.rows_vjp`).

`softmax_vjp`, `softmax_jvp` and `log_softmax_vjp` on C-contiguous float32/float64 NumPy rows
run one numba kernel per block that computes each row's softmax into a float64 scratch row and
consumes it there. These tests run that path (and check that it ran) against central finite
differences, the adjoint identity, mpmath, torch autograd and the unfused two-step path, and
check that blocks with non-finite rows fall back to the NumPy path's IEEE rules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
import torch

import sigmax
from _mpref import ulps_apart
from sigmax import _array_api, _numba_kernels, functions
from sigmax import derivatives as d

pytestmark = pytest.mark.skipif(_numba_kernels.numba is None, reason="numba is not installed")

mp = mpmath.mp


class _Spy:
    """Counts the fused kernel's calls and the blocks it handed back (returned False)."""

    def __init__(self, fn: Callable[..., bool]) -> None:
        self.fn, self.calls, self.declined = fn, 0, 0
        self.lock = threading.Lock()  # blocks run on threads

    def __call__(self, *args: Any) -> bool:
        ok = self.fn(*args)
        with self.lock:
            self.calls += 1
            self.declined += not ok
        return ok


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    """The fused path on every row length, with its calls counted."""
    from sigmax import _numba_forward

    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
    monkeypatch.setattr(functions, "FUSED_MIN_K", 0)
    s = _Spy(_numba_forward.rows_vjp)
    monkeypatch.setattr(_numba_forward, "rows_vjp", s)
    return s


def _numpy_path(
    monkeypatch: pytest.MonkeyPatch, f: Callable[..., Any], *args: Any, **kw: Any
) -> np.ndarray:
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    try:
        with np.errstate(all="ignore"):
            return np.asarray(f(*args, **kw))
    finally:
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")


def _logits(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(dtype)
    x[1::4, 2] += 40.0  # confident rows: a probability near 1, where the pivot matters
    x[2::4] = 1.5  # rows of equal logits (ties at the max)
    return x, rng.standard_normal(shape).astype(dtype)


VJPS = {
    "softmax_vjp": lambda z, t: torch.softmax(z / t, -1),
    "log_softmax_vjp": lambda z, t: torch.log_softmax(z / t, -1),
}


# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("k", [3, 80])
@pytest.mark.parametrize("name", list(VJPS))
def test_central_differences(spy: _Spy, name: str, k: int, temperature: float) -> None:
    x, g = _logits((4, k), np.float64, seed=k)
    x[1, 2] -= 30.0  # keep the confident row's differences well scaled
    fwd = sigmax.softmax if name == "softmax_vjp" else sigmax.log_softmax
    got = getattr(d, name)(x, g, temperature=temperature)
    assert spy.calls >= 1
    assert spy.declined == 0

    def f(z: np.ndarray) -> float:
        return float(np.sum(g * fwd(z, temperature=temperature)))

    h = 1e-6
    num = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (f(xp) - f(xm)) / (2 * h)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-7 * np.abs(g).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_adjoint_identity(spy: _Spy, dtype: Any, temperature: float) -> None:
    # <u, J v> = <J^T u, v>: softmax_jvp and softmax_vjp both run the fused kernel (J is
    # symmetric); log_softmax_jvp has no fused form, so that pair checks fused against NumPy.
    x, u = _logits((37, 150), dtype)
    v = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    opts = {"temperature": temperature}
    # Relative to the sum of the terms' magnitudes: one rounding of each result per term.
    tol = 4 * np.finfo(dtype).eps
    for jvp, vjp in [(d.softmax_jvp, d.softmax_vjp), (d.log_softmax_jvp, d.log_softmax_vjp)]:
        a = u.astype(np.float64) * jvp(x, v, **opts)
        b = vjp(x, u, **opts).astype(np.float64) * v
        size = np.sum(np.abs(a)) + np.sum(np.abs(b))
        assert abs(np.sum(a) - np.sum(b)) <= tol * size
    assert spy.calls >= 3
    assert spy.declined == 0


@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("name", list(VJPS))
def test_torch_autograd_across_blocks_and_threads(
    spy: _Spy, monkeypatch: pytest.MonkeyPatch, name: str, temperature: float
) -> None:
    # Blocks of 3 rows of 123 entries: 734 blocks, so the rows on both sides of every block
    # boundary, split between threads (2200 * 123 > THREAD_MIN_ELEMENTS).
    monkeypatch.setattr(d, "FUSED_BLOCK_ELEMENTS", 400)
    x, g = _logits((2200, 123), np.float64, seed=5)
    got = getattr(d, name)(x, g, temperature=temperature)
    assert spy.calls == -(-2200 // 3)
    assert spy.declined == 0
    tx = torch.tensor(x, requires_grad=True)
    VJPS[name](tx, temperature).backward(torch.tensor(g))
    want = tx.grad.numpy()
    # torch's product is not pivoted: at a probability near 1 it is off by about eps |g|,
    # which can exceed the value itself (~e^-40 on the confident rows).
    s = np.asarray(sigmax.softmax(x, temperature=temperature))
    slack = s * (np.abs(g) + np.sum(s * np.abs(g), axis=-1, keepdims=True)) / temperature
    assert np.all(np.abs(got - want) <= 1e-12 * np.abs(want) + 1e-14 * slack)


def _mp_softmax_vjp(x: np.ndarray, g: np.ndarray, t: float) -> list:
    """The pivoted product at 50 digits, from the exactly rounded inputs."""
    with mp.workdps(50):
        z = [mp.mpf(float(v)) / mp.mpf(t) for v in x.tolist()]
        m = max(z)
        e = [mp.exp(v - m) for v in z]
        tot = mp.fsum(e)
        s = [v / tot for v in e]
        gv = [mp.mpf(float(v)) for v in g.tolist()]
        c = mp.fsum(si * gi for si, gi in zip(s, gv, strict=True))
        return [si * (gi - c) / mp.mpf(t) for si, gi in zip(s, gv, strict=True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_confident_rows_against_mpmath(spy: _Spy, dtype: Any, temperature: float) -> None:
    # One logit 40/T above the rest: s_m = 1 - O(e^-40), and the entry at m is a difference of
    # nearly equal terms unless the product pivots on it. Every entry keeps relative accuracy.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 90)).astype(dtype)
    x[:, 5] += dtype(40.0 * temperature)
    g = rng.standard_normal(x.shape).astype(dtype)
    got = d.softmax_vjp(x, g, temperature=temperature)
    assert spy.calls == 1
    assert spy.declined == 0
    for i in range(x.shape[0]):
        ref = np.array([float(v) for v in _mp_softmax_vjp(x[i], g[i], temperature)])
        if dtype == np.float32:
            assert ulps_apart(got[i], ref.astype(np.float32)).max() <= 1
        else:
            np.testing.assert_allclose(got[i], ref, rtol=1e-13, atol=0)
    # e^-40-sized, where an unpivoted product leaves rounding noise of eps |g| (or exactly 0).
    assert 0.0 < abs(got[0, 5]) < 1e-13


# --------------------------------------------------------------------------------------------
# The fused kernel against the unfused two-step path (public softmax, then the product kernel)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("shape", [(50, 65), (9, 1000), (2, 40000)])
def test_bit_for_bit_with_two_step_path(
    spy: _Spy, shape: tuple[int, int], dtype: Any, temperature: float
) -> None:
    # The softmax that the unfused path feeds to the product kernel for rows of 65 or more:
    # the forward kernel on float32 input widened to float64 with precision="fast" (plain
    # difference, degree-13 exp), on float64 input with the compensated difference. The fused
    # kernel computes the same s, so the same bits.
    from sigmax import _numba_forward

    x, g = _logits(shape, dtype)
    s = np.empty(shape)
    fast = dtype == np.float32
    assert _numba_forward.rows_forward(x.astype(np.float64), s, 0, temperature, fast)
    want = np.empty_like(x)
    _numba_kernels.softmax_rows(s, g, temperature, want, False)
    got = d.softmax_vjp(x, g, temperature=temperature)
    assert spy.calls >= 1
    assert spy.declined == 0
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax_vjp", "softmax_jvp", "log_softmax_vjp"])
def test_matches_numpy_path(
    spy: _Spy, monkeypatch: pytest.MonkeyPatch, name: str, dtype: Any
) -> None:
    x, g = _logits((300, 70), dtype, seed=3)
    f = getattr(d, name)
    ref = _numpy_path(monkeypatch, f, x, g, temperature=0.8)
    got = np.asarray(f(x, g, temperature=0.8))
    assert spy.calls >= 1
    assert spy.declined == 0
    assert got.dtype == dtype
    if dtype == np.float32:
        assert ulps_apart(got, ref).max() <= 1
    else:
        scale = np.abs(ref).max(axis=-1, keepdims=True)
        assert np.all(np.abs(got - ref) <= 1e-14 * np.abs(ref) + 1e-15 * scale)


# --------------------------------------------------------------------------------------------
# Non-finite rows: the block falls back to the NumPy path
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["accurate", "fast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax_vjp", "log_softmax_vjp"])
def test_nonfinite_rows_fall_back(
    spy: _Spy, monkeypatch: pytest.MonkeyPatch, name: str, dtype: Any, precision: str
) -> None:
    monkeypatch.setattr(d, "FUSED_BLOCK_ELEMENTS", 5 * 80)  # blocks of 5 rows
    # Counted per block: no first try on the whole (small) array, which a NaN row declines.
    monkeypatch.setattr(_array_api, "SMALL_CALL", 0)
    x, g = _logits((40, 80), dtype, seed=11)
    x[7, 3] = np.nan  # NaN logit: a NaN row
    x[13, [4, 9]] = np.inf  # two +inf logits share the mass
    x[21] = -np.inf  # every logit -inf: probabilities 0
    x[22, :40] = -np.inf  # some -inf logits: finite, stays on the kernel
    x[30, 0] = np.finfo(dtype).max  # a huge but finite max
    g[36, 1] = np.inf  # an infinite cotangent: a NaN row, as on the NumPy path (0 * inf)
    f = getattr(d, name)
    ref = _numpy_path(monkeypatch, f, x, g, precision=precision)
    with np.errstate(all="raise"):  # no warnings escape, on either path
        got = np.asarray(f(x, g, precision=precision))
    assert spy.calls == 8
    assert spy.declined == 3  # the blocks of rows 7, 13 and 21
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got[7]).all()
    fin = ~np.isnan(ref)
    if precision == "fast":  # the two paths' fast arithmetic differs (see above)
        inf = np.isinf(ref)
        np.testing.assert_array_equal(got[inf], ref[inf])
        fin = np.isfinite(ref)
        scale = np.max(np.abs(np.where(fin, ref, 0.0)), axis=-1, keepdims=True)
        err = np.abs(np.where(fin, got, 0.0) - np.where(fin, ref, 0.0))
        assert np.all(err <= 1e3 * np.finfo(dtype).eps * scale)
    elif dtype == np.float32:
        assert ulps_apart(got[fin], ref[fin]).max() <= 1
    else:
        np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=1e-15)
    if name == "softmax_vjp":  # zero probability, zero derivative
        assert np.all(got[21] == 0.0)
        assert np.all(got[22, :40] == 0.0)
    else:  # g - s sum(g) with s = 0
        np.testing.assert_array_equal(got[21], g[21])


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------


def test_out_aliasing_and_read_only(spy: _Spy) -> None:
    x, g = _logits((64, 100), np.float32)
    want = np.asarray(d.softmax_vjp(x, g))
    out = np.empty_like(x)
    assert d.softmax_vjp(x, g, out=out) is out
    np.testing.assert_array_equal(out, want)
    g2 = g.copy()
    assert d.softmax_vjp(x, g2, out=g2) is g2  # in-place backprop
    np.testing.assert_array_equal(g2, want)
    x.flags.writeable = g.flags.writeable = False
    np.testing.assert_array_equal(np.asarray(d.softmax_vjp(x, g)), want)
    assert spy.calls == 4
    assert spy.declined == 0


def test_where_axis_and_from_output_stay_unfused(spy: _Spy) -> None:
    x, g = _logits((8, 100), np.float64)
    d.softmax_vjp(x, g, where=np.arange(100) % 2 == 0)
    d.softmax_vjp(x.T, g.T, axis=0)
    d.softmax_vjp(x, g.astype(np.float32))  # mixed dtypes
    d.softmax_vjp_from_output(sigmax.softmax(x), g)
    assert spy.calls == 0


def _fast_bound(name: str, x: np.ndarray, g: np.ndarray, t: float) -> np.ndarray:
    """A worst-case error bound for ``precision="fast"``, in units of the dtype's eps.

    "fast" skips the compensated difference, so s_i is off by up to about |z_i - max z| + 2
    ULP (z = x / T, the documented bound of the fast softmax), and by |z_i| + |max z| more
    when the division by T rounds z; the row sums add up to k roundings of their terms'
    magnitudes, and the result is rounded once.
    """
    z = x.astype(np.float64) / t
    s = np.asarray(sigmax.softmax(z))
    m = z.max(axis=-1, keepdims=True)
    dz = np.abs(z - m) + 2.0 + (np.abs(z) + np.abs(m) if t != 1.0 else 0.0)
    k = x.shape[-1]
    g = g.astype(np.float64)
    if name == "softmax_vjp":
        w = g - np.sum(np.where(s > 0.5, g, 0.0), axis=-1, keepdims=True)
        c = np.sum(s * w, axis=-1, keepdims=True)
        sw = np.sum((dz + k) * s * np.abs(w), axis=-1, keepdims=True)
        r = s * (w - c)
        return (dz * s * np.abs(w - c) + s * sw + 2 * np.abs(r)) / t
    sg = np.sum(g, axis=-1, keepdims=True)
    r = g - s * sg
    return (
        dz * s * np.abs(sg) + s * k * np.sum(np.abs(g), axis=-1, keepdims=True) + 2 * np.abs(r)
    ) / t


@pytest.mark.parametrize("temperature", [1.0, 0.6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax_vjp", "log_softmax_vjp"])
def test_fast_takes_the_fused_kernel(
    spy: _Spy, monkeypatch: pytest.MonkeyPatch, name: str, dtype: Any, temperature: float
) -> None:
    # "fast" runs the kernel in float32 arithmetic for float32 (without the compensated
    # difference for float64): within the worst-case bound of that arithmetic, as the NumPy
    # "fast" path, and on no row more than twice the NumPy path's own error.
    for k in (200, 3000):
        x, g = _logits((30, k), dtype, seed=4)
        f = getattr(d, name)
        opts = {"temperature": temperature}
        fast = np.asarray(f(x, g, precision="fast", **opts))
        exact = np.asarray(f(x.astype(np.float64), g.astype(np.float64), **opts))
        numpy_fast = _numpy_path(monkeypatch, f, x, g, precision="fast", **opts)
        assert fast.dtype == numpy_fast.dtype == dtype
        eps = np.finfo(dtype).eps
        # A subnormal result is rounded to a multiple of the smallest subnormal.
        bound = eps * _fast_bound(name, x, g, temperature) + np.finfo(dtype).smallest_subnormal
        assert np.all(np.abs(numpy_fast - exact) <= bound)
        assert np.all(np.abs(fast - exact) <= bound)
        ours = np.abs(fast - exact).max(axis=-1)
        theirs = np.abs(numpy_fast - exact).max(axis=-1)
        assert np.all(ours <= 2 * theirs + 4 * eps * np.abs(exact).max(axis=-1))
    assert spy.calls == 4
    assert spy.declined == 0


def test_short_rows_stay_unfused(monkeypatch: pytest.MonkeyPatch, spy: _Spy) -> None:
    # Measured: the unfused path (the short-row softmax across rows, a numba product) is
    # faster on rows of up to 64, for both precisions.
    monkeypatch.setattr(functions, "FUSED_MIN_K", 65)
    cases = [
        (d.softmax_vjp, "accurate", 64, 65),
        (d.softmax_vjp, "fast", 64, 65),
        (d.log_softmax_vjp, "accurate", 64, 65),
        (d.log_softmax_vjp, "fast", 64, 65),
    ]
    for f, precision, short, enough in cases:
        calls = spy.calls
        f(*_logits((10, short), np.float64), precision=precision)
        assert spy.calls == calls
        f(*_logits((10, enough), np.float64), precision=precision)
        assert spy.calls == calls + 1


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("k", [10, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_logsumexp_derivatives_match_the_general_path(
    keepdims: bool, k: int, dtype: Any
) -> None:
    # Small calls of logsumexp's VJP (a cotangent per row) and JVP (a result per row) go
    # straight to the numba product; larger ones through `_along_axis`: the same bits.
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3, k)) * 3).astype(dtype)
    t = rng.standard_normal((3, k)).astype(dtype)
    g = rng.standard_normal((3, 1) if keepdims else (3,)).astype(dtype)
    reps = -(-_array_api.SMALL_CALL // x.size) + 1
    big_x, big_t = np.tile(x, (reps, 1)), np.tile(t, (reps, 1))
    big_g = np.tile(g, (reps, 1)) if keepdims else np.tile(g, reps)
    want = np.asarray(d.logsumexp_vjp(big_x, big_g, keepdims=keepdims))[:3]
    got = np.asarray(d.logsumexp_vjp(x, g, keepdims=keepdims))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    want = np.asarray(d.logsumexp_jvp(big_x, big_t, keepdims=keepdims))[:3]
    got = np.asarray(d.logsumexp_jvp(x, t, keepdims=keepdims))
    assert got.shape == ((3, 1) if keepdims else (3,))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("name", "k"),
    [
        ("softmax_vjp_from_output", 10),
        ("softmax_vjp", 10),
        ("softmax_vjp", 40),
        ("softmax_jvp", 40),
        ("log_softmax_vjp", 10),
        ("log_softmax_vjp", 40),
        ("log_softmax_jvp", 10),
        ("log_softmax_jvp", 40),
        ("sigmoid_vjp_from_output", 10),
        ("sigmoid_vjp", 10),
        ("sigmoid_jvp", 10),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_calls_match_the_general_path(name: str, k: int, dtype: Any) -> None:
    # Calls of up to `SMALL_CALL` entries go straight to the fused kernel; larger ones
    # through `_along_axis`'s blocks: the same rows give the same bits, with and without
    # `out=`, at a temperature; `out` overlapping an input takes the general path.
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, k)) * 3).astype(dtype)
    if name.endswith("from_output"):
        x = np.asarray(sigmax.softmax(x) if "softmax" in name else sigmax.sigmoid(x))
    g = rng.standard_normal((3, k)).astype(dtype)
    f = getattr(d, name)
    opts = {} if name.startswith("sigmoid") else {"temperature": 0.8}
    reps = -(-_array_api.SMALL_CALL // x.size) + 1
    want = np.asarray(f(np.tile(x, (reps, 1)), np.tile(g, (reps, 1)), **opts))[:3]
    np.testing.assert_array_equal(f(x, g, **opts), want)
    out = np.empty_like(x)
    assert f(x, g, out=out, **opts) is out
    np.testing.assert_array_equal(out, want)
    g_in_place = g.copy()
    assert f(x, g_in_place, out=g_in_place, **opts) is g_in_place
    np.testing.assert_array_equal(g_in_place, want)
