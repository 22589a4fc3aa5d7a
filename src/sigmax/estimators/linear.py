r"""Linear classifiers with a sigmoid or a softmax head.

Both minimize scikit-learn's `LogisticRegression` objective,

.. math::

    f(W, b) = \frac{\sum_i s_i\,\ell(x_i W + b,\ y_i)}{\sum_i s_i}
              + \frac{\lVert W\rVert_F^2}{2\,C\,\sum_i s_i},

where :math:`s_i` is the sample weight times the class weight and :math:`\ell` is the head's
cross-entropy. With the same `C` they reach the same optimum as `LogisticRegression`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.metaestimators import available_if

from sigmax.estimators._base import BaseSigmaxClassifier

__all__ = ["SigmoidClassifier", "SoftmaxClassifier"]


def _xt_dot(X: Any, G: np.ndarray) -> np.ndarray:
    """``X.T @ G`` computed as ``(G.T @ X).T``.

    For a C-ordered ``X`` of shape (n, d) and few outputs, OpenBLAS runs ``G.T @ X`` (a wide
    product over the long axis) about 4x faster than ``X.T @ G``; scikit-learn's
    ``LinearModelLoss`` uses the same order.
    """
    return np.asarray(G.T @ X).T


def _minibatch_solver(est: Any) -> bool:
    return est.solver in ("sgd", "adam")


class _LinearClassifier(BaseSigmaxClassifier):
    _has_hvp = True

    def __init__(
        self,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        class_weight: Any = None,
        solver: str = "lbfgs",
        tol: float = 1e-4,
        max_iter: int = 100,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: int = 0,
        batch_size: int = 200,
        learning_rate_init: float = 1e-3,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change

    # Layout of the flat vector: W (n_features, n_outputs) row-major, then b (n_outputs).
    def _init_params(self, n_features: int, n_outputs: int, rng: np.random.RandomState) -> None:
        self._shape = (n_features, n_outputs)
        self._w = np.zeros(n_features * n_outputs + (n_outputs if self.fit_intercept else 0))
        self._cache: tuple[np.ndarray, Any, np.ndarray] | None = None

    def _unpack(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        d, m = self._shape
        W = w[: d * m].reshape(d, m)
        b = w[d * m :] if self.fit_intercept else None
        return W, b

    def _penalty_mask(self) -> np.ndarray:
        d, m = self._shape
        mask = np.zeros_like(self._w)
        mask[: d * m] = 1.0
        return mask

    def _forward(self, w: np.ndarray, X: Any) -> np.ndarray:
        W, b = self._unpack(w)
        Z = np.asarray(X @ W)
        if b is not None:
            Z += b
        return Z

    def _pack(self, gW: np.ndarray, gb: np.ndarray) -> np.ndarray:
        return np.concatenate([gW.ravel(), gb]) if self.fit_intercept else gW.ravel()

    def _loss_grad(self, w: np.ndarray, X: Any, T: Any, sw: Any) -> tuple[float, np.ndarray]:
        Z = self._forward(w, X)
        self._cache = (w.copy(), X, Z)
        value, G = self._head_loss_grad(Z, T, sw)
        return value, self._pack(_xt_dot(X, G), G.sum(axis=0))

    def _loss_hvp(self, w: np.ndarray, v: np.ndarray, X: Any, T: Any, sw: Any) -> np.ndarray:
        # H v = X^T head.hvp(X W + b, X V + c): the Hessian of a linear body is exact.
        c = self._cache
        Z = c[2] if c is not None and c[1] is X and np.array_equal(c[0], w) else None
        if Z is None:
            Z = self._forward(w, X)
        V, vb = self._unpack(v)
        R = np.asarray(X @ V)
        if vb is not None:
            R += vb
        HR = self._head_hvp(Z, R, T, sw)
        return self._pack(_xt_dot(X, HR), HR.sum(axis=0))

    def _publish(self) -> None:
        W, b = self._unpack(self._w)
        self.coef_ = np.ascontiguousarray(W.T)
        self.intercept_ = b.copy() if b is not None else np.zeros(W.shape[1])
        self._cache = None

    @available_if(_minibatch_solver)
    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """One epoch of minibatch updates (``solver='sgd'`` or ``'adam'`` only).

        `classes` is required on the first call, unless `y` is a multi-label matrix.
        """
        return self._partial_fit(X, y, classes=classes, sample_weight=sample_weight)


class SigmoidClassifier(_LinearClassifier):
    r"""Linear classifier with a sigmoid head: binary, multi-label, or one-vs-rest.

    .. math:: p(y_k = 1 \mid x) = \sigma(x w_k + b_k)

    - Binary labels: one logit, the same model and objective as `LogisticRegression`.
    - A 2-D 0/1 indicator `y`: multi-label, one independent sigmoid per label.
    - More than two classes: one-vs-rest with one sigmoid per class, fitted jointly; the
      objective separates into the per-class problems of ``OneVsRestClassifier``.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 strength, scaled as in scikit-learn (penalty
        :math:`\lVert W\rVert^2 / (2 C \sum_i s_i)`). ``np.inf`` means no penalty.
    fit_intercept : bool, default=True
        Fit an unpenalized intercept per output.
    class_weight : dict, 'balanced' or None, default=None
        Multiplies the sample weights, as in scikit-learn.
    solver : {'lbfgs', 'newton-cg', 'sgd', 'adam'}, default='lbfgs'
    tol : float, default=1e-4
        Full-batch solvers stop when max |gradient| <= tol; minibatch solvers when the
        loss improves by less than `tol` for `n_iter_no_change` epochs.
    max_iter : int, default=100
        Iterations (full batch) or epochs (minibatch).
    warm_start : bool, default=False
        Start from the previous solution when the shapes and classes match.
    random_state : int, RandomState or None, default=None
        Shuffling and the validation split of the minibatch solvers.
    verbose : int, default=0
        Show a progress bar with the loss at each iteration.
    batch_size, learning_rate_init, early_stopping, validation_fraction, n_iter_no_change
        Minibatch options, as in scikit-learn's `MLPClassifier`.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coef_ : ndarray, shape (1, n_features) for binary data, else (n_classes, n_features)
    intercept_ : ndarray, shape (1,) or (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when `X` has string column names.
    n_iter_ : int
    loss_ : float
        The objective at the solution.

    Notes
    -----
    The loss and its gradient come from `sigmax.heads.SigmoidHead` in one fused pass, computed
    from ``log_sigmoid`` so no probability is ever clipped. Probabilities are computed in log
    space: ``predict_log_proba`` is ``log_sigmoid(±z)``, not ``log(predict_proba)``.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sigmax import SigmoidClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = SigmoidClassifier(C=1.0).fit(X, y)
    >>> clf.coef_.shape, round(float(clf.score(X, y)), 3)
    ((1, 30), 0.988)
    """

    def _head_name(self) -> str:
        return "sigmoid"


class SoftmaxClassifier(_LinearClassifier):
    r"""Linear classifier with a softmax head (multinomial logistic regression).

    .. math:: p(y = k \mid x) = \operatorname{softmax}(x W + b)_k

    On binary data it keeps two outputs (`coef_` has two rows), so it can be set against the
    one-logit `SigmoidClassifier`. ``SoftmaxClassifier(C=C / 2)`` and
    ``SigmoidClassifier(C=C)`` are the same model: at the optimum the two rows are
    ``w_1 = -w_0 = w / 2``, so the softmax's penalty on them is half the sigmoid's on ``w``.

    Parameters
    ----------
    C, fit_intercept, class_weight, solver, tol, max_iter, warm_start, random_state, verbose
        As for `SigmoidClassifier`.
    batch_size, learning_rate_init, early_stopping, validation_fraction, n_iter_no_change
        Minibatch options, as in scikit-learn's `MLPClassifier`.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coef_ : ndarray, shape (n_classes, n_features)
    intercept_ : ndarray, shape (n_classes,)
    n_features_in_, feature_names_in_, n_iter_, loss_
        As for `SigmoidClassifier`.

    Notes
    -----
    The loss and its gradient come from `sigmax.heads.SoftmaxHead` (``log_softmax`` based, so
    a shared offset in the logits cancels exactly). The multinomial model is invariant to
    adding a constant to every class's intercept; starting from zero, the solvers keep the
    intercepts summing to zero, which is also scikit-learn's choice.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sigmax import SoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SoftmaxClassifier(max_iter=500).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape, round(float(clf.score(X, y)), 2)
    ((1, 3), 0.97)
    """

    def _head_name(self) -> str:
        return "softmax"
