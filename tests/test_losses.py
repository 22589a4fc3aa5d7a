"""Tests for sigmax.losses: accuracy vs mpmath, derivatives vs finite differences, peers, errors."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import sigmax
from sigmax.losses import (
    ValueAndGrad,
    sigmoid_cross_entropy,
    sigmoid_cross_entropy_hessian_diag,
    sigmoid_cross_entropy_hvp,
    sigmoid_cross_entropy_value_and_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_hessian_diag,
    softmax_cross_entropy_hvp,
    softmax_cross_entropy_value_and_grad,
    softmax_cross_entropy_with_targets,
    softmax_cross_entropy_with_targets_value_and_grad,
)

mpmath.mp.dps = 60
MP = mpmath.mpf

#: The bounds the module promises, in ULPs of the output dtype.
BOUND = {np.float16: 1.0, np.float32: 1.0, np.float64: 3.0}


def ulp_errors(got: np.ndarray, ref: list, dtype: type) -> np.ndarray:
    """|got - ref| in ULPs of `dtype` at the reference (exact zeros and infs must match)."""
    got = np.asarray(got, dtype=dtype).ravel()
    out = np.empty(got.size)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        with np.errstate(over="ignore", invalid="ignore"):
            signed = dtype(float(r))
            rd = np.abs(signed)
            ulp = np.spacing(rd)
        if not np.isfinite(rd) or r == 0:
            out[i] = 0.0 if g == signed else np.inf
            continue
        if not np.isfinite(ulp):  # at the largest finite value, the ULP below it
            ulp = rd - np.nextafter(rd, dtype(0))
        out[i] = float(abs(MP(float(g)) - r) / MP(float(ulp)))
    return out


def mp_softplus(x: float) -> mpmath.mpf:
    return mpmath.log1p(mpmath.exp(MP(x)))


def mp_bce(z: float, t: float, pw: float = 1.0, ls: float = 0.0) -> mpmath.mpf:
    tt = MP(t) * (1 - MP(ls)) + MP(ls) / 2
    tn = (1 - MP(t)) * (1 - MP(ls)) + MP(ls) / 2
    if np.isinf(z):
        wrong = (tt > 0 and z < 0) or (tn > 0 and z > 0)
        return mpmath.inf if wrong else MP(0)
    return MP(pw) * tt * mp_softplus(-z) + tn * mp_softplus(z)


def mp_nlogp(row: np.ndarray) -> list:
    """-log softmax(row)_j for every j, exactly from the rounded inputs."""
    z = [MP(float(v)) for v in row]
    m = max(z)
    i = z.index(m)
    # log1p of the non-max terms: log(1 + 1e-53) at 60 digits would keep only 7 of them.
    # (and m + tiny - m would cancel them again), so add the parts last.
    log_rest = mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for j, v in enumerate(z) if j != i))
    return [log_rest + (m - v) for v in z]


def mp_softmax_grad(z: np.ndarray, labels: np.ndarray) -> list:
    """``p - onehot`` of each row of `z` (flattened), with ``p_y - 1`` formed from the other
    terms (no cancellation)."""
    ref = []
    for i in range(z.shape[0]):
        zz = [MP(float(v)) for v in z[i]]
        m = max(zz)
        e = [mpmath.exp(v - m) for v in zz]
        total = mpmath.fsum(e)
        for j in range(z.shape[1]):
            others = mpmath.fsum(e[:j] + e[j + 1 :])
            ref.append(-others / total if j == labels[i] else e[j] / total)
    return ref


# --------------------------------------------------------------------------------------------
# Accuracy against mpmath
# --------------------------------------------------------------------------------------------


def _bce_cases(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    fmax = float(np.finfo(dtype).max)
    logits = [0.0, 1e-8, -1e-8, 0.5, -0.5, 3.0, -3.0, 17.0, -17.0, 40.0, -40.0, 92.0, -92.0]
    logits += [300.0, -300.0, 700.0, -745.0, 1e8, -1e8, fmax, -fmax, np.inf, -np.inf]
    rng = np.random.default_rng(1)
    logits += list(rng.standard_normal(30) * 20)
    tiny = float(np.finfo(dtype).eps)
    targets = [0.0, 1.0, 0.5, 0.3, tiny, 1 - tiny, 1e-3, 1 - 1e-3]
    logits = [v for v in logits if abs(v) <= fmax or np.isinf(v)]
    z, t = np.meshgrid(np.asarray(logits, dtype=dtype), np.asarray(targets, dtype=dtype))
    keep = np.isfinite(z) | (t == 0) | (t == 1)
    return z[keep], t[keep]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("pw", "ls"), [(None, 0.0), (3.0, 0.0), (None, 0.1)])
def test_sigmoid_cross_entropy_ulp(dtype: type, pw: float | None, ls: float, backend: str) -> None:
    z, t = _bce_cases(dtype)
    if ls:
        keep = np.isfinite(z)
        z, t = z[keep], t[keep]
    got = sigmoid_cross_entropy(z, t, pos_weight=pw, label_smoothing=ls)
    assert got.dtype == dtype
    ref = [
        mp_bce(float(a), float(b), 1.0 if pw is None else pw, ls) for a, b in zip(z, t, strict=True)
    ]
    err = ulp_errors(got, ref, dtype)
    assert err.max() <= BOUND[dtype], (z[np.argmax(err)], t[np.argmax(err)], err.max())


def test_sigmoid_cross_entropy_named_cases(backend: str) -> None:
    # Confident right predictions keep their tiny loss; +-inf gives 0 or inf, never nan.
    z = np.array([92.0, -92.0, np.inf, -np.inf, np.inf, -np.inf])
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    r = sigmoid_cross_entropy_value_and_grad(z, t)
    assert r.value[0] == pytest.approx(1.1089390193121365e-40, rel=1e-15)
    assert r.value[1] == r.value[0]
    np.testing.assert_array_equal(r.value[2:], [0.0, 0.0, np.inf, np.inf])
    np.testing.assert_array_equal(r.grad[2:], [0.0, 0.0, 1.0, -1.0])
    assert r.grad[0] == pytest.approx(-1.1089390193121365e-40, rel=1e-15)
    # float32: a loss of 1e-40 is subnormal there and still comes back.
    v32 = sigmoid_cross_entropy(np.float32([92.0]), np.float32([1.0]))
    assert v32[0] == np.float32(1.1089390193121365e-40)
    # torch cancels for target 0 and a negative logit; the non-cancelling form does not.
    v = sigmoid_cross_entropy(np.float32([-10.0, -15.0]), np.float32([0.0, 0.0]))
    ref = [mp_softplus(-10.0), mp_softplus(-15.0)]
    assert ulp_errors(v, ref, np.float32).max() <= 1


def _softmax_rows(dtype: type, rng: np.random.Generator) -> np.ndarray:
    k = 7
    rows = [rng.standard_normal(k) * s for s in (0.1, 1.0, 5.0, 30.0, 200.0) for _ in range(4)]
    confident = np.zeros(k)
    confident[1:] = -92.0  # loss at class 0 is about 6e-40
    rows.append(confident)
    rows.append(np.full(k, 1e8) + np.arange(k))  # huge common offset
    rows.append(np.full(k, -1e8) - np.arange(k) * 0.5)
    rows.append(np.array([0.0, -700.0, -30.0, -5.0, 1e-3, -1e-3, 2.0]))
    rows.append(np.full(k, 3.0))  # a k-way tie
    if dtype == np.float16:
        rows = [np.clip(r, -6e4, 6e4) for r in rows[:-3]] + [rows[-1]]
        rows = [r - (r.max() if np.abs(r).max() > 6e4 else 0) for r in rows]
    return np.asarray(rows, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_softmax_cross_entropy_ulp(dtype: type, rng: np.random.Generator, backend: str) -> None:
    z = _softmax_rows(dtype, rng)
    nl = [mp_nlogp(row) for row in z]
    n, k = z.shape
    for labels in (np.argmax(z, axis=1), rng.integers(0, k, n), np.argmin(z, axis=1)):
        got = softmax_cross_entropy(z, labels)
        assert got.dtype == dtype
        ref = [nl[i][labels[i]] for i in range(n)]
        err = ulp_errors(got, ref, dtype)
        assert err.max() <= BOUND[dtype], (np.argmax(err), err.max())
    # label smoothing and class weights: sums of non-negative terms keep the bound
    cw = np.linspace(0.5, 2.0, k)
    labels = rng.integers(0, k, n)
    got = softmax_cross_entropy(z, labels, class_weight=cw, label_smoothing=0.2)
    ref = [
        MP(float(cw[labels[i]])) * (MP(0.8) * nl[i][labels[i]] + MP(0.2) / k * mpmath.fsum(nl[i]))
        for i in range(n)
    ]
    # The options themselves are rounded (0.8, 0.2 / k): allow one more ULP for float64.
    assert ulp_errors(got, ref, dtype).max() <= BOUND[dtype] + (dtype == np.float64)


@pytest.mark.parametrize(("dtype", "bound"), [(np.float32, 1.0), (np.float64, 5.0)])
def test_softmax_gradient_ulp(
    dtype: type, bound: float, rng: np.random.Generator, backend: str
) -> None:
    """p - onehot against mpmath, with 1 - p_y formed from the other terms (no cancellation)."""
    z = _softmax_rows(dtype, rng)
    n, k = z.shape
    for labels in (np.argmax(z, axis=1), rng.integers(0, k, n)):
        grad = softmax_cross_entropy_value_and_grad(z, labels).grad
        assert ulp_errors(grad, mp_softmax_grad(z, labels), dtype).max() <= bound


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 100])
def test_label_smoothing_with_a_ruled_out_class(dtype: type, k: int, backend: str) -> None:
    """A -inf logit with label smoothing: its target is ls / k > 0, so the loss is +inf (as
    torch gives), never nan; without smoothing the loss stays finite. (float32 short rows
    once gave nan: the compensated sum of z - m formed inf - inf.)"""
    z = np.linspace(-1.0, 1.0, 2 * k).reshape(2, k).astype(dtype)
    z[:, 1] = -np.inf
    assert np.all(softmax_cross_entropy(z, [0, 2], label_smoothing=0.1) == np.inf)
    r = softmax_cross_entropy_value_and_grad(z, [0, 2], label_smoothing=0.1)
    assert np.all(r.value == np.inf)
    assert np.all(np.isfinite(r.grad))
    assert np.all(np.isfinite(softmax_cross_entropy(z, [0, 2])))


def test_softmax_cross_entropy_confident_and_offsets(backend: str) -> None:
    z = np.array([[0.0, -92.0], [1e8, 1e8]], dtype=np.float32)
    v = softmax_cross_entropy(z, [0, 1])
    assert v[0] == np.float32(1.1089390193121365e-40)
    assert v[1] == np.float32(np.log(2.0))
    r = softmax_cross_entropy_value_and_grad(np.array([[0.0, -92.0]]), [0])
    # the gradient at a confident right prediction keeps full relative accuracy
    assert r.grad[0, 0] == pytest.approx(-1.1089390193121365e-40, rel=1e-15)
    assert r.grad[0, 1] == pytest.approx(1.1089390193121365e-40, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_with_targets_ulp(dtype: type, rng: np.random.Generator) -> None:
    z = _softmax_rows(dtype, rng)
    n, k = z.shape
    t = rng.dirichlet(np.ones(k), size=n)
    t[::3] = np.eye(k)[rng.integers(0, k, len(t[::3]))]
    t[1, :] = 0.0
    t[1, 0], t[1, 1] = 1e-12, 1 - 1e-12  # soft targets near 0 and 1
    t = t.astype(dtype)
    got = softmax_cross_entropy_with_targets(z, t)
    nl = [mp_nlogp(row) for row in z]
    ref = [mpmath.fsum(MP(float(t[i, j])) * nl[i][j] for j in range(k)) for i in range(n)]
    assert ulp_errors(got, ref, dtype).max() <= BOUND[dtype]


def test_infinite_logits_with_hard_targets_give_zero_or_inf(backend: str) -> None:
    z = np.array([[np.inf, 0.0, -np.inf], [np.inf, 0.0, -np.inf], [-np.inf, 1.0, 2.0]])
    r = softmax_cross_entropy_value_and_grad(z, [0, 2, 0])
    np.testing.assert_array_equal(r.value, [0.0, np.inf, np.inf])
    assert np.all(np.isfinite(r.grad))
    np.testing.assert_array_equal(r.grad[0], [0.0, 0.0, 0.0])
    rt = softmax_cross_entropy_with_targets_value_and_grad(z[:1], [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(rt.value, [0.0])
    assert not np.isnan(rt.grad).any()
    # two +inf entries share the mass
    v = softmax_cross_entropy(np.array([[np.inf, np.inf, 0.0]]), [1])
    assert v[0] == pytest.approx(np.log(2.0))
    # nan logits give nan
    assert np.isnan(softmax_cross_entropy(np.array([[np.nan, 0.0]]), [1])[0])
    assert np.isnan(sigmoid_cross_entropy([np.nan], [1.0])[0])


# --------------------------------------------------------------------------------------------
# Derivatives: finite differences, symmetry, diagonals
# --------------------------------------------------------------------------------------------


def _fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f(x)
        flat[i] = old - h
        down = f(x)
        flat[i] = old
        gf[i] = (up - down) / (2 * h)
    return g


SOFTMAX_OPTIONS = [
    {},
    {"class_weight": np.array([0.5, 1.0, 2.0, 3.0, 0.1])},
    {"label_smoothing": 0.15},
    {"ignore_index": -100},
    {"class_weight": np.array([0.5, 1.0, 2.0, 3.0, 0.1]), "label_smoothing": 0.1},
]


@pytest.mark.parametrize("opts", SOFTMAX_OPTIONS)
def test_softmax_gradient_matches_finite_differences(
    rng: np.random.Generator, opts, backend: str
) -> None:
    z = rng.standard_normal((6, 5)) * 2
    labels = rng.integers(0, 5, 6)
    if "ignore_index" in opts:
        labels[2] = -100
    r = softmax_cross_entropy_value_and_grad(z, labels, **opts)
    assert isinstance(r, ValueAndGrad)
    np.testing.assert_allclose(r.value, softmax_cross_entropy(z, labels, **opts), rtol=1e-15)
    fd = _fd_grad(lambda a: softmax_cross_entropy(a, labels, **opts).sum(), z.copy())
    np.testing.assert_allclose(r.grad, fd, rtol=1e-6, atol=1e-8)


def test_softmax_where_gradient_and_masking(rng: np.random.Generator) -> None:
    z = rng.standard_normal((4, 6))
    where = np.ones((4, 6), dtype=bool)
    where[:, 4:] = False
    labels = np.array([0, 1, 2, 3])
    r = softmax_cross_entropy_value_and_grad(z, labels, where=where, label_smoothing=0.1)
    dropped = softmax_cross_entropy_value_and_grad(z[:, :4], labels, label_smoothing=0.1)
    np.testing.assert_allclose(r.value, dropped.value, rtol=1e-14)
    np.testing.assert_allclose(r.grad[:, :4], dropped.grad, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(r.grad[:, 4:], 0.0)
    hv = softmax_cross_entropy_hvp(z, np.ones_like(z), where=where)
    np.testing.assert_allclose(hv[:, :4], softmax_cross_entropy_hvp(z[:, :4], np.ones((4, 4))))
    np.testing.assert_array_equal(hv[:, 4:], 0.0)


def test_targets_gradient_matches_finite_differences(rng: np.random.Generator) -> None:
    z = rng.standard_normal((5, 4)) * 3
    t = rng.dirichlet(np.ones(4), size=5)
    r = softmax_cross_entropy_with_targets_value_and_grad(z, t)
    fd = _fd_grad(lambda a: softmax_cross_entropy_with_targets(a, t).sum(), z.copy())
    np.testing.assert_allclose(r.grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("pw", "ls"), [(None, 0.0), (np.array([0.5, 2.0, 4.0]), 0.0), (2.0, 0.2)])
def test_sigmoid_gradient_matches_finite_differences(
    rng: np.random.Generator, pw, ls, backend: str
) -> None:
    z = rng.standard_normal((5, 3)) * 3
    t = rng.uniform(size=(5, 3))
    t[0] = [0.0, 1.0, 1.0]
    r = sigmoid_cross_entropy_value_and_grad(z, t, pos_weight=pw, label_smoothing=ls)
    fd = _fd_grad(
        lambda a: sigmoid_cross_entropy(a, t, pos_weight=pw, label_smoothing=ls).sum(), z.copy()
    )
    np.testing.assert_allclose(r.grad, fd, rtol=1e-6, atol=1e-8)
    # Hessian: finite differences of the gradient, symmetry, and the diagonal
    v = rng.standard_normal(z.shape)
    hv = sigmoid_cross_entropy_hvp(z, v, targets=t, pos_weight=pw, label_smoothing=ls)
    h = 1e-6

    def grad(a: np.ndarray) -> np.ndarray:
        return sigmoid_cross_entropy_value_and_grad(a, t, pos_weight=pw, label_smoothing=ls).grad

    fd_hv = (grad(z + h * v) - grad(z - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd_hv, rtol=1e-6, atol=1e-9)
    d = sigmoid_cross_entropy_hessian_diag(z, targets=t, pos_weight=pw, label_smoothing=ls)
    np.testing.assert_allclose(hv, d * v, rtol=1e-15)


def test_sigmoid_hvp_needs_targets_with_pos_weight() -> None:
    with pytest.raises(TypeError, match="targets"):
        sigmoid_cross_entropy_hvp([0.0], [1.0], pos_weight=2.0)
    # without pos_weight the Hessian is p(1 - p), exact even where p is near 1
    d = sigmoid_cross_entropy_hessian_diag([50.0, -50.0, np.inf])
    np.testing.assert_allclose(d[:2], float(mpmath.exp(-50) / (1 + mpmath.exp(-50)) ** 2))
    assert d[2] == 0.0


def test_softmax_hvp_finite_differences_symmetry_and_diag(rng: np.random.Generator) -> None:
    z = rng.standard_normal((4, 5)) * 2
    z[0] = [0.0, -40.0, -45.0, -38.0, -50.0]  # a confident row
    labels = rng.integers(0, 5, 4)
    u, v = rng.standard_normal((2, 4, 5))
    sw = rng.uniform(0.5, 2.0, 4)
    hv = softmax_cross_entropy_hvp(z, v, sample_weight=sw)
    hu = softmax_cross_entropy_hvp(z, u, sample_weight=sw)
    assert np.sum(u * hv) == pytest.approx(np.sum(hu * v), rel=1e-12)
    h = 1e-6

    def grad(a: np.ndarray) -> np.ndarray:
        return softmax_cross_entropy_value_and_grad(a, labels).grad * sw[:, None]

    fd = (grad(z + h * v) - grad(z - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)
    diag = softmax_cross_entropy_hessian_diag(z, sample_weight=sw)
    for j in range(5):
        e = np.zeros_like(z)
        e[:, j] = 1.0
        np.testing.assert_allclose(
            softmax_cross_entropy_hvp(z, e, sample_weight=sw)[:, j], diag[:, j], rtol=1e-13
        )
    # the confident row's curvature at its max entry keeps full relative accuracy
    e = [mpmath.exp(MP(float(a))) for a in z[0]]
    p0 = e[0] / mpmath.fsum(e)
    assert diag[0, 0] == pytest.approx(float(sw[0] * p0 * (1 - p0)), rel=1e-14)


def test_softmax_hvp_with_class_weight_is_row_scaled(rng: np.random.Generator) -> None:
    z = rng.standard_normal((5, 3))
    labels = np.array([0, 1, -1, 2, 0])
    cw = np.array([2.0, 0.5, 3.0])
    v = rng.standard_normal((5, 3))
    row = cw[np.clip(labels, 0, None)] * (labels != -1)
    hv = softmax_cross_entropy_hvp(z, v, sample_weight=row)
    h = 1e-6
    opts = {"class_weight": cw, "ignore_index": -1, "label_smoothing": 0.3}

    def grad(a: np.ndarray) -> np.ndarray:
        return softmax_cross_entropy_value_and_grad(a, labels, **opts).grad

    fd = (grad(z + h * v) - grad(z - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------
# Independent references: scikit-learn's private losses and PyTorch
# --------------------------------------------------------------------------------------------


def test_against_sklearn_losses_at_extreme_logits(rng: np.random.Generator, backend: str) -> None:
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss

    raw = np.array([-1e8, -745.0, -700.0, -92.0, -40.0, -3.0, 0.0, 3.0, 40.0, 92.0, 700.0, 1e8])
    for y in (0.0, 1.0):
        yt = np.full(raw.shape, y)
        loss, grad = HalfBinomialLoss().loss_gradient(y_true=yt, raw_prediction=raw)
        r = sigmoid_cross_entropy_value_and_grad(raw, yt)
        np.testing.assert_allclose(r.value, loss, rtol=1e-13, atol=0)
        np.testing.assert_allclose(r.grad, grad, rtol=1e-13, atol=0)

    # Where sklearn is accurate the two agree to rounding.
    z = np.concatenate([rng.standard_normal((4, 4)) * 1e3, [[700.0, -700.0, 0.0, 1.0]]])
    labels = np.array([0, 1, 2, 3, 0], dtype=np.float64)
    ml = HalfMultinomialLoss(n_classes=4)
    loss, grad = ml.loss_gradient(y_true=labels, raw_prediction=z)
    r = softmax_cross_entropy_value_and_grad(z, labels)
    np.testing.assert_allclose(r.value, loss, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(r.grad, grad, rtol=1e-12, atol=1e-15)
    # Where it is not (a confident row, a huge common offset), mpmath decides: sklearn
    # returns 0 for a loss of 1e-40 and loses 2.5e-9 to the offset; sigmax keeps both.
    z = np.array([[0.0, -92.0, -100.0, -200.0], [1e8, 1e8 - 1, 1e8 - 2, 1e8 - 50]])
    labels = np.array([0.0, 1.0])
    loss, grad = ml.loss_gradient(y_true=labels, raw_prediction=z)
    r = softmax_cross_entropy_value_and_grad(z, labels)
    ref = [mp_nlogp(z[0])[0], mp_nlogp(z[1])[1]]
    assert ulp_errors(r.value, ref, np.float64).max() <= 3
    assert loss[0] == 0.0
    assert abs(loss[1] - float(ref[1])) > 1e-9
    np.testing.assert_allclose(r.grad, grad, rtol=1e-8, atol=1e-15)


torch = pytest.importorskip("torch")


def test_against_torch_cross_entropy(rng: np.random.Generator, backend: str) -> None:
    import torch.nn.functional as F

    z = rng.standard_normal((20, 6)) * 4
    labels = rng.integers(0, 6, 20)
    labels[3] = -100
    cw = rng.uniform(0.2, 3.0, 6)
    cases = [
        ({}, {}),
        ({"class_weight": cw}, {"weight": torch.tensor(cw)}),
        ({"label_smoothing": 0.2}, {"label_smoothing": 0.2}),
        (
            {"ignore_index": -100, "class_weight": cw},
            {"ignore_index": -100, "weight": torch.tensor(cw)},
        ),
    ]
    for ours, theirs in cases:
        lab = labels if "ignore_index" in ours else np.where(labels < 0, 0, labels)
        zt = torch.tensor(z, requires_grad=True)
        loss = F.cross_entropy(zt, torch.tensor(lab), reduction="none", **theirs)
        loss.sum().backward()
        r = softmax_cross_entropy_value_and_grad(z, lab, **ours)
        np.testing.assert_allclose(r.value, loss.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(r.grad, zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    # probability targets
    t = rng.dirichlet(np.ones(6), size=20)
    zt = torch.tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt, torch.tensor(t), reduction="none")
    loss.sum().backward()
    r = softmax_cross_entropy_with_targets_value_and_grad(z, t)
    np.testing.assert_allclose(r.value, loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(r.grad, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_against_torch_bce_with_logits(rng: np.random.Generator, backend: str) -> None:
    import torch.nn.functional as F

    z = rng.standard_normal((10, 4)) * 5
    t = rng.uniform(size=(10, 4))
    pw = rng.uniform(0.5, 3.0, 4)
    zt = torch.tensor(z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(
        zt, torch.tensor(t), pos_weight=torch.tensor(pw), reduction="none"
    )
    loss.sum().backward()
    r = sigmoid_cross_entropy_value_and_grad(z, t, pos_weight=pw)
    np.testing.assert_allclose(r.value, loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(r.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


# --------------------------------------------------------------------------------------------
# Namespaces, axes, dtypes
# --------------------------------------------------------------------------------------------


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


# Dask evaluates lazily, outside sigmax's errstate, so the +inf row warns there.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_every_namespace_matches_numpy(xp, dtype_name: str, rng: np.random.Generator) -> None:
    import array_api_compat

    z = rng.standard_normal((5, 4)).astype(dtype_name) * 3
    z[0, 0] = np.inf
    labels = np.array([0, 1, 2, 3, 1])
    t = rng.dirichlet(np.ones(4), size=5).astype(dtype_name)
    zx = xp.asarray(z)
    dtype = getattr(xp, dtype_name)
    checks = [
        (
            softmax_cross_entropy_value_and_grad(zx, xp.asarray(labels), label_smoothing=0.1),
            softmax_cross_entropy_value_and_grad(z, labels, label_smoothing=0.1),
        ),
        (
            softmax_cross_entropy_with_targets_value_and_grad(zx, xp.asarray(t)),
            softmax_cross_entropy_with_targets_value_and_grad(z, t),
        ),
        (
            sigmoid_cross_entropy_value_and_grad(zx, xp.asarray(t), pos_weight=2.0),
            sigmoid_cross_entropy_value_and_grad(z, t, pos_weight=2.0),
        ),
    ]
    for got, ref in checks:
        for a, b in zip(got, ref, strict=True):
            assert array_api_compat.array_namespace(a) is array_api_compat.array_namespace(zx)
            assert a.dtype == dtype
            np.testing.assert_allclose(_np(a), b, rtol=1e-6 if dtype_name == "float32" else 1e-14)
    hv = softmax_cross_entropy_hvp(zx, xp.asarray(t))
    np.testing.assert_allclose(_np(hv), softmax_cross_entropy_hvp(z, t), rtol=1e-6, atol=1e-7)
    d = softmax_cross_entropy_hessian_diag(zx)
    np.testing.assert_allclose(_np(d), softmax_cross_entropy_hessian_diag(z), rtol=1e-6)
    sd = sigmoid_cross_entropy_hessian_diag(zx)
    np.testing.assert_allclose(_np(sd), sigmoid_cross_entropy_hessian_diag(z), rtol=1e-6)


def test_axis_and_batch_dims(rng: np.random.Generator) -> None:
    z = rng.standard_normal((3, 5, 2))
    labels = rng.integers(0, 5, (3, 2))
    r = softmax_cross_entropy_value_and_grad(z, labels, axis=1)
    ref = softmax_cross_entropy_value_and_grad(np.moveaxis(z, 1, -1), labels)
    np.testing.assert_allclose(r.value, ref.value, rtol=1e-15)
    np.testing.assert_allclose(r.grad, np.moveaxis(ref.grad, -1, 1), rtol=1e-15)
    t = rng.dirichlet(np.ones(3), size=(5, 2))
    rt = softmax_cross_entropy_with_targets(np.moveaxis(z, 0, -1), t)
    np.testing.assert_allclose(
        softmax_cross_entropy_with_targets(z, np.moveaxis(t, -1, 0), axis=0), rt, rtol=1e-15
    )


def test_narrow_dtypes_and_int_logits() -> None:
    z16 = np.array([[1.0, 2.0, 3.0]], dtype=np.float16)
    r = softmax_cross_entropy_value_and_grad(z16, [2])
    assert r.value.dtype == np.float16
    assert r.grad.dtype == np.float16
    v = softmax_cross_entropy(np.array([[1, 2, 3]]), [2])
    assert v.dtype == np.float64


def test_blocked_and_threaded_path_matches_small_blocks(
    rng: np.random.Generator, backend: str
) -> None:
    z = (rng.standard_normal((40_000, 9)) * 5).astype(np.float32)
    labels = rng.integers(0, 9, 40_000)
    r = softmax_cross_entropy_value_and_grad(z, labels)
    parts = [
        softmax_cross_entropy_value_and_grad(z[i : i + 7], labels[i : i + 7]) for i in (0, 33_000)
    ]
    np.testing.assert_array_equal(r.value[:7], parts[0].value)
    np.testing.assert_array_equal(r.grad[33_000:33_007], parts[1].grad)


# --------------------------------------------------------------------------------------------
# Bad input and the all-ignored case
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, 7, 2], r"`labels` must be in \[0, 3\), got 7 at index 2"),
        ([0, -1, 1, 2], r"`labels` must be in \[0, 3\), got -1 at index 1"),
        ([0.0, 1.5, 1.0, 2.0], r"`labels` must be whole numbers .*1\.5 at index 1"),
        ([0.0, 1.0, np.nan, 2.0], r"`labels` must be whole numbers .*nan at index 2"),
    ],
)
def test_bad_labels(labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        softmax_cross_entropy(np.zeros((4, 3)), labels)


def test_bad_input_messages() -> None:
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"or equal to ignore_index=-100, got -5 at index 0"):
        softmax_cross_entropy(z, [-5, 0, 0, 0], ignore_index=-100)
    with pytest.raises(TypeError, match="integer class indices"):
        softmax_cross_entropy(z, np.array([True, False, True, False]))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(4,\)"):
        softmax_cross_entropy(z, [0, 1, 2])
    with pytest.raises(
        ValueError, match=r"`targets` must be in \[0, 1\], got 1.5 at index \(1, 2\)"
    ):
        sigmoid_cross_entropy(z, np.where(np.arange(12).reshape(4, 3) == 5, 1.5, 0.0))
    with pytest.raises(
        ValueError, match=r"`targets` must be in \[0, 1\], got -0.25 at index \(0, 0\)"
    ):
        softmax_cross_entropy_with_targets(z, np.full((4, 3), -0.25))
    t = np.tile([0.5, 0.25, 0.25], (4, 1))
    t[2] = [0.5, 0.2, 0.2]
    with pytest.raises(ValueError, match=r"rows must sum to 1 .*got sum 0.899.* index 2"):
        softmax_cross_entropy_with_targets(z, t)
    with pytest.raises(ValueError, match=r"`targets` must have shape \(4, 3\)"):
        sigmoid_cross_entropy(z, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"`class_weight` must have shape \(3,\)"):
        softmax_cross_entropy(z, [0, 1, 2, 0], class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"`class_weight` must be finite and >= 0, got -1.0"):
        softmax_cross_entropy(z, [0, 1, 2, 0], class_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"`label_smoothing` must be in \[0, 1\)"):
        softmax_cross_entropy(z, [0, 1, 2, 0], label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"`pos_weight` must be broadcastable"):
        sigmoid_cross_entropy(z, z, pos_weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="`axis` must be an int"):
        softmax_cross_entropy(z, [0, 1, 2, 0], axis=(0, 1))
    with pytest.raises(TypeError, match="complex"):
        softmax_cross_entropy(z.astype(complex), [0, 1, 2, 0])
    masked = np.ma.array(z, mask=z < 0)
    with pytest.raises(TypeError, match=r"`logits` must not be a numpy\.ma\.MaskedArray"):
        softmax_cross_entropy(masked, [0, 1, 2, 0])
    with pytest.raises(TypeError, match=r"`labels` must not be a numpy\.ma\.MaskedArray"):
        softmax_cross_entropy(z, np.ma.array([0, 1, 2, 0], mask=[0, 1, 0, 0]))
    with pytest.raises(TypeError, match=r"`targets` must not be a numpy\.ma\.MaskedArray"):
        sigmoid_cross_entropy(z, np.ma.array(np.zeros((4, 3)), mask=z < 0))
    with pytest.raises(ValueError, match=r"`vector` must have shape \(4, 3\)"):
        softmax_cross_entropy_hvp(z, np.zeros((4, 2)))
    # the float tolerance on row sums scales with the dtype
    t32 = np.float32([[0.1, 0.2, 0.7]])
    softmax_cross_entropy_with_targets(np.zeros((1, 3), np.float32), t32)


def test_all_labels_ignored_gives_zero_loss_and_gradient(backend: str) -> None:
    z = np.array([[1.0, np.inf, 0.0], [0.0, 0.0, 0.0]])
    r = softmax_cross_entropy_value_and_grad(z, [-100, -100], ignore_index=-100)
    np.testing.assert_array_equal(r.value, 0.0)
    np.testing.assert_array_equal(r.grad, 0.0)
    # an in-range ignore_index works too
    r = softmax_cross_entropy_value_and_grad(z[1:], [1], ignore_index=1)
    np.testing.assert_array_equal(r.value, 0.0)


#: precision="fast" (float32 computed in float32, float64 without the carried rounding error
#: of z - m): the bounds it is tested to, in ULPs, on the same extreme cases.
FAST_BOUND = {np.float16: 1.0, np.float32: 4.0, np.float64: 3.0}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fast_precision_values(dtype: type, rng: np.random.Generator, backend: str) -> None:
    z, t = _bce_cases(dtype)
    got = sigmoid_cross_entropy(z, t, precision="fast")
    assert got.dtype == dtype
    ref = [mp_bce(float(a), float(b)) for a, b in zip(z, t, strict=True)]
    assert ulp_errors(got, ref, dtype).max() <= FAST_BOUND[dtype]
    zz = _softmax_rows(dtype, rng)
    nl = [mp_nlogp(row) for row in zz]
    n, k = zz.shape
    for labels in (np.argmax(zz, axis=1), rng.integers(0, k, n), np.argmin(zz, axis=1)):
        got = softmax_cross_entropy(zz, labels, precision="fast")
        assert got.dtype == dtype
        ref = [nl[i][labels[i]] for i in range(n)]
        assert ulp_errors(got, ref, dtype).max() <= FAST_BOUND[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_precision_gradients(dtype: type, rng: np.random.Generator, backend: str) -> None:
    """Each gradient entry within (8 + |z_j - max z|) eps of the accurate one, relative."""
    eps = float(np.finfo(dtype).eps)
    z = (rng.standard_normal((500, 10)) * rng.uniform(0.1, 30, (500, 1))).astype(dtype)
    y = rng.integers(0, 10, 500)
    acc = softmax_cross_entropy_value_and_grad(z, y)
    fast = softmax_cross_entropy_value_and_grad(z, y, precision="fast")
    assert fast.grad.dtype == dtype
    spread = z.max(axis=1, keepdims=True).astype(float) - z
    tol = (8 + spread) * eps * np.abs(acc.grad) + float(np.finfo(dtype).smallest_subnormal)
    assert np.all(np.abs(fast.grad.astype(float) - acc.grad) <= tol)
    # the values: within (4 + max z - min z) eps, relative, as the docstring states
    rng_row = (z.max(axis=1).astype(float) - z.min(axis=1)) + 4
    tiny = float(np.finfo(dtype).smallest_subnormal)
    assert np.all(np.abs(fast.value.astype(float) - acc.value) <= rng_row * eps * acc.value + tiny)
    t = rng.uniform(size=z.shape).astype(dtype)
    acc = sigmoid_cross_entropy_value_and_grad(z, t)
    fast = sigmoid_cross_entropy_value_and_grad(z, t, precision="fast")
    # sigma(z) - t may cancel: an absolute bound, in units of eps
    np.testing.assert_allclose(fast.grad, acc.grad, rtol=0, atol=4 * eps)
    np.testing.assert_allclose(fast.value, acc.value, rtol=8 * eps)


def test_fast_precision_never_gives_a_false_zero(backend: str) -> None:
    # 999 terms of exp(-104) are each below float32's smallest subnormal, but their sum is not.
    z = np.full((3, 1000), -104.0, np.float32)
    z[:, 0] = 0.0
    ref = mpmath.log1p(999 * mpmath.exp(-104))
    for precision in ("accurate", "fast"):
        v = softmax_cross_entropy(z, [0, 0, 0], precision=precision)
        assert ulp_errors(v, [ref] * 3, np.float32).max() <= 1
    v = sigmoid_cross_entropy(np.float32([92.0, -92.0]), np.float32([1.0, 0.0]), precision="fast")
    assert ulp_errors(v, [mp_softplus(-92.0)] * 2, np.float32).max() <= 1
    r = sigmoid_cross_entropy_value_and_grad(
        np.float32([np.inf, -np.inf]), np.float32([1.0, 1.0]), precision="fast"
    )
    np.testing.assert_array_equal(r.value, [0.0, np.inf])
    with pytest.raises(ValueError, match="`precision` must be 'accurate' or 'fast', got 'low'"):
        softmax_cross_entropy(z, [0, 0, 0], precision="low")


def test_top_level_exports() -> None:
    for name in (
        "sigmoid_cross_entropy",
        "softmax_cross_entropy",
        "softmax_cross_entropy_with_targets_value_and_grad",
        "softmax_cross_entropy_hvp",
        "ValueAndGrad",
    ):
        assert getattr(sigmax, name) is getattr(sigmax.losses, name)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

_logit_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.integers(2, 6)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(z=_logit_rows, data=st.data())
def test_softmax_properties(z: np.ndarray, data: st.DataObject) -> None:
    n, k = z.shape
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    shift = data.draw(st.sampled_from([0.0, 1.0, -37.5, 1024.0]))
    r = softmax_cross_entropy_value_and_grad(z, labels)
    assert np.all(r.value >= 0)
    # grad = p - onehot: each row sums to 0, entries in [-1, 1], the label's entry is <= 0
    np.testing.assert_allclose(r.grad.sum(axis=1), 0.0, atol=1e-12)
    assert np.all(np.abs(r.grad) <= 1.0)
    assert np.all(r.grad[np.arange(n), labels] <= 0)
    # a common shift that is exact in binary leaves everything unchanged up to rounding
    s = softmax_cross_entropy_value_and_grad(z + shift, labels)
    np.testing.assert_allclose(s.value, r.value, rtol=1e-12, atol=1e-12)
    # with targets = onehot(labels) the two functions agree
    t = np.eye(k)[labels]
    np.testing.assert_allclose(softmax_cross_entropy_with_targets(z, t), r.value, rtol=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    z=arrays(np.float64, st.integers(1, 20), elements=st.floats(-800, 800)),
    t=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
)
def test_sigmoid_properties(z: np.ndarray, t: float) -> None:
    tt = np.full(z.shape, t)
    r = sigmoid_cross_entropy_value_and_grad(z, tt)
    assert np.all(r.value >= 0)
    assert np.all(np.abs(r.grad) <= 1.0)
    # the loss of (z, t) is the loss of (-z, 1 - t) (these t have an exact 1 - t)
    flipped = sigmoid_cross_entropy_value_and_grad(-z, 1.0 - tt)
    np.testing.assert_allclose(flipped.value, r.value, rtol=1e-13)
    np.testing.assert_allclose(flipped.grad, -r.grad, rtol=1e-12, atol=1e-300)
