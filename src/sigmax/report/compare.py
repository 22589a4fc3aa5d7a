"""Fit the same linear body with a sigmoid head and a softmax head, and measure the difference.

`compare_dataset` runs stratified K-fold cross-validation on one :class:`~sigmax.datasets.Dataset`
and returns a JSON-ready dict: the usual scores for each head (mean and standard deviation over
folds), then what is specific to the task:

- binary: the exact conversion of the fitted 2-class softmax into a sigmoid, and the C mapping
  (a symmetric softmax with strength C is a sigmoid with 2C), measured as the largest
  probability gap between the fitted models;
- multi-class: how far one-vs-rest sigmoid probabilities are from summing to 1;
- multi-label: what a softmax (trained on the normalized label sets) gets wrong when it must
  predict sets, against independent sigmoids;
- more than `MANY_CLASSES` classes: the full softmax against sampled softmax and negative
  sampling (`SampledSoftmaxClassifier`) on an 80/20 holdout: fit time, top-1 and top-5
  accuracy and log-loss. The cross-validation of the two ordinary heads then runs on at most
  ``CV_CELLS / n_classes`` rows.

`verdict` turns the numbers of all tasks into one paragraph.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sigmax.datasets import DataError, Dataset
from sigmax.functions import sigmoid
from sigmax.report.metrics import (
    label_set_scores,
    score_probabilities,
    sum_summary,
)

__all__ = ["MANY_CLASSES", "compare_dataset", "estimator_classes", "fit_2d_heads", "verdict"]

#: Above this many classes the sampled-softmax section is added (when it is available).
MANY_CLASSES = 1000
#: Epochs of every head in the many-classes section (the same for all, from the same seed):
#: at least this many, more on small data so that each head takes about
#: `MANY_CLASSES_STEPS` optimizer steps, and at most 50.
MANY_CLASSES_EPOCHS = 10
MANY_CLASSES_STEPS = 1500
#: The full-softmax baseline is skipped (with a note) above this many multiply-adds, counted
#: as ``3 n_train K d epochs`` (1.1e11 took 43 s on 2 shared cores: 20,000 x 2,000 x 50 x 19).
FULL_SOFTMAX_BUDGET = 2e11
#: The heads of the many-classes section: label -> `SampledSoftmaxClassifier` ``loss``.
MANY_CLASSES_HEADS = {
    "full softmax": "softmax",
    "sampled softmax": "sampled_softmax",
    "negative sampling": "negative_sampling",
}
#: Above this many rows x classes the cross-validation of the ordinary heads runs on a random
#: subsample of rows: each fold holds dense rows x classes probability matrices.
CV_CELLS = 20_000_000
HEADS = ("sigmoid", "softmax")
SCORES = ("accuracy", "log_loss", "brier", "ece", "fit_time_s")

Progress = Callable[[str], None]


def estimator_classes() -> tuple[type, type]:
    """sigmax's ``(SigmoidClassifier, SoftmaxClassifier)``.

    Raises
    ------
    DataError
        When the estimators (which need scikit-learn and SciPy) cannot be imported.
    """
    try:
        from sigmax.estimators import SigmoidClassifier, SoftmaxClassifier
    except ImportError:
        try:
            from sigmax.estimators.linear import SigmoidClassifier, SoftmaxClassifier
        except ImportError as exc:
            raise DataError(
                f"the sigmax estimators cannot be imported ({exc}); "
                "install them with: pip install 'sigmax[cli]'"
            ) from None
    return SigmoidClassifier, SoftmaxClassifier


def _softmax_to_sigmoid(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, float]:
    """The sigmoid layer (w, b) for P(class 1) of a 2-class softmax layer."""
    from sigmax import equivalence

    convert = getattr(equivalence, "softmax_to_sigmoid", None)
    if convert is not None:
        out = convert(coef, intercept)
        w, b = (out.coef, out.intercept) if hasattr(out, "coef") else out
        return np.asarray(w, dtype=np.float64).reshape(-1), float(np.ravel(b)[0])
    return coef[1] - coef[0], float(intercept[1] - intercept[0])


def _sigmoid_c(C: float) -> float:
    """The sigmoid's C that matches a symmetric 2-class softmax with strength C (2 C)."""
    from sigmax import equivalence

    mapping = getattr(equivalence, "c_sigmoid_from_softmax", None)
    return float(mapping(C)) if mapping is not None else 2.0 * C


def _splits(ds: Dataset, cv: int, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    from sklearn.model_selection import KFold, StratifiedKFold

    n = ds.X.shape[0]
    if cv < 2:
        raise DataError(f"--cv must be at least 2, got {cv}")
    if cv > n:
        raise DataError(f"--cv {cv} is more than the {n} rows of {ds.name}")
    if ds.task == "multilabel":
        kf = KFold(n_splits=cv, shuffle=True, random_state=seed)
        return list(kf.split(ds.X)), f"{cv}-fold (shuffled; multi-label data cannot be stratified)"
    counts = np.unique(ds.y, return_counts=True)[1]
    if counts.min() < cv and len(counts) > MANY_CLASSES:
        # Rare classes are the norm with very many classes; a fold may then miss some.
        kf = KFold(n_splits=cv, shuffle=True, random_state=seed)
        return list(kf.split(ds.X)), f"{cv}-fold (shuffled; some classes have < {cv} rows)"
    if counts.min() < cv:
        raise DataError(
            f"{ds.name}: the smallest class has {counts.min()} rows, fewer than --cv {cv}; "
            "lower --cv or drop rare classes"
        )
    skf = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    return list(skf.split(ds.X, ds.y)), f"{cv}-fold stratified"


def _standardize(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = Xtr.mean(axis=0)
    scale = Xtr.std(axis=0)
    scale[scale == 0] = 1.0
    return (Xtr - mean) / scale, (Xte - mean) / scale


def _timed_fit(est: Any, X: np.ndarray, y: np.ndarray, **kw: Any) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn's hint that the target may be continuous; expected with many classes.
        warnings.filterwarnings("ignore", "The number of unique classes is greater than 50%")
        est.fit(X, y, **kw)
    return time.perf_counter() - t0


def _expand_label_sets(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per (example, positive label), weighted 1/|labels|.

    Cross-entropy is linear in the target, so this is exactly a softmax trained on the
    normalized label set Y_i / |Y_i| as its target distribution.
    """
    rows, labels = np.nonzero(Y)
    sizes = Y.sum(axis=1)
    return X[rows], labels, 1.0 / sizes[rows]


def _summary(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def compare_dataset(
    ds: Dataset,
    /,
    *,
    cv: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 500,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Cross-validate a sigmoid head and a softmax head on `ds` and measure their differences.

    Parameters
    ----------
    ds : Dataset
    cv : int, default=5
        Folds: stratified for binary and multi-class data, shuffled for multi-label data.
    seed : int, default=0
        Seeds the fold split.
    C : float, default=1.0
        Inverse L2 strength (scikit-learn's scaling), the same for both heads in the score
        table. The binary section also fits the sigmoid at ``2 C``.
    max_iter : int, default=500
    progress : callable, optional
        Called with a short description after each fitted fold.

    Returns
    -------
    dict
        JSON-ready; ``heads[head][score] = {"mean", "std", "folds"}`` for accuracy, log_loss,
        brier, ece and fit_time_s, plus a task-specific section and the pooled out-of-fold
        predictions under the private key ``_oof`` (arrays, dropped before JSON).

    Examples
    --------
    >>> from sigmax.datasets import load_breast_cancer
    >>> r = compare_dataset(load_breast_cancer(), cv=2)
    >>> r["binary"]["conversion_max_abs_diff"] < 1e-12
    True
    """
    Sig, Soft = estimator_classes()
    full_ds = ds
    y = ds.y
    if ds.task != "multilabel":
        _, y = np.unique(ds.y, return_inverse=True)
    n_out = ds.n_classes
    cv_note = None
    if ds.task != "multilabel" and n_out > MANY_CLASSES and len(y) * n_out > CV_CELLS:
        m = max(CV_CELLS // n_out, 2 * cv)
        keep = np.sort(np.random.default_rng(seed).choice(len(y), size=m, replace=False))
        ds = dataclasses.replace(ds, X=ds.X[keep], y=ds.y[keep])
        y = y[keep]
        cv_note = (
            f"with {n_out} classes the cross-validation of the sigmoid and softmax heads ran on "
            f"a random {m} of the {full_ds.X.shape[0]} rows (each fold holds "
            f"rows x classes probabilities); the many-classes section uses all rows"
        )
    splits, cv_kind = _splits(ds, cv, seed)
    per_fold: dict[str, dict[str, list[float]]] = {h: {s: [] for s in SCORES} for h in HEADS}
    oof: dict[str, np.ndarray] = {
        "sigmoid": np.zeros((len(y), n_out)),
        "softmax": np.zeros((len(y), n_out)),
    }
    extra: dict[str, Any] = {}
    ovr_sums = np.zeros(len(y))
    ovr_claims = np.zeros(len(y), dtype=np.int64)  # classes with sigmoid > 0.5, per row
    binary_diffs: dict[str, list[float]] = {"conversion": [], "mapped": [], "same_c": []}
    ml_pred: dict[str, np.ndarray] = {}
    if ds.task == "multilabel":
        ml_pred = {k: np.zeros_like(y) for k in ("sigmoid", "softmax_top1", "softmax_topk")}

    for fold, (tr, te) in enumerate(splits):
        Xtr, Xte = _standardize(ds.X[tr], ds.X[te])
        for head in HEADS:
            est = (Sig if head == "sigmoid" else Soft)(C=C, max_iter=max_iter)
            if ds.task == "multilabel" and head == "softmax":
                Xe, ye, we = _expand_label_sets(Xtr, y[tr])
                t = _timed_fit(est, Xe, ye, sample_weight=we)
                proba = np.zeros((len(te), n_out))
                proba[:, est.classes_] = est.predict_proba(Xte)
                top1 = np.zeros_like(y[te])
                top1[np.arange(len(te)), np.argmax(proba, axis=1)] = 1
                pred: np.ndarray = top1
                # The best a normalized score can do: keep the true number of labels per row.
                order = np.argsort(-proba, axis=1)
                ranks = np.argsort(order, axis=1)
                ml_pred["softmax_topk"][te] = (ranks < y[te].sum(axis=1)[:, None]).astype(y.dtype)
                ml_pred["softmax_top1"][te] = top1
            else:
                t = _timed_fit(est, Xtr, y[tr])
                if ds.task == "multiclass" and head == "sigmoid":
                    raw = np.asarray(sigmoid(est.decision_function(Xte)))
                    ovr_sums[te] = raw.sum(axis=1)
                    ovr_claims[te] = (raw > 0.5).sum(axis=1)
                # A training fold may lack a class (very many classes): map columns back.
                proba = np.zeros((len(te), n_out))
                proba[:, np.asarray(est.classes_)] = est.predict_proba(Xte)
                if ds.task == "multilabel":
                    pred = (proba > 0.5).astype(y.dtype)
                    ml_pred["sigmoid"][te] = pred
                else:
                    pred = np.argmax(proba, axis=1)
            oof[head][te] = proba
            scores = score_probabilities(ds.task, y[te], proba, pred)
            for s, v in scores.items():
                per_fold[head][s].append(v)
            per_fold[head]["fit_time_s"].append(t)
            if ds.task == "binary" and head == "softmax":
                w, b = _softmax_to_sigmoid(est.coef_, est.intercept_)
                p_conv = np.asarray(sigmoid(Xte @ w + b))
                binary_diffs["conversion"].append(float(np.max(np.abs(p_conv - proba[:, 1]))))
                # Fits compared across heads must be converged well past the default tol,
                # or the solver's stopping point hides the (exact) C mapping.
                tight = Soft(C=C, max_iter=10 * max_iter, tol=1e-10)
                _timed_fit(tight, Xtr, y[tr])
                w, b = _softmax_to_sigmoid(tight.coef_, tight.intercept_)
                p_conv = np.asarray(sigmoid(Xte @ w + b))
                for key, c in (("mapped", _sigmoid_c(C)), ("same_c", C)):
                    sig = Sig(C=c, max_iter=10 * max_iter, tol=1e-10)
                    _timed_fit(sig, Xtr, y[tr])
                    gap = np.abs(np.asarray(sig.predict_proba(Xte))[:, 1] - p_conv)
                    binary_diffs[key].append(float(gap.max()))
            if progress is not None:
                progress(f"{ds.name}: fold {fold + 1}/{len(splits)} {head}")

    result: dict[str, Any] = {
        "name": ds.name,
        "task": ds.task,
        "n_samples": int(full_ds.X.shape[0]),
        "n_features": int(ds.X.shape[1]),
        "n_classes": int(n_out),
        "source": ds.source,
        "synthetic": ds.synthetic,
        "notes": list(ds.notes),
        "cv": cv_kind + ("" if cv_note is None else f", on {len(y)} subsampled rows"),
        "C": C,
        "heads": {
            h: {s: {**_summary(v), "folds": v} for s, v in per_fold[h].items()} for h in HEADS
        },
    }
    if ds.task == "binary":
        result["binary"] = {
            "conversion_max_abs_diff": max(binary_diffs["conversion"]),
            "mapped_C": _sigmoid_c(C),
            "mapped_max_abs_diff": max(binary_diffs["mapped"]),
            "same_C_max_abs_diff": max(binary_diffs["same_c"]),
        }
        extra["y"] = y
    elif ds.task == "multiclass":
        stats = sum_summary(ovr_sums)
        stats["frac_no_class_above_half"] = float(np.mean(ovr_claims == 0))
        stats["frac_several_above_half"] = float(np.mean(ovr_claims > 1))
        result["multiclass"] = stats
        result["notes"].append(
            "the sigmoid head's scores use its one-vs-rest probabilities normalized to sum to 1 "
            "(its predict_proba); the sums below are of the raw sigmoids"
        )
        extra["ovr_sums"] = ovr_sums
        extra["y"] = y
    else:
        ml: dict[str, Any] = {k: label_set_scores(y, v) for k, v in ml_pred.items()}
        ml["true_mean_set_size"] = float(y.sum(axis=1).mean())
        ml["frac_single_label_rows"] = float(np.mean(y.sum(axis=1) == 1))
        result["multilabel"] = ml
        result["notes"].append(
            "accuracy is subset accuracy (the whole label set right); log-loss, Brier and ECE "
            "are per (row, label); the softmax is trained on each label set spread evenly "
            "(1/|labels| per label), predicts its top-1 label, and its class probabilities "
            "serve as label probabilities"
        )
        extra["y"] = y
        extra["set_sizes"] = {
            "sigmoid (p > 0.5)": ml_pred["sigmoid"].sum(axis=1),
            "softmax top-1": ml_pred["softmax_top1"].sum(axis=1),
        }
    if cv_note is not None:
        result["notes"].append(cv_note)
    if ds.task != "multilabel" and n_out > MANY_CLASSES:
        result["many_classes"] = _many_classes_section(full_ds, seed)
    result["_oof"] = {"proba": oof, **extra}
    return result


def _affine(W: np.ndarray, b: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def logits(G: np.ndarray) -> np.ndarray:
        return np.asarray(G @ W.T + b)

    return logits


def fit_2d_heads(
    ds: Dataset, /, *, C: float = 1.0, max_iter: int = 500
) -> tuple[np.ndarray, np.ndarray, dict[str, Callable[[np.ndarray], np.ndarray]], float]:
    """Both heads fitted on the first two principal components of the standardized features.

    Returns
    -------
    X2 : ndarray, shape (n, 2)
    y : ndarray of int, shape (n,)
        Classes coded ``0..K-1``.
    heads : dict
        ``{"sigmoid": f, "softmax": f}`` with ``f(grid)`` the (m, K) logits on 2-D points.
    explained : float
        Fraction of the variance the two components explain.
    """
    from sklearn.decomposition import PCA

    Sig, Soft = estimator_classes()
    X, _ = _standardize(ds.X, ds.X[:1])
    pca = PCA(n_components=2, random_state=0).fit(X)
    X2 = pca.transform(X)
    _, y = np.unique(ds.y, return_inverse=True)
    heads: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for name, cls in (("sigmoid", Sig), ("softmax", Soft)):
        est = cls(C=C, max_iter=max_iter)
        _timed_fit(est, X2, y)
        W, b = np.asarray(est.coef_), np.asarray(est.intercept_)
        if W.shape[0] == 1:  # one-logit binary sigmoid: logits (0, z) give the same argmax
            W, b = np.vstack([np.zeros_like(W), W]), np.concatenate([[0.0], b])
        heads[name] = _affine(W, b)
    return X2, y, heads, float(pca.explained_variance_ratio_.sum())


def _many_classes_section(ds: Dataset, seed: int) -> dict[str, Any]:
    """Full softmax vs sampled heads (`SampledSoftmaxClassifier`) on an 80/20 holdout.

    Every head trains for the same epochs, batch size (at least about 50 batches an epoch) and
    seed; the metrics are exact (full softmax, streamed over classes).
    Test rows whose class never occurs in the training part count as wrong in the accuracies
    and are left out of the log-loss (which would be infinite).
    """
    try:
        from sigmax.estimators.sampled import SampledSoftmaxClassifier
    except ImportError:
        return {"note": "SampledSoftmaxClassifier is not available in this install; skipped"}
    from sklearn.model_selection import train_test_split

    classes, y = np.unique(ds.y, return_inverse=True)
    # Not stratified: with very many classes most have too few rows for it.
    Xtr, Xte, ytr, yte = train_test_split(ds.X, y, test_size=0.2, random_state=seed)
    Xtr, Xte = _standardize(Xtr, Xte)
    seen = np.isin(yte, ytr)
    batch = int(min(256, max(16, len(ytr) // 50)))
    steps = -(-len(ytr) // batch)
    epochs = int(min(50, max(MANY_CLASSES_EPOCHS, -(-MANY_CLASSES_STEPS // steps))))
    heads: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    cost = 3.0 * len(ytr) * len(classes) * Xtr.shape[1] * epochs
    for label, loss in MANY_CLASSES_HEADS.items():
        if loss == "softmax" and cost > FULL_SOFTMAX_BUDGET:
            notes.append(
                f"the full-softmax baseline was skipped: about {cost:.1e} multiply-adds "
                f"({len(ytr)} rows x {len(classes)} classes x {Xtr.shape[1]} features x "
                f"{epochs} epochs) is more than the {FULL_SOFTMAX_BUDGET:.0e} budget"
            )
            continue
        est = SampledSoftmaxClassifier(
            loss=loss, max_iter=epochs, batch_size=batch, random_state=seed
        )
        t = _timed_fit(est, Xtr, ytr)
        kk = min(5, len(est.classes_))
        top = np.asarray(est.predict_top_k(Xte, k=kk))
        ll = est.evaluate(Xte[seen], yte[seen], k=kk)["log_loss"] if seen.any() else None
        heads[label] = {
            "loss": loss,
            "fit_time_s": t,
            "top1_accuracy": float(np.mean(top[:, 0] == yte)),
            "top5_accuracy": float(np.mean(np.any(top == yte[:, None], axis=1))),
            "log_loss": ll,
            "epochs": int(est.n_iter_),
        }
    return {
        "n_classes": len(classes),
        "n_train": len(ytr),
        "n_test": len(yte),
        "n_test_unseen_class": int(np.sum(~seen)),
        "split": "80/20 holdout (not stratified)",
        "epochs": epochs,
        "batch_size": batch,
        "n_negatives": int(SampledSoftmaxClassifier().n_negatives),
        "heads": heads,
        "notes": notes,
    }


def _many_classes_verdict(mc: dict[str, Any]) -> str:
    """One sentence comparing the sampled heads with the full softmax, from the numbers."""
    h = mc["heads"]
    samp, neg = h["sampled softmax"], h["negative sampling"]

    def ll(r: dict[str, Any]) -> str:
        return "n/a" if r["log_loss"] is None else f"{r['log_loss']:.3f}"

    tail = (
        f"negative sampling reached top-5 {neg['top5_accuracy']:.3f} and log-loss {ll(neg)} "
        f"in {neg['fit_time_s']:.2f} s."
    )
    if "full softmax" not in h:
        return (
            f"With {mc['n_classes']} classes the full softmax was too costly to fit here; the "
            f"sampled softmax reached top-5 accuracy {samp['top5_accuracy']:.3f} (top-1 "
            f"{samp['top1_accuracy']:.3f}, log-loss {ll(samp)}) in {samp['fit_time_s']:.2f} s; "
            + tail
        )
    full = h["full softmax"]
    speed = full["fit_time_s"] / max(samp["fit_time_s"], 1e-12)
    pace = f"{speed:.1f}x faster" if speed >= 1 else f"{1 / speed:.1f}x slower"
    gap = samp["top5_accuracy"] - full["top5_accuracy"]
    level = "about the same" if abs(gap) <= 0.01 else ("higher" if gap > 0 else "lower")
    return (
        f"With {mc['n_classes']} classes the sampled softmax trained {pace} than the full "
        f"softmax ({samp['fit_time_s']:.2f} s vs {full['fit_time_s']:.2f} s, {mc['epochs']} "
        f"epochs each, {mc['n_negatives']} negatives) with {level} top-5 accuracy "
        f"({samp['top5_accuracy']:.3f} vs {full['top5_accuracy']:.3f}; top-1 "
        f"{samp['top1_accuracy']:.3f} vs {full['top1_accuracy']:.3f}, held-out log-loss "
        f"{ll(samp)} vs {ll(full)}); " + tail
    )


def _fmt_ms(m: dict[str, Any], digits: int = 3) -> str:
    return f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def _better(a: dict[str, Any], b: dict[str, Any], *, lower: bool) -> int:
    """+1 if a beats b by more than the fold spread, -1 if b beats a, 0 if within noise."""
    gap = a["mean"] - b["mean"]
    noise = max(a["std"], b["std"], 1e-12)
    if abs(gap) <= noise:
        return 0
    return (1 if gap < 0 else -1) if lower else (1 if gap > 0 else -1)


def verdict(tasks: list[dict[str, Any]], /) -> str:
    """One paragraph that reads the numbers of every task (none of it is fixed text).

    Examples
    --------
    >>> verdict([])
    'No task was run.'
    """
    if not tasks:
        return "No task was run."
    parts: list[str] = []
    for r in tasks:
        sig, soft = r["heads"]["sigmoid"], r["heads"]["softmax"]
        name = r["name"] + (" (SYNTHETIC)" if r.get("synthetic") else "")
        if r["task"] == "binary":
            b = r["binary"]
            parts.append(
                f"On {name} (binary) the two heads are one model: converting the fitted softmax "
                f"into a sigmoid changes no probability by more than "
                f"{b['conversion_max_abs_diff']:.1e}, and a sigmoid fitted with C = "
                f"{b['mapped_C']:g} (twice the softmax's C) agrees with it to "
                f"{b['mapped_max_abs_diff']:.1e} (solver tolerance); with the same C the gap is "
                f"{b['same_C_max_abs_diff']:.1e}, so differences people see on binary data "
                "come from the penalty, not the link."
            )
        elif r["task"] == "multiclass":
            m = r["multiclass"]
            ll = _better(soft["log_loss"], sig["log_loss"], lower=True)
            acc = _better(soft["accuracy"], sig["accuracy"], lower=False)
            ll_word = {1: "lower", -1: "higher", 0: "about the same"}[ll]
            acc_word = {1: "higher", -1: "lower", 0: "about the same"}[acc]
            parts.append(
                f"On {name} ({r['n_classes']} classes) the softmax has {ll_word} log-loss "
                f"({soft['log_loss']['mean']:.3f} vs {sig['log_loss']['mean']:.3f} for "
                f"normalized one-vs-rest sigmoids) and {acc_word} accuracy "
                f"({soft['accuracy']['mean']:.3f} vs {sig['accuracy']['mean']:.3f}); the raw "
                f"OvR probabilities sum to between {m['min']:.2f} and {m['max']:.2f} (median "
                f"{m['median']:.2f}), {m['frac_off_by_0.1']:.0%} of rows off by more than 0.1, "
                "so they are not a distribution until renormalized."
            )
        else:
            ml = r["multilabel"]
            s, t1, tk = ml["sigmoid"], ml["softmax_top1"], ml["softmax_topk"]
            parts.append(
                f"On {name} ({r['n_classes']} labels, {ml['true_mean_set_size']:.1f} per row) "
                f"independent sigmoids recover {s['recall']:.0%} of the true labels and "
                f"{s['subset_accuracy']:.1%} of label sets exactly; a softmax's top-1 is right "
                f"{t1['precision']:.0%} of the time but recovers only {t1['recall']:.0%} of the "
                f"labels and {t1['subset_accuracy']:.1%} of sets (at most "
                f"{ml['frac_single_label_rows']:.1%}, the rows with one label). "
                + (
                    f"Ranked by the softmax and cut at the true number of labels, which a "
                    f"softmax has no way to know, {tk['subset_accuracy']:.1%} of sets would "
                    "match: the softmax ranks labels well but cannot say how many apply, "
                    if tk["subset_accuracy"] > s["subset_accuracy"]
                    else f"Even cut at the true number of labels its ranking matches only "
                    f"{tk['subset_accuracy']:.1%} of sets, "
                )
                + "so use independent sigmoids when an example can have several labels."
            )
        if "heads" in r.get("many_classes", {}):
            parts.append(_many_classes_verdict(r["many_classes"]))
    return " ".join(parts)
