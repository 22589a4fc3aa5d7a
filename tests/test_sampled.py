"""Samplers, sampled losses, chunked full-softmax evaluation and the sampled heads.

References: central finite differences (gradients), scipy.special (log_softmax, log_expit,
logsumexp), scipy.stats.chisquare (sampler frequencies) and plain NumPy argsort (top-k).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

import sigmax
from sigmax import (
    LogUniformSampler,
    NegativeSample,
    NegativeSamplingHead,
    SampledSoftmaxHead,
    UniformSampler,
    UnigramSampler,
    full_softmax_evaluate,
    negative_sampling_loss,
    sampled_softmax_loss,
)

K, D, N, M = 13, 4, 5, 6


def _problem(rng, shared=True, m=M):
    h = rng.standard_normal((N, D))
    W = rng.standard_normal((K, D))
    b = rng.standard_normal(K)
    y = rng.integers(0, K, N)
    neg = rng.integers(0, K, m if shared else (N, m))
    # Force at least one accidental hit and one repeated negative.
    if shared:
        neg[0] = y[0]
        neg[1] = neg[2]
    else:
        neg[0, 0] = y[0]
        neg[1, 1] = neg[1, 2]
    return h, W, b, y, neg


def _dense(r, k, d):
    gw = np.zeros((k, d))
    gb = np.zeros(k)
    gw[r.row_ids] = r.grad_rows
    gb[r.row_ids] = r.grad_bias
    return gw, gb


def _fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp_, xm = x.copy(), x.copy()
        xp_[i] += eps
        xm[i] -= eps
        g[i] = (f(xp_) - f(xm)) / (2 * eps)
    return g


def _losses(log_q):
    def ns(h, W, b, y, neg):
        return negative_sampling_loss(h, W, b, y, neg, remove_accidental_hits=True)

    def ss(h, W, b, y, neg):
        return sampled_softmax_loss(h, W, b, y, neg, log_q=log_q(y, neg))

    return {"negative_sampling": ns, "sampled_softmax": ss}


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("kind", ["negative_sampling", "sampled_softmax"])
def test_gradients_match_finite_differences(rng, shared, kind):
    h, W, b, y, neg = _problem(rng, shared)
    q = rng.uniform(0.01, 0.5, K)
    fn = _losses(lambda y, neg: (np.log(q[y]), np.log(q[neg])))[kind]
    r = fn(h, W, b, y, neg)
    gw, gb = _dense(r, K, D)
    np.testing.assert_allclose(r.grad_hidden, _fd(lambda x: fn(x, W, b, y, neg).value.sum(), h),
                               rtol=1e-6, atol=1e-8)  # fmt: skip
    np.testing.assert_allclose(gw, _fd(lambda x: fn(h, x, b, y, neg).value.sum(), W),
                               rtol=1e-6, atol=1e-8)  # fmt: skip
    np.testing.assert_allclose(gb, _fd(lambda x: fn(h, W, x, y, neg).value.sum(), b),
                               rtol=1e-6, atol=1e-8)  # fmt: skip
    # Only the label and negative rows are reported, each once, sorted.
    assert set(r.row_ids.tolist()) == set(y.tolist()) | set(np.ravel(neg).tolist())
    assert np.all(np.diff(r.row_ids) > 0)


def test_negative_sampling_value_matches_scipy(rng):
    h, W, b, y, neg = _problem(rng, shared=False)
    x = h @ W.T + b
    r = negative_sampling_loss(h, W, b, y, neg)
    xneg = np.take_along_axis(x, neg, axis=1)
    ref = -sps.log_expit(x[np.arange(N), y]) - sps.log_expit(-xneg).sum(axis=1)
    np.testing.assert_allclose(r.value, ref, rtol=1e-14)


def test_negative_sampling_has_no_saturation_skip():
    # gensim skips |x| >= 6; here a confidently wrong negative still gets sigmoid(20).
    h = np.array([[1.0]])
    W = np.array([[0.0], [20.0], [-40.0]])
    r = negative_sampling_loss(h, W, None, [2], [1])
    assert r.value[0] == pytest.approx(-sps.log_expit(-40.0) - sps.log_expit(-20.0), rel=1e-15)
    gw = np.zeros((3, 1))
    gw[r.row_ids] = r.grad_rows
    assert gw[1, 0] == pytest.approx(sps.expit(20.0), rel=1e-15)
    assert gw[2, 0] == pytest.approx(-sps.expit(40.0), rel=1e-15)


def test_sampled_softmax_with_all_classes_equals_full_softmax(rng):
    h, W, b, y, _ = _problem(rng)
    s = UniformSampler(K).sample(K, rng=rng, replace=False, labels=y)
    assert sorted(s.ids.tolist()) == list(range(K))
    r = sampled_softmax_loss(h, W, b, y, s, subtract_log_q=True, remove_accidental_hits=True)
    full = -sps.log_softmax(h @ W.T + b, axis=1)[np.arange(N), y]
    np.testing.assert_allclose(r.value, full, rtol=1e-13)
    # The gradient is the full softmax gradient too: (softmax - onehot) summed over the batch.
    p = sps.softmax(h @ W.T + b, axis=1)
    p[np.arange(N), y] -= 1
    gw, gb = _dense(r, K, D)
    np.testing.assert_allclose(gw, p.T @ h, atol=1e-13)
    np.testing.assert_allclose(gb, p.sum(0), atol=1e-13)
    np.testing.assert_allclose(r.grad_hidden, p @ W, atol=1e-13)


def test_accidental_hits_are_removed(rng):
    h, W, b, y, neg = _problem(rng)
    lq = np.log(rng.uniform(0.1, 1.0, K))
    r = sampled_softmax_loss(h, W, b, y, neg, log_q=(lq[y], lq[neg]))
    x = h @ W.T + b
    z = x - lq
    # By default the label's logit is not corrected; with label_log_q=True it is.
    r_tf = sampled_softmax_loss(h, W, b, y, neg, log_q=(lq[y], lq[neg]), label_log_q=True)
    for i in range(N):
        kept = [j for j in neg if j != y[i]]
        ref = -sps.log_softmax(np.r_[x[i, y[i]], z[i, kept]])[0]
        assert r.value[i] == pytest.approx(ref, rel=1e-13)
        ref_tf = -sps.log_softmax(np.r_[z[i, y[i]], z[i, kept]])[0]
        assert r_tf.value[i] == pytest.approx(ref_tf, rel=1e-13)
    # Without removal the label competes with itself and the loss grows.
    r2 = sampled_softmax_loss(h, W, b, y, neg, log_q=(lq[y], lq[neg]), remove_accidental_hits=False)
    assert r2.value[0] > r.value[0]
    # Negative sampling: a masked hit contributes neither value nor gradient.
    n1 = negative_sampling_loss(h, W, b, y, neg, remove_accidental_hits=True)
    kept0 = [j for j in neg if j != y[0]]
    x0 = h[0] @ W.T + b
    assert n1.value[0] == pytest.approx(
        -sps.log_expit(x0[y[0]]) - sps.log_expit(-x0[kept0]).sum(), rel=1e-13
    )


def test_negative_sample_object_brings_its_counts(rng):
    h, W, b, y, _ = _problem(rng)
    s = LogUniformSampler(K).sample(M, rng=rng, labels=y)
    a = sampled_softmax_loss(h, W, b, y, s)
    c = sampled_softmax_loss(
        h, W, b, y, s.ids, expected_counts=(s.label_expected_counts, s.expected_counts)
    )
    d = sampled_softmax_loss(
        h, W, b, y, s.ids, log_q=(np.log(s.label_expected_counts), np.log(s.expected_counts))
    )
    np.testing.assert_array_equal(a.value, c.value)
    np.testing.assert_allclose(a.value, d.value, rtol=1e-15)
    with pytest.raises(ValueError, match="subtract_log_q"):
        sampled_softmax_loss(h, W, b, y, s.ids)
    # The labels' counts are needed only to correct the label.
    s3 = LogUniformSampler(K).sample(3, rng=rng)
    e = sampled_softmax_loss(h, W, b, y, s3)
    f = sampled_softmax_loss(h, W, b, y, s3.ids, log_q=(np.zeros(N), np.log(s3.expected_counts)))
    np.testing.assert_allclose(e.value, f.value, rtol=1e-15)
    with pytest.raises(ValueError, match="without `labels`"):
        sampled_softmax_loss(h, W, b, y, s3, label_log_q=True)
    with pytest.raises(ValueError, match="not both"):
        sampled_softmax_loss(h, W, b, y, s.ids, expected_counts=(1, 1), log_q=(0, 0))


def _enumerate_samples(sampler, m):
    """Every sample of `m` draws with replacement and its probability (small K only)."""
    import itertools

    q = sampler.probabilities()
    support = np.flatnonzero(q)
    head = getattr(sampler, "head_ids", np.zeros(0, dtype=np.int64))
    for draw in itertools.product(support.tolist(), repeat=m):
        yield np.r_[head, draw].astype(np.int64), float(np.prod(q[list(draw)]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("make", "m"),
    [
        (lambda: UniformSampler(K), 1),
        (lambda: UniformSampler(K), 2),
        (lambda: UnigramSampler(np.arange(1.0, K + 1), power=0.75), 2),
        (lambda: sigmax.HeadUniformSampler(np.arange(K, 0, -1.0), n_head=4), 2),
    ],
)
def test_sampled_normalizer_is_unbiased(rng, make, m, dtype):
    # Exact expectation over every possible sample. The loss is -x_y + log Zhat; by default
    # Zhat = e^{x_y} + sum_{j in S, j != y} e^{x_j} / E[c_j], whose mean is the full
    # normalizer Z = sum_k e^{x_k}. With label_log_q=True (TensorFlow) its mean is
    # e^{x_y} + E[c_y] (Z - e^{x_y}): the other classes are scaled down by E[c_y].
    sampler = make()
    head = getattr(sampler, "head_ids", np.zeros(0, dtype=np.int64))
    h, W, b, y, _ = _problem(rng)
    h, W, b = (a.astype(dtype) for a in (h, W, b))
    x = h.astype(np.float64) @ W.T.astype(np.float64) + b.astype(np.float64)
    x_y = x[np.arange(N), y]
    lab_ec = np.where(np.isin(y, head), 1.0, m * sampler.probability(y))
    mean_z = np.zeros(N)
    mean_z_tf = np.zeros(N)
    total = 0.0
    for ids, prob in _enumerate_samples(sampler, m):
        ec = np.where(np.isin(ids, head), 1.0, m * sampler.probability(ids))
        for label_log_q, acc in ((False, mean_z), (True, mean_z_tf)):
            r = sampled_softmax_loss(
                h, W, b, y, ids, expected_counts=(lab_ec, ec), label_log_q=label_log_q
            )
            acc += prob * np.exp(r.value.astype(np.float64) + x_y)
        total += prob
    assert total == pytest.approx(1.0, rel=1e-12)
    z = np.exp(sps.logsumexp(x, axis=1))
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(mean_z, z, rtol=rtol)
    np.testing.assert_allclose(mean_z_tf, np.exp(x_y) + lab_ec * (z - np.exp(x_y)), rtol=rtol)


# --------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------

SAMPLERS = {
    "uniform": lambda: UniformSampler(20),
    "log_uniform": lambda: LogUniformSampler(20),
    "unigram": lambda: UnigramSampler(np.r_[np.arange(1, 19) ** 2.0, 0.0, 7.0], power=0.75),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_frequencies_chi_square(name):
    s = SAMPLERS[name]()
    rng = np.random.default_rng(1234)
    draws = s.sample(200_000, rng=rng).ids
    q = s.probabilities()
    assert q.sum() == pytest.approx(1.0, rel=1e-14)
    obs = np.bincount(draws, minlength=s.n_classes)
    keep = q > 0
    assert np.all(obs[~keep] == 0)
    res = st.chisquare(obs[keep], q[keep] * draws.size)
    assert res.pvalue > 1e-3, res


def test_log_uniform_probabilities_match_formula():
    import mpmath

    mpmath.mp.dps = 40
    for n_cls in (1000, 10**6):
        k = np.r_[0:20, n_cls - 20 : n_cls]
        q = LogUniformSampler(n_cls).probability(k)
        ref = [float(mpmath.log(mpmath.mpf(int(i) + 2) / (int(i) + 1)) / mpmath.log(n_cls + 1))
               for i in k]  # fmt: skip
        np.testing.assert_allclose(q, ref, rtol=4e-16)


def test_unigram_power_and_alias_table():
    c = np.array([1.0, 16.0, 81.0, 0.0])
    s = UnigramSampler(c, power=0.5)
    np.testing.assert_allclose(s.probabilities(), [1 / 14, 4 / 14, 9 / 14, 0.0], rtol=1e-15)
    # Mass per class from the table: keep-probabilities plus alias hand-offs, divided by K.
    mass = s._prob.copy()
    np.add.at(mass, s._alias, 1 - s._prob)
    np.testing.assert_allclose(mass / c.size, s.probabilities(), atol=1e-15)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_without_replacement_is_distinct_and_counts_are_inclusion_probabilities(name):
    s = SAMPLERS[name]()
    rng = np.random.default_rng(7)
    num, reps = 5, 4000
    inc = np.zeros(s.n_classes)
    reported = np.zeros(s.n_classes)
    for _ in range(reps):
        smp = s.sample(num, rng=rng, replace=False)
        assert len(set(smp.ids.tolist())) == num
        inc[smp.ids] += 1
        reported += -np.expm1(_tries_of(s, smp) * np.log1p(-s.probabilities()))
    # The reported count is the inclusion probability given the number of tries, so its
    # average over draws matches the observed inclusion frequency.
    np.testing.assert_allclose(inc / reps, reported / reps, atol=0.03)


def _tries_of(s, smp):
    # Recover the number of tries from one id's reported count (the same T for the row).
    p = s.probability(smp.ids[:1])[0]
    c = smp.expected_counts[0]
    if c >= 1.0:
        return np.inf
    return np.log1p(-c) / np.log1p(-p)


def test_per_example_and_shared_shapes(rng):
    s = UnigramSampler(np.arange(1.0, 101.0))
    y = np.array([3, 4, 5])
    a = s.sample(8, rng=rng, batch_size=3, labels=y)
    assert a.ids.shape == a.expected_counts.shape == (3, 8)
    assert a.label_expected_counts.shape == (3,)
    np.testing.assert_allclose(a.expected_counts, 8 * s.probability(a.ids))
    b = s.sample(8, rng=rng, batch_size=3, labels=y, replace=False)
    assert all(len(set(row)) == 8 for row in b.ids.tolist())
    c = s.sample(8, rng=rng, labels=y)
    assert c.ids.shape == (8,)
    assert isinstance(c, NegativeSample)


def test_sampler_reproducible_with_same_seed():
    s = LogUniformSampler(1000)
    a = s.sample(50, rng=np.random.default_rng(3), replace=False)
    b = s.sample(50, rng=np.random.default_rng(3), replace=False)
    np.testing.assert_array_equal(a.ids, b.ids)


def test_sampler_errors(rng):
    with pytest.raises(ValueError, match=r"`num` must be <= the 10"):
        UniformSampler(10).sample(11, rng=rng, replace=False)
    with pytest.raises(ValueError, match=r"`num` must be <= the 2 "):
        UnigramSampler([1.0, 0.0, 2.0]).sample(3, rng=rng, replace=False)
    with pytest.raises(ValueError, match=r"`counts` must be finite and >= 0, got -1.0 at index 1"):
        UnigramSampler([1.0, -1.0])
    with pytest.raises(ValueError, match="all zeros"):
        UnigramSampler([0, 0, 0])
    with pytest.raises(ValueError, match="1-D"):
        UnigramSampler([[1.0, 2.0]])
    with pytest.raises(ValueError, match="empty"):
        UnigramSampler([])
    with pytest.raises(TypeError, match="Generator"):
        UniformSampler(3).sample(2, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 3\), got 3 at index 1"):
        UniformSampler(3).sample(2, rng=rng, labels=[0, 3])
    with pytest.raises(ValueError, match="n_classes"):
        LogUniformSampler(0)


# --------------------------------------------------------------------------------------------
# Loss input errors
# --------------------------------------------------------------------------------------------


def test_loss_input_errors(rng):
    h, W, b, y, neg = _problem(rng)
    bad = y.copy()
    bad[3] = K
    with pytest.raises(
        ValueError, match=rf"`labels` must be in \[0, {K}\), got {K} at flat index 3"
    ):
        negative_sampling_loss(h, W, b, bad, neg)
    with pytest.raises(ValueError, match="`negatives` must be in"):
        sampled_softmax_loss(h, W, b, y, np.r_[neg, -1], subtract_log_q=False)
    with pytest.raises(ValueError, match="`weights` must have shape"):
        negative_sampling_loss(h, W[:, :2], b, y, neg)
    with pytest.raises(ValueError, match="`biases` must have shape"):
        negative_sampling_loss(h, W, b[:3], y, neg)
    with pytest.raises(ValueError, match="`labels` must have shape"):
        negative_sampling_loss(h, W, b, y[:2], neg)
    with pytest.raises(TypeError, match="integer class ids"):
        negative_sampling_loss(h, W, b, y.astype(float), neg)
    with pytest.raises(ValueError, match="expected counts must have shape"):
        sampled_softmax_loss(h, W, b, y, neg, log_q=(np.zeros(N), np.zeros(2)))


# --------------------------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
def test_losses_on_every_namespace(xp, rng, shared):
    import array_api_compat

    if array_api_compat.is_dask_namespace(xp):
        pytest.skip("the sparse row update has a data-dependent shape, which Dask cannot size")
    h, W, b, y, neg = _problem(rng, shared)
    lq = np.log(rng.uniform(0.1, 1.0, K))
    ref_s = sampled_softmax_loss(h, W, b, y, neg, log_q=(lq[y], lq[neg]))
    ref_n = negative_sampling_loss(h, W, b, y, neg)
    a = [xp.asarray(v) for v in (h, W, b, y, neg)]
    got_s = sampled_softmax_loss(*a, log_q=(xp.asarray(lq[y]), xp.asarray(lq[neg])))
    got_n = negative_sampling_loss(*a)
    for got, ref in ((got_s, ref_s), (got_n, ref_n)):
        for g, r in zip(got, ref, strict=True):
            assert array_api_compat.array_namespace(g) is array_api_compat.array_namespace(a[0])
            np.testing.assert_allclose(_np(g), r, rtol=1e-12, atol=1e-14)
    ev = full_softmax_evaluate(*a[:4], k=3, chunk_classes=4)
    ref_ev = full_softmax_evaluate(h, W, b, y, k=3, chunk_classes=4)
    np.testing.assert_allclose(_np(ev.value), ref_ev.value, rtol=1e-12)
    np.testing.assert_array_equal(_np(ev.top_k), ref_ev.top_k)


def _np(a):
    import array_api_compat

    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    return np.from_dlpack(a)


def test_float32_keeps_dtype(rng):
    h, W, b, y, neg = (v.astype(np.float32) if v.dtype == float else v for v in _problem(rng))
    r = negative_sampling_loss(h, W, b, y, neg)
    assert r.value.dtype == r.grad_hidden.dtype == r.grad_rows.dtype == np.float32
    ref = negative_sampling_loss(*(v.astype(float) if v.dtype == np.float32 else v
                                   for v in (h, W, b, y, neg)))  # fmt: skip
    np.testing.assert_allclose(r.value, ref.value, rtol=1e-5)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("with_log_q", [True, False])
@pytest.mark.parametrize("remove_hits", [True, False])
@pytest.mark.parametrize("kind", ["sampled_softmax", "negative_sampling"])
def test_float32_shared_matches_float64(rng, kind, with_bias, with_log_q, remove_hits):
    # float32 with shared negatives takes the fused NumPy path (repeated ids merged); the
    # float64 path, checked against finite differences above, is the reference.
    k, d, n, m = 40, 6, 9, 30
    h = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((k, d)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32) if with_bias else None
    y = rng.integers(0, k, n)
    neg = rng.integers(0, k, m)
    neg[:3] = y[0]  # a repeated accidental hit
    neg[3:6] = neg[6]  # a repeated negative
    q = rng.uniform(0.01, 0.5, k)
    lq = (np.log(q[y]), np.log(q[neg])) if with_log_q else None
    kw: dict = dict(remove_accidental_hits=remove_hits)
    fn = negative_sampling_loss
    if kind == "sampled_softmax":
        kw.update(log_q=lq, subtract_log_q=with_log_q)
        fn = sampled_softmax_loss
    cot = rng.uniform(0.1, 1.0, n)
    r = fn(h, W, b, y, neg, _cotangent=cot.astype(np.float32), **kw)
    ref = fn(
        h.astype(float), W.astype(float), None if b is None else b.astype(float), y, neg,
        _cotangent=cot.astype(np.float32).astype(float), **kw,
    )  # fmt: skip
    for got, want in zip(r, ref, strict=True):
        if want is None:
            assert got is None
            continue
        assert got.dtype == (np.int64 if want.dtype == np.int64 else np.float32)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_sampled_softmax_float32_keeps_tiny_losses():
    # The label holds nearly all the mass: the loss is ~1e-12, and 1 - p_label must not cancel.
    h = np.array([[1.0, 0.0]], dtype=np.float32)
    W = np.array([[30.0, 0.0], [2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    neg = np.array([1, 2, 2])
    kw = dict(subtract_log_q=False)
    r = sampled_softmax_loss(h, W, None, [0], neg, **kw)
    ref = sampled_softmax_loss(h.astype(float), W.astype(float), None, [0], neg, **kw)
    assert 0 < float(ref.value[0]) < 1e-10
    # Closed form: the loss is log1p(others) and dloss/dx_label = -others / (1 + others).
    others = np.exp(2.0 - 30.0) + 2 * np.exp(-30.0)
    np.testing.assert_allclose(ref.value, [np.log1p(others)], rtol=1e-14)
    np.testing.assert_allclose(ref.grad_rows[0, 0], -others / (1 + others), rtol=1e-14)
    np.testing.assert_allclose(r.value, ref.value, rtol=1e-6)
    np.testing.assert_allclose(r.grad_rows, ref.grad_rows, rtol=1e-6, atol=1e-30)


# --------------------------------------------------------------------------------------------
# Chunked full softmax
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("chunk_classes", "chunk_rows"), [(1, 2), (7, 3), (100, 1024)])
def test_full_softmax_evaluate_matches_dense(rng, chunk_classes, chunk_rows):
    n, k_cls = 23, 57
    h = rng.standard_normal((n, 6))
    W = rng.standard_normal((k_cls, 6)) * 3
    b = rng.standard_normal(k_cls)
    y = rng.integers(0, k_cls, n)
    ev = full_softmax_evaluate(h, W, b, y, k=5, chunk_classes=chunk_classes, chunk_rows=chunk_rows)
    z = h @ W.T + b
    np.testing.assert_allclose(ev.value, -sps.log_softmax(z, axis=1)[np.arange(n), y], rtol=1e-12)
    np.testing.assert_array_equal(ev.top_k, np.argsort(-z, axis=1, kind="stable")[:, :5])
    np.testing.assert_array_equal(ev.correct, z.argmax(1) == y)
    np.testing.assert_array_equal(ev.in_top_k, (np.argsort(-z, axis=1)[:, :5] == y[:, None]).any(1))
    no_lab = full_softmax_evaluate(h, W, b, k=2)
    assert no_lab.value is None
    np.testing.assert_array_equal(no_lab.top_k, ev.top_k[:, :2])


def test_full_softmax_evaluate_keeps_tiny_losses():
    # A confident correct example: loss = log1p(exp(-40)) ~ 4.2e-18, lost by log(sum(exp)).
    h = np.array([[1.0]])
    W = np.array([[0.0], [40.0], [-5.0]])
    ev = full_softmax_evaluate(h, W, None, [1], chunk_classes=1)
    ref = -sps.log_softmax(np.array([0.0, 40.0, -5.0]))[1]
    assert ev.value[0] == pytest.approx(ref, rel=1e-14)
    assert ev.value[0] > 0


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head_cls", [SampledSoftmaxHead, NegativeSamplingHead])
def test_heads_reduce_to_weighted_mean(rng, head_cls):
    h, W, b, y, _ = _problem(rng)
    head = head_cls(K, sampler=LogUniformSampler(K), n_negatives=4)
    assert head.n_outputs(K) == K
    neg = head.sample(y, rng=np.random.default_rng(5))
    w = rng.uniform(0.5, 2.0, N)
    r = head.loss_and_grad(h, W, b, y, negatives=neg, sample_weight=w)
    per = head._loss_fn(h, W, b, y, neg)
    assert float(r.value) == pytest.approx(float(np.sum(w * per.value) / w.sum()), rel=1e-14)
    fd = _fd(
        lambda x: float(head.loss_and_grad(x, W, b, y, negatives=neg, sample_weight=w).value), h
    )
    np.testing.assert_allclose(r.grad_hidden, fd, rtol=1e-6, atol=1e-9)
    # The same rng gives the same negatives, so the drawn and the explicit paths agree.
    r2 = head.loss_and_grad(h, W, b, y, rng=np.random.default_rng(5), sample_weight=w)
    np.testing.assert_array_equal(r.grad_rows, r2.grad_rows)


def test_head_full_link_methods(rng):
    z = rng.standard_normal((4, 9))
    y = np.array([0, 3, 8, 2])
    ss = SampledSoftmaxHead(9)
    np.testing.assert_allclose(ss.predict_proba(z), sps.softmax(z, axis=1), rtol=1e-14)
    assert ss.loss(z, y) == pytest.approx(-sps.log_softmax(z, axis=1)[np.arange(4), y].mean())
    np.testing.assert_array_equal(ss.decide(z), z.argmax(1))
    np.testing.assert_array_equal(ss.decide(z, top_k=3), np.argsort(-z, axis=1)[:, :3])
    ns = NegativeSamplingHead(9)
    np.testing.assert_allclose(ns.predict_proba(z), sps.expit(z), rtol=1e-14)
    sign = -np.ones_like(z)
    sign[np.arange(4), y] = 1
    assert ns.loss(z, y) == pytest.approx(-sps.log_expit(sign * z).sum(1).mean(), rel=1e-14)
    ev = ss.evaluate(z[:, :3], rng.standard_normal((9, 3)), None, y, k=2)
    assert ev.top_k.shape == (4, 2)


def test_head_errors():
    with pytest.raises(ValueError, match="n_negatives"):
        SampledSoftmaxHead(5, n_negatives=6, replace=False)
    with pytest.raises(ValueError, match="cover n_classes=5"):
        SampledSoftmaxHead(5, sampler=UniformSampler(6))
    with pytest.raises(TypeError, match="sampler"):
        NegativeSamplingHead(5, sampler="uniform")
    with pytest.raises(ValueError, match="labels"):
        SampledSoftmaxHead(5).encode([0, 5])


def test_public_names_are_exported():
    for name in sigmax.sampled.__all__:
        assert getattr(sigmax, name) is getattr(sigmax.sampled, name)


def test_sampled_softmax_float32_label_far_below_a_negative():
    # e^(z_label - max) underflows in float64: the loss must stay finite, ~900.
    h = np.array([[1.0, 0.0]], dtype=np.float32)
    W = np.array([[0.0, 0.0], [900.0, 0.0]], dtype=np.float32)
    r = sampled_softmax_loss(h, W, None, [0], [1], subtract_log_q=False)
    ref = sampled_softmax_loss(
        h.astype(float), W.astype(float), None, [0], [1], subtract_log_q=False
    )
    np.testing.assert_allclose(r.value, [900.0], rtol=1e-7)
    np.testing.assert_allclose(r.value, ref.value, rtol=1e-7)
    np.testing.assert_allclose(r.grad_rows, ref.grad_rows, rtol=1e-7)


def test_head_uniform_sampler_draws_and_counts():
    counts = np.r_[5.0, 9.0, 0.0, 9.0, 1.0, 7.0, 0.0, 2.0, 3.0, 0.0]
    s = sigmax.HeadUniformSampler(counts, n_head=3)
    # The 3 largest counts, ties broken by the lower id: 9 (id 1), 9 (id 3), 7 (id 5).
    assert s.head_ids.tolist() == [1, 3, 5]
    tail = np.setdiff1d(np.arange(10), s.head_ids)
    rng = np.random.default_rng(11)
    r = s.sample(200_003, rng=rng, labels=[1, 2])
    assert r.ids[:3].tolist() == [1, 3, 5]
    draws = r.ids[3:]
    assert not np.isin(draws, s.head_ids).any()
    obs = np.bincount(draws, minlength=10)[tail]
    assert st.chisquare(obs).pvalue > 1e-3
    np.testing.assert_allclose(r.expected_counts[:3], 1.0)
    np.testing.assert_allclose(r.expected_counts[3:], 200_000 / 7)
    np.testing.assert_allclose(r.label_expected_counts, [1.0, 200_000 / 7])
    np.testing.assert_allclose(s.probabilities()[tail], 1 / 7)
    # Without replacement, per example: distinct rows, and the reported count of a tail id
    # is its observed inclusion frequency.
    b = s.sample(5, rng=rng, replace=False, batch_size=4000)
    assert b.ids.shape == b.expected_counts.shape == (4000, 5)
    assert all(len(set(row)) == 5 for row in b.ids.tolist())
    inc = np.bincount(b.ids.ravel(), minlength=10) / 4000
    np.testing.assert_allclose(inc[s.head_ids], 1.0)
    np.testing.assert_allclose(inc[tail], 2 / 7, atol=0.03)
    np.testing.assert_allclose(b.expected_counts[:, 3:], 2 / 7)
    # n_head=0 is uniform sampling.
    u = sigmax.HeadUniformSampler(counts, n_head=0).sample(4, rng=rng)
    np.testing.assert_allclose(u.expected_counts, 0.4)


def test_head_uniform_sampler_errors(rng):
    with pytest.raises(ValueError, match="`n_head` must be <= n_classes=3, got 4"):
        sigmax.HeadUniformSampler([1, 2, 3], n_head=4)
    with pytest.raises(ValueError, match="`n_head` must be >= 0"):
        sigmax.HeadUniformSampler([1, 2, 3], n_head=-1)
    with pytest.raises(ValueError, match=r"`counts` must be finite and >= 0, got -1.0 at index 1"):
        sigmax.HeadUniformSampler([1.0, -1.0], n_head=1)
    s = sigmax.HeadUniformSampler([1, 2, 3, 4], n_head=2)
    with pytest.raises(ValueError, match="`num` must be >= n_head=2, got 1"):
        s.sample(1, rng=rng)
    with pytest.raises(ValueError, match="`num` must be <= n_classes=4"):
        s.sample(5, rng=rng, replace=False)
    with pytest.raises(ValueError, match="every class is head"):
        sigmax.HeadUniformSampler([1, 2], n_head=2).sample(3, rng=rng)
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 4\), got 4 at index 0"):
        s.sample(3, rng=rng, labels=[4])
