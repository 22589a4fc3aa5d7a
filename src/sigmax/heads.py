r"""Output heads: the link, loss, gradient, Hessian-vector product and decision rule of a model.

A head is the unit a user swaps. A model is a body (linear or MLP) that produces logits of
shape ``(n, n_outputs)``, a head, and a solver. The head holds only its options (class weights,
label smoothing, ...) and no data between calls.

=================  =========================  ==============================================
head               logits                     targets ``y`` (already index-encoded)
=================  =========================  ==============================================
``SigmoidHead``    ``(n,)`` or ``(n, 1)``     ``(n,)`` of 0/1 (binary, one logit)
``SigmoidHead``    ``(n, K)``                 ``(n, K)`` indicators or probabilities
``SoftmaxHead``    ``(n, K)``                 ``(n,)`` ints in ``[0, K)`` or ``(n, K)``
                                              probability rows
=================  =========================  ==============================================

Every head reduces the per-example losses of :mod:`sigmax.losses` to the weighted mean

.. math:: L = \frac{\sum_i w_i\, \ell_i}{\sum_i w_i},

where :math:`w_i` is the sample weight (1 by default) and, for the sigmoid, :math:`\ell_i` sums
the elementwise losses of row :math:`i` over its labels. ``loss_and_grad`` and ``hvp`` give the
gradient and the Hessian-vector product of that same :math:`L` with respect to the logits.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from sigmax._array_api import (
    Array,
    Namespace,
    compute_dtype,
    index_dtype,
    is_numpy,
    namespace,
)
from sigmax._validation import (
    check_label_smoothing,
    check_labels,
    check_nonnegative_weights,
    check_unit_interval,
    to_numpy,
)
from sigmax.functions import log_sigmoid, log_softmax, sigmoid, softmax
from sigmax.losses import (
    _sigmoid_run,
    _softmax_labels_total,
    sigmoid_cross_entropy,
    sigmoid_cross_entropy_hvp,
    softmax_cross_entropy,
    softmax_cross_entropy_hvp,
    softmax_cross_entropy_value_and_grad,
    softmax_cross_entropy_with_targets,
    softmax_cross_entropy_with_targets_value_and_grad,
)

__all__ = ["Head", "SigmoidHead", "SoftmaxHead"]


def _n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"`n_classes` must be an int, got {n_classes!r}")
    if n_classes < 2:
        raise ValueError(f"`n_classes` must be >= 2, got {n_classes}")
    return int(n_classes)


def _logits2(logits: Any) -> tuple[Array, Namespace]:
    x, xp = namespace(logits, "logits")
    if x.ndim not in (1, 2):
        raise ValueError(f"`logits` must have shape (n,) or (n, n_outputs), got {tuple(x.shape)}")
    return x, xp


def _row_weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    return check_nonnegative_weights(sample_weight, "sample_weight", (n,))


def _to_xp(a: np.ndarray, xp: Namespace, like: Array) -> Array:
    if is_numpy(xp):
        return a
    return xp.asarray(a, dtype=like.dtype, device=array_api_compat.device(like))


def _total(v: Array, w: np.ndarray | None, xp: Namespace) -> float:
    """``sum_i w_i v_i`` as a Python float (rows with weight 0 count as 0, even if inf);
    ``sum_i v_i`` when `w` is None.

    The sum runs in the compute dtype (float64 where the namespace has it), so a float32
    model's mean loss does not lose digits to the reduction.
    """
    v = xp.astype(v, compute_dtype(v.dtype, xp, v))
    if w is None:
        return float(xp.sum(v))
    wx = _to_xp(w, xp, v)
    # Select before multiplying: inf * 0 would be nan (and warn).
    terms = xp.where(wx > 0, v, xp.zeros_like(v)) * wx
    return float(xp.sum(terms))


class Head(abc.ABC):
    """The interface every output head implements. Heads hold options only, never data.

    Each head also has a ``decide(logits, **options)`` decision rule whose options depend on the
    link: ``threshold`` for the sigmoid, ``top_k`` for the softmax.
    """

    #: Short name, such as ``"sigmoid"``.
    name: str = ""

    @abc.abstractmethod
    def n_outputs(self, n_classes: int) -> int:
        """Number of logits per example for `n_classes` classes."""

    @abc.abstractmethod
    def encode(self, y: Any, n_classes: int) -> Array:
        """Class indices to the targets this head's loss takes (one-hot or indicator)."""

    @abc.abstractmethod
    def link(self, logits: Any) -> Array:
        """The link applied to the logits (same shape)."""

    @abc.abstractmethod
    def predict_proba(self, logits: Any) -> Array:
        """Class probabilities, shape ``(n, n_classes)`` (or ``(n, K)`` per label)."""

    @abc.abstractmethod
    def predict_log_proba(self, logits: Any) -> Array:
        """Logarithm of :meth:`predict_proba`, computed in log space."""

    @abc.abstractmethod
    def loss_and_grad(
        self, logits: Any, y: Any, sample_weight: Any = None, *, check_input: bool = True
    ) -> tuple[float, Array]:
        """The weighted mean loss and its gradient with respect to the logits.

        ``check_input=False`` skips the checks of `y` and `sample_weight` (for a solver's loop
        over data that it checked once).
        """

    @abc.abstractmethod
    def hvp(self, logits: Any, vector: Any, sample_weight: Any = None, *, y: Any = None) -> Array:
        """The Hessian of the weighted mean loss with respect to the logits, times `vector`."""

    def loss(self, logits: Any, y: Any, sample_weight: Any = None) -> float:
        """The weighted mean loss :math:`\\sum_i w_i \\ell_i / \\sum_i w_i`."""
        return self.loss_and_grad(logits, y, sample_weight)[0]


@dataclass(frozen=True, eq=False)
class SigmoidHead(Head):
    r"""Independent sigmoids with binary cross-entropy: binary and multi-label data.

    Binary data take one logit per example (logits ``(n,)`` or ``(n, 1)``, targets ``(n,)``
    of 0/1); multi-label data take one logit per label (logits and targets ``(n, K)``).

    .. math:: \ell_i = \sum_k w_+\, t_{ik}\operatorname{softplus}(-z_{ik})
              + (1 - t_{ik})\operatorname{softplus}(z_{ik}),
              \qquad L = \frac{\sum_i s_i \ell_i}{\sum_i s_i}

    Parameters
    ----------
    pos_weight : float or array of shape (K,), optional
        Weight of the positive term (see :func:`sigmax.sigmoid_cross_entropy`).
    label_smoothing : float in [0, 1), default=0.0
        Targets become :math:`t (1 - \epsilon) + \epsilon / 2`.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax.heads import SigmoidHead
    >>> head = SigmoidHead()
    >>> z = np.array([2.0, -1.0, 0.0])
    >>> head.predict_proba(z)
    array([[0.11920292, 0.88079708],
           [0.73105858, 0.26894142],
           [0.5       , 0.5       ]])
    >>> round(head.loss(z, np.array([1, 0, 1])), 6)
    0.377779
    >>> head.decide(z)
    array([1, 0, 0])
    """

    pos_weight: Any = None
    label_smoothing: float = 0.0
    name = "sigmoid"

    def __post_init__(self) -> None:
        check_label_smoothing(self.label_smoothing)
        if self.pos_weight is not None:
            check_nonnegative_weights(self.pos_weight, "pos_weight")

    def n_outputs(self, n_classes: int) -> int:
        """1 for two classes (one logit), else one logit per label."""
        return 1 if _n_classes(n_classes) == 2 else int(n_classes)

    def encode(self, y: Any, n_classes: int) -> np.ndarray:
        """Targets for this head, as float64 NumPy.

        ``(n,)`` class indices give ``(n,)`` 0/1 targets for two classes and ``(n, K)``
        one-hot indicators (one-vs-rest) otherwise; an ``(n, K)`` indicator matrix is checked
        and returned as float.
        """
        k = _n_classes(n_classes)
        a = to_numpy(namespace(y, "y")[0])
        if a.ndim == 2:
            if a.shape[1] != k:
                raise ValueError(f"`y` must have {k} columns, got shape {a.shape}")
            check_unit_interval(a, "y")
            return a.astype(np.float64)
        if a.ndim != 1:
            raise ValueError(f"`y` must have shape (n,) or (n, {k}), got {a.shape}")
        lab = check_labels(a, k, name="y")
        if k == 2:
            return lab.astype(np.float64)
        return (lab[:, None] == np.arange(k)).astype(np.float64)

    def link(self, logits: Any) -> Array:
        """The elementwise sigmoid, same shape as `logits`."""
        return sigmoid(logits)

    def _binary(self, x: Array) -> bool:
        return x.ndim == 1 or x.shape[1] == 1

    def predict_proba(self, logits: Any) -> Array:
        """``(n, 2)`` as ``[sigmoid(-z), sigmoid(z)]`` for one logit; else ``sigmoid(z)``.

        The first column is computed as :math:`\\sigma(-z)`, never as :math:`1 - \\sigma(z)`.
        """
        x, xp = _logits2(logits)
        if not self._binary(x):
            return sigmoid(x)
        z = xp.reshape(x, (-1,))
        return xp.stack([sigmoid(-z), sigmoid(z)], axis=1)

    def predict_log_proba(self, logits: Any) -> Array:
        """``[log_sigmoid(-z), log_sigmoid(z)]`` for one logit, else ``log_sigmoid(z)``."""
        x, xp = _logits2(logits)
        if not self._binary(x):
            return log_sigmoid(x)
        z = xp.reshape(x, (-1,))
        return xp.stack([log_sigmoid(-z), log_sigmoid(z)], axis=1)

    def _targets(self, x: Array, y: Any) -> Array:
        t, _ = namespace(y, "y")
        if self._binary(x) and t.ndim == 1 and x.ndim == 2:
            t = to_numpy(t).reshape(-1, 1)
        if tuple(t.shape) != tuple(x.shape) and not (
            x.ndim == 1 and t.ndim == 2 and t.shape[1] == 1
        ):
            raise ValueError(
                f"`y` must have shape {tuple(x.shape)} (one target per logit), got {tuple(t.shape)}"
            )
        return to_numpy(t).reshape(tuple(x.shape))

    def loss_and_grad(
        self, logits: Any, y: Any, sample_weight: Any = None, *, check_input: bool = True
    ) -> tuple[float, Array]:
        """Weighted mean loss and its gradient (the logits' shape).

        With ``check_input=False`` (for solvers that call this in a loop on data they checked
        once) NumPy targets are trusted to lie in [0, 1] with one per logit, and the sample
        weights to be non-negative, of shape ``(n,)``.
        """
        trusted = not check_input and isinstance(logits, np.ndarray) and logits.ndim in (1, 2)
        x, xp = (logits, array_api_compat.array_namespace(logits)) if trusted else _logits2(logits)
        n = x.shape[0]
        if trusted:
            t = np.asarray(y).reshape(tuple(x.shape))
            w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        else:
            t = self._targets(x, y)
            w = None if sample_weight is None else _row_weights(sample_weight, n)
        if is_numpy(xp) and x.dtype.kind == "f" and n:
            # NumPy: the weights s_i / sum(s) go into the fused kernel (no passes of their
            # own), and the values are summed in float64.
            total_w = float(n) if w is None else float(w.sum())
            rw = np.full(n, 1.0 / n) if w is None else w / (total_w or 1.0)
            v, g = _sigmoid_run(
                x,
                t,
                self.pos_weight,
                self.label_smoothing,
                None,
                "both",
                check=not trusted,
                weight=rw,
                val_dtype=np.float64,
            )
            assert v is not None
            assert g is not None
            return float(np.sum(v)), g
        v, g = _sigmoid_run(
            x, t, self.pos_weight, self.label_smoothing, None, "both", check=not trusted
        )
        assert v is not None
        assert g is not None
        v = v if x.ndim == 1 else xp.sum(v, axis=1)
        if w is None:
            if n == 0:
                return 0.0, g * 0.0
            # No weights: a scalar scale, no (n,) temporaries.
            return _total(v, None, xp) / n, g * (1.0 / n)
        total_w = float(w.sum())
        if total_w == 0:
            return 0.0, g * 0.0
        scale = w / total_w
        s = _to_xp(scale, xp, g)
        return _total(v, scale, xp), g * (s if x.ndim == 1 else s[:, None])

    def loss(self, logits: Any, y: Any, sample_weight: Any = None) -> float:
        """Weighted mean loss (see the class docstring)."""
        x, xp = _logits2(logits)
        t = self._targets(x, y)
        w = _row_weights(sample_weight, x.shape[0])
        if float(w.sum()) == 0:
            return 0.0
        v = sigmoid_cross_entropy(
            x, t, pos_weight=self.pos_weight, label_smoothing=self.label_smoothing
        )
        v = v if x.ndim == 1 else xp.sum(v, axis=1)
        return _total(v, w / w.sum(), xp)

    def hvp(self, logits: Any, vector: Any, sample_weight: Any = None, *, y: Any = None) -> Array:
        r"""Hessian of the weighted mean loss times `vector` (the logits' shape).

        The Hessian is diagonal, :math:`s_i \sigma(z)\sigma(-z) / \sum s`; with `pos_weight`
        it depends on the targets, so `y` is then required.
        """
        x, xp = _logits2(logits)
        t = None
        if self.pos_weight is not None:
            if y is None:
                raise TypeError("`y` is required by hvp when the head has a `pos_weight`")
            t = self._targets(x, y)
        w = _row_weights(sample_weight, x.shape[0])
        total_w = float(w.sum())
        h = sigmoid_cross_entropy_hvp(
            x, vector, targets=t, pos_weight=self.pos_weight, label_smoothing=self.label_smoothing
        )
        if total_w == 0:
            return h * 0.0
        s = _to_xp(w / total_w, xp, h)
        return h * (s if x.ndim == 1 else s[:, None])

    def decide(self, logits: Any, *, threshold: float = 0.5) -> Array:
        """1 where the probability exceeds `threshold` (per label), else 0.

        Binary logits give shape ``(n,)``; multi-label logits give ``(n, K)`` indicators.
        """
        thr = float(threshold)
        if not 0.0 < thr < 1.0:
            raise ValueError(f"`threshold` must be in (0, 1), got {threshold!r}")
        x, xp = _logits2(logits)
        # sigma(z) > thr  <=>  z > logit(thr): compare logits, not rounded probabilities.
        cut = math.log(thr) - math.log1p(-thr)
        # float64 and int64 where the namespace has them (not JAX without x64).
        d = xp.astype(xp.astype(x, compute_dtype(x.dtype, xp, x)) > cut, index_dtype(xp, x))
        return xp.reshape(d, (-1,)) if self._binary(x) else d


@dataclass(frozen=True, eq=False)
class SoftmaxHead(Head):
    r"""A softmax over K logits with cross-entropy: multi-class data.

    .. math:: \ell_i = -c_{y_i} \log \operatorname{softmax}(z_i)_{y_i},
              \qquad L = \frac{\sum_i s_i \ell_i}{\sum_{i\ \mathrm{not\ ignored}} s_i}

    Parameters
    ----------
    class_weight : array of shape (K,), optional
        Non-negative weight per class; scales the loss of each row by its label's weight
        (the denominator stays the sum of sample weights).
    label_smoothing : float in [0, 1), default=0.0
    ignore_index : int, optional
        Rows with this label drop out of the loss and of the denominator. When every row is
        ignored the loss is 0 and the gradient and Hessian are 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax.heads import SoftmaxHead
    >>> head = SoftmaxHead()
    >>> z = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    >>> round(head.loss(z, np.array([0, 2])), 6)
    1.632384
    >>> head.decide(z)
    array([0, 1])
    >>> head.decide(z, top_k=2)
    array([[0, 1],
           [1, 0]])
    """

    class_weight: Any = None
    label_smoothing: float = 0.0
    ignore_index: int | None = None
    name = "softmax"

    def __post_init__(self) -> None:
        check_label_smoothing(self.label_smoothing)
        if self.class_weight is not None:
            check_nonnegative_weights(self.class_weight, "class_weight")

    def n_outputs(self, n_classes: int) -> int:
        """K logits for K classes (also for two)."""
        return _n_classes(n_classes)

    def encode(self, y: Any, n_classes: int) -> np.ndarray:
        """``(n,)`` class indices to ``(n, K)`` one-hot float64 targets."""
        k = _n_classes(n_classes)
        a = to_numpy(namespace(y, "y")[0])
        if a.ndim != 1:
            raise ValueError(f"`y` must have shape (n,), got {a.shape}")
        lab = check_labels(a, k, name="y")
        return (lab[:, None] == np.arange(k)).astype(np.float64)

    def link(self, logits: Any) -> Array:
        """The softmax along the last axis."""
        return softmax(logits, axis=-1)

    def predict_proba(self, logits: Any) -> Array:
        """Class probabilities ``(n, K)``."""
        return softmax(_logits2(logits)[0], axis=-1)

    def predict_log_proba(self, logits: Any) -> Array:
        """Class log-probabilities ``(n, K)``, from :func:`sigmax.log_softmax`."""
        return log_softmax(_logits2(logits)[0], axis=-1)

    def _check(self, logits: Any, y: Any) -> tuple[Array, Namespace, Array, bool]:
        x, xp = namespace(logits, "logits")
        if x.ndim != 2:
            raise ValueError(f"`logits` must have shape (n, n_classes), got {tuple(x.shape)}")
        t, _ = namespace(y, "y")
        hard = t.ndim == 1
        if not hard and self.class_weight is not None:
            raise ValueError("`class_weight` needs integer labels `y`, got probability rows")
        if not hard and (self.ignore_index is not None or self.label_smoothing):
            raise ValueError(
                "`ignore_index` and `label_smoothing` need integer labels `y`, got probability rows"
            )
        return x, xp, t, hard

    def _denominator(self, t: Array, w: np.ndarray, hard: bool) -> np.ndarray:
        """Sample weights with ignored rows set to 0."""
        if hard and self.ignore_index is not None:
            return np.where(to_numpy(t) == self.ignore_index, 0.0, w)
        return w

    def _opts(self) -> dict[str, Any]:
        return {
            "class_weight": self.class_weight,
            "ignore_index": self.ignore_index,
            "label_smoothing": self.label_smoothing,
        }

    def _numpy_labels(
        self, x: Any, y: Any, sample_weight: Any, check_input: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """For NumPy logits and integer labels: the logits, the labels (ignored rows mapped to
        0) and the row weights ``s_i c_{y_i} / sum s`` that fold the whole reduction into the
        fused kernel; None for the general path (another namespace, probability rows)."""
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and y.ndim == 1):
            return None
        if x.ndim != 2 or x.dtype.kind != "f":
            return None
        n, k = x.shape
        if check_input:
            lab = check_labels(y, k, self.ignore_index, name="y")
            w = None if sample_weight is None else _row_weights(sample_weight, n)
        else:
            lab = y
            w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        rw = np.ones(n) if w is None else w.copy()
        if self.ignore_index is not None:
            ignored = lab == self.ignore_index
            if ignored.any():
                lab = np.where(ignored, 0, lab)
                rw[ignored] = 0.0
        total_w = float(rw.sum())
        if self.class_weight is not None:
            cw = check_nonnegative_weights(self.class_weight, "class_weight", (k,))
            rw *= cw[lab]
        if total_w:
            rw /= total_w
        else:
            rw[...] = 0.0
        return x, lab, rw

    def loss_and_grad(
        self, logits: Any, y: Any, sample_weight: Any = None, *, check_input: bool = True
    ) -> tuple[float, Array]:
        """Weighted mean loss and its gradient ``(n, K)``.

        With ``check_input=False`` (for solvers that call this in a loop on data they checked
        once) NumPy integer labels are trusted to lie in ``[0, K)`` (or equal
        ``ignore_index``) and the sample weights to be non-negative, of shape ``(n,)``.
        """
        fast = self._numpy_labels(logits, y, sample_weight, check_input)
        if fast is not None:
            x, lab, rw = fast
            value, g = _softmax_labels_total(x, lab, rw, self.label_smoothing, "both")
            return value, g
        x, xp, t, hard = self._check(logits, y)
        w = self._denominator(t, _row_weights(sample_weight, x.shape[0]), hard)
        if hard:
            r = softmax_cross_entropy_value_and_grad(x, t, **self._opts())
        else:
            r = softmax_cross_entropy_with_targets_value_and_grad(x, t)
        total_w = float(w.sum())
        if total_w == 0:
            return 0.0, r.grad * 0.0
        scale = w / total_w
        return _total(r.value, scale, xp), r.grad * _to_xp(scale, xp, r.grad)[:, None]

    def loss(self, logits: Any, y: Any, sample_weight: Any = None) -> float:
        """Weighted mean loss (see the class docstring)."""
        fast = self._numpy_labels(logits, y, sample_weight, True)
        if fast is not None:
            x, lab, rw = fast
            return _softmax_labels_total(x, lab, rw, self.label_smoothing, "value")[0]
        x, xp, t, hard = self._check(logits, y)
        w = self._denominator(t, _row_weights(sample_weight, x.shape[0]), hard)
        total_w = float(w.sum())
        if total_w == 0:
            return 0.0
        if hard:
            v = softmax_cross_entropy(x, t, **self._opts())
        else:
            v = softmax_cross_entropy_with_targets(x, t)
        return _total(v, w / total_w, xp)

    def hvp(self, logits: Any, vector: Any, sample_weight: Any = None, *, y: Any = None) -> Array:
        r"""Hessian of the weighted mean loss times `vector`: ``(n, K)``.

        Row :math:`i` is :math:`\frac{s_i c_{y_i}}{\sum s}(\operatorname{diag}(p_i) -
        p_i p_i^\top) v_i`. With `class_weight` or `ignore_index` the scale depends on the
        labels, so `y` is then required.
        """
        x, _ = namespace(logits, "logits")
        if x.ndim != 2:
            raise ValueError(f"`logits` must have shape (n, n_classes), got {tuple(x.shape)}")
        w = _row_weights(sample_weight, x.shape[0])
        needs_y = self.class_weight is not None or self.ignore_index is not None
        if needs_y and y is None:
            raise TypeError(
                "`y` is required by hvp when the head has a `class_weight` or `ignore_index`"
            )
        if y is not None:
            t, _ = namespace(y, "y")
            hard = t.ndim == 1
            w = self._denominator(t, w, hard)
            total_w = float(w.sum())
            scale = w / total_w if total_w else w * 0.0
            if hard and self.class_weight is not None:
                lab = check_labels(to_numpy(t), x.shape[1], self.ignore_index, name="y")
                cw = check_nonnegative_weights(self.class_weight, "class_weight", (x.shape[1],))
                scale = scale * cw[np.clip(lab, 0, x.shape[1] - 1)]
        else:
            total_w = float(w.sum())
            scale = w / total_w if total_w else w * 0.0
        return softmax_cross_entropy_hvp(x, vector, sample_weight=scale)

    def decide(self, logits: Any, *, top_k: int | None = None) -> Array:
        """The argmax ``(n,)``, or the `top_k` class indices ``(n, top_k)`` by falling score.

        Ties go to the lower class index.
        """
        x, xp = namespace(logits, "logits")
        if x.ndim != 2:
            raise ValueError(f"`logits` must have shape (n, n_classes), got {tuple(x.shape)}")
        if top_k is None:
            return xp.argmax(x, axis=1)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
            raise TypeError(f"`top_k` must be an int, got {top_k!r}")
        if not 1 <= top_k <= x.shape[1]:
            raise ValueError(f"`top_k` must be in [1, {x.shape[1]}], got {top_k}")
        order = xp.argsort(x, axis=1, descending=True, stable=True)
        return order[:, : int(top_k)]
