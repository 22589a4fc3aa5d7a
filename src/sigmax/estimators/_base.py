"""Shared scikit-learn plumbing for the sigmax estimators.

A model is a body (linear or MLP) with parameters packed in one flat vector, a head
(sigmoid or softmax) and a solver. This base class does everything that does not depend on
the body: input validation, labels and ``classes_``, ``class_weight`` and ``sample_weight``,
the L2 penalty with scikit-learn's scaling, solver dispatch, Dask routing, the decision
rule and probabilities (in log space), and persistence.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from sigmax.estimators import solvers
from sigmax.functions import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax
from sigmax.heads import SigmoidHead, SoftmaxHead

__all__ = ["BaseSigmaxClassifier"]


class _Progress:
    """Loss per iteration: a rich progress bar when rich is installed, else printed lines."""

    def __init__(self, verbose: int, total: int, title: str) -> None:
        self.verbose = verbose
        self.total = total
        self.title = title
        self.i = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.verbose:
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:  # pragma: no cover - rich ships with the cli extra
                return self
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=self.total, loss="-")
        return self

    def __call__(self, loss: float) -> None:
        self.i += 1
        if not self.verbose:
            return
        if self._bar is None:
            print(f"{self.title}: iteration {self.i}, loss = {loss:.8g}")
        else:
            self._bar.update(self._task, advance=1, loss=f"{loss:.8g}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


class BaseSigmaxClassifier(ClassifierMixin, BaseEstimator):
    """Common machinery; subclasses define the body through a handful of hooks."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(numbers.Real, 0, None, closed="right")],
        "fit_intercept": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "solver": [StrOptions(set(solvers.SOLVERS))],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    # ---- hooks a body implements -------------------------------------------------------
    def _head_name(self) -> str:
        raise NotImplementedError

    def _init_params(self, n_features: int, n_outputs: int, rng: np.random.RandomState) -> None:
        """Set the flat vector ``self._w`` and the shapes needed to unpack it."""
        raise NotImplementedError

    def _penalty_mask(self) -> np.ndarray:
        """1.0 where a parameter is L2-penalized, 0.0 for intercepts."""
        raise NotImplementedError

    def _forward(self, w: np.ndarray, X: Any) -> np.ndarray:
        """Logits, shape (n_samples, n_outputs)."""
        raise NotImplementedError

    def _loss_grad(self, w: np.ndarray, X: Any, T: Any, sw: Any) -> tuple[float, np.ndarray]:
        """Weighted mean loss and its gradient with respect to `w` (no penalty)."""
        raise NotImplementedError

    def _loss_hvp(self, w: np.ndarray, v: np.ndarray, X: Any, T: Any, sw: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no Hessian-vector product")

    def _publish(self) -> None:
        """Expose ``self._w`` as the public fitted attributes (coef_, intercept_, ...)."""
        raise NotImplementedError

    _accept_sparse: Any = "csr"
    _has_hvp = False
    _w: np.ndarray
    _head_: Any
    _optimizer_: Any

    # ---- the head --------------------------------------------------------------------
    def _head(self) -> Any:
        name = self._head_name()
        if name not in ("sigmoid", "softmax"):
            raise ValueError(f"`head` must be 'sigmoid' or 'softmax', got {name!r}")
        return SigmoidHead() if name == "sigmoid" else SoftmaxHead()

    def _head_logits(self, Z: np.ndarray) -> np.ndarray:
        """A single-logit sigmoid head takes (n,) logits; everything else (n, m)."""
        return Z[:, 0] if self._single_logit else Z

    def _head_loss_grad(self, Z: np.ndarray, T: Any, sw: Any) -> tuple[float, np.ndarray]:
        # Unit weights go to the head as None: its unweighted path is ~40% faster.
        sw = None if getattr(self, "_unweighted", False) else sw
        # T and sw were checked once by fit (_encode_targets, _weights): the head trusts them.
        value, G = self._head_.loss_and_grad(
            self._head_logits(Z), T, sample_weight=sw, check_input=False
        )
        return float(value), np.asarray(G, dtype=float).reshape(Z.shape)

    def _head_hvp(self, Z: np.ndarray, V: np.ndarray, T: Any, sw: Any) -> np.ndarray:
        sw = None if getattr(self, "_unweighted", False) else sw
        HV = self._head_.hvp(self._head_logits(Z), self._head_logits(V), sample_weight=sw, y=T)
        return np.asarray(HV, dtype=float).reshape(Z.shape)

    # ---- targets ---------------------------------------------------------------------
    def _encode_targets(self, y: Any, *, reset: bool, classes: Any = None) -> Any:
        """Set ``classes_`` (when `reset`) and return the head's targets for `y`."""
        head = self._head_name()
        if y.ndim == 2 and y.shape[1] > 1 and type_of_target(y) == "multilabel-indicator":
            if head != "sigmoid":
                raise ValueError(
                    f"`y` is a multi-label indicator matrix of shape {y.shape}, but the "
                    "softmax head predicts exactly one class per sample. Use "
                    "SigmoidClassifier or MLPClassifier(head='sigmoid') for multi-label data."
                )
            if reset:
                self.classes_ = np.arange(y.shape[1])
                self._multilabel = True
                self._single_logit = False
                self._n_outputs = y.shape[1]
            elif not getattr(self, "_multilabel", False) or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"`y` has {y.shape[1]} label columns; the model was fitted with "
                    f"{len(self.classes_)}"
                )
            return np.asarray(y, dtype=float)
        if reset:
            check_classification_targets(y)
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if labels.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                    f"but the data contain only one class: {labels[0]!r}"
                )
            self.classes_ = labels
            self._multilabel = False
            self._single_logit = head == "sigmoid" and labels.shape[0] == 2
            self._n_outputs = self._head_.n_outputs(labels.shape[0]) if head else 0
        elif getattr(self, "_multilabel", False):
            raise ValueError("the model was fitted on multi-label `y`; got 1-d labels")
        idx = np.searchsorted(self.classes_, y)
        idx_c = np.clip(idx, 0, len(self.classes_) - 1)
        bad = np.flatnonzero(self.classes_[idx_c] != y)
        if bad.size:
            raise ValueError(
                f"`y` must hold labels from classes_ {self.classes_.tolist()}, got "
                f"{y[bad[0]]!r} at index {bad[0]}"
            )
        if head == "softmax":
            return idx.astype(np.intp)
        if self._single_logit:
            return idx.astype(float)
        return np.eye(len(self.classes_))[idx]

    def _weights(self, y: Any, sample_weight: Any, X: Any) -> np.ndarray:
        self._unweighted = sample_weight is None and self.class_weight is None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            if getattr(self, "_multilabel", False):
                raise ValueError("`class_weight` is not supported for multi-label `y`")
            cw = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y, sample_weight=sw
            )
            sw = sw * cw[np.searchsorted(self.classes_, y)]
        if not sw.sum() > 0:
            raise ValueError("`sample_weight` must have a positive sum, got all zeros")
        return sw

    # ---- validation --------------------------------------------------------------------
    def _validate_xy(self, X: Any, y: Any, *, reset: bool) -> tuple[Any, Any]:
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=self._accept_sparse,
            dtype=np.float64,
            multi_output=True,
            y_numeric=False,
        )
        if not (y.ndim == 2 and y.shape[1] > 1):
            y = column_or_1d(y, warn=True)
        return X, y

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseSigmaxClassifier:
        """Fit the model to `X` and `y`.

        Parameters
        ----------
        X : array-like, sparse matrix or Dask array, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a 0/1 indicator matrix for multi-label data (sigmoid head).
        sample_weight : array-like, shape (n_samples,), optional
            Multiplied by the class weights; the loss is the weighted mean.

        Returns
        -------
        self
        """
        self._validate_params()
        if _is_dask(X):
            from sigmax.estimators._dask import fit_dask

            return fit_dask(self, X, y, sample_weight)
        X, y = self._validate_xy(X, y, reset=True)
        warm = self.warm_start and hasattr(self, "_w")
        old = (self._w, self.classes_) if warm else None
        if not warm:
            self._optimizer_ = None
        self._head_ = self._head()
        T = self._encode_targets(y, reset=True)
        sw = self._weights(y, sample_weight, X)
        rng = check_random_state(self.random_state)
        self._init_params(X.shape[1], self._n_outputs, rng)
        if (
            old is not None
            and old[0].shape == self._w.shape
            and np.array_equal(old[1], self.classes_)
        ):
            self._w = old[0].copy()
        if self.solver in ("sgd", "adam"):
            # Minibatch products are batch-sized: one BLAS thread is always faster.
            threads = solvers.blas_threads(0)
        else:
            threads = solvers.blas_threads(
                X.shape[0] * X.shape[1], probe=lambda: self._loss_grad(self._w, X, T, sw)
            )
        with threads:
            self._run_solver(X, T, sw, y, rng)
        self._publish()
        return self

    def _run_solver(self, X: Any, T: Any, sw: np.ndarray, y: Any, rng: Any) -> None:
        if self.solver in ("sgd", "adam"):
            self._run_minibatch(X, T, sw, y, rng, epochs=self.max_iter, warn=True)
            return
        self._solve_full(
            lambda w: self._loss_grad(w, X, T, sw),
            lambda w, v: self._loss_hvp(w, v, X, T, sw),
            float(sw.sum()),
        )

    def _solve_full(
        self,
        loss_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
        loss_hvp: Callable[[np.ndarray, np.ndarray], np.ndarray],
        sw_sum: float,
    ) -> None:
        """L-BFGS or Newton-CG on the mean loss plus ``||W||^2 / (2 C sum(sw))``."""
        name = type(self).__name__
        l2 = 0.0 if np.isinf(self.C) else 1.0 / (self.C * sw_sum)
        mask = self._penalty_mask()

        def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = loss_grad(w)
            if l2:
                mw = mask * w
                value += 0.5 * l2 * float(mw @ mw)
                g = g + l2 * mw
            return value, g

        with _Progress(self.verbose, self.max_iter, f"{name} ({self.solver})") as progress:
            if self.solver == "lbfgs":
                res = solvers.lbfgs(
                    fun, self._w, tol=self.tol, max_iter=self.max_iter, callback=progress
                )
            else:
                if not self._has_hvp:
                    raise ValueError(
                        f"solver='newton-cg' needs exact Hessian-vector products, which "
                        f"{name} does not provide; use solver='lbfgs'"
                    )
                res = solvers.newton_cg(
                    fun,
                    lambda w, v: loss_hvp(w, v) + l2 * mask * v,
                    self._w,
                    tol=self.tol,
                    max_iter=self.max_iter,
                    callback=progress,
                )
        self._finish(res)

    def _finish(self, res: solvers.SolverResult, *, minibatch: bool = False) -> None:
        self._w = np.asarray(res.x, dtype=float)
        self.n_iter_ = max(int(res.n_iter), 1)
        self.loss_ = float(res.fun)
        if res.loss_curve:
            self.loss_curve_ = list(res.loss_curve)
        if not res.converged:
            solvers.convergence_warning(
                type(self).__name__, self.solver, res.message, minibatch=minibatch
            )

    def _optimizer(self) -> solvers.Sgd | solvers.Adam:
        opt = getattr(self, "_optimizer_", None)
        kind = solvers.Sgd if self.solver == "sgd" else solvers.Adam
        if not isinstance(opt, kind) or opt.learning_rate != self.learning_rate_init:
            opt = kind(self.learning_rate_init)
            self._optimizer_ = opt
        return opt

    def _run_minibatch(
        self, X: Any, T: Any, sw: np.ndarray, y: Any, rng: Any, *, epochs: int, warn: bool
    ) -> None:
        validation_loss = None
        if self.early_stopping and warn:
            strat = y if (y.ndim == 1 and np.unique(y).size * 2 <= X.shape[0]) else None
            idx_tr, idx_va = train_test_split(
                np.arange(X.shape[0]),
                test_size=self.validation_fraction,
                random_state=rng,
                stratify=strat,
            )
            Xv, Tv, swv = X[idx_va], T[idx_va], sw[idx_va]
            X, T, sw = X[idx_tr], T[idx_tr], sw[idx_tr]

            def validation_loss(w: np.ndarray) -> float:
                return self._loss_grad(w, Xv, Tv, swv)[0]

        batch = min(self.batch_size, X.shape[0])
        gen = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))

        def epoch_batches() -> Iterator[tuple[Any, Any, Any]]:
            for idx in solvers.shuffled_batches(X.shape[0], batch, gen):
                swb = sw[idx]
                if swb.sum() > 0:
                    yield X[idx], T[idx], swb

        self._solve_minibatch(epoch_batches, validation_loss, epochs=epochs, warn=warn)

    def _solve_minibatch(
        self,
        epoch_batches: Callable[[], Iterator[tuple[Any, Any, Any]]],
        validation_loss: Callable[[np.ndarray], float] | None,
        *,
        epochs: int,
        warn: bool,
    ) -> None:
        """Epochs of SGD or Adam; each batch carries its own ``||W||^2 / (2 C sum(sw_b))``."""
        C = self.C
        mask = self._penalty_mask()

        def fun(w: np.ndarray, Xb: Any, Tb: Any, swb: Any) -> tuple[float, np.ndarray]:
            value, g = self._loss_grad(w, Xb, Tb, swb)
            if not np.isinf(C):
                l2 = 1.0 / (C * float(swb.sum()))
                mw = mask * w
                value += 0.5 * l2 * float(mw @ mw)
                g = g + l2 * mw
            return value, g

        name = type(self).__name__
        with _Progress(self.verbose, epochs, f"{name} ({self.solver})") as progress:
            res = solvers.minibatch(
                fun,
                self._w,
                epoch_batches,
                optimizer=self._optimizer(),
                max_iter=epochs,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change if warn else epochs + 1,
                validation_loss=validation_loss,
                callback=progress,
            )
        if warn:
            self._finish(res, minibatch=True)
        else:
            self._w = res.x
            self.n_iter_ = getattr(self, "n_iter_", 0) + res.n_iter
            self.loss_ = float(res.loss_curve[-1]) if res.loss_curve else float("nan")

    def _partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> BaseSigmaxClassifier:
        first = not hasattr(self, "_w")
        if first:
            self._validate_params()
        if self.solver not in ("sgd", "adam"):
            raise ValueError(f"partial_fit needs solver='sgd' or 'adam', got {self.solver!r}")
        X, y = self._validate_xy(X, y, reset=first)
        if first:
            self._head_ = self._head()
            if classes is None and not (y.ndim == 2 and y.shape[1] > 1):
                raise ValueError(
                    "`classes` must be passed to the first call of partial_fit, got None"
                )
            T = self._encode_targets(y, reset=True, classes=classes)
            self._init_params(X.shape[1], self._n_outputs, check_random_state(self.random_state))
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"`classes` must equal classes_ {self.classes_.tolist()} of the first "
                    f"call, got {np.unique(classes).tolist()}"
                )
            T = self._encode_targets(y, reset=False)
        sw = self._weights(y, sample_weight, X)
        rng = check_random_state(self.random_state)
        with solvers.blas_threads(0):
            self._run_minibatch(X, T, sw, y, rng, epochs=1, warn=False)
        self._publish()
        return self

    # ---- prediction ----------------------------------------------------------------------
    def _check_X(self, X: Any) -> Any:
        check_is_fitted(self)
        return validate_data(
            self, X, reset=False, accept_sparse=self._accept_sparse, dtype=np.float64
        )

    def _logits(self, X: Any) -> np.ndarray:
        X = self._check_X(X)
        return self._forward(self._w, X)

    def _map_dask(self, X: Any, method: str) -> Any | None:
        if not _is_dask(X):
            return None
        from sigmax.estimators._dask import map_blocks_predict

        return map_blocks_predict(self, X, method)

    def decision_function(self, X: Any) -> Any:
        """Logits: shape (n_samples,) for binary data, else (n_samples, n_classes).

        For the two-output softmax on binary data this is ``z_1 - z_0``, the log-odds.
        """
        out = self._map_dask(X, "decision_function")
        if out is not None:
            return out
        Z = self._logits(X)
        if self._single_logit:
            return Z[:, 0]
        if not self._multilabel and Z.shape[1] == 2 and self._head_name() == "softmax":
            return Z[:, 1] - Z[:, 0]
        return Z

    def predict_log_proba(self, X: Any) -> Any:
        """Log-probabilities, computed in log space (never ``log(predict_proba)``).

        Binary sigmoid: ``[log_sigmoid(-z), log_sigmoid(z)]``. One-vs-rest sigmoid: the
        normalized ``log_sigmoid(z_k) - logsumexp_j log_sigmoid(z_j)``. Softmax:
        ``log_softmax(z)``. Multi-label: the marginal ``log_sigmoid(z)`` of each label.
        """
        out = self._map_dask(X, "predict_log_proba")
        if out is not None:
            return out
        Z = self._logits(X)
        if self._head_name() == "softmax":
            return log_softmax(Z, axis=-1)
        if self._single_logit:
            z = Z[:, 0]
            return np.stack([log_sigmoid(-z), log_sigmoid(z)], axis=1)
        L = log_sigmoid(Z)
        if self._multilabel:
            return L
        return L - logsumexp(L, axis=-1, keepdims=True)

    def predict_proba(self, X: Any) -> Any:
        """Probabilities; rows sum to 1 except for multi-label data (marginals)."""
        out = self._map_dask(X, "predict_proba")
        if out is not None:
            return out
        Z = self._logits(X)
        if self._head_name() == "softmax":
            return softmax(Z, axis=-1)
        if self._single_logit:
            z = Z[:, 0]
            return np.stack([sigmoid(-z), sigmoid(z)], axis=1)
        if self._multilabel:
            return sigmoid(Z)
        return softmax(log_sigmoid(Z), axis=-1)

    def predict(self, X: Any) -> Any:
        """Class labels (argmax of the logits), or a 0/1 matrix for multi-label data."""
        out = self._map_dask(X, "predict")
        if out is not None:
            return out
        Z = self._logits(X)
        if self._multilabel:
            return (Z > 0).astype(int)
        if self._single_logit:
            return self.classes_[(Z[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(Z, axis=1)]

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the fitted model to `path` (``.npz`` with JSON metadata), atomically.

        Load it back with :func:`sigmax.load`. No pickle is involved either way.
        """
        from sigmax.estimators.persistence import save

        save(self, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self._accept_sparse is not False
        tags.classifier_tags.multi_label = self._head_name() == "sigmoid"
        return tags
