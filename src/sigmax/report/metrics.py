"""Scores for probabilistic classifiers that scikit-learn does not provide: calibration error,
reliability curves, OvR probability sums and label-set scores for multi-label data.

Accuracy, log-loss, Brier score and Hamming loss come from :mod:`sklearn.metrics`; this module
adds only what is missing there and the per-task choice of which probabilities to score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "calibration_pairs",
    "expected_calibration_error",
    "label_set_scores",
    "reliability_curve",
    "score_probabilities",
    "sum_summary",
]


def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # Bin i holds confidences in (i/n, (i+1)/n]; 0 goes to the first bin.
    return np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def reliability_curve(
    confidence: np.ndarray, correct: np.ndarray, /, *, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean confidence, observed frequency and count in `n_bins` equal-width bins of [0, 1].

    Parameters
    ----------
    confidence : array, shape (n,)
        Predicted probability of the event.
    correct : array of bool or 0/1, shape (n,)
        Whether the event happened.
    n_bins : int, default=15

    Returns
    -------
    mean_confidence, frequency, count : arrays of shape (n_bins,)
        Empty bins have count 0 and NaN means.

    Examples
    --------
    >>> conf, freq, count = reliability_curve(
    ...     np.array([0.1, 0.9, 0.95]), np.array([0, 1, 0]), n_bins=2)
    >>> freq.tolist(), count.tolist()
    ([0.0, 0.5], [1, 2])
    """
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    b = _bins(confidence, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=confidence, minlength=n_bins) / count
        freq = np.bincount(b, weights=correct, minlength=n_bins) / count
    return mean_conf, freq, count


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, /, *, n_bins: int = 15
) -> float:
    r"""Expected calibration error over equal-width bins.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{n}\,\lvert \bar p_b - \bar y_b \rvert

    where :math:`\bar p_b` is the mean confidence and :math:`\bar y_b` the observed frequency
    of the event in bin :math:`b`.

    Parameters
    ----------
    confidence : array, shape (n,)
        Predicted probability of the event (for multi-class top-label ECE: the largest
        probability of each row; for binary and multi-label: each probability).
    correct : array of bool or 0/1, shape (n,)
        Whether the event happened.
    n_bins : int, default=15

    Returns
    -------
    float
        In [0, 1]; 0 for a perfectly calibrated predictor on these bins.

    Examples
    --------
    >>> expected_calibration_error(np.array([0.8, 0.8, 0.8, 0.8, 0.8]), np.array([1, 1, 1, 1, 0]))
    0.0
    >>> round(expected_calibration_error(np.array([0.9, 0.9]), np.array([1, 0])), 6)
    0.4
    """
    _, freq, count = reliability_curve(confidence, correct, n_bins=n_bins)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    mean_conf = np.bincount(_bins(conf, n_bins), weights=conf, minlength=n_bins)
    used = count > 0
    gaps = np.abs(mean_conf[used] / count[used] - freq[used]) * count[used]
    return float(gaps.sum() / max(int(count.sum()), 1))


def calibration_pairs(
    task: str, y: np.ndarray, proba: np.ndarray, /
) -> tuple[np.ndarray, np.ndarray]:
    """The (confidence, happened) pairs that calibration is measured on for each task.

    Binary: P(class 1) against y == 1. Multi-class: the top probability against a correct
    argmax (top-label calibration). Multi-label: every (row, label) probability.

    Examples
    --------
    >>> conf, hit = calibration_pairs("multiclass", np.array([1]), np.array([[0.2, 0.7, 0.1]]))
    >>> conf.tolist(), hit.tolist()
    ([0.7], [True])
    """
    if task == "binary":
        return proba[:, 1], y == 1
    if task == "multiclass":
        top = np.argmax(proba, axis=1)
        return proba[np.arange(len(y)), top], top == y
    return proba.reshape(-1), y.reshape(-1) == 1


def score_probabilities(
    task: str, y: np.ndarray, proba: np.ndarray, pred: np.ndarray, /, *, n_bins: int = 15
) -> dict[str, float]:
    """Accuracy, log-loss, Brier score and ECE of one set of predictions.

    Parameters
    ----------
    task : {"binary", "multiclass", "multilabel"}
    y : array
        Integer-coded classes in ``[0, K)`` of shape (n,), or a 0/1 indicator matrix (n, K).
    proba : array, shape (n, K)
        Probabilities per class (rows sum to 1) or per label (multi-label).
    pred : array
        Predicted classes (n,) or predicted label sets as a 0/1 matrix (n, K).

    Returns
    -------
    dict
        ``accuracy`` (subset accuracy for multi-label), ``log_loss`` (mean per-label binary
        cross-entropy for multi-label), ``brier`` (binary: mean (p1 - y)²; multi-class: mean of
        the squared distance to the one-hot row; multi-label: mean per entry) and ``ece``
        (binary: on p1; multi-class: top-label; multi-label: every (row, label) pair).

    Examples
    --------
    >>> y = np.array([0, 1, 1]); p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> s = score_probabilities("binary", y, p, p.argmax(1))
    >>> round(s["accuracy"], 4), round(s["brier"], 4)
    (0.6667, 0.1367)
    """
    from sklearn import metrics

    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    if task == "multilabel":
        flat_y = y.reshape(-1)
        flat_p = np.clip(proba.reshape(-1), 0.0, 1.0)
        out = {
            "accuracy": float(metrics.accuracy_score(y, pred)),
            "log_loss": float(metrics.log_loss(flat_y, flat_p, labels=[0, 1])),
            "brier": float(np.mean((flat_p - flat_y) ** 2)),
        }
    else:
        labels = list(range(proba.shape[1]))
        out = {
            "accuracy": float(metrics.accuracy_score(y, pred)),
            "log_loss": float(metrics.log_loss(y, proba, labels=labels)),
            "brier": float(
                metrics.brier_score_loss(y, proba[:, 1], pos_label=1)
                if task == "binary"
                else metrics.brier_score_loss(y, proba, labels=labels)
            ),
        }
    conf, hit = calibration_pairs(task, y, proba)
    out["ece"] = expected_calibration_error(conf, hit, n_bins=n_bins)
    return out


def sum_summary(sums: np.ndarray, /) -> dict[str, float]:
    """How far per-row probability sums are from 1.

    Examples
    --------
    >>> s = sum_summary(np.array([1.0, 0.5, 1.5, 1.05]))
    >>> s["max_abs_dev"], s["frac_off_by_0.1"]
    (0.5, 0.5)
    """
    sums = np.asarray(sums, dtype=np.float64)
    dev = np.abs(sums - 1.0)
    q = np.quantile(sums, [0.0, 0.05, 0.5, 0.95, 1.0])
    return {
        "min": float(q[0]),
        "p05": float(q[1]),
        "median": float(q[2]),
        "p95": float(q[3]),
        "max": float(q[4]),
        "mean_abs_dev": float(dev.mean()),
        "max_abs_dev": float(dev.max()),
        "frac_off_by_0.1": float(np.mean(dev > 0.1)),
    }


def label_set_scores(Y: np.ndarray, pred: np.ndarray, /) -> dict[str, Any]:
    """Scores of predicted label sets against true label sets (0/1 matrices of equal shape).

    Returns subset accuracy (exact set match), Hamming loss, micro precision and recall of
    labels, and the mean size of the predicted sets.

    Examples
    --------
    >>> Y = np.array([[1, 1, 0], [0, 1, 0]]); P = np.array([[1, 0, 0], [0, 1, 0]])
    >>> s = label_set_scores(Y, P)
    >>> s["subset_accuracy"], s["recall"], s["precision"]
    (0.5, 0.6666666666666666, 1.0)
    """
    from sklearn import metrics

    Y = np.asarray(Y)
    pred = np.asarray(pred)
    tp = float(np.sum((Y == 1) & (pred == 1)))
    return {
        "subset_accuracy": float(metrics.accuracy_score(Y, pred)),
        "hamming_loss": float(metrics.hamming_loss(Y, pred)),
        "precision": tp / max(float(pred.sum()), 1.0),
        "recall": tp / max(float(Y.sum()), 1.0),
        "mean_set_size": float(pred.sum(axis=1).mean()),
    }
