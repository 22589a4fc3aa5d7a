"""SampledSoftmaxClassifier: scikit-learn API, learning, partial_fit, sparse input, errors.

References: scikit-learn's estimator checks, LogisticRegression on the same data, and
sklearn.metrics.log_loss / top_k_accuracy_score for the chunked evaluation.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, top_k_accuracy_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import sigmax
from sigmax.estimators.sampled import SampledSoftmaxClassifier

K, D = 200, 16


@pytest.fixture(scope="module")
def task():
    """Zipf class frequencies, Gaussian class centroids: a linear task with known structure."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((K, D))
    p = 1.0 / np.arange(1, K + 1)
    p /= p.sum()
    y = rng.choice(K, 12000, p=p)
    X = centers[y] + 0.5 * rng.standard_normal((y.size, D))
    return X[:10000], y[:10000], X[10000:], y[10000:]


@pytest.fixture(scope="module")
def reference_accuracy(task):
    # LogisticRegression (full softmax, L-BFGS) on the same data: the accuracy to reach.
    X, y, Xt, yt = task
    return LogisticRegression(C=10.0, max_iter=100).fit(X, y).score(Xt, yt)


@parametrize_with_checks(
    [SampledSoftmaxClassifier(n_negatives=8, max_iter=20, learning_rate=0.05, random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    ("params", "gap"),
    [
        ({"loss": "sampled_softmax", "sampler": "unigram"}, 0.03),
        ({"loss": "sampled_softmax", "sampler": "uniform"}, 0.03),
        ({"loss": "sampled_softmax", "sampler": "log_uniform", "optimizer": "adagrad",
          "learning_rate": 0.2}, 0.05),
        ({"loss": "negative_sampling", "sampler": "unigram"}, 0.05),
        ({"loss": "softmax"}, 0.03),
    ],
)  # fmt: skip
def test_learns_a_200_class_task(task, reference_accuracy, params, gap):
    X, y, Xt, yt = task
    kw = {"learning_rate": 0.05, **params}
    clf = SampledSoftmaxClassifier(n_negatives=20, max_iter=15, random_state=0, **kw)
    clf.fit(X, y)
    assert reference_accuracy > 0.97
    assert clf.score(Xt, yt) > reference_accuracy - gap
    assert clf.n_iter_ == 15
    assert len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_evaluate_and_top_k_match_sklearn_metrics(task):
    X, y, Xt, yt = task
    clf = SampledSoftmaxClassifier(n_negatives=20, max_iter=2, random_state=0, eval_chunk_classes=7)
    clf.fit(X, y)
    proba = clf.predict_proba(Xt)
    assert proba.shape == (Xt.shape[0], K)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    ev = clf.evaluate(Xt, yt, k=5)
    assert ev["log_loss"] == pytest.approx(log_loss(yt, proba, labels=clf.classes_), rel=1e-5)
    assert ev["top_k_accuracy"] == pytest.approx(
        top_k_accuracy_score(yt, proba, k=5, labels=clf.classes_)
    )
    top = clf.predict_top_k(Xt, k=5)
    np.testing.assert_array_equal(top[:, 0], clf.predict(Xt))
    np.testing.assert_array_equal(top, clf.classes_[np.argsort(-proba, axis=1)[:, :5]])
    np.testing.assert_allclose(
        np.exp(clf.predict_log_proba(Xt[:5])), proba[:5], rtol=1e-12, atol=1e-300
    )


def test_partial_fit_learns_and_needs_classes(task):
    X, y, Xt, yt = task
    clf = SampledSoftmaxClassifier(n_negatives=20, learning_rate=0.05, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:100], y[:100])
    scores = []
    for _ in range(5):
        for s in range(0, X.shape[0], 2500):
            clf.partial_fit(X[s : s + 2500], y[s : s + 2500], classes=np.arange(K))
        scores.append(clf.score(Xt, yt))
    assert scores[-1] > 0.9
    assert scores[-1] >= scores[0]
    with pytest.raises(ValueError, match="not in `classes_`"):
        clf.partial_fit(X[:3], np.array([0, 1, K + 5]))
    # partial_fit continues a fitted model.
    fitted = SampledSoftmaxClassifier(n_negatives=20, max_iter=1, random_state=0).fit(X, y)
    t = fitted.t_
    fitted.partial_fit(X[:512], y[:512])
    assert fitted.t_ == t + 2


def test_sparse_input_matches_dense(task):
    X, y, Xt, _ = task
    kw = dict(n_negatives=10, max_iter=2, random_state=3)
    dense = SampledSoftmaxClassifier(**kw).fit(X, y)
    sparse = SampledSoftmaxClassifier(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(Xt)), dense.predict(Xt))


def test_projection_on_sparse_bag_of_features():
    # Each class owns 3 of 2000 sparse features; a 24-d learned projection must find them.
    rng = np.random.default_rng(1)
    n_cls, n_feat = 100, 2000
    y = rng.integers(0, n_cls, 6000)
    own = rng.permutation(n_feat)[: n_cls * 3].reshape(n_cls, 3)
    cols = np.c_[own[y], rng.integers(0, n_feat, (y.size, 2))]
    rows = np.repeat(np.arange(y.size), cols.shape[1])
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols.ravel())), shape=(y.size, n_feat))
    clf = SampledSoftmaxClassifier(
        n_components=24, n_negatives=20, max_iter=8, learning_rate=0.02, random_state=0
    ).fit(X[:5000], y[:5000])
    assert clf.components_.shape == (n_feat, 24)
    assert clf.coef_.shape == (n_cls, 24)
    assert clf.score(X[5000:], y[5000:]) > 0.9


def test_early_stopping_keeps_best_and_stops(task):
    X, y, _, _ = task
    clf = SampledSoftmaxClassifier(
        n_negatives=20,
        max_iter=50,
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.05,
        random_state=0,
    ).fit(X, y)
    v = clf.validation_scores_
    assert clf.n_iter_ < 50
    assert len(v) == clf.n_iter_
    # Stopped because the last two epochs did not beat the best before them by tol.
    assert all(a > min(v[:i]) - 0.05 for i, a in enumerate(v) if i >= len(v) - 2)
    # The parameters of the best epoch are restored.
    Xv = X[:500]
    assert clf.evaluate(Xv, y[:500])["log_loss"] < 1.0


def test_clone_and_get_params():
    clf = SampledSoftmaxClassifier(n_negatives=7, sampler="log_uniform", random_state=4)
    params = clf.get_params()
    assert params["n_negatives"] == 7
    assert params["sampler"] == "log_uniform"
    c = clone(clf)
    assert c.get_params() == params
    assert c is not clf
    assert sigmax.SampledSoftmaxClassifier is SampledSoftmaxClassifier


def test_same_seed_same_model(task):
    X, y, _, _ = task
    a = SampledSoftmaxClassifier(max_iter=1, random_state=5).fit(X[:2000], y[:2000])
    b = SampledSoftmaxClassifier(max_iter=1, random_state=5).fit(X[:2000], y[:2000])
    np.testing.assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("loss", "hinge", "`loss` must be one of"),
        ("sampler", "zipf", "`sampler` must be one of"),
        ("optimizer", "sgd", "`optimizer` must be one of"),
        ("n_negatives", 0, "`n_negatives` must be an int >= 1"),
        ("learning_rate", -1.0, "`learning_rate` must be a real"),
        ("validation_fraction", 1.0, "`validation_fraction` must be a real"),
    ],
)
def test_bad_parameters(task, param, value, match):
    X, y, _, _ = task
    with pytest.raises(ValueError, match=match):
        SampledSoftmaxClassifier(**{param: value}).fit(X[:50], y[:50])


def test_too_many_negatives_without_replacement():
    X = np.random.default_rng(0).standard_normal((30, 2))
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match="`n_negatives` must be <= the 3 classes"):
        SampledSoftmaxClassifier(n_negatives=4, replace=False).fit(X, y)
    # Within the limit it trains.
    SampledSoftmaxClassifier(n_negatives=3, replace=False, max_iter=1).fit(X, y)


@pytest.mark.parametrize("kind", ["adam", "adagrad"])
def test_lazy_optimizer_matches_torch_sparse_optimizers(kind):
    # The lazy update is torch.optim.SparseAdam (moments of the touched rows only, bias
    # correction by the global step) and torch.optim.Adagrad on sparse gradients.
    torch = pytest.importorskip("torch")
    from sigmax.estimators.sampled import _LazyOptimizer

    rng = np.random.default_rng(5)
    k, d, lr = 30, 4, 0.05
    w0 = rng.standard_normal((k, d)).astype(np.float32)
    w = w0.copy()
    opt = _LazyOptimizer(kind, lr, w.shape, np.float32)
    tw = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    if kind == "adam":
        topt = torch.optim.SparseAdam([tw], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        topt = torch.optim.Adagrad([tw], lr=lr, eps=1e-10)
    # Checked sparse tensors (also the ones torch's Adagrad builds), so no warning either.
    with torch.sparse.check_sparse_tensor_invariants():
        for t in range(1, 41):
            # Some rows every step, some rarely, some never.
            rows = np.unique(np.r_[0, 1, rng.choice(np.arange(2, 20), rng.integers(1, 6))])
            g = rng.standard_normal((rows.size, d)).astype(np.float32)
            opt.step(w, rows, g, t)
            idx = torch.from_numpy(rows[None, :])
            tw.grad = torch.sparse_coo_tensor(
                idx, torch.from_numpy(g), (k, d), check_invariants=True
            )
            topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(w[20:], w0[20:])


def test_default_sampler_keeps_the_frequent_head(task):
    X, y, _, _ = task
    clf = SampledSoftmaxClassifier(n_negatives=20, max_iter=1, random_state=0).fit(X, y)
    s = clf.head_.sampler
    assert isinstance(s, sigmax.HeadUniformSampler)
    assert s.n_head == 10
    counts = np.bincount(np.searchsorted(clf.classes_, y), minlength=clf.classes_.size)
    assert set(s.head_ids.tolist()) == set(np.argsort(-counts, kind="stable")[:10].tolist())
    assert clf.head_.label_log_q is False
    assert SampledSoftmaxClassifier(head_fraction=0.0)._check_params() is None
    with pytest.raises(ValueError, match=r"`head_fraction` must be a real in \[0, 1\], got 1.5"):
        SampledSoftmaxClassifier(head_fraction=1.5).fit(X[:50], y[:50])
