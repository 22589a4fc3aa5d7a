"""sigmax under JAX's transformations: ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

Inside them arrays are tracers whose values cannot be read on the host. The functions and
derivatives never read values; the losses check labels and targets on the host when they
can, and only their shapes and dtypes when they are traced. References: sigmax's own eager
result (the same code on concrete arrays) and JAX's own functions (``jax.nn``,
``optax``-style cross-entropy written with ``jax.nn.logsumexp``).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import sigmax  # noqa: E402

# conftest.py turns on float64 for JAX.
RNG = np.random.default_rng(20261128)
Z = jnp.asarray(RNG.standard_normal((6, 4)))
LABELS = jnp.asarray([0, 3, 1, 2, 2, 0])
TARGETS = jnp.asarray(RNG.random((6, 4)))
PROBS = jax.nn.softmax(jnp.asarray(RNG.standard_normal((6, 4))), axis=-1)
WEIGHTS = jnp.asarray(RNG.random(6))

CALLS = {
    "softmax": (lambda z: sigmax.softmax(z, temperature=2.0), (Z,)),
    "log_softmax where": (lambda z: sigmax.log_softmax(z, where=z > -1.0), (Z,)),
    "logsumexp": (lambda z: sigmax.logsumexp(z, axis=0), (Z,)),
    "hardmax": (sigmax.hardmax, (Z,)),
    "sigmoid": (sigmax.sigmoid, (Z,)),
    "softmax_vjp": (lambda z, g: sigmax.softmax_vjp(z, g), (Z, TARGETS)),
    "log_softmax_jvp": (lambda z, v: sigmax.log_softmax_jvp(z, v), (Z, TARGETS)),
    "sigmoid_vjp": (lambda z, g: sigmax.sigmoid_vjp(z, g), (Z, TARGETS)),
    "softmax_cross_entropy": (sigmax.softmax_cross_entropy, (Z, LABELS)),
    "softmax_cross_entropy float labels": (
        sigmax.softmax_cross_entropy,
        (Z, LABELS.astype(jnp.float64)),
    ),
    "softmax_cross_entropy options": (
        lambda z, y, cw: sigmax.softmax_cross_entropy(
            z, y, class_weight=cw, ignore_index=2, label_smoothing=0.1
        ),
        (Z, LABELS, jnp.asarray([1.0, 2.0, 0.5, 3.0])),
    ),
    "softmax_cross_entropy_value_and_grad": (
        lambda z, y: tuple(sigmax.softmax_cross_entropy_value_and_grad(z, y)),
        (Z, LABELS),
    ),
    "softmax_cross_entropy_with_targets axis 0": (
        lambda z, t: sigmax.softmax_cross_entropy_with_targets(z.T, t.T, axis=0),
        (Z, PROBS),
    ),
    "sigmoid_cross_entropy pos_weight": (
        lambda z, t, pw: sigmax.sigmoid_cross_entropy(z, t, pos_weight=pw),
        (Z, TARGETS, jnp.asarray([1.0, 2.0, 3.0, 4.0])),
    ),
    "sigmoid_cross_entropy_value_and_grad": (
        lambda z, t: tuple(sigmax.sigmoid_cross_entropy_value_and_grad(z, t)),
        (Z, TARGETS),
    ),
    "softmax_cross_entropy_hvp sample_weight": (
        lambda z, v, w: sigmax.softmax_cross_entropy_hvp(z, v, sample_weight=w),
        (Z, TARGETS, WEIGHTS),
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_jit_matches_eager(name: str) -> None:
    fn, args = CALLS[name]
    eager = fn(*args)
    jitted = jax.jit(fn)(*args)
    leaves = zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted), strict=True)
    for e, j in leaves:
        assert j.shape == e.shape
        assert j.dtype == e.dtype
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-14, atol=1e-300)


def _ce_reference(z: object, y: object) -> object:
    """Softmax cross-entropy as JAX users write it (optax's formula)."""
    return jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[:, None], axis=-1)[:, 0]


def test_grad_of_jitted_losses_matches_jax() -> None:
    w = jnp.asarray(RNG.standard_normal(6))
    ours = jax.jit(jax.grad(lambda z, y: (sigmax.softmax_cross_entropy(z, y) * w).sum()))
    ref = jax.grad(lambda z: (_ce_reference(z, LABELS) * w).sum())
    np.testing.assert_allclose(np.asarray(ours(Z, LABELS)), np.asarray(ref(Z)), atol=1e-15)
    # The fused gradient agrees with JAX differentiating sigmax's own value.
    vg = sigmax.softmax_cross_entropy_value_and_grad(Z, LABELS).grad
    np.testing.assert_allclose(np.asarray(vg), np.asarray(ours(Z, LABELS) / w[:, None]))
    # Differentiating with respect to traced targets: d/dt (softplus(z) - t z) = -z.
    g = jax.grad(lambda t: sigmax.sigmoid_cross_entropy(Z, t).sum())(TARGETS)
    np.testing.assert_allclose(np.asarray(g), -np.asarray(Z), atol=1e-15)


def test_grad_through_functions_matches_jax_nn() -> None:
    w = jnp.asarray(RNG.standard_normal(Z.shape))
    for ours, theirs in [
        (sigmax.log_softmax, jax.nn.log_softmax),
        (sigmax.softmax, jax.nn.softmax),
        (sigmax.sigmoid, jax.nn.sigmoid),
        (sigmax.log_sigmoid, jax.nn.log_sigmoid),
    ]:
        g1 = jax.jit(jax.grad(lambda z, f=ours: (f(z) * w).sum()))(Z)
        g2 = jax.grad(lambda z, f=theirs: (f(z) * w).sum())(Z)
        np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), atol=1e-14)


def test_vmap_over_rows() -> None:
    per_row = jax.vmap(sigmax.softmax_cross_entropy)(Z, LABELS)
    np.testing.assert_allclose(
        np.asarray(per_row), np.asarray(sigmax.softmax_cross_entropy(Z, LABELS)), rtol=1e-15
    )
    per_row = jax.vmap(sigmax.sigmoid_cross_entropy)(Z, TARGETS)
    np.testing.assert_allclose(
        np.asarray(per_row), np.asarray(sigmax.sigmoid_cross_entropy(Z, TARGETS)), rtol=1e-15
    )


def test_traced_values_are_not_checked_but_shapes_and_dtypes_are() -> None:
    bad = jnp.asarray([0, 3, 1, 2, 2, 7])
    # Eagerly the range is checked ...
    with pytest.raises(ValueError, match="`labels` must be in"):
        sigmax.softmax_cross_entropy(Z, bad)
    with pytest.raises(ValueError, match="`targets` must be in"):
        sigmax.sigmoid_cross_entropy(Z, TARGETS + 1.0)
    # ... under jit it cannot be (the documented rule): no error, whatever the values.
    out = jax.jit(sigmax.softmax_cross_entropy)(Z, bad)
    assert out.shape == (6,)
    # Shapes and dtypes are still checked under jit, naming the argument.
    with pytest.raises(ValueError, match="`labels` must have shape"):
        jax.jit(sigmax.softmax_cross_entropy)(Z, LABELS[:5])
    with pytest.raises(TypeError, match="`labels` must hold integer class indices"):
        jax.jit(sigmax.softmax_cross_entropy)(Z, LABELS > 0)
    with pytest.raises(ValueError, match="`targets` must have shape"):
        jax.jit(sigmax.sigmoid_cross_entropy)(Z, TARGETS[:, :3])
    with pytest.raises(ValueError, match="`class_weight` must have shape"):
        jax.jit(lambda z, y, cw: sigmax.softmax_cross_entropy(z, y, class_weight=cw))(
            Z, LABELS, jnp.ones(3)
        )
    with pytest.raises(ValueError, match="`pos_weight` must be broadcastable"):
        jax.jit(lambda z, t, pw: sigmax.sigmoid_cross_entropy(z, t, pos_weight=pw))(
            Z, TARGETS, jnp.ones(3)
        )


def test_jax_without_x64_is_never_asked_for_64_bit_dtypes() -> None:
    """JAX's default (x64 off) has no float64 or int64, and asking for them warns and
    truncates: sigmax takes the namespace's own dtypes there (float32 compute, int32 ids).
    conftest.py turns x64 on for the suite; this test turns it off for itself."""
    import warnings

    from sigmax.heads import SigmoidHead, SoftmaxHead
    from sigmax.sampled import full_softmax_evaluate, negative_sampling_loss, sampled_softmax_loss

    rng = np.random.default_rng(7)
    jax.config.update("jax_enable_x64", False)
    try:
        z = jnp.asarray(np.array([[-1.0, 0.05, 2.0], [0.2, 3.0, -4.0]], np.float32))
        y = jnp.asarray([2, 1])
        h = jnp.asarray(rng.standard_normal((2, 3)).astype(np.float32))
        w = jnp.asarray(rng.standard_normal((40, 3)).astype(np.float32))
        b = jnp.zeros(40, jnp.float32)
        neg = jnp.asarray([5, 6, 7])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            decided = SigmoidHead().decide(z)
            top = SoftmaxHead().decide(z)
            losses = [
                sigmax.log_softmax(z),
                sigmax.softmax_cross_entropy(z, y),
                jax.jit(sigmax.softmax_cross_entropy)(z, y),
                negative_sampling_loss(h, w, b, y, neg).value,
                sampled_softmax_loss(h, w, b, y, neg, log_q=(jnp.zeros(2), jnp.zeros(3))).value,
            ]
            evaluation = full_softmax_evaluate(h, w, b, y, k=3)
        assert decided.dtype == jnp.int32
        np.testing.assert_array_equal(np.asarray(decided), [[0, 1, 1], [1, 1, 0]])
        np.testing.assert_array_equal(np.asarray(top), [2, 1])
        assert all(v.dtype == jnp.float32 for v in losses)
        assert evaluation.top_k.dtype == jnp.int32
        # The same classes as NumPy's evaluation of the same numbers.
        ref = full_softmax_evaluate(np.asarray(h), np.asarray(w), np.asarray(b), np.asarray(y), k=3)
        np.testing.assert_array_equal(np.asarray(evaluation.top_k), ref.top_k)
    finally:
        jax.config.update("jax_enable_x64", True)
