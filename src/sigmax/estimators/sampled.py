r"""SampledSoftmaxClassifier: a linear classifier over 10^4 to 10^6 classes.

The model is :math:`x_k = h \cdot w_k + b_k` with :math:`h = x` (the features) or
:math:`h = x P` (a learned projection to ``n_components`` dimensions). Each minibatch trains
the output layer on the label rows and a few sampled negative rows only
(:func:`~sigmax.sampled_softmax_loss` or :func:`~sigmax.negative_sampling_loss`), with a
lazy (row-sparse) Adam or Adagrad, so a step costs :math:`O(b (1 + m) d)` whatever :math:`K`.
Evaluation uses the exact full softmax, streamed over chunks of classes.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from sigmax.functions import log_softmax, softmax
from sigmax.sampled import (
    NegativeSamplingHead,
    SampledSoftmaxHead,
    full_softmax_evaluate,
)
from sigmax.sampling import (
    HeadUniformSampler,
    LogUniformSampler,
    UniformSampler,
    UnigramSampler,
    _Sampler,
)

__all__ = ["SampledSoftmaxClassifier"]

_LOSSES = ("sampled_softmax", "negative_sampling", "softmax")
_SAMPLERS = ("head_uniform", "uniform", "unigram", "log_uniform")
_OPTIMIZERS = ("adam", "adagrad")


class _RankedSampler(_Sampler):
    """A log-uniform sampler over classes ranked by decreasing training frequency."""

    def __init__(self, rank_to_class: np.ndarray) -> None:
        self.n_classes = rank_to_class.size
        self._base = LogUniformSampler(self.n_classes)
        self._rank_to_class = rank_to_class
        self._class_to_rank = np.empty_like(rank_to_class)
        self._class_to_rank[rank_to_class] = np.arange(self.n_classes)

    def probability(self, ids: Any, /) -> np.ndarray:
        return self._base.probability(self._class_to_rank[self._check_ids(ids, "ids")])

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self._rank_to_class[self._base._draw(rng, size)]


class _LazyOptimizer:
    """Adam or Adagrad whose state is read and written only on the rows given a gradient.

    Adam is "lazy" Adam (as TensorFlow's LazyAdam): the moments of a row decay only on the
    steps that touch it, and the bias correction uses the global step count.
    """

    def __init__(self, kind: str, lr: float, shape: tuple[int, ...], dtype: Any) -> None:
        self.kind = kind
        self.lr = lr
        if kind == "adam":
            self.m = np.zeros(shape, dtype=dtype)
            self.v = np.zeros(shape, dtype=dtype)
        else:
            self.g2 = np.zeros(shape, dtype=dtype)

    def step(self, param: np.ndarray, rows: np.ndarray | None, grad: np.ndarray, t: int) -> None:
        sel: Any = slice(None) if rows is None else rows
        if self.kind == "adam":
            b1, b2 = 0.9, 0.999
            m = self.m[sel]
            v = self.v[sel]
            m *= b1
            m += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * grad * grad
            self.m[sel] = m
            self.v[sel] = v
            lr_t = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            param[sel] -= lr_t * m / (np.sqrt(v) + 1e-8)
        else:
            g2 = self.g2[sel]
            g2 += grad * grad
            self.g2[sel] = g2
            param[sel] -= self.lr * grad / (np.sqrt(g2) + 1e-10)


class SampledSoftmaxClassifier(ClassifierMixin, BaseEstimator):
    r"""Linear softmax classifier for very many classes, trained on sampled output rows.

    .. math:: P(y = k \mid x) = \operatorname{softmax}_k(h W^T + b), \quad h = x \text{ or } xP

    Training minimises the sampled softmax loss (or the negative-sampling loss, or, as a
    baseline, the full softmax loss) with minibatches and sparse row updates; evaluation,
    early stopping and prediction use the exact full softmax, computed in chunks of classes.

    Parameters
    ----------
    loss : {"sampled_softmax", "negative_sampling", "softmax"}, default="sampled_softmax"
        ``"softmax"`` trains with the full softmax (every row, every step): the exact baseline,
        at :math:`O(b K d)` per step.
    n_negatives : int, default=64
        Sampled classes per step.
    sampler : {"head_uniform", "uniform", "unigram", "log_uniform"}, default="head_uniform"
        The negatives. ``"head_uniform"``: the ``int(head_fraction * n_negatives)`` most
        frequent training classes on every step, and the rest drawn uniformly from the other
        classes (:class:`~sigmax.HeadUniformSampler`). The others are proposals: uniform,
        training class counts to the power `unigram_power` (counts + 1, so every class can be
        drawn), or log-uniform over the classes ranked by training frequency. In
        ``benchmarks/bench_sampled.py`` (Zipf classes) the head gained 1.5 points of top-1 over
        uniform draws; in a 5,000-class version, unigram and log-uniform proposals did worse
        than uniform (with the label corrected too).
    head_fraction : float, default=0.5
        With ``sampler="head_uniform"``: the share of `n_negatives` that is the fixed head (in
        ``[0, 1]``; 0 is uniform). With :meth:`partial_fit` the head is chosen from the first
        batch's counts.
    unigram_power : float, default=0.75
    replace : bool, default=True
        Sample negatives with replacement.
    shared_negatives : bool, default=True
        One set of negatives per minibatch (a dense product) or one per example.
    subtract_log_q, remove_accidental_hits : bool, default=True
        See :func:`~sigmax.sampled_softmax_loss`.
    label_log_q : bool, default=False
        Also correct the label's logit by :math:`\log Q(y)` (TensorFlow's convention; see
        :func:`~sigmax.sampled_softmax_loss`: it underestimates the normalizer and cost 1.5
        points of top-1 in the benchmark).
    optimizer : {"adam", "adagrad"}, default="adam"
        Both keep their state lazily: only the touched rows are read and written.
    learning_rate : float, default=0.01
    batch_size : int, default=256
    max_iter : int, default=10
        Epochs.
    n_components : int, optional
        If given, learn a projection :math:`P` of shape ``(n_features, n_components)`` and use
        :math:`h = xP` (for sparse input, only the rows of the features present in a batch are
        updated). Otherwise :math:`h = x` (sparse batches are densified, ``batch_size x
        n_features``).
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the data and stop when the full-softmax log-loss on
        it has not improved by `tol` for `n_iter_no_change` epochs. The parameters of the
        best epoch are kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=3
    tol : float, default=1e-4
    eval_chunk_classes : int, default=4096
        Classes per block in evaluation and prediction.
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds initialisation, shuffling, the validation split and the negatives.
    verbose : int, default=0
        Print one line per epoch.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coef_ : ndarray of float32, shape (n_classes, n_hidden)
        The output layer :math:`W`.
    intercept_ : ndarray of float32, shape (n_classes,)
    components_ : ndarray of float32, shape (n_features, n_components), or None
        The projection :math:`P`.
    n_iter_ : int
        Epochs run.
    t_ : int
        Optimizer steps taken.
    loss_curve_ : list of float
        Mean training loss (the sampled loss) per epoch.
    validation_scores_ : list of float
        Full-softmax log-loss on the held-out set per epoch (with early stopping).
    epoch_times_ : list of float
        Wall seconds per epoch.

    Notes
    -----
    Memory: parameters and optimizer state are :math:`O(K d)` (three float32 ``K x d`` arrays
    for Adam); a sampled step holds :math:`O(b (1 + m) d)`. :meth:`predict`,
    :meth:`predict_top_k` and :meth:`evaluate` stream over class chunks and never hold an
    ``n x K`` matrix; :meth:`decision_function`, :meth:`predict_proba` and
    :meth:`predict_log_proba` return one (``n x K`` float32: 4 GB for 1,000 rows and a
    million classes), so call them on small batches. The bias starts at the log of the smoothed
    class prior, which the sampled loss would otherwise learn slowly for rare classes.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import SampledSoftmaxClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.standard_normal((50, 8)) * 3
    >>> y = rng.integers(0, 50, 2000)
    >>> X = centers[y] + rng.standard_normal((2000, 8))
    >>> clf = SampledSoftmaxClassifier(n_negatives=10, max_iter=5, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.8, clf.predict_top_k(X[:2], k=3).shape
    (True, (2, 3))
    """

    def __init__(
        self,
        *,
        loss: str = "sampled_softmax",
        n_negatives: int = 64,
        sampler: str = "head_uniform",
        head_fraction: float = 0.5,
        unigram_power: float = 0.75,
        replace: bool = True,
        shared_negatives: bool = True,
        subtract_log_q: bool = True,
        label_log_q: bool = False,
        remove_accidental_hits: bool = True,
        optimizer: str = "adam",
        learning_rate: float = 0.01,
        batch_size: int = 256,
        max_iter: int = 10,
        n_components: int | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 3,
        tol: float = 1e-4,
        eval_chunk_classes: int = 4096,
        shuffle: bool = True,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.loss = loss
        self.n_negatives = n_negatives
        self.sampler = sampler
        self.head_fraction = head_fraction
        self.unigram_power = unigram_power
        self.replace = replace
        self.shared_negatives = shared_negatives
        self.subtract_log_q = subtract_log_q
        self.label_log_q = label_log_q
        self.remove_accidental_hits = remove_accidental_hits
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_components = n_components
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.eval_chunk_classes = eval_chunk_classes
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ---------------------------------------------------------------------------------------
    # Validation and set-up
    # ---------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        def choice(name: str, options: tuple[str, ...]) -> None:
            v = getattr(self, name)
            if v not in options:
                raise ValueError(f"`{name}` must be one of {options}, got {v!r}")

        def integer(name: str, low: int, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
                raise ValueError(f"`{name}` must be an int >= {low}, got {v!r}")

        def real(name: str, low: float, high: float = math.inf, open_low: bool = True) -> None:
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not (v > low if open_low else v >= low) or not v < high:
                raise ValueError(f"`{name}` must be a real in ({low}, {high}), got {v!r}")

        choice("loss", _LOSSES)
        choice("sampler", _SAMPLERS)
        choice("optimizer", _OPTIMIZERS)
        integer("n_negatives", 1)
        integer("batch_size", 1)
        integer("max_iter", 1)
        integer("n_components", 1, allow_none=True)
        integer("n_iter_no_change", 1)
        integer("eval_chunk_classes", 1)
        real("learning_rate", 0.0)
        real("validation_fraction", 0.0, 1.0)
        real("tol", 0.0, open_low=False)
        real("unigram_power", 0.0, open_low=False)
        hf = self.head_fraction
        if (
            isinstance(hf, bool)
            or not isinstance(hf, numbers.Real)
            or not (math.isfinite(hf) and 0.0 <= hf <= 1.0)
        ):
            raise ValueError(f"`head_fraction` must be a real in [0, 1], got {hf!r}")

    def _validate_X(self, X: Any, reset: bool) -> Any:
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=reset)
        return self._as_float32(X)

    @staticmethod
    def _as_float32(X: Any) -> Any:
        if sp.issparse(X):
            X = X.astype(np.float32)
            X.sort_indices()
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
        return X

    def _encode(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, self.classes_.size - 1)
        bad = np.flatnonzero(self.classes_[idx] != y)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"`y` has a label not in `classes_`: {y[i]!r} at index {i} "
                f"(pass every class to the first partial_fit via `classes=`)"
            )
        return idx.astype(np.int64)

    def _make_sampler(self, counts: np.ndarray) -> _Sampler:
        k = counts.size
        if self.sampler == "uniform":
            return UniformSampler(k)
        if self.sampler == "log_uniform":
            return _RankedSampler(np.argsort(-counts, kind="stable").astype(np.int64))
        if self.sampler == "head_uniform":
            # Keep at least one tail class, so that the tail draws have somewhere to go.
            n_head = min(int(float(self.head_fraction) * int(self.n_negatives)), k - 1)
            return HeadUniformSampler(counts, n_head=n_head)
        return UnigramSampler(counts + 1.0, power=float(self.unigram_power))

    def _initialize(self, n_features: int, counts: np.ndarray, rng: np.random.RandomState) -> None:
        k = self.classes_.size
        if self.loss != "softmax" and not self.replace and self.n_negatives > k:
            raise ValueError(
                f"`n_negatives` must be <= the {k} classes when replace=False, "
                f"got {self.n_negatives}"
            )
        d = n_features if self.n_components is None else int(self.n_components)
        if self.n_components is None:
            self.components_ = None
            self.coef_ = np.zeros((k, d), dtype=np.float32)
        else:
            self.components_ = (
                rng.standard_normal((n_features, d)) / math.sqrt(n_features)
            ).astype(np.float32)
            self.coef_ = (rng.standard_normal((k, d)) * 0.01).astype(np.float32)
        prior = (counts + 1.0) / (counts.sum() + k)
        self.intercept_ = np.log(prior).astype(np.float32)
        self.sampler_ = self._make_sampler(counts)
        self._seed_negatives = np.random.default_rng(rng.randint(0, 2**31 - 1))
        head_kw: dict[str, Any] = dict(
            sampler=self.sampler_,
            n_negatives=min(int(self.n_negatives), self.sampler_.n_support)
            if not self.replace
            else int(self.n_negatives),
            replace=bool(self.replace),
            shared=bool(self.shared_negatives),
            remove_accidental_hits=bool(self.remove_accidental_hits),
        )
        if self.loss == "negative_sampling":
            self.head_: Any = NegativeSamplingHead(k, **head_kw)
        else:
            self.head_ = SampledSoftmaxHead(
                k,
                subtract_log_q=bool(self.subtract_log_q),
                label_log_q=bool(self.label_log_q),
                **head_kw,
            )
        opt = self.optimizer
        lr = float(self.learning_rate)
        self._opt_w = _LazyOptimizer(opt, lr, self.coef_.shape, np.float32)
        self._opt_b = _LazyOptimizer(opt, lr, self.intercept_.shape, np.float32)
        self._opt_p = (
            None
            if self.components_ is None
            else _LazyOptimizer(opt, lr, self.components_.shape, np.float32)
        )
        self.t_ = 0
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []
        self.epoch_times_: list[float] = []

    # ---------------------------------------------------------------------------------------
    # Training
    # ---------------------------------------------------------------------------------------

    def _hidden(self, Xb: Any) -> np.ndarray:
        if self.components_ is not None:
            return np.asarray(Xb @ self.components_, dtype=np.float32)
        return Xb.toarray() if sp.issparse(Xb) else Xb

    def _step(self, Xb: Any, yb: np.ndarray) -> float:
        self.t_ += 1
        t = self.t_
        H = self._hidden(Xb)
        n = H.shape[0]
        if self.loss == "softmax":
            Z = H @ self.coef_.T + self.intercept_
            lp = log_softmax(Z)
            value = -float(np.mean(lp[np.arange(n), yb], dtype=np.float64))
            G = np.exp(lp)
            G[np.arange(n), yb] -= 1.0
            G /= n
            grad_h = G @ self.coef_ if self.components_ is not None else None
            self._opt_w.step(self.coef_, None, G.T @ H, t)
            self._opt_b.step(self.intercept_, None, G.sum(axis=0), t)
        else:
            r = self.head_.loss_and_grad(
                H, self.coef_, self.intercept_, yb, rng=self._seed_negatives
            )
            value = float(r.value)
            grad_h = r.grad_hidden
            self._opt_w.step(self.coef_, r.row_ids, r.grad_rows, t)
            self._opt_b.step(self.intercept_, r.row_ids, r.grad_bias, t)
        if self.components_ is not None and self._opt_p is not None:
            if sp.issparse(Xb):
                feats = np.unique(Xb.indices)
                sub = Xb[:, feats]
                self._opt_p.step(self.components_, feats, np.asarray(sub.T @ grad_h), t)
            else:
                self._opt_p.step(self.components_, None, Xb.T @ grad_h, t)
        return value

    def _epoch(self, X: Any, y: np.ndarray, rng: np.random.RandomState) -> float:
        n = X.shape[0]
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        total = 0.0
        for s in range(0, n, int(self.batch_size)):
            idx: Any = order[s : s + int(self.batch_size)]
            if not self.shuffle:
                idx = slice(s, s + int(self.batch_size))
            yb = y[idx]
            total += self._step(X[idx], yb) * yb.shape[0]
        return total / max(n, 1)

    def fit(self, X: Any, y: Any) -> SampledSoftmaxClassifier:
        """Fit on ``(X, y)`` for up to `max_iter` epochs (with early stopping if asked)."""
        self._check_params()
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64], reset=True
        )
        X = self._as_float32(X)
        check_classification_targets(y)
        self.classes_, yenc = np.unique(y, return_inverse=True)
        yenc = yenc.astype(np.int64)
        if self.classes_.size < 2:
            raise ValueError(
                f"`y` must have at least 2 classes, got {self.classes_.size} class: "
                f"{self.classes_.tolist()}"
            )
        rng = check_random_state(self.random_state)
        X_val = y_val = None
        if self.early_stopping:
            n_val = max(1, round(self.validation_fraction * X.shape[0]))
            if n_val >= X.shape[0]:
                raise ValueError(
                    f"`validation_fraction`={self.validation_fraction} leaves no training data "
                    f"for {X.shape[0]} samples"
                )
            perm = rng.permutation(X.shape[0])
            val, tr = perm[:n_val], perm[n_val:]
            X_val, y_val, X, yenc = X[val], yenc[val], X[tr], yenc[tr]
        counts = np.bincount(yenc, minlength=self.classes_.size).astype(np.float64)
        self._initialize(X.shape[1], counts, rng)
        best = math.inf
        best_params: tuple[Any, ...] | None = None
        no_improve = 0
        for epoch in range(int(self.max_iter)):
            t0 = time.perf_counter()
            train_loss = self._epoch(X, yenc, rng)
            self.epoch_times_.append(time.perf_counter() - t0)
            self.loss_curve_.append(train_loss)
            self.n_iter_ = epoch + 1
            msg = f"epoch {epoch + 1}: train loss {train_loss:.4f}"
            if X_val is not None and y_val is not None:
                val_loss = float(np.mean(self._evaluate_encoded(X_val, y_val, k=1).value))
                self.validation_scores_.append(val_loss)
                msg += f", validation log-loss {val_loss:.4f}"
                no_improve = 0 if val_loss < best - float(self.tol) else no_improve + 1
                if val_loss < best:
                    best = val_loss
                    best_params = self._snapshot()
            if self.verbose:
                print(msg + f" ({self.epoch_times_[-1]:.2f} s)")
            if no_improve >= int(self.n_iter_no_change):
                break
        if best_params is not None:
            self._restore(best_params)
        return self

    def _snapshot(self) -> tuple[Any, ...]:
        p = None if self.components_ is None else self.components_.copy()
        return self.coef_.copy(), self.intercept_.copy(), p

    def _restore(self, params: tuple[Any, ...]) -> None:
        self.coef_, self.intercept_, self.components_ = params

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> SampledSoftmaxClassifier:
        """One pass of minibatches over ``(X, y)``; the first call needs `classes`.

        On the first call the sampler's counts and the bias prior come from this batch
        (plus one per class).
        """
        first = not hasattr(self, "classes_")
        if not first and not hasattr(self, "head_"):
            raise ValueError(
                "this SampledSoftmaxClassifier was loaded from a file, which keeps no optimizer "
                "or sampler state: it can predict but not continue with partial_fit; fit it again"
            )
        if first:
            self._check_params()
            if classes is None:
                raise ValueError("`classes` must be given on the first call to partial_fit")
            self.classes_ = np.unique(np.asarray(classes))
            if self.classes_.size < 2:
                raise ValueError(f"`classes` must hold at least 2 classes, got {self.classes_}")
        X = self._validate_X(X, reset=first)
        check_classification_targets(y)
        yenc = self._encode(np.ravel(np.asarray(y)))
        if first:
            rng = check_random_state(self.random_state)
            self._rng = rng
            counts = np.bincount(yenc, minlength=self.classes_.size).astype(np.float64)
            self._initialize(X.shape[1], counts, rng)
        t0 = time.perf_counter()
        self.loss_curve_.append(self._epoch(X, yenc, self._partial_rng()))
        self.epoch_times_.append(time.perf_counter() - t0)
        self.n_iter_ += 1
        return self

    def _partial_rng(self) -> np.random.RandomState:
        if not hasattr(self, "_rng"):
            self._rng = check_random_state(self.random_state)
        return self._rng

    # ---------------------------------------------------------------------------------------
    # Prediction
    # ---------------------------------------------------------------------------------------

    def _evaluate_encoded(self, X: Any, yenc: np.ndarray | None, k: int) -> Any:
        rows = 4096
        parts = []
        for s in range(0, X.shape[0], rows):
            H = self._hidden(X[s : s + rows])
            parts.append(
                full_softmax_evaluate(
                    H,
                    self.coef_,
                    self.intercept_,
                    None if yenc is None else yenc[s : s + rows],
                    k=k,
                    chunk_classes=int(self.eval_chunk_classes),
                )
            )
        top = np.concatenate([p.top_k for p in parts])
        if yenc is None:
            return parts[0]._replace(top_k=top)
        return parts[0]._replace(
            value=np.concatenate([p.value for p in parts]),
            top_k=top,
            correct=np.concatenate([p.correct for p in parts]),
            in_top_k=np.concatenate([p.in_top_k for p in parts]),
        )

    def predict_top_k(self, X: Any, k: int = 5) -> np.ndarray:
        """The `k` most probable classes of each sample, best first: shape (n, k)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self.classes_[self._evaluate_encoded(X, None, k=k).top_k]

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class, streamed over class chunks (no ``n x K`` matrix)."""
        return self.predict_top_k(X, k=1)[:, 0]

    def evaluate(self, X: Any, y: Any, *, k: int = 5) -> dict[str, float]:
        """Exact full-softmax metrics: ``log_loss``, ``accuracy`` and ``top_k_accuracy``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        ev = self._evaluate_encoded(X, self._encode(np.ravel(np.asarray(y))), k=k)
        return {
            "log_loss": float(np.mean(ev.value, dtype=np.float64)),
            "accuracy": float(np.mean(ev.correct)),
            "top_k_accuracy": float(np.mean(ev.in_top_k)),
        }

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits in float64, shape (n, n_classes); (n,) for two classes (``x_1 - x_0``).

        This is an ``n x K`` matrix: use small batches when `K` is large.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        z = self._logits64(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def _logits64(self, X: Any) -> np.ndarray:
        # float64, so the result does not depend on how BLAS blocks the rows.
        X64 = X.astype(np.float64)
        if self.components_ is not None:
            H = np.asarray(X64 @ self.components_.astype(np.float64))
        else:
            H = X64.toarray() if sp.issparse(X64) else X64
        return H @ self.coef_.T.astype(np.float64) + self.intercept_.astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Full softmax probabilities in float64, shape (n, n_classes) (an ``n x K`` matrix)."""
        check_is_fitted(self)
        return softmax(self._logits64(self._validate_X(X, reset=False)))

    def save(self, path: Any) -> None:
        """Write the fitted model to `path` (``.npz`` with JSON metadata), atomically.

        Load it back with :func:`sigmax.load`. Only the prediction state is kept (see
        :mod:`sigmax.estimators.persistence`).
        """
        from sigmax.estimators.persistence import save

        save(self, path)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Full log-softmax in float64, shape (n, n_classes)."""
        check_is_fitted(self)
        return log_softmax(self._logits64(self._validate_X(X, reset=False)))
