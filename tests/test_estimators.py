"""The estimators against scikit-learn, finite differences and their own invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.optimize import approx_fprime
from scipy.special import log_expit, log_softmax
from sklearn.datasets import load_breast_cancer, load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sigmax.estimators import (
    MLPClassifier,
    SigmoidClassifier,
    SoftmaxClassifier,
    solvers,
)

TIGHT = {"tol": 1e-10, "max_iter": 10_000}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    # scikit-learn's references are slow with many BLAS threads on a busy machine.
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def objective(coef, intercept, X, y, C, sw=None):
    """scikit-learn's LogisticRegression objective, computed independently with SciPy."""
    sw = np.ones(X.shape[0]) if sw is None else sw
    Z = X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = Z[:, 0]
        per = -np.where(y == 1, log_expit(z), log_expit(-z))
    else:
        per = -log_softmax(Z, axis=1)[np.arange(len(y)), y]
    return per @ sw / sw.sum() + (coef**2).sum() / (2 * C * sw.sum())


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_binary_matches_logistic_regression(cancer, solver, C):
    X, y = cancer
    ref = LogisticRegression(C=C, **TIGHT).fit(X, y)
    est = SigmoidClassifier(C=C, solver=solver, **TIGHT).fit(X, y)
    f_ref = objective(ref.coef_, ref.intercept_, X, y, C)
    f_est = objective(est.coef_, est.intercept_, X, y, C)
    assert abs(f_est - f_ref) <= 1e-6 * f_ref
    assert est.loss_ == pytest.approx(f_est, rel=1e-10)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-4)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-4)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_multinomial_matches_logistic_regression(digits, solver):
    X, y = digits
    ref = LogisticRegression(C=1.0, **TIGHT).fit(X, y)
    est = SoftmaxClassifier(C=1.0, solver=solver, **TIGHT).fit(X, y)
    f_ref = objective(ref.coef_, ref.intercept_, X, y, 1.0)
    f_est = objective(est.coef_, est.intercept_, X, y, 1.0)
    assert abs(f_est - f_ref) <= 1e-6 * f_ref
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-4)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-4)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_one_vs_rest_matches_sklearn(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    ref = OneVsRestClassifier(LogisticRegression(C=0.5, **TIGHT)).fit(X, y)
    est = SigmoidClassifier(C=0.5, **TIGHT).fit(X, y)
    ref_coef = np.vstack([e.coef_ for e in ref.estimators_])
    np.testing.assert_allclose(est.coef_, ref_coef, atol=1e-4)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_multilabel_is_independent_binary_problems():
    X, Y = make_multilabel_classification(300, 8, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    est = SigmoidClassifier(**TIGHT).fit(X, Y)
    assert est.coef_.shape == (4, 8)
    for k in range(4):
        ref = LogisticRegression(**TIGHT).fit(X, Y[:, k])
        np.testing.assert_allclose(est.coef_[k], ref.coef_[0], atol=1e-4)
    assert est.predict(X).shape == Y.shape
    assert set(np.unique(est.predict(X))) <= {0, 1}
    P = est.predict_proba(X)
    np.testing.assert_allclose(np.log(P), est.predict_log_proba(X), rtol=1e-9)


def test_softmax_rejects_multilabel():
    X, Y = make_multilabel_classification(50, 4, n_classes=3, random_state=0)
    with pytest.raises(ValueError, match="multi-label"):
        SoftmaxClassifier().fit(X, Y)


def test_binary_softmax_has_two_outputs_and_equals_sigmoid_at_half_c(cancer):
    X, y = cancer
    sig = SigmoidClassifier(C=1.0, **TIGHT).fit(X, y)
    soft = SoftmaxClassifier(C=0.5, **TIGHT).fit(X, y)
    assert soft.coef_.shape == (2, X.shape[1])
    np.testing.assert_allclose(soft.coef_[1] - soft.coef_[0], sig.coef_[0], atol=1e-5)
    np.testing.assert_allclose(soft.predict_proba(X), sig.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(soft.decision_function(X), sig.decision_function(X), atol=1e-4)


@pytest.mark.parametrize("cls", [SigmoidClassifier, SoftmaxClassifier])
def test_class_weight_equals_sample_weight(digits, cls):
    X, y = digits
    X, y = X[:500], y[:500] % 3
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a = cls(class_weight=cw, **TIGHT).fit(X, y)
    b = cls(**TIGHT).fit(X, y, sample_weight=np.array([cw[v] for v in y]))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)


def test_sample_weight_and_balanced_match_logistic_regression(cancer):
    X, y = cancer
    sw = np.random.default_rng(0).uniform(0.1, 2.0, size=y.shape)
    ref = LogisticRegression(class_weight="balanced", **TIGHT).fit(X, y, sample_weight=sw)
    est = SigmoidClassifier(class_weight="balanced", **TIGHT).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-4)


def test_log_proba_is_computed_in_log_space():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    est = SigmoidClassifier(C=np.inf, max_iter=50).fit(X, y)
    est.coef_  # noqa: B018 - fitted
    est._w[:] = [800.0, -1200.0]  # logits of -1200 .. 1200: probabilities underflow
    lp = est.predict_log_proba(X)
    assert np.all(np.isfinite(lp))
    z = 800.0 * X[:, 0] - 1200.0
    np.testing.assert_allclose(lp[:, 1], log_expit(z), rtol=1e-15)
    np.testing.assert_allclose(lp[:, 0], log_expit(-z), rtol=1e-15)
    soft = SoftmaxClassifier(max_iter=50).fit(X, y)
    soft._w[:] = [0.0, 900.0, 0.0, 0.0]
    np.testing.assert_allclose(
        soft.predict_log_proba(X), log_softmax(X @ [[0.0, 900.0]], axis=1), rtol=1e-15
    )


def test_one_vs_rest_probabilities_are_normalized(digits):
    X, y = digits
    est = SigmoidClassifier(max_iter=200).fit(X[:400], y[:400])
    P = est.predict_proba(X[:50])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(P), est.predict_log_proba(X[:50]), rtol=1e-10, atol=1e-12)


def test_convergence_warning_says_what_to_change(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="Raise max_iter") as record:
        SoftmaxClassifier(max_iter=3).fit(X, y)
    assert record[0].filename == __file__  # points at the caller's line
    with pytest.warns(ConvergenceWarning, match="learning_rate_init"):
        SoftmaxClassifier(solver="sgd", max_iter=2, n_iter_no_change=5).fit(X[:300], y[:300])


def test_warm_start_resumes(digits):
    X, y = digits
    est = SoftmaxClassifier(warm_start=True, max_iter=500).fit(X, y)
    first = est.n_iter_
    est.fit(X, y)
    assert est.n_iter_ < first // 4


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_and_fit_minibatch(cancer, solver):
    X, y = cancer
    est = SoftmaxClassifier(solver=solver, learning_rate_init=0.01, random_state=0)
    losses = []
    for _ in range(5):
        est.partial_fit(X, y, classes=[0, 1])
        losses.append(est.loss_)
    assert losses[-1] < losses[0]
    assert est.score(X, y) > 0.95
    with pytest.raises(ValueError, match="classes"):
        SoftmaxClassifier(solver=solver).partial_fit(X, y)
    assert not hasattr(SoftmaxClassifier(solver="lbfgs"), "partial_fit")
    full = SigmoidClassifier(solver=solver, learning_rate_init=0.01, random_state=0).fit(X, y)
    assert full.score(X, y) > 0.95


def test_early_stopping_restores_best(cancer):
    X, y = cancer
    est = SoftmaxClassifier(
        solver="adam",
        learning_rate_init=0.05,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=500,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ < 500
    assert est.score(X, y) > 0.95


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_shows_loss(cancer, capsys):
    X, y = cancer
    SigmoidClassifier(verbose=1, max_iter=5).fit(X, y)
    out = capsys.readouterr()
    assert "loss" in out.out + out.err


def test_string_labels_and_feature_count(digits):
    X, y = digits
    names = np.array(["zero", "one", "two"])[y[:300] % 3]
    est = SoftmaxClassifier(max_iter=300).fit(X[:300], names)
    assert set(est.predict(X[:20])) <= set(names)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:5, :10])


def test_bad_params_name_the_argument():
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="'C' parameter"):
        SigmoidClassifier(C=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SigmoidClassifier().fit(X, np.zeros(4))


def test_newton_cg_hvp_matches_finite_differences(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    est = SoftmaxClassifier(max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(est._w.shape) * 0.1
    v = rng.standard_normal(est._w.shape)
    T = y.astype(np.intp)
    sw = np.ones(len(y))
    hv = est._loss_hvp(w, v, X, T, sw)
    h = 1e-5
    fd = (est._loss_grad(w + h * v, X, T, sw)[1] - est._loss_grad(w - h * v, X, T, sw)[1]) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_mlp_gradient_matches_finite_differences(head, activation):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    est = MLPClassifier(
        head=head, activation=activation, hidden_layer_sizes=(6, 4), max_iter=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    T = est._encode_targets(y, reset=False)
    sw = rng.uniform(0.5, 2.0, 40)
    w = est._w.copy()
    _, g = est._loss_grad(w, X, T, sw)
    fd = approx_fprime(w, lambda u: est._loss_grad(u, X, T, sw)[0], 1e-7)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6)


def test_mlp_heads_multilabel_and_class_weight():
    X, Y = make_multilabel_classification(200, 6, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    est = MLPClassifier(head="sigmoid", hidden_layer_sizes=(16,), solver="lbfgs", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, Y)
    assert est.predict(X).shape == Y.shape
    with pytest.raises(ValueError, match="multi-label"):
        MLPClassifier(head="softmax").fit(X, Y)
    y = Y[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(class_weight={0: 1.0, 1: 5.0}, solver="lbfgs", random_state=0)
        b = MLPClassifier(solver="lbfgs", random_state=0)
        a.fit(X, y)
        b.fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], atol=1e-8)


def test_blas_threads_limits_small_problems():
    from threadpoolctl import threadpool_info

    with solvers.blas_threads(1000):
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


def test_feature_names_in(cancer):
    pd = pytest.importorskip("pandas")
    X, y = cancer
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = SigmoidClassifier().fit(df, y)
    assert list(est.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[df.columns[::-1]])


def test_blas_threads_probes_large_problems():
    calls = []
    with threadpool_limits(2, user_api="blas"):
        with solvers.blas_threads(10**8, probe=lambda: calls.append(1)):
            pass
        # One warm-up, then two timings with one thread and two with the default.
        assert len(calls) == 5
    with threadpool_limits(1, user_api="blas"):
        calls.clear()
        with solvers.blas_threads(10**8, probe=lambda: calls.append(1)):
            pass
        assert calls == []  # nothing to choose between
