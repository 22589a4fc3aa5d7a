"""Tests for sigmax.heads: reductions, derivatives of the mean loss, decisions, encodings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import log_loss

from sigmax import log_sigmoid, sigmoid, softmax
from sigmax.heads import Head, SigmoidHead, SoftmaxHead
from test_losses import _fd_grad as _fd


def test_heads_are_heads_and_hold_no_data() -> None:
    for head in (SigmoidHead(), SoftmaxHead()):
        assert isinstance(head, Head)
        before = dataclasses.asdict(head)
        head.loss(np.zeros((3, 2)), np.array([0, 1, 1]) if head.name == "softmax" else np.eye(3, 2))
        assert dataclasses.asdict(head) == before
        with pytest.raises(dataclasses.FrozenInstanceError):
            head.label_smoothing = 0.5  # type: ignore[misc]


def test_n_outputs_and_encode() -> None:
    sig, soft = SigmoidHead(), SoftmaxHead()
    assert (sig.n_outputs(2), sig.n_outputs(5), soft.n_outputs(2), soft.n_outputs(5)) == (
        1,
        5,
        2,
        5,
    )
    np.testing.assert_array_equal(sig.encode(np.array([0, 1, 1]), 2), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(sig.encode(np.array([0, 2]), 3), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(soft.encode(np.array([1, 0]), 2), [[0, 1], [1, 0]])
    ind = np.array([[1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(sig.encode(ind, 3), ind)
    with pytest.raises(ValueError, match=r"`y` must be in \[0, 3\), got 3 at index 1"):
        soft.encode(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"`n_classes` must be >= 2"):
        soft.n_outputs(1)


def test_sigmoid_predict_proba_binary_is_exact_in_both_columns() -> None:
    head = SigmoidHead()
    z = np.array([50.0, -50.0, 0.0, 3.0])
    p = head.predict_proba(z)
    assert p.shape == (4, 2)
    np.testing.assert_array_equal(p[:, 0], sigmoid(-z))
    np.testing.assert_array_equal(p[:, 1], sigmoid(z))
    assert p[0, 0] == pytest.approx(1.9287498479639178e-22, rel=1e-15)  # not 1 - 1 = 0
    np.testing.assert_array_equal(head.predict_proba(z[:, None]), p)
    lp = head.predict_log_proba(z)
    np.testing.assert_array_equal(lp[:, 0], log_sigmoid(-z))
    np.testing.assert_array_equal(lp[:, 1], log_sigmoid(z))
    zm = np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_array_equal(head.predict_proba(zm), sigmoid(zm))
    np.testing.assert_array_equal(head.link(zm), sigmoid(zm))


def test_loss_matches_sklearn_log_loss(rng: np.random.Generator) -> None:
    z = rng.standard_normal((30, 4)) * 2
    y = rng.integers(0, 4, 30)
    w = rng.uniform(0.1, 2.0, 30)
    soft = SoftmaxHead()
    ref = log_loss(y, softmax(z), sample_weight=w, labels=range(4))
    assert soft.loss(z, y, w) == pytest.approx(ref, rel=1e-12)
    zb = z[:, 0]
    yb = (y > 1).astype(float)
    sig = SigmoidHead()
    ref = log_loss(yb, sigmoid(zb), sample_weight=w)
    assert sig.loss(zb, yb, w) == pytest.approx(ref, rel=1e-12)
    assert sig.loss(zb[:, None], yb, w) == pytest.approx(ref, rel=1e-12)


SOFTMAX_HEADS = [
    SoftmaxHead(),
    SoftmaxHead(class_weight=np.array([0.5, 2.0, 1.0, 3.0])),
    SoftmaxHead(label_smoothing=0.1),
    SoftmaxHead(ignore_index=-1, class_weight=np.array([0.5, 2.0, 1.0, 3.0])),
]


@pytest.mark.parametrize("head", SOFTMAX_HEADS, ids=repr)
def test_softmax_head_gradient_and_hvp(head: SoftmaxHead, rng: np.random.Generator) -> None:
    z = rng.standard_normal((6, 4)) * 2
    y = rng.integers(0, 4, 6)
    if head.ignore_index is not None:
        y[1] = -1
    w = rng.uniform(0.5, 2.0, 6)
    value, grad = head.loss_and_grad(z, y, w)
    assert value == pytest.approx(head.loss(z, y, w), rel=1e-15)
    np.testing.assert_allclose(grad, _fd(lambda a: head.loss(a, y, w), z.copy()), atol=1e-8)
    v, u = rng.standard_normal((2, 6, 4))
    hv = head.hvp(z, v, w, y=y)
    h = 1e-6
    fd = (head.loss_and_grad(z + h * v, y, w)[1] - head.loss_and_grad(z - h * v, y, w)[1]) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)
    assert np.sum(u * hv) == pytest.approx(np.sum(head.hvp(z, u, w, y=y) * v), rel=1e-12)


def test_softmax_head_probability_targets(rng: np.random.Generator) -> None:
    z = rng.standard_normal((5, 3))
    t = rng.dirichlet(np.ones(3), size=5)
    head = SoftmaxHead()
    value, grad = head.loss_and_grad(z, t)
    np.testing.assert_allclose(grad, (softmax(z) - t) / 5, rtol=1e-13, atol=1e-16)
    assert value == pytest.approx(-np.mean(np.sum(t * np.log(softmax(z)), axis=1)), rel=1e-13)
    with pytest.raises(ValueError, match="class_weight"):
        SoftmaxHead(class_weight=[1.0, 1.0, 1.0]).loss(z, t)


@pytest.mark.parametrize(
    "head",
    [
        SigmoidHead(),
        SigmoidHead(pos_weight=np.array([1.0, 3.0, 0.5])),
        SigmoidHead(label_smoothing=0.2),
    ],
    ids=repr,
)
def test_sigmoid_head_multilabel_gradient_and_hvp(
    head: SigmoidHead, rng: np.random.Generator
) -> None:
    z = rng.standard_normal((5, 3)) * 2
    y = (rng.uniform(size=(5, 3)) > 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, 5)
    value, grad = head.loss_and_grad(z, y, w)
    assert value == pytest.approx(head.loss(z, y, w), rel=1e-15)
    np.testing.assert_allclose(grad, _fd(lambda a: head.loss(a, y, w), z.copy()), atol=1e-8)
    v = rng.standard_normal((5, 3))
    hv = head.hvp(z, v, w, y=y)
    h = 1e-6
    fd = (head.loss_and_grad(z + h * v, y, w)[1] - head.loss_and_grad(z - h * v, y, w)[1]) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)


def test_sigmoid_head_binary_shapes(rng: np.random.Generator) -> None:
    head = SigmoidHead()
    z = rng.standard_normal(7)
    y = rng.integers(0, 2, 7)
    v1, g1 = head.loss_and_grad(z, y)
    v2, g2 = head.loss_and_grad(z[:, None], y)
    assert v1 == v2
    assert g1.shape == (7,)
    assert g2.shape == (7, 1)
    np.testing.assert_array_equal(g1, g2[:, 0])
    np.testing.assert_allclose(head.hvp(z, np.ones(7)), sigmoid(z) * sigmoid(-z) / 7, rtol=1e-14)
    with pytest.raises(ValueError, match=r"`y` must have shape \(7,\)"):
        head.loss(z, np.zeros((7, 2)))


def test_hvp_requires_labels_when_the_hessian_depends_on_them() -> None:
    with pytest.raises(TypeError, match="`y` is required"):
        SoftmaxHead(class_weight=[1.0, 2.0]).hvp(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="`y` is required"):
        SigmoidHead(pos_weight=2.0).hvp(np.zeros(2), np.ones(2))


def test_all_rows_ignored_gives_zero() -> None:
    head = SoftmaxHead(ignore_index=-100)
    z = np.array([[1.0, 2.0], [0.0, np.inf]])
    y = np.array([-100, -100])
    value, grad = head.loss_and_grad(z, y)
    assert value == 0.0
    np.testing.assert_array_equal(grad, 0.0)
    assert head.loss(z, y) == 0.0
    np.testing.assert_array_equal(head.hvp(z[:1], np.ones((1, 2)), y=y[:1]), 0.0)
    # ignored rows also leave the denominator
    z = np.array([[1.0, 2.0], [3.0, 0.0]])
    assert head.loss(z, np.array([0, -100])) == pytest.approx(SoftmaxHead().loss(z[:1], [0]))


def test_decide() -> None:
    sig = SigmoidHead()
    z = np.array([-1.0, 0.0, 0.1, 2.0])
    np.testing.assert_array_equal(sig.decide(z), [0, 0, 1, 1])
    np.testing.assert_array_equal(sig.decide(z, threshold=0.8), [0, 0, 0, 1])
    np.testing.assert_array_equal(sig.decide(z[:, None]), [0, 0, 1, 1])
    np.testing.assert_array_equal(sig.decide(np.array([[1.0, -1.0]])), [[1, 0]])
    with pytest.raises(ValueError, match="threshold"):
        sig.decide(z, threshold=1.0)
    soft = SoftmaxHead()
    zs = np.array([[0.1, 3.0, 3.0, -1.0], [5.0, 1.0, 2.0, 4.0]])
    np.testing.assert_array_equal(soft.decide(zs), [1, 0])
    np.testing.assert_array_equal(soft.decide(zs, top_k=3), [[1, 2, 0], [0, 3, 2]])
    with pytest.raises(ValueError, match="top_k"):
        soft.decide(zs, top_k=5)


def test_heads_keep_the_namespace(xp) -> None:
    import array_api_compat

    z = xp.asarray(np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -3.0]]))
    y = xp.asarray(np.array([2, 0]))
    value, grad = SoftmaxHead(label_smoothing=0.1).loss_and_grad(z, y)
    assert isinstance(value, float)
    assert array_api_compat.array_namespace(grad) is array_api_compat.array_namespace(z)
    ref = SoftmaxHead(label_smoothing=0.1).loss_and_grad(np.asarray(z), np.asarray(y))
    assert value == pytest.approx(ref[0], rel=1e-14)
    p = SigmoidHead().predict_proba(xp.asarray(np.array([0.5, -1.0])))
    assert array_api_compat.array_namespace(p) is array_api_compat.array_namespace(z)


@pytest.mark.parametrize(
    "head", [*SOFTMAX_HEADS, SigmoidHead(), SigmoidHead(pos_weight=2.0)], ids=repr
)
def test_trusted_input_gives_the_same_loss_and_gradient(
    head: Head, rng: np.random.Generator
) -> None:
    """check_input=False (a solver's loop) skips the checks, not any part of the result."""
    z = rng.standard_normal((40, 4)) * 3
    y = rng.integers(0, 4, 40)
    if isinstance(head, SigmoidHead):
        y = (rng.uniform(size=(40, 4)) < 0.4).astype(float)
    elif head.ignore_index is not None:
        y[::7] = head.ignore_index
    w = rng.uniform(0.0, 2.0, 40)
    w[3] = 0.0
    z[3, 0] = np.inf  # a row of weight 0 counts as 0, even where its loss is inf
    if isinstance(head, SigmoidHead):
        y[3, 0] = 0.0
    else:
        y[3] = 1
    for sw in (None, w):
        value, grad = head.loss_and_grad(z, y, sw)
        v2, g2 = head.loss_and_grad(z, y, sw, check_input=False)
        assert v2 == value
        np.testing.assert_array_equal(g2, grad)
        assert np.isfinite(value) == (sw is not None)
        assert value == pytest.approx(head.loss(z, y, sw), rel=1e-15)


def test_softmax_head_fast_path_matches_the_general_path(rng: np.random.Generator) -> None:
    """The fused NumPy path against the same head on probability rows (the general kernel)."""
    z = rng.standard_normal((300, 5)) * 4
    y = rng.integers(0, 5, 300)
    w = rng.uniform(0.5, 2.0, 300)
    head = SoftmaxHead()
    v1, g1 = head.loss_and_grad(z, y, w)
    v2, g2 = head.loss_and_grad(z, np.eye(5)[y], w)
    assert v1 == pytest.approx(v2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-18)
