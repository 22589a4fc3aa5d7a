"""save() and sigmax.load(): round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning

import sigmax
from sigmax.estimators import MLPClassifier, SigmoidClassifier, SoftmaxClassifier
from sigmax.estimators.persistence import FORMAT_VERSION


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize(
    "est",
    [
        SigmoidClassifier(C=0.3, class_weight={0: 1.0, 1: 2.0, 2: 1.0}),
        SoftmaxClassifier(fit_intercept=False, random_state=3),
        SoftmaxClassifier(solver="adam", max_iter=3, random_state=0),
        MLPClassifier(hidden_layer_sizes=(5, 3), activation="tanh", max_iter=5, random_state=0),
        MLPClassifier(head="sigmoid", solver="lbfgs", max_iter=5, random_state=0),
    ],
    ids=repr,
)
def test_round_trip(tmp_path, iris, est):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    if isinstance(est.class_weight, dict):
        labels = y
    est = fitted(est, X, labels)
    path = tmp_path / "model.npz"
    est.save(path)
    back = sigmax.load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.classes_, est.classes_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.predict_log_proba(X), est.predict_log_proba(X))
    assert back.n_features_in_ == est.n_features_in_
    assert back.n_iter_ == est.n_iter_
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_round_trip_multilabel(tmp_path):
    X, Y = make_multilabel_classification(60, 5, n_classes=3, random_state=0)
    est = fitted(SigmoidClassifier(), X, Y)
    est.save(tmp_path / "m.npz")
    back = sigmax.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_file_has_no_pickled_objects(tmp_path, iris):
    X, y = iris
    fitted(SoftmaxClassifier(), X, y).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert all(data[k].dtype.kind != "O" for k in data.files)
        meta = json.loads(str(data["meta"]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["sigmax_version"] == sigmax.__version__
    assert meta["estimator"] == "SoftmaxClassifier"
    assert meta["head"] == "softmax"
    assert meta["shapes"] == [[4, 3]]


def test_failed_write_keeps_the_old_file(tmp_path, iris, monkeypatch):
    X, y = iris
    path = tmp_path / "m.npz"
    est = fitted(SoftmaxClassifier(), X, y)
    est.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        est.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(ValueError, match="not a readable sigmax model"):
        sigmax.load(path)


def test_truncated_file(tmp_path, iris):
    X, y = iris
    path = tmp_path / "m.npz"
    fitted(SoftmaxClassifier(), X, y).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        sigmax.load(path)


def rewrite_meta(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(path, **arrays)


def test_wrong_version(tmp_path, iris):
    X, y = iris
    path = tmp_path / "m.npz"
    fitted(SoftmaxClassifier(), X, y).save(path)
    rewrite_meta(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="format version 2; this sigmax reads version 1"):
        sigmax.load(path)


def test_foreign_and_inconsistent_files(tmp_path, iris):
    X, y = iris
    foreign = tmp_path / "other.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(ValueError, match="no metadata"):
        sigmax.load(foreign)
    path = tmp_path / "m.npz"
    fitted(SoftmaxClassifier(), X, y).save(path)
    rewrite_meta(path, n_params=7)
    with pytest.raises(ValueError, match="parameters"):
        sigmax.load(path)
    rewrite_meta(path, n_params=15, estimator="Pickle")
    with pytest.raises(ValueError, match="unknown estimator"):
        sigmax.load(path)
    with pytest.raises(FileNotFoundError):
        sigmax.load(tmp_path / "missing.npz")


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable sigmax model"):
        sigmax.load(path)


def test_unfitted_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SoftmaxClassifier().save(tmp_path / "m.npz")


def test_round_trip_keeps_feature_names(tmp_path, iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    est = fitted(SigmoidClassifier(), df, y)
    est.save(tmp_path / "m.npz")
    back = sigmax.load(tmp_path / "m.npz")
    assert list(back.feature_names_in_) == ["sl", "sw", "pl", "pw"]
    np.testing.assert_array_equal(back.predict(df), est.predict(df))
    with pytest.raises(ValueError, match="feature names"):
        back.predict(df[["pw", "pl", "sw", "sl"]])


@pytest.mark.parametrize(
    "params",
    [
        dict(n_negatives=5, max_iter=2),
        dict(loss="softmax", max_iter=2, n_components=3),
        dict(loss="negative_sampling", sampler="unigram", n_negatives=4, max_iter=1),
    ],
    ids=repr,
)
def test_round_trip_sampled_softmax(tmp_path, params):
    from sigmax.estimators import SampledSoftmaxClassifier

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((30, 6)) * 3
    y = rng.integers(0, 30, 600)
    X = centers[y] + rng.standard_normal((600, 6))
    labels = np.array([f"c{i:02d}" for i in range(30)])[y]
    est = SampledSoftmaxClassifier(random_state=0, **params).fit(X, labels)
    path = tmp_path / "sampled.npz"
    est.save(path)
    assert os.listdir(tmp_path) == ["sampled.npz"]
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype.kind != "O" for k in data.files)
    back = sigmax.load(path)
    assert type(back) is SampledSoftmaxClassifier
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.classes_, est.classes_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.predict_top_k(X, k=5), est.predict_top_k(X, k=5))
    np.testing.assert_array_equal(back.predict_log_proba(X), est.predict_log_proba(X))
    assert back.evaluate(X, labels) == est.evaluate(X, labels)
    assert back.n_iter_ == est.n_iter_
    assert back.t_ == est.t_
    assert back.loss_curve_ == est.loss_curve_
    with pytest.raises(ValueError, match="loaded from a file"):
        back.partial_fit(X, labels)


def test_sampled_softmax_inconsistent_file(tmp_path):
    from sigmax.estimators import SampledSoftmaxClassifier

    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 4))
    y = np.arange(100) % 7
    path = tmp_path / "s.npz"
    SampledSoftmaxClassifier(n_negatives=3, max_iter=1, random_state=0).fit(X, y).save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef_"] = arrays["coef_"][:, :3]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"coef_ has shape \(7, 3\), expected \(7, 4\)"):
        sigmax.load(path)
    del arrays["intercept_"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="missing the array 'intercept_'"):
        sigmax.load(path)
