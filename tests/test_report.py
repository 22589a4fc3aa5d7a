"""Metrics against scikit-learn, the comparison runs, figures, rendering and atomic writes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sigmax import datasets
from sigmax.datasets import DataError
from sigmax.report import compare, metrics, plots, render
from sigmax.report.atomic import atomic_dir, atomic_write_bytes, check_report_dest

# --------------------------------------------------------------------------- metrics


def test_reliability_and_ece_match_sklearn_calibration_curve(rng):
    from sklearn.calibration import calibration_curve

    p = rng.uniform(size=5000)
    y = rng.uniform(size=5000) < p**1.5
    n_bins = 10
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p), minlength=10)
    counts = counts[counts > 0]
    want = float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
    assert metrics.expected_calibration_error(p, y, n_bins=n_bins) == pytest.approx(want, rel=1e-12)
    conf, freq, count = metrics.reliability_curve(p, y, n_bins=n_bins)
    np.testing.assert_allclose(freq[count > 0], prob_true, rtol=1e-12)
    np.testing.assert_allclose(conf[count > 0], prob_pred, rtol=1e-12)


def test_score_probabilities_against_sklearn(rng):
    from sklearn import metrics as skm

    y = rng.integers(0, 4, size=300)
    logits = rng.standard_normal((300, 4)) + 2 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    s = metrics.score_probabilities("multiclass", y, proba, proba.argmax(1))
    assert s["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-12)
    assert s["brier"] == pytest.approx(np.mean(np.sum((proba - np.eye(4)[y]) ** 2, 1)), rel=1e-12)
    conf, hit = metrics.calibration_pairs("multiclass", y, proba)
    assert s["ece"] == metrics.expected_calibration_error(conf, hit)

    Y = (rng.uniform(size=(200, 5)) < 0.3).astype(int)
    P = np.clip(0.3 + 0.4 * (Y - 0.3) + 0.1 * rng.standard_normal(Y.shape), 0.01, 0.99)
    s = metrics.score_probabilities("multilabel", Y, P, (P > 0.5).astype(int))
    assert s["accuracy"] == skm.accuracy_score(Y, P > 0.5)
    assert s["log_loss"] == pytest.approx(skm.log_loss(Y.ravel(), P.ravel()), rel=1e-12)
    assert s["brier"] == pytest.approx(skm.brier_score_loss(Y.ravel(), P.ravel()), rel=1e-12)


def test_label_set_scores_against_sklearn(rng):
    from sklearn import metrics as skm

    Y = (rng.uniform(size=(100, 6)) < 0.4).astype(int)
    P = (rng.uniform(size=(100, 6)) < 0.4).astype(int)
    s = metrics.label_set_scores(Y, P)
    assert s["precision"] == pytest.approx(skm.precision_score(Y, P, average="micro"))
    assert s["recall"] == pytest.approx(skm.recall_score(Y, P, average="micro"))
    assert s["hamming_loss"] == pytest.approx(skm.hamming_loss(Y, P))
    assert s["subset_accuracy"] == skm.accuracy_score(Y, P)


# --------------------------------------------------------------------------- compare


def test_binary_heads_are_one_model_after_conversion_and_c_mapping():
    r = compare.compare_dataset(datasets.load_breast_cancer(), cv=3)
    b = r["binary"]
    assert b["conversion_max_abs_diff"] < 1e-12
    assert b["mapped_C"] == 2.0
    assert b["mapped_max_abs_diff"] < 1e-4
    # Without the mapping the fits differ by far more than the solver tolerance.
    assert b["same_C_max_abs_diff"] > 100 * b["mapped_max_abs_diff"]
    for head in ("sigmoid", "softmax"):
        for score in compare.SCORES:
            assert len(r["heads"][head][score]["folds"]) == 3


def test_multiclass_ovr_sums_are_raw_sigmoid_sums():
    ds = datasets.load_digits()
    r = compare.compare_dataset(ds, cv=2)
    oof = r["_oof"]
    np.testing.assert_allclose(oof["proba"]["softmax"].sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(oof["proba"]["sigmoid"].sum(1), 1.0, rtol=1e-12)  # normalized
    sums = oof["ovr_sums"]
    assert r["multiclass"]["max"] == pytest.approx(sums.max())
    assert r["multiclass"]["frac_off_by_0.1"] == pytest.approx(np.mean(np.abs(sums - 1) > 0.1))
    assert r["multiclass"]["frac_off_by_0.1"] > 0.05  # OvR sigmoids are not a distribution


def test_multilabel_softmax_predicts_one_label_per_row():
    ds = datasets.load_yeast()
    keep = np.random.default_rng(0).choice(ds.X.shape[0], 500, replace=False)
    ds.X, ds.y = ds.X[keep], ds.y[keep]
    r = compare.compare_dataset(ds, cv=2)
    ml = r["multilabel"]
    assert ml["softmax_top1"]["mean_set_size"] == 1.0
    assert ml["softmax_top1"]["subset_accuracy"] <= ml["frac_single_label_rows"]
    assert ml["softmax_topk"]["mean_set_size"] == pytest.approx(ml["true_mean_set_size"])
    assert ml["sigmoid"]["recall"] > ml["softmax_top1"]["recall"]


def test_expanded_label_sets_are_normalized_targets(rng):
    Y = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1]])
    X = rng.standard_normal((3, 2))
    Xe, ye, we = compare._expand_label_sets(X, Y)
    assert ye.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_allclose(we, [0.5, 0.5, 1.0, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(Xe[:2], X[[0, 0]])


def test_cv_errors():
    ds = datasets.load_breast_cancer()
    with pytest.raises(DataError, match="at least 2"):
        compare.compare_dataset(ds, cv=1)
    ds.X, ds.y = ds.X[:6], np.array([0, 0, 0, 0, 0, 1])
    with pytest.raises(DataError, match="smallest class has 1 rows, fewer than --cv 2"):
        compare.compare_dataset(ds, cv=2)


def test_many_classes_hook_runs_or_notes(monkeypatch, rng):
    monkeypatch.setattr(compare, "MANY_CLASSES", 3)
    X = rng.standard_normal((60, 3))
    y = np.arange(60) % 5
    ds = datasets.Dataset(
        name="many",
        X=X + y[:, None],
        y=y,
        task="multiclass",
        feature_names=["a", "b", "c"],
        target_names=["y"],
        classes=np.arange(5),
    )
    r = compare.compare_dataset(ds, cv=2)
    mc = r["many_classes"]
    try:
        from sigmax.estimators.sampled import SampledSoftmaxClassifier  # noqa: F401
    except ImportError:
        assert "not available" in mc["note"]
    else:
        assert set(mc["heads"]) == set(compare.MANY_CLASSES_HEADS)
        for h in mc["heads"].values():
            assert 0.0 <= h["top1_accuracy"] <= h["top5_accuracy"] <= 1.0
        assert "sampled softmax trained" in compare.verdict([r])


def _many_dataset(rng, k=40, per=6):
    y = np.repeat(np.arange(k), per)
    X = rng.standard_normal((k, 4))[y] * 2 + rng.standard_normal((y.size, 4)) * 0.5
    return datasets.Dataset(
        name="many",
        X=X,
        y=y,
        task="multiclass",
        feature_names=["a", "b", "c", "d"],
        target_names=["y"],
        classes=np.arange(k),
    )


def test_many_classes_subsamples_the_cv_and_skips_a_costly_full_softmax(monkeypatch, rng):
    pytest.importorskip("sigmax.estimators.sampled")
    monkeypatch.setattr(compare, "MANY_CLASSES", 30)
    monkeypatch.setattr(compare, "CV_CELLS", 40 * 100)  # 100 of the 240 rows
    monkeypatch.setattr(compare, "FULL_SOFTMAX_BUDGET", 0.0)
    ds = _many_dataset(rng)
    r = compare.compare_dataset(ds, cv=2)
    assert r["n_samples"] == 240
    assert r["n_classes"] == 40
    assert len(r["_oof"]["y"]) == 100
    assert r["_oof"]["proba"]["softmax"].shape == (100, 40)
    assert "on 100 subsampled rows" in r["cv"]
    assert any("ran on a random 100 of the 240 rows" in n for n in r["notes"])
    mc = r["many_classes"]
    assert mc["n_train"] + mc["n_test"] == 240  # the section uses every row
    assert "full softmax" not in mc["heads"]
    assert "skipped" in mc["notes"][0]
    assert "the full softmax was too costly to fit here" in compare.verdict([r])
    tables = dict((t[0].split(" (")[0], t) for t in render._task_tables(r))
    _, _header, rows = tables["Many classes: full vs sampled softmax"]
    assert [row[0] for row in rows] == ["sampled softmax", "negative sampling"]


def _fake(task: str, **kw):
    base = {
        "name": "d",
        "task": task,
        "n_classes": 3,
        "heads": {
            h: {s: {"mean": 0.5, "std": 0.01} for s in ("accuracy", "log_loss")}
            for h in ("sigmoid", "softmax")
        },
    }
    base.update(kw)
    return base


def test_verdict_follows_the_numbers():
    mc = {"min": 0.1, "max": 1.9, "median": 1.0, "frac_off_by_0.1": 0.25}
    r = _fake("multiclass", multiclass=mc)
    r["heads"]["softmax"]["log_loss"]["mean"] = 0.1
    assert "softmax has lower log-loss" in compare.verdict([r])
    r["heads"]["softmax"]["log_loss"]["mean"] = 0.9
    assert "softmax has higher log-loss" in compare.verdict([r])
    r["heads"]["softmax"]["log_loss"]["mean"] = 0.505
    text = compare.verdict([r])
    assert "about the same log-loss" in text
    assert "25% of rows" in text


# --------------------------------------------------------------------------- plots


@pytest.mark.parametrize(
    "make",
    [
        plots.plot_sigmoid,
        plots.plot_softmax,
        lambda: plots.plot_ovr_sums(np.array([0.5, 1.0, 1.5])),
        lambda: plots.plot_calibration(
            {"sigmoid": (np.array([0.2, 0.8]), np.array([0, 1])), "softmax": (np.array([0.5]), [1])}
        ),
        lambda: plots.plot_label_set_sizes(np.array([1, 3]), {"softmax top-1": np.array([1, 1])}),
        lambda: plots.plot_regions(
            np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
            np.array([0, 1, 2]),
            {"sigmoid": lambda G: G @ np.eye(3, 2).T, "softmax": lambda G: G @ np.eye(3, 2).T},
            resolution=10,
        ),
    ],
)
def test_every_plot_has_labels_and_a_title(make):
    fig = make()
    assert fig.axes
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel(), ax
        assert ax.get_title() or fig.get_suptitle()
    assert fig.axes[0].get_ylabel()
    assert plots.figure_png(fig).startswith(b"\x89PNG")


def test_sigmoid_plot_uses_the_exact_derivative():
    fig = plots.plot_sigmoid()
    x, d = fig.axes[0].lines[1].get_data()
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(d, s * (1 - s), rtol=1e-12, atol=1e-300)


def test_softmax_plot_midpoints_are_logsumexp_of_others():
    fig = plots.plot_softmax(others=(1.0,))
    two, three = fig.axes[0], fig.axes[1]
    assert two.lines[1].get_xdata()[0] == pytest.approx(1.0)
    assert three.lines[1].get_xdata()[0] == pytest.approx(1.0 + np.log(2))


# --------------------------------------------------------------------------- render and atomic


def _small_results():
    ds = datasets.load_breast_cancer()
    keep = np.r_[0:80, 480:569]
    ds.X, ds.y = ds.X[keep], ds.y[keep]
    r = compare.compare_dataset(ds, cv=2)
    tasks = render.public_results([r])
    doc = {
        "sigmax_version": "0",
        "estimators": "sigmax.estimators",
        "C": 1.0,
        "seed": 0,
        "wall_time_s": 1.0,
        "verdict": compare.verdict(tasks),
        "tasks": tasks,
    }
    return ds, r, doc


def test_write_report_embeds_images_and_is_atomic(tmp_path):
    ds, r, doc = _small_results()
    figs = render.build_figures([r], [ds])
    assert set(figs) >= {"sigmoid.png", "softmax.png", "calibration_breast_cancer.png"}
    out = render.write_report(tmp_path / "rep", doc, figs)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figs)
    assert not re.search(r"src=\"(?!data:)", html)  # nothing external
    md = (out / "report.md").read_text()
    for name in figs:
        assert f"]({name})" in md
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    loaded = json.loads((out / "results.json").read_text())
    assert loaded["tasks"][0]["binary"]["conversion_max_abs_diff"] < 1e-12
    assert "_oof" not in loaded["tasks"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temp folders left

    # A run that fails while writing leaves the previous report as it was.
    before = (out / "report.html").read_bytes()

    def fail_midway() -> None:
        with atomic_dir(out) as tmp:
            (tmp / "report.html").write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert (out / "report.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_report_destination_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="exists and is not a folder"):
        check_report_dest(tmp_path / "file")
    with pytest.raises(DataError, match="is a file, not a folder"):
        check_report_dest(tmp_path / "file" / "rep")
    with pytest.raises(DataError, match="does not exist"):
        check_report_dest(tmp_path / "no" / "rep")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a sigmax report; not replacing it"):
        check_report_dest(tmp_path / "mine")


def test_atomic_write_bytes_leaves_nothing_on_failure(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"one")
    with pytest.raises(DataError, match="cannot write"):
        atomic_write_bytes(tmp_path / "missing" / "a.bin", b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_builtin_bench_rows():
    from sigmax.report.bench import run_builtin

    rows = run_builtin(quick=True, shape=(20, 8))
    peers = {r["peer"] for r in rows}
    assert {"numpy textbook", "scipy.special"} <= peers
    assert all(r["sigmax_ms"] > 0 and r["peer_ms"] > 0 for r in rows)
    assert {r["function"] for r in rows} == {"sigmoid", "softmax", "log_softmax", "logsumexp"}
