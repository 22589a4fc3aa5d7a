"""The fast paths of sigmax.derivatives against the reference paths of the same module.

The optional numba kernels against the pure-NumPy path, and the NumPy path's shortcut for
blocks without a pivot against its full pivoted form. The reference paths are themselves tested
against mpmath and finite differences in test_derivatives.py (which runs on the numba path
when numba is installed, and on the NumPy path with SIGMAX_DISABLE_NUMBA=1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest

import sigmax
from _mpref import ulp_errors, ulps_apart
from sigmax import _array_api
from sigmax import _numba_kernels as numba_kernels
from sigmax import derivatives as d

needs_numba = pytest.mark.skipif(numba_kernels.numba is None, reason="numba is not installed")

SHAPES = [(7,), (300, 10), (40, 1000), (3, 20000), (600, 500)]  # the last one runs on threads


def _both(
    monkeypatch: pytest.MonkeyPatch, f: Callable[..., Any], *args: Any, **kw: Any
) -> tuple[np.ndarray, np.ndarray]:
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    ref = np.asarray(f(*args, **kw))
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
    got = np.asarray(f(*args, **kw))
    return ref, got


def _data(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (4.0 * rng.standard_normal(shape)).astype(dtype)
    x[..., 0] += 40.0  # confident rows, where the pivot matters
    if x.ndim > 1:
        x[::3] = 0.0  # and rows of equal logits
    g = rng.standard_normal(shape).astype(dtype)
    return x, g


@needs_numba
def test_enabled_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.zeros((4, 5))
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
    assert d._numba(a, a) is numba_kernels
    assert d._numba(a, a.astype(np.float32)) is None  # mixed dtypes
    assert d._numba(a[:, ::2], a[:, ::2]) is None  # not C-contiguous
    assert d._numba(a.astype(np.float16), a.astype(np.float16)) is None
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    assert d._numba(a, a) is None


@pytest.mark.parametrize("fast", [True, False])
def test_env_flag_reads_the_environment_now(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    # `env_flag` reads os.environ's dict directly where it can (`fast`), else os.environ.get:
    # both see a change made through os.environ from the next call.
    if not fast:
        monkeypatch.setattr(_array_api, "_ENV_DATA", None)
    name = "SIGMAX_TEST_FLAG"
    monkeypatch.delenv(name, raising=False)
    assert not _array_api.env_flag(name)
    for value, want in [("1", True), ("0", False), ("", False), ("yes", True)]:
        monkeypatch.setenv(name, value)
        assert _array_api.env_flag(name) is want
    monkeypatch.delenv(name)
    assert not _array_api.env_flag(name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["sigmoid_vjp_from_output", "sigmoid_jvp_from_output"])
@needs_numba
def test_sigmoid_from_output_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, name: str, shape: tuple[int, ...], dtype: Any
) -> None:
    x, g = _data(shape, dtype)
    s = np.asarray(sigmax.sigmoid(x))
    ref, got = _both(monkeypatch, getattr(d, name), s, g)
    assert got.dtype == ref.dtype == dtype
    np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@needs_numba
def test_sigmoid_derivative_from_logits_against_mpmath(
    monkeypatch: pytest.MonkeyPatch, dtype: Any
) -> None:
    # sigma'(x) = e / (1 + e)^2 with e = exp(-|x|): one rounding of a float64 value for
    # float32 (within 1 ULP), and within 3 ULP for float64 (measured: 0.501 and 3.0 on both
    # paths), down to subnormal results; the NumPy path and the numba kernel (its own exp).
    rng = np.random.default_rng(4)
    x = np.concatenate(
        [rng.standard_normal(300) * 5, rng.uniform(-745, 745, 300), [0.0, -744.0, 709.0]]
    ).astype(dtype)
    with mpmath.workdps(40):
        ref = []
        for v in x.tolist():
            e = mpmath.exp(-abs(mpmath.mpf(v)))
            ref.append(e / (1 + e) ** 2)
    bound = 1.0 if dtype == np.float32 else 3.0
    for disable in ("1", "0"):
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", disable)
        for f in (d.sigmoid_jvp, d.sigmoid_vjp):
            got = np.asarray(f(x, np.ones_like(x)))
            assert got.dtype == dtype
            assert ulp_errors(got, ref, dtype).max() <= bound
    # The IEEE cases come out the same on both paths: nan, e = 0 at +-inf (0 * inf is nan),
    # an infinite cotangent.
    xs = np.array([np.nan, np.inf, -np.inf, 0.0, 3.0], dtype=dtype)
    vs = np.array([1.0, 1.0, np.inf, np.inf, np.nan], dtype=dtype)
    ref_s, got_s = _both(monkeypatch, d.sigmoid_vjp, xs, vs)
    np.testing.assert_array_equal(got_s, ref_s)
    np.testing.assert_array_equal(got_s, np.array([np.nan, 0.0, np.nan, np.inf, np.nan], dtype))


SOFTMAX = ["softmax_vjp_from_output", "softmax_jvp_from_output", "softmax_vjp", "softmax_jvp"]


def _softmax_both(
    monkeypatch: pytest.MonkeyPatch, name: str, x: np.ndarray, g: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(NumPy path, numba path, the softmax) of the product `name` on logits `x`."""
    s = np.asarray(sigmax.softmax(x, temperature=temperature))
    arg = s if name.endswith("_from_output") else x
    ref, got = _both(monkeypatch, getattr(d, name), arg, g, temperature=temperature)
    return ref, got, s


@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", SOFTMAX)
@needs_numba
def test_softmax_float32_within_one_ulp(
    monkeypatch: pytest.MonkeyPatch, name: str, shape: tuple[int, ...], temperature: float
) -> None:
    x, g = _data(shape, np.float32)
    ref, got, _ = _softmax_both(monkeypatch, name, x, g, temperature)
    assert got.dtype == np.float32
    assert ulps_apart(got, ref).max() <= 1


@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", SOFTMAX)
@needs_numba
def test_softmax_float64_within_sum_rounding(
    monkeypatch: pytest.MonkeyPatch, name: str, shape: tuple[int, ...], temperature: float
) -> None:
    # Both paths compute s_j ((v_j - v_m) - c) / T with c = sum_i s_i (v_i - v_m), in float64;
    # only the order of the sum differs (einsum's against the kernel's). That moves c by at most
    # k eps sum_i |s_i w_i| each, so the results may differ by that, times s_j / T, plus one
    # rounding of each result: a bound in ULPs of the terms, not of a cancelling result.
    x, g = _data(shape, np.float64)
    ref, got, s = _softmax_both(monkeypatch, name, x, g, temperature)
    k = shape[-1]
    eps = np.finfo(np.float64).eps
    pivot = np.sum(np.where(s > 0.5, g, 0.0), axis=-1, keepdims=True)
    w = g - pivot
    scale = np.sum(np.abs(s * w), axis=-1, keepdims=True)
    bound = s * (2.0 * k * eps * scale + eps * np.abs(w)) / temperature
    if not name.endswith("_from_output"):
        # From logits, each path also computes its own softmax (the NumPy path or the fused
        # kernel), each within 3 ULP: s moves by 6 eps s, and c by 6 eps scale.
        bound += 6.0 * eps * s * (np.abs(w) + 2.0 * scale) / temperature
    assert np.all(np.abs(got - ref) <= bound + np.abs(ref) * eps)
    # Rows with one confident class keep their relative accuracy on both paths.
    if len(shape) > 1:
        np.testing.assert_allclose(got[1::3, 0], ref[1::3, 0], rtol=1e-12, atol=0)


def _product_bound(name: str, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """How far the float64 numba and NumPy paths of `name` may be apart, times T, before the
    final rounding. log_softmax's VJP is ``g - s c`` with ``c = sum(g)``, its JVP ``w - c``
    with ``w = g - g_m`` (pivoted) and ``c = sum(s w)``; logsumexp's VJP is ``g s``, its JVP
    ``sum(s v)``. Each path takes its own softmax (each within 3 ULP: s moves by 6 eps s)
    and sums in its own order (k eps times the sum of the terms' magnitudes)."""
    eps, k = np.finfo(np.float64).eps, s.shape[-1]
    if name == "log_softmax_vjp":
        total = np.sum(np.abs(g), axis=-1, keepdims=True)
        return s * (2.0 * k * eps * total + 6.0 * eps * np.abs(np.sum(g, -1, keepdims=True)))
    if name == "logsumexp_vjp":
        return 6.0 * eps * np.abs(s * np.expand_dims(g, -1))
    if name == "logsumexp_jvp":
        return (2.0 * k + 6.0) * eps * np.sum(np.abs(s * g), axis=-1)
    w = g - np.sum(np.where(s > 0.5, g, 0.0), axis=-1, keepdims=True)
    return (2.0 * k + 6.0) * eps * np.sum(np.abs(s * w), axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("name", "temperature"),
    [
        ("log_softmax_vjp", 1.0),
        ("log_softmax_vjp", 0.3),
        ("log_softmax_jvp", 1.0),
        ("log_softmax_jvp", 0.3),
        ("logsumexp_vjp", 1.0),  # logsumexp has no temperature
        ("logsumexp_jvp", 1.0),
    ],
)
@needs_numba
def test_softmax_products_against_the_numpy_path(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    temperature: float,
) -> None:
    # log_softmax's VJP of rows of 16 or more runs the fused kernel (its own softmax);
    # shorter rows, and the others, run numba products from the softmax that the NumPy path
    # also computes. logsumexp has no temperature.
    x, g = _data(shape, dtype)
    opts: dict[str, Any] = {"temperature": temperature}
    if name.startswith("logsumexp"):
        opts = {}
        if name == "logsumexp_vjp":
            g = np.array(g[..., 0])  # a copy, C-contiguous (0-d for one row)
    ref, got = _both(monkeypatch, getattr(d, name), x, g, **opts)
    assert got.dtype == ref.dtype == dtype
    if dtype == np.float32:
        assert ulps_apart(got, ref).max() <= 1
        return
    s = np.asarray(sigmax.softmax(x, temperature=temperature))
    bound = _product_bound(name, s, g) / temperature
    assert np.all(np.abs(got - ref) <= bound + np.abs(ref) * np.finfo(np.float64).eps)


@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [*SOFTMAX, "log_softmax_vjp"])
@needs_numba
def test_fast_products_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    temperature: float,
) -> None:
    """``precision="fast"`` (float32 arithmetic for float32) on the NumPy path and on the
    numba products, each against the float64 "accurate" result of the same data. Allowed:
    a few roundings of the terms (``2k eps`` of the row's sum of magnitudes, 2 eps of the
    entry), plus, from the logits, the fast softmax's error on each probability,
    ``(|x_j - max(x)| / T + 6)`` ULP (`tests/test_precision_fast.py`)."""
    x, g = _data(shape, dtype)
    s = np.asarray(sigmax.softmax(x.astype(np.float64), temperature=temperature))
    arg = s.astype(dtype) if name.endswith("_from_output") else x
    exact = np.asarray(
        getattr(d, name)(arg.astype(np.float64), g.astype(np.float64), temperature=temperature)
    )
    ref, got = _both(
        monkeypatch, getattr(d, name), arg, g, temperature=temperature, precision="fast"
    )
    eps, k = float(np.finfo(dtype).eps), shape[-1]
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    gap = (x64.max(-1, keepdims=True) - x64) / temperature
    if temperature != 1.0:
        # The division x / T rounds each logit (and the short-row kernel does not shift).
        gap = (np.abs(x64) + np.abs(x64).max(-1, keepdims=True)) / temperature
    if name.endswith("_from_output"):
        gap = 0.0
    if name == "log_softmax_vjp":
        c = np.sum(g64, axis=-1, keepdims=True)
        total = np.sum(np.abs(g64), axis=-1, keepdims=True)
        err = 2 * eps * (np.abs(g64) + s * np.abs(c)) + 2 * k * eps * s * total
        err += (gap + 6.0) * eps * s * np.abs(c)
    else:
        w = g64 - np.sum(np.where(s > 0.5, g64, 0.0), axis=-1, keepdims=True)
        scale = np.sum(np.abs(s * w), axis=-1, keepdims=True)
        err = s * (2 * k * eps * scale + 2 * eps * np.abs(w))
        err += (gap + 6.0) * eps * s * (np.abs(w) + 2.0 * scale)
    for res in (ref, got):
        assert res.dtype == dtype
        # Subnormal probabilities and results round to an absolute step, times |w| / T.
        tiny = 4.0 * float(np.finfo(dtype).smallest_subnormal) * (1.0 + np.abs(g64).max())
        assert np.all(np.abs(res - exact) <= (err + tiny) / temperature + np.abs(exact) * eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@needs_numba
def test_softmax_from_output_special_values(monkeypatch: pytest.MonkeyPatch, dtype: Any) -> None:
    s = np.asarray(sigmax.softmax(np.zeros((6, 4), dtype=dtype)))
    g = np.ones((6, 4), dtype=dtype)
    s[0, 1] = np.nan  # NaN in the output: the row is NaN
    g[1, 2] = np.nan  # NaN in the cotangent
    g[2, 3] = np.inf  # an infinite cotangent: 0 * inf in the pivot makes the row NaN
    g[3, 0] = -np.inf
    s[4] = [1.0, 0.0, 0.0, 0.0]  # a one-hot output
    for name in ("softmax_vjp_from_output", "softmax_jvp_from_output"):
        ref, got = _both(monkeypatch, getattr(d, name), s, g)
        np.testing.assert_array_equal(got, ref)
    ref, got = _both(monkeypatch, d.sigmoid_vjp_from_output, s, g)
    np.testing.assert_array_equal(got, ref)
    x = np.zeros((6, 4), dtype=dtype)
    x[0, 1], x[4, 0], x[5, 2] = np.nan, np.inf, 1000.0
    for name in ("softmax_vjp", "softmax_jvp", "log_softmax_vjp", "log_softmax_jvp"):
        ref, got = _both(monkeypatch, getattr(d, name), x, g)
        np.testing.assert_array_equal(got, ref)
    for name, v in (("logsumexp_jvp", g), ("logsumexp_vjp", np.ascontiguousarray(g[:, 3]))):
        ref, got = _both(monkeypatch, getattr(d, name), x, v)
        np.testing.assert_array_equal(got, ref)


@needs_numba
def test_masks_stay_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    x, g = _data((20, 9), np.float64)
    where = np.arange(9) % 3 != 0
    ref, got = _both(monkeypatch, d.softmax_vjp, x, g, where=where)
    np.testing.assert_array_equal(got.view(np.uint8), ref.view(np.uint8))
    assert np.all(got[:, ~where] == 0.0)


@pytest.mark.parametrize("name", ["softmax_vjp_from_output", "sigmoid_vjp_from_output"])
@needs_numba
def test_out_and_aliasing(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    f = getattr(d, name)
    x, g = _data((50, 30), np.float32)
    s = np.asarray(sigmax.softmax(x))
    ref, _ = _both(monkeypatch, f, s, g)
    out = np.empty_like(s)
    assert f(s, g, out=out) is out
    assert ulps_apart(out, ref).max() <= 1
    g2 = g.copy()
    assert f(s, g2, out=g2) is g2  # in-place backprop
    assert ulps_apart(g2, ref).max() <= 1
    np.testing.assert_array_equal(f(s[:, :0], g[:, :0]), np.zeros((50, 0), np.float32))
    s.flags.writeable = g.flags.writeable = False  # read-only inputs compile their own types
    assert ulps_apart(np.asarray(f(s, g)), ref).max() <= 1


@pytest.mark.parametrize("k", [10, 100, 1000])
@pytest.mark.parametrize("case", ["plain", "inf", "nan_v", "nan_s", "confident"])
def test_numpy_no_pivot_bit_for_bit(monkeypatch: pytest.MonkeyPatch, k: int, case: str) -> None:
    rng = np.random.default_rng(k)
    x = 0.5 * rng.standard_normal((60, k))  # no probability above 1/2
    if case == "confident":
        x[::9, 1] += 40.0
    s = np.asarray(sigmax.softmax(x))
    v = rng.standard_normal((60, k))
    if case == "inf":
        v[5, 3] = np.inf  # the pivot's 0 * inf makes the row NaN: the full path
    if case == "nan_v":
        v[9, 0] = np.nan
    if case == "nan_s":
        s[4, 2] = np.nan
    ref = np.empty_like(s)
    got = np.full_like(s, -1.0)
    d._np_shifted(s, v, ref)
    with np.errstate(all="ignore"):
        applied = d._np_shifted_no_pivot(s, v, got)
    assert applied == (case == "plain")
    if applied:
        np.testing.assert_array_equal(got.view(np.uint64), ref.view(np.uint64))
    # The public function on the NumPy path: the full path's result, special rows included.
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    with np.errstate(all="ignore"):
        r = np.asarray(d.softmax_vjp_from_output(s, v))
        expected = s * ref
    np.testing.assert_array_equal(r.view(np.uint64), expected.view(np.uint64))
