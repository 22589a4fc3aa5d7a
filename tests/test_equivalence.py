"""Tests for sigmax.equivalence: a 2-class softmax and a sigmoid are the same model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from sigmax import sigmoid, softmax
from sigmax.equivalence import (
    c_sigmoid_from_softmax,
    c_softmax_from_sigmoid,
    sigmoid_to_softmax,
    softmax_as_shifted_sigmoid,
    softmax_to_sigmoid,
)
from sigmax.heads import SoftmaxHead


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("param", ["reference", "symmetric"])
def test_round_trip_is_exact_and_probabilities_agree(
    dtype: type, param: str, rng: np.random.Generator
) -> None:
    x = rng.standard_normal((500, 6)).astype(dtype)
    w = (rng.standard_normal((1, 6)) * 3).astype(dtype)
    b = np.array([0.7], dtype=dtype)
    coef, intercept = sigmoid_to_softmax(w, b, parametrization=param)
    assert coef.shape == (2, 6)
    assert intercept.shape == (2,)
    np.testing.assert_array_equal(coef.sum(axis=0) if param == "symmetric" else coef[0], 0.0)
    w2, b2 = softmax_to_sigmoid(coef, intercept)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(b2, b)
    # Each logit by the same matrix-vector product, so that BLAS sums in the same order
    # (a matrix-matrix product may not): the comparison is then about the models alone.
    z = x @ w[0] + b[0]
    logits = np.stack([x @ coef[0] + intercept[0], x @ coef[1] + intercept[1]], axis=1)
    p_soft = softmax(logits, axis=1)
    assert p_soft.dtype == dtype
    # Two functions, each within its own bound and rounded differently: on one row here the
    # softmax is 1.13 ULP from mpmath and the sigmoid 1.87 the other way, 3 ULP apart.
    assert ulps(p_soft[:, 1], sigmoid(z)).max() <= 4
    assert ulps(p_soft[:, 0], sigmoid(-z)).max() <= 4


def test_softmax_to_sigmoid_of_a_general_layer(rng: np.random.Generator) -> None:
    coef = rng.standard_normal((2, 4))
    intercept = rng.standard_normal(2)
    x = rng.standard_normal((200, 4))
    w, b = softmax_to_sigmoid(coef, intercept)
    assert w.shape == (1, 4)
    np.testing.assert_allclose(
        sigmoid(x @ w[0] + b[0]), softmax(x @ coef.T + intercept, axis=1)[:, 1], rtol=1e-13
    )


def _fit_softmax(x: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's multinomial objective C sum_i l_i + ||W||^2 / 2, by L-BFGS on the head."""
    n, d = x.shape
    head = SoftmaxHead()

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[: 2 * d].reshape(2, d), theta[2 * d :]
        value, g = head.loss_and_grad(x @ W.T + b, y)
        obj = n * C * value + 0.5 * np.sum(W * W)
        gw = n * C * (g.T @ x) + W
        gb = n * C * g.sum(axis=0)
        return obj, np.concatenate([gw.ravel(), gb])

    res = minimize(
        f,
        np.zeros(2 * d + 2),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 2000},
    )
    return res.x[: 2 * d].reshape(2, d), res.x[2 * d :]


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_fitted_softmax_equals_sklearn_sigmoid_with_twice_the_C(
    C: float, rng: np.random.Generator
) -> None:
    n, d = 300, 4
    x = rng.standard_normal((n, d))
    y = (x @ np.array([1.5, -2.0, 0.5, 0.0]) + 0.3 + rng.logistic(size=n) > 0).astype(int)
    W, bs = _fit_softmax(x, y, C)
    # the L2 penalty picks the symmetric parametrization
    np.testing.assert_allclose(W[0], -W[1], atol=1e-7)
    lr = LogisticRegression(C=c_sigmoid_from_softmax(C), tol=1e-12, max_iter=10_000).fit(x, y)
    w, b = softmax_to_sigmoid(W, bs)
    np.testing.assert_allclose(w, lr.coef_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, lr.intercept_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(softmax(x @ W.T + bs, axis=1), lr.predict_proba(x), atol=1e-7)
    # and with the same C the models differ: the mapping is not the identity
    other = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(x, y)
    assert np.abs(other.coef_ - w).max() > 1e-3
    # the fitted softmax and its converted sigmoid give the same probabilities
    np.testing.assert_allclose(
        sigmoid(x @ w[0] + b[0]), softmax(x @ W.T + bs, axis=1)[:, 1], rtol=1e-13
    )
    # sklearn's fitted sigmoid, converted symmetrically, gives its probabilities: to rounding
    # against sklearn (whose logits come from another BLAS call), and on the same logits to
    # the two functions' rounding: each within its bound, 4 ULP apart at most
    coef, intercept = sigmoid_to_softmax(lr.coef_, lr.intercept_, parametrization="symmetric")
    np.testing.assert_allclose(
        softmax(x @ coef.T + intercept, axis=1), lr.predict_proba(x), rtol=1e-12
    )
    z = x @ lr.coef_[0] + lr.intercept_[0]
    logits = np.stack([x @ coef[0] + intercept[0], x @ coef[1] + intercept[1]], axis=1)
    assert ulps(softmax(logits, axis=1)[:, 1], sigmoid(z)).max() <= 4


def test_c_mapping() -> None:
    assert c_sigmoid_from_softmax(0.25) == 0.5
    assert c_softmax_from_sigmoid(c_sigmoid_from_softmax(3.0)) == 3.0
    with pytest.raises(ValueError, match="`C` must be finite and > 0"):
        c_sigmoid_from_softmax(0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_a_shifted_sigmoid(dtype: type, rng: np.random.Generator) -> None:
    z = (rng.standard_normal((50, 5)) * 10).astype(dtype)
    z[0] = [0.0, -50.0, -60.0, -70.0, -80.0]
    z[1] = 1e4
    p = softmax(z, axis=1)
    for i in range(5):
        q = softmax_as_shifted_sigmoid(z, i)
        assert q.dtype == dtype
        if dtype == np.float32:
            assert ulps(q, p[:, i]).max() <= 1
        else:
            # the documented float64 bound: a few ULP times the sigmoid's condition 1 + |s|
            with np.errstate(divide="ignore"):
                s = np.abs(np.log(p[:, i]) - np.log1p(-p[:, i]))
            assert np.all(ulps(q, p[:, i]) <= 4 * (1 + s))
    q0 = softmax_as_shifted_sigmoid(z.T, -5, axis=0)
    np.testing.assert_array_equal(q0, softmax_as_shifted_sigmoid(z, 0))


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"`coef` must have shape \(2, n_features\)"):
        softmax_to_sigmoid(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"`intercept` must have shape \(2,\)"):
        softmax_to_sigmoid(np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="parametrization"):
        sigmoid_to_softmax(np.zeros(2), 0.0, parametrization="other")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`i` must be an int in \[-3, 3\)"):
        softmax_as_shifted_sigmoid(np.zeros(3), 3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        softmax_as_shifted_sigmoid(np.zeros((3, 1)), 0)


# Dask evaluates the masked logsumexp lazily, outside sigmax's errstate.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_other_namespaces(xp) -> None:
    import array_api_compat

    w = xp.asarray(np.array([[1.0, -2.0]]))
    coef, intercept = sigmoid_to_softmax(
        w, xp.asarray(np.array([0.5])), parametrization="symmetric"
    )
    assert array_api_compat.array_namespace(coef) is array_api_compat.array_namespace(w)
    w2, b2 = softmax_to_sigmoid(coef, intercept)
    np.testing.assert_array_equal(np.asarray(w2), [[1.0, -2.0]])
    np.testing.assert_array_equal(np.asarray(b2), [0.5])
    q = softmax_as_shifted_sigmoid(xp.asarray(np.array([[1.0, 2.0, 3.0]])), 1)
    np.testing.assert_allclose(np.asarray(q), softmax(np.array([1.0, 2.0, 3.0]))[1], rtol=1e-14)


def test_heads_agree_on_binary_data(rng: np.random.Generator) -> None:
    """The sigmoid head on z and the softmax head on [0, z] are the same model."""
    from sigmax.heads import SigmoidHead

    z = rng.standard_normal(40) * 5
    z[:2] = [60.0, -60.0]
    y = rng.integers(0, 2, 40)
    w = rng.uniform(0.5, 2.0, 40)
    logits = np.stack([np.zeros_like(z), z], axis=1)
    sig, soft = SigmoidHead(), SoftmaxHead()
    v_sig, g_sig = sig.loss_and_grad(z, y, w)
    v_soft, g_soft = soft.loss_and_grad(logits, y, w)
    assert v_sig == pytest.approx(v_soft, rel=1e-14)
    # the softmax gradient is antisymmetric in the two logits; its class-1 part is the sigmoid's
    np.testing.assert_allclose(g_soft[:, 1], g_sig, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(g_soft[:, 0], -g_sig, rtol=1e-13, atol=1e-300)
    assert ulps(soft.predict_proba(logits), sig.predict_proba(z)).max() <= 2
    np.testing.assert_array_equal(soft.decide(logits), sig.decide(z))
    # and so is the curvature along the difference direction
    v = rng.standard_normal(40)
    hv = soft.hvp(logits, np.stack([np.zeros_like(v), v], axis=1), w)
    np.testing.assert_allclose(hv[:, 1], sig.hvp(z, v, w), rtol=1e-12, atol=1e-300)
