r"""A NumPy multilayer perceptron with a sigmoid or softmax head.

.. math::

    a_0 = x,\quad a_l = \phi(a_{l-1} W_l + b_l),\quad z = a_{L-1} W_L + b_L,

with the head's cross-entropy on the logits :math:`z` and the L2 penalty
:math:`\sum_l \lVert W_l\rVert^2 / (2 C \sum_i s_i)`, scikit-learn's ``alpha = 1 / C``.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if

from sigmax.estimators._base import BaseSigmaxClassifier
from sigmax.functions import sigmoid

__all__ = ["MLPClassifier"]


def _activation_vjp(name: str, a: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
    """Pull `cotangent` back through the activation, from its output `a` alone."""
    if name == "relu":
        return cotangent * (a > 0)
    if name == "tanh":
        return cotangent * (1.0 - a * a)
    from sigmax import derivatives

    vjp = getattr(derivatives, "sigmoid_vjp_from_output", None)
    if vjp is not None:
        return np.asarray(vjp(a, cotangent))
    return cotangent * a * (1.0 - a)


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0, out=z)
    if name == "tanh":
        return np.tanh(z, out=z)
    return np.asarray(sigmoid(z))


def _minibatch_solver(est: Any) -> bool:
    return est.solver in ("sgd", "adam")


class MLPClassifier(BaseSigmaxClassifier):
    r"""Multilayer perceptron classifier with a sigmoid or softmax head.

    The same body can be fitted with either head, which is the direct way to answer
    "sigmoid or softmax?" on a dataset. Unlike scikit-learn's `MLPClassifier`, it takes
    `class_weight` and `sample_weight`.

    Parameters
    ----------
    head : {'softmax', 'sigmoid'}, default='softmax'
        The output layer. 'sigmoid' also fits multi-label indicator `y`.
    hidden_layer_sizes : tuple of int, default=(100,)
    activation : {'relu', 'tanh', 'logistic'}, default='relu'
    C : float, default=1e4
        Inverse L2 strength on the weights (scikit-learn's ``alpha = 1 / C``; 1e4 is its
        default ``alpha=1e-4``).
    solver : {'adam', 'sgd', 'lbfgs'}, default='adam'
        'newton-cg' is refused: the Hessian of a network is not available exactly.
    batch_size : int, default=200
    learning_rate_init : float, default=1e-3
    max_iter : int, default=200
        Epochs (minibatch) or iterations (lbfgs).
    tol, n_iter_no_change, early_stopping, validation_fraction
        Stopping rules, as in scikit-learn's `MLPClassifier`.
    fit_intercept : bool, default=True
        Biases in every layer.
    class_weight, warm_start, random_state, verbose
        As for `SigmoidClassifier`; `random_state` also seeds the Glorot initialization.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coefs_ : list of ndarray
        Weight matrices, ``coefs_[l]`` of shape (fan_in, fan_out).
    intercepts_ : list of ndarray
    n_features_in_, feature_names_in_, n_iter_, loss_, loss_curve_

    Notes
    -----
    Backpropagation starts from the head's fused gradient with respect to the logits
    (``softmax(z) - onehot(y)`` or ``sigmoid(z) - y``, computed without forming a Jacobian)
    and pulls it back through each layer; the logistic activation's VJP is
    `sigmax.derivatives.sigmoid_vjp_from_output`, which needs only the stored output.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sigmax import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0)
    >>> clf = clf.fit(X, y)
    >>> float(clf.score(X, y)) > 0.95
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseSigmaxClassifier._parameter_constraints,
        "head": [StrOptions({"sigmoid", "softmax"})],
        "hidden_layer_sizes": ["array-like", numbers.Integral],
        "activation": [StrOptions({"relu", "tanh", "logistic"})],
    }

    def __init__(
        self,
        *,
        head: str = "softmax",
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        C: float = 1e4,
        solver: str = "adam",
        batch_size: int = 200,
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        fit_intercept: bool = True,
        class_weight: Any = None,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.head = head
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.C = C
        self.solver = solver
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def _head_name(self) -> str:
        return str(self.head)

    def _sizes(self, n_features: int, n_outputs: int) -> list[int]:
        given: Any = self.hidden_layer_sizes
        hidden: list[Any] = [given] if isinstance(given, numbers.Integral) else list(given)
        for i, h in enumerate(hidden):
            if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
                raise ValueError(
                    f"`hidden_layer_sizes` must hold positive ints, got {h!r} at index {i}"
                )
        return [n_features, *map(int, hidden), n_outputs]

    def _init_params(self, n_features: int, n_outputs: int, rng: np.random.RandomState) -> None:
        sizes = self._sizes(n_features, n_outputs)
        self._layer_shapes = list(itertools.pairwise(sizes))
        parts: list[np.ndarray] = []
        gain = 2.0 if self.activation == "logistic" else 1.0
        for fan_in, fan_out in self._layer_shapes:
            # Glorot uniform, as scikit-learn's MLP (doubled bound for the logistic).
            bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
            parts.append(rng.uniform(-bound, bound, fan_in * fan_out))
            b = rng.uniform(-bound, bound, fan_out)
            parts.append(b if self.fit_intercept else np.zeros(fan_out))
        self._w = np.concatenate(parts)

    def _unpack(self, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        out, pos = [], 0
        for fan_in, fan_out in self._layer_shapes:
            W = w[pos : pos + fan_in * fan_out].reshape(fan_in, fan_out)
            pos += fan_in * fan_out
            out.append((W, w[pos : pos + fan_out]))
            pos += fan_out
        return out

    def _penalty_mask(self) -> np.ndarray:
        mask = np.zeros_like(self._w)
        pos = 0
        for fan_in, fan_out in self._layer_shapes:
            mask[pos : pos + fan_in * fan_out] = 1.0
            pos += fan_in * fan_out + fan_out
        return mask

    def _activations(self, w: np.ndarray, X: Any) -> tuple[list[Any], np.ndarray]:
        layers = self._unpack(w)
        acts: list[Any] = [X]
        A = X
        for W, b in layers[:-1]:
            Z = np.asarray(A @ W)
            if self.fit_intercept:
                Z += b
            A = _activate(self.activation, Z)
            acts.append(A)
        W, b = layers[-1]
        Z = np.asarray(A @ W)
        if self.fit_intercept:
            Z += b
        return acts, Z

    def _forward(self, w: np.ndarray, X: Any) -> np.ndarray:
        return self._activations(w, X)[1]

    def _loss_grad(self, w: np.ndarray, X: Any, T: Any, sw: Any) -> tuple[float, np.ndarray]:
        acts, Z = self._activations(w, X)
        value, G = self._head_loss_grad(Z, T, sw)
        layers = self._unpack(w)
        grads: list[np.ndarray] = []
        for layer in range(len(layers) - 1, -1, -1):
            W, _ = layers[layer]
            A = acts[layer]
            grads.append(G.sum(axis=0) if self.fit_intercept else np.zeros(W.shape[1]))
            grads.append(np.asarray(G.T @ A).T.ravel())  # see linear._xt_dot
            if layer:
                G = _activation_vjp(self.activation, A, G @ W.T)
        return value, np.concatenate(grads[::-1])

    def _publish(self) -> None:
        layers = self._unpack(self._w)
        self.coefs_ = [W.copy() for W, _ in layers]
        self.intercepts_ = [b.copy() for _, b in layers]
        self.n_layers_ = len(layers) + 1
        self.n_outputs_ = self._n_outputs
        self.out_activation_ = "softmax" if self.head == "softmax" else "logistic"

    @available_if(_minibatch_solver)
    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """One epoch of minibatch updates (``solver='sgd'`` or ``'adam'`` only)."""
        return self._partial_fit(X, y, classes=classes, sample_weight=sample_weight)
