"""Fitting and predicting on Dask arrays, on a dask.distributed cluster."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402

from sigmax.estimators import MLPClassifier, SigmoidClassifier, SoftmaxClassifier  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(1500, 12, n_informative=6, n_classes=3, random_state=0)
    return X, y


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("cls", [SigmoidClassifier, SoftmaxClassifier])
def test_fit_on_cluster_matches_in_memory(client, data, cls, solver):
    X, y = data
    sw = np.random.default_rng(0).uniform(0.5, 1.5, len(y))
    dX = da.from_array(X, chunks=(400, 6))  # uneven rows, split columns: both handled
    dy = da.from_array(y, chunks=400)
    ref = cls(solver=solver, tol=1e-6, max_iter=1000).fit(X, y, sample_weight=sw)
    est = cls(solver=solver, tol=1e-6, max_iter=1000).fit(dX, dy, sample_weight=sw)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=0, atol=1e-8)
    assert est.loss_ == pytest.approx(ref.loss_, rel=1e-12)


def test_predict_maps_over_blocks(client, data):
    X, y = data
    dX = da.from_array(X, chunks=(1000, 12))
    est = SoftmaxClassifier(max_iter=500).fit(X, y)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        out = getattr(est, method)(dX)
        assert isinstance(out, da.Array), method
        np.testing.assert_allclose(out.compute(), getattr(est, method)(X), rtol=1e-14)
    binary = SigmoidClassifier().fit(X, y == 1)
    np.testing.assert_array_equal(binary.predict(dX).compute(), binary.predict(X))
    np.testing.assert_allclose(
        binary.decision_function(dX).compute(), binary.decision_function(X), rtol=1e-14
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_minibatch_streams_chunks(client, data):
    X, y = data
    dX = da.from_array(X, chunks=(500, 12))
    est = SoftmaxClassifier(
        solver="adam", learning_rate_init=0.01, max_iter=20, random_state=0
    ).fit(dX, y)
    assert est.score(X, y) > 0.6
    mlp = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    mlp.fit(dX, y)
    ref = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    ref.fit(X, y)
    np.testing.assert_allclose(mlp.coefs_[0], ref.coefs_[0], atol=1e-6)


def test_dask_errors(client, data):
    X, y = data
    dX = da.from_array(X, chunks=(1000, 12))
    with pytest.raises(ValueError, match="early_stopping"):
        SoftmaxClassifier(solver="adam", early_stopping=True).fit(dX, y)
    est = SoftmaxClassifier().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(dX[:, :5])
