"""Closed-form derivatives against central differences, the adjoint identity, torch.autograd
(an independent implementation) and mpmath (for the tails where the closed forms must not
cancel)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

import sigmax
from sigmax import (
    log_softmax,
    log_softmax_jvp,
    log_softmax_vjp,
    logsumexp,
    logsumexp_jvp,
    logsumexp_vjp,
    sigmoid,
    sigmoid_jvp,
    sigmoid_jvp_from_output,
    sigmoid_vjp,
    sigmoid_vjp_from_output,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    softmax_jvp_from_output,
    softmax_vjp,
    softmax_vjp_from_output,
)

EPS = float(np.finfo(np.float64).eps)

H = 1e-6


def central(f, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (f(x + H * v) - f(x - H * v)) / (2 * H)


OPTIONS = [
    {},
    {"axis": 0},
    {"axis": (0, 2)},
    {"axis": None},
    {"temperature": 2.5},
    {"temperature": 0.3, "axis": 1},
]


@pytest.fixture
def xv(rng):
    x = rng.standard_normal((3, 4, 5)) * 2
    v = rng.standard_normal(x.shape)
    u = rng.standard_normal(x.shape)
    return x, v, u


# --------------------------------------------------------------------------------------------
# Central differences (float64)
# --------------------------------------------------------------------------------------------


def test_sigmoid_jvp_matches_central_differences(xv):
    x, v, _ = xv
    np.testing.assert_allclose(sigmoid_jvp(x, v), central(sigmoid, x, v), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("opts", OPTIONS)
def test_softmax_jvp_matches_central_differences(xv, opts):
    x, v, _ = xv
    fd = central(lambda z: softmax(z, **opts), x, v)
    np.testing.assert_allclose(softmax_jvp(x, v, **opts), fd, rtol=1e-7, atol=2e-9)


@pytest.mark.parametrize("opts", OPTIONS)
def test_log_softmax_jvp_matches_central_differences(xv, opts):
    x, v, _ = xv
    fd = central(lambda z: log_softmax(z, **opts), x, v)
    np.testing.assert_allclose(log_softmax_jvp(x, v, **opts), fd, rtol=1e-7, atol=2e-9)


@pytest.mark.parametrize("opts", [o for o in OPTIONS if "temperature" not in o])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_jvp_matches_central_differences(xv, opts, keepdims):
    x, v, _ = xv
    fd = central(lambda z: logsumexp(z, keepdims=keepdims, **opts), x, v)
    got = logsumexp_jvp(x, v, keepdims=keepdims, **opts)
    assert np.shape(got) == np.shape(fd)
    np.testing.assert_allclose(got, fd, rtol=1e-7, atol=2e-9)


def test_jacobian_matches_central_differences(rng):
    x = rng.standard_normal((2, 6))
    jac = softmax_jacobian(x, temperature=1.7)
    for j in range(6):
        e = np.zeros_like(x)
        e[:, j] = 1.0
        fd = central(lambda z: softmax(z, temperature=1.7), x, e)
        np.testing.assert_allclose(jac[:, :, j], fd, rtol=1e-7, atol=2e-9)


# --------------------------------------------------------------------------------------------
# The adjoint identity <J v, u> = <v, J^T u>, and J @ v == jvp
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize(
    ("jvp", "vjp"),
    [(softmax_jvp, softmax_vjp), (log_softmax_jvp, log_softmax_vjp)],
    ids=["softmax", "log_softmax"],
)
def test_adjoint_identity(xv, opts, jvp, vjp):
    x, v, u = xv
    lhs = np.sum(jvp(x, v, **opts) * u)
    rhs = np.sum(v * vjp(x, u, **opts))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-14)


def test_adjoint_identity_sigmoid(xv):
    x, v, u = xv
    assert np.sum(sigmoid_jvp(x, v) * u) == pytest.approx(np.sum(v * sigmoid_vjp(x, u)), 1e-13)


@pytest.mark.parametrize("opts", [{}, {"axis": 1}, {"axis": (0, 2)}, {"axis": None}])
@pytest.mark.parametrize("keepdims", [False, True])
def test_adjoint_identity_logsumexp(xv, opts, keepdims):
    x, v, _ = xv
    u = np.random.default_rng(3).standard_normal(np.shape(logsumexp(x, keepdims=keepdims, **opts)))
    lhs = np.sum(logsumexp_jvp(x, v, keepdims=keepdims, **opts) * u)
    rhs = np.sum(v * logsumexp_vjp(x, u, keepdims=keepdims, **opts))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_jacobian_times_vector_is_jvp(rng, temperature):
    x = rng.standard_normal((4, 7))
    v = rng.standard_normal(x.shape)
    jac = softmax_jacobian(x, temperature=temperature)
    assert jac.shape == (4, 7, 7)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), rtol=0, atol=0)
    np.testing.assert_allclose(jac.sum(-1), 0, atol=1e-16)
    np.testing.assert_allclose(
        np.einsum("nij,nj->ni", jac, v), softmax_jvp(x, v, temperature=temperature), rtol=1e-12
    )


def test_jacobian_batch_dims_and_axis(rng):
    x = rng.standard_normal((2, 5, 3))
    jac = softmax_jacobian(x, axis=1)
    assert jac.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(jac, softmax_jacobian(np.moveaxis(x, 1, -1)), rtol=1e-15)
    # Several axes: k is their product, numbered in C order over the sorted axes.
    jac2 = softmax_jacobian(x, axis=(2, 0))
    assert jac2.shape == (5, 6, 6)
    flat = np.moveaxis(x, 1, 0).reshape(5, 6)
    np.testing.assert_allclose(jac2, softmax_jacobian(flat), rtol=1e-15)


def test_jacobian_seed_einsum_form(rng):
    # The seed's blog: J = diag(s) - s s^T, built with einsum.
    x = rng.standard_normal((3, 5))
    s = softmax(x)
    seed = np.einsum("ij,jk->ijk", s, np.eye(5)) - np.einsum("ij,ik->ijk", s, s)
    np.testing.assert_allclose(softmax_jacobian(x), seed, rtol=1e-13, atol=1e-17)


# --------------------------------------------------------------------------------------------
# An independent implementation: torch.autograd
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_vjps_match_torch_autograd(rng, temperature):
    x = rng.standard_normal((6, 9)) * 3
    g = rng.standard_normal(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    for fn, tfn in [
        (softmax_vjp, lambda z: torch.softmax(z / temperature, -1)),
        (log_softmax_vjp, lambda z: torch.log_softmax(z / temperature, -1)),
    ]:
        tx.grad = None
        tfn(tx).backward(torch.tensor(g))
        np.testing.assert_allclose(fn(x, g, temperature=temperature), tx.grad.numpy(), 1e-12)
    tx.grad = None
    torch.logsumexp(tx, -1).backward(torch.tensor(g[:, 0]))
    np.testing.assert_allclose(logsumexp_vjp(x, g[:, 0]), tx.grad.numpy(), rtol=1e-12)
    tx.grad = None
    torch.sigmoid(tx).backward(torch.tensor(g))
    np.testing.assert_allclose(sigmoid_vjp(x, g), tx.grad.numpy(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# From the saved output
# --------------------------------------------------------------------------------------------


def test_sigmoid_from_output_equals_x_form(xv):
    x, v, _ = xv
    s = sigmoid(x)
    np.testing.assert_allclose(sigmoid_jvp_from_output(s, v), sigmoid_jvp(x, v), rtol=1e-13)
    np.testing.assert_allclose(sigmoid_vjp_from_output(s, v), sigmoid_vjp(x, v), rtol=1e-13)


@pytest.mark.parametrize("opts", [{}, {"axis": 0}, {"temperature": 0.7, "axis": (1, 2)}])
def test_softmax_from_output_equals_x_form(xv, opts):
    x, v, _ = xv
    s = softmax(x, **opts)
    np.testing.assert_allclose(softmax_jvp_from_output(s, v, **opts), softmax_jvp(x, v, **opts))
    np.testing.assert_allclose(softmax_vjp_from_output(s, v, **opts), softmax_vjp(x, v, **opts))


def test_sigmoid_from_output_cancels_where_x_form_does_not():
    # Documented: s * (1 - s) loses everything once s rounds to 1; the x form is exact.
    x = np.array([40.0, -40.0])
    assert sigmoid_jvp_from_output(sigmoid(x), [1.0, 1.0])[0] == 0.0
    got = sigmoid_jvp(x, [1.0, 1.0])
    with mpmath.workdps(50):
        ref = float(mpmath.exp(-40) / (1 + mpmath.exp(-40)) ** 2)
    np.testing.assert_allclose(got, [ref, ref], rtol=2e-16)


# --------------------------------------------------------------------------------------------
# Accuracy where the textbook forms cancel (mpmath references)
# --------------------------------------------------------------------------------------------


def _mp_sigmoid(v: float) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-mpmath.mpf(v)))


def test_sigmoid_jvp_relative_accuracy_over_the_range():
    x = np.concatenate([np.linspace(-745, 745, 301), [-720.0, 36.0, 40.0, 700.0]])
    got = sigmoid_jvp(x, np.ones_like(x))
    with mpmath.workdps(60):
        ref = np.array([float(_mp_sigmoid(v) * _mp_sigmoid(-v)) for v in x])
    normal = ref >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(got[normal], ref[normal], rtol=4 * 2.0**-52)
    # Subnormal derivatives: within a few subnormal spacings, and never a false 0.
    assert np.all(np.abs(got[~normal] - ref[~normal]) <= 4 * 2.0**-1074)
    assert np.all(got[ref > 0] > 0)


@pytest.mark.parametrize("gap", [1.0, 20.0, 40.0, 100.0, 700.0])
def test_softmax_jvp_pivot_keeps_relative_accuracy(gap):
    # d s_0 / d x_0 = s_0 (1 - s_0) = s_0 s_1: naive s * (v - <s, v>) gives 0 for gap >= 37.
    x = np.array([0.0, -gap])
    with mpmath.workdps(60):
        s1 = mpmath.exp(-gap) / (1 + mpmath.exp(-gap))
        ref = float((1 - s1) * s1)
    for fn, arg in [(softmax_jvp, x), (softmax_vjp, x), (softmax_jvp_from_output, softmax(x))]:
        got = fn(arg, [1.0, 0.0])
        assert got[0] == pytest.approx(ref, rel=4e-16)
        assert got[1] == pytest.approx(-ref, rel=4e-16)
    jac = softmax_jacobian(x)
    assert jac[0, 0] == pytest.approx(ref, rel=4e-16)
    assert log_softmax_jvp(x, [1.0, 0.0])[0] == pytest.approx(float(s1), rel=4e-16)


def test_float32_derivatives_are_rounded_float64(rng):
    x = (rng.standard_normal((50, 20)) * 5).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    for fn in (softmax_vjp, softmax_jvp, log_softmax_vjp, log_softmax_jvp, sigmoid_vjp):
        got = fn(x, g)
        assert got.dtype == np.float32
        # Computed in float64 and rounded once: within one float32 ULP of the rounded result.
        want = fn(x64, g64).astype(np.float32)
        assert np.all(np.abs(got - want) <= np.spacing(np.abs(want))), fn.__name__


# --------------------------------------------------------------------------------------------
# Masks, temperature, non-finite values, shapes
# --------------------------------------------------------------------------------------------


MASKED = [softmax_jvp, softmax_vjp, log_softmax_jvp, log_softmax_vjp]


@pytest.mark.parametrize("fn", MASKED, ids=lambda f: f.__name__)
def test_masked_entries_get_exact_zero(rng, fn):
    x = rng.standard_normal((4, 6))
    where = rng.uniform(size=x.shape) < 0.6
    where[0] = True
    where[3] = False  # a fully masked row
    v = rng.standard_normal(x.shape)
    v[~where] = np.inf  # whatever the masked tangents hold, they are ignored
    v[2, ~where[2]] = np.nan
    got = fn(x, v, where=where)
    assert np.all(got[~where] == 0)
    assert np.all(got[3] == 0)
    assert np.all(np.isfinite(got))
    # A mask equals dropping the entries, to rounding: the two calls may take different paths
    # (the masked one the NumPy path, the short one a fused kernel), and g - <g, s> cancels,
    # so the rounding is relative to the row's largest entry.
    for i in range(3):
        keep = where[i]
        want = fn(x[i, keep], v[i, keep])
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got[i, keep], want, rtol=1e-14, atol=8 * EPS * scale)


def test_logsumexp_derivatives_masked(rng):
    x = rng.standard_normal((3, 5))
    where = np.ones(x.shape, bool)
    where[0, [1, 3]] = False
    where[2] = False
    v = rng.standard_normal(x.shape)
    v[~where] = np.nan
    jvp = logsumexp_jvp(x, v, where=where)
    assert jvp[2] == 0
    assert jvp[0] == pytest.approx(float(logsumexp_jvp(x[0, where[0]], v[0, where[0]])), 1e-14)
    vjp = logsumexp_vjp(x, np.array([1.0, 2.0, np.inf]), where=where)
    assert np.all(vjp[~where] == 0)
    assert np.all(np.isfinite(vjp))
    np.testing.assert_allclose(vjp[1], 2 * softmax(x[1]), rtol=1e-15)


def test_jacobian_mask(rng):
    x = rng.standard_normal((2, 4))
    where = np.array([[True, False, True, True], [False] * 4])
    jac = softmax_jacobian(x, where=where)
    assert np.all(jac[0, 1] == 0)
    assert np.all(jac[0, :, 1] == 0)
    assert np.all(jac[1] == 0)
    keep = where[0]
    np.testing.assert_allclose(jac[0][np.ix_(keep, keep)], softmax_jacobian(x[0, keep]), 1e-15)


def test_temperature_scales_the_derivative(xv):
    x, v, _ = xv
    t = 4.0
    np.testing.assert_allclose(
        softmax_jvp(x, v, temperature=t), softmax_jvp(x / t, v) / t, rtol=1e-13, atol=1e-17
    )
    np.testing.assert_allclose(
        log_softmax_vjp(x, v, temperature=t), log_softmax_vjp(x / t, v) / t, rtol=1e-13
    )
    np.testing.assert_allclose(
        softmax_jacobian(x, temperature=t), softmax_jacobian(x / t) / t, rtol=1e-13, atol=1e-17
    )


def test_nonfinite_logits():
    # A NaN makes its slice NaN; +inf entries share the mass, and the result stays finite.
    x = np.array([[0.0, np.nan, 1.0], [np.inf, 0.0, np.inf]])
    v = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 5.0]])
    got = softmax_vjp(x, v)
    assert np.all(np.isnan(got[0]))
    np.testing.assert_allclose(got[1], softmax_vjp_from_output([0.5, 0.0, 0.5], v[1]))
    assert np.all(sigmoid_jvp([np.inf, -np.inf], [1.0, 1.0]) == 0)
    assert np.isnan(sigmoid_jvp([np.nan], [1.0])[0])


@pytest.mark.parametrize(
    "fn",
    [sigmoid_jvp, sigmoid_vjp, softmax_jvp, softmax_vjp, log_softmax_jvp, log_softmax_vjp],
    ids=lambda f: f.__name__,
)
def test_bad_operands_name_the_argument(fn):
    name = "tangent" if fn.__name__.endswith("jvp") else "cotangent"
    with pytest.raises(ValueError, match=f"`{name}` must have"):
        fn(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match=f"`{name}`"):
        fn(np.zeros((2, 3)), torch.zeros((2, 3)))
    with pytest.raises(TypeError, match=f"`{name}`"):
        fn(np.zeros((2, 3)), np.zeros((2, 3), complex))
    with pytest.raises(TypeError, match=r"`x`|`s`"):
        fn(np.zeros((2, 3), complex), np.zeros((2, 3)))
    # A masked array's mask would be dropped: refused, naming the argument.
    x = np.zeros((2, 3))
    masked = np.ma.array(x, mask=np.eye(2, 3, dtype=bool))
    with pytest.raises(TypeError, match=rf"`{name}` must not be a numpy\.ma\.MaskedArray"):
        fn(x, masked)
    with pytest.raises(TypeError, match=r"`x` must not be a numpy\.ma\.MaskedArray"):
        fn(masked, x)


def test_logsumexp_cotangent_shape():
    x = np.zeros((2, 3, 4))
    assert logsumexp_vjp(x, np.ones((2, 3))).shape == x.shape
    assert logsumexp_vjp(x, np.ones((2, 1, 4)), axis=1, keepdims=True).shape == x.shape
    with pytest.raises(ValueError, match="`cotangent` must have the shape of the reduced"):
        logsumexp_vjp(x, np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="`tangent`"):
        logsumexp_jvp(x, np.ones((2, 3)))


def test_bad_options():
    with pytest.raises(ValueError, match="`temperature`"):
        softmax_vjp([1.0, 2.0], [1.0, 1.0], temperature=0)
    with pytest.raises(ValueError, match="`axis`"):
        softmax_jvp([1.0, 2.0], [1.0, 1.0], axis=1)
    with pytest.raises(ValueError, match="`where`"):
        log_softmax_vjp([1.0, 2.0], [1.0, 1.0], where=[True, False, True])
    with pytest.raises(ValueError, match="`axis`"):
        softmax_jacobian(np.zeros((2, 2)), axis=2)


def test_empty_and_scalar_inputs():
    assert softmax_vjp(np.zeros((3, 0)), np.zeros((3, 0))).shape == (3, 0)
    assert softmax_jacobian(np.zeros((3, 0))).shape == (3, 0, 0)
    assert logsumexp_jvp(np.zeros((3, 0)), np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]
    assert logsumexp_vjp(np.zeros((3, 0)), np.zeros(3)).shape == (3, 0)
    assert float(sigmoid_vjp(0.0, 2.0)) == 0.5
    assert float(softmax_vjp(1.0, 5.0)) == 0.0


def test_lists_ints_and_dtype_promotion():
    got = softmax_vjp([1, 2, 3], [0, 0, 1])
    assert got.dtype == np.float64
    x32 = np.array([1.0, 2.0], np.float32)
    assert softmax_vjp(x32, [1.0, 0.0]).dtype == np.float32  # a list takes x's dtype
    assert softmax_vjp(x32, np.array([1.0, 0.0])).dtype == np.float64  # an array promotes
    assert sigmoid_vjp(np.array([1.0], np.float16), np.array([1], np.int8)).dtype == np.float16


@pytest.mark.parametrize(
    "fn", [sigmoid_vjp, softmax_vjp, softmax_vjp_from_output, log_softmax_vjp, softmax_jvp]
)
def test_out_argument(rng, fn):
    x = rng.uniform(0, 1, (5, 4))
    g = rng.standard_normal(x.shape)
    want = fn(x, g)
    out = np.empty_like(x)
    assert fn(x, g, out=out) is out
    np.testing.assert_array_equal(out, want)
    out_t = np.empty((4, 5)).T  # not C-contiguous
    fn(x, g, out=out_t)
    np.testing.assert_array_equal(out_t, want)
    if fn is not sigmoid_vjp:
        out0 = np.empty_like(x)
        fn(x, g, axis=0, out=out0)
        np.testing.assert_array_equal(out0, fn(x, g, axis=0))
    with pytest.raises(ValueError, match="`out`"):
        fn(x, g, out=np.empty((5, 5)))


def test_large_input_runs_on_blocks_and_threads(rng):
    # Big enough for several blocks on the thread pool; compared with a one-shot NumPy formula.
    x = rng.standard_normal((3000, 100))
    g = rng.standard_normal(x.shape)
    s = softmax(x)
    want = s * (g - np.sum(g * s, axis=-1, keepdims=True))
    np.testing.assert_allclose(softmax_vjp(x, g), want, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(sigmoid_vjp(x, g), sigmoid(x) * sigmoid(-x) * g, rtol=1e-14)


def test_public_names():
    import sigmax.derivatives as d

    for name in d.__all__:
        assert getattr(sigmax, name) is getattr(d, name)
        assert getattr(d, name).__doc__


FAST = [
    sigmoid_jvp,
    sigmoid_vjp,
    sigmoid_jvp_from_output,
    sigmoid_vjp_from_output,
    softmax_jvp,
    softmax_vjp,
    softmax_jvp_from_output,
    softmax_vjp_from_output,
    log_softmax_jvp,
    log_softmax_vjp,
]


@pytest.mark.parametrize("fn", FAST, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fast_precision(rng, fn, dtype):
    x = rng.uniform(0.01, 0.99, (40, 7)).astype(dtype)  # valid as logits and as outputs
    g = rng.standard_normal(x.shape).astype(dtype)
    fast = fn(x, g, precision="fast")
    assert fast.dtype == dtype
    exact = fn(x.astype(np.float64), g.astype(np.float64))
    eps = float(np.finfo(dtype).eps)
    scale = np.max(np.abs(exact), axis=-1, keepdims=True)
    assert np.all(np.abs(fast - exact) <= 8 * eps * scale + 1e-300)
    with pytest.raises(ValueError, match="`precision`"):
        fn(x, g, precision="exact")


def test_fast_precision_keeps_the_pivot():
    x = np.array([0.0, -12.0], np.float32)
    with mpmath.workdps(30):
        s1 = mpmath.exp(-12) / (1 + mpmath.exp(-12))
        ref = float((1 - s1) * s1)
    for precision in ("accurate", "fast"):
        got = softmax_vjp(x, np.array([1.0, 0.0], np.float32), precision=precision)
        assert float(got[0]) == pytest.approx(ref, rel=3 * 2.0**-24)


@pytest.mark.parametrize(
    "fn", [sigmoid_vjp, sigmoid_vjp_from_output, softmax_vjp, softmax_vjp_from_output]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_may_be_an_input(rng, fn, dtype):
    # In-place backprop: overwrite the cotangent (or the saved output) with the result.
    a = rng.uniform(0.01, 0.99, (300, 7)).astype(dtype)
    g = rng.standard_normal(a.shape).astype(dtype)
    want = fn(a, g)
    g2 = g.copy()
    assert fn(a, g2, out=g2) is g2
    np.testing.assert_array_equal(g2, want)
    a2 = a.copy()
    fn(a2, g, out=a2)
    np.testing.assert_array_equal(a2, want)
