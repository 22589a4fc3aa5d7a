r"""Very many classes: sampled softmax, negative sampling and chunked full-softmax evaluation.

With :math:`K` in the tens of thousands or millions, a full softmax costs :math:`O(K d)` per
example. The losses here touch only the label's row and a few sampled *negative* rows of the
output layer :math:`W \in \mathbb{R}^{K \times d}`, :math:`b \in \mathbb{R}^K`, and return the
gradient as a sparse row update ``(row_ids, grad_rows, grad_bias)`` plus the dense gradient with
respect to the hidden features. Logits are :math:`x_k = h \cdot w_k + b_k`.

* :func:`negative_sampling_loss`: one sigmoid per candidate (word2vec's objective), exact at
  any logit: there is no :math:`|x| \ge 6` skip.
* :func:`sampled_softmax_loss`: a softmax over the label and the negatives, with the
  :math:`\log Q` correction (optional) and accidental hits removed (optional).
* :func:`full_softmax_evaluate`: the exact softmax loss, accuracy and top-k, streamed over
  chunks of classes with a running log-sum-exp, so no ``n x K`` matrix is ever held.
* :class:`SampledSoftmaxHead`, :class:`NegativeSamplingHead`: heads that train on sampled rows
  and predict with the full link.

The samplers (:class:`UniformSampler`, :class:`LogUniformSampler`, :class:`UnigramSampler`,
:class:`HeadUniformSampler`) live in :mod:`sigmax.sampling` and are re-exported here.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from sigmax._array_api import (
    Array,
    Namespace,
    compute_dtype,
    index_dtype,
    is_numpy,
    namespace,
    result_dtype,
)
from sigmax.functions import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax
from sigmax.sampling import (
    HeadUniformSampler,
    LogUniformSampler,
    NegativeSample,
    UniformSampler,
    UnigramSampler,
    _Sampler,
)

__all__ = [
    "FullSoftmaxEvaluation",
    "HeadUniformSampler",
    "LogUniformSampler",
    "NegativeSample",
    "NegativeSamplingHead",
    "SampledLossResult",
    "SampledSoftmaxHead",
    "UniformSampler",
    "UnigramSampler",
    "full_softmax_evaluate",
    "negative_sampling_loss",
    "sampled_softmax_loss",
]


class SampledLossResult(NamedTuple):
    """Value and sparse gradients of a sampled loss.

    Attributes
    ----------
    value : array, shape (n,)
        The loss of each example.
    grad_hidden : array, shape (n, d)
        Gradient of ``value.sum()`` with respect to `hidden`.
    row_ids : array of int64, shape (r,)
        The distinct rows of the output layer that the loss touched, sorted.
    grad_rows : array, shape (r, d)
        Gradient of ``value.sum()`` with respect to ``weights[row_ids]``; every other row's
        gradient is zero.
    grad_bias : array, shape (r,), or None
        Gradient with respect to ``biases[row_ids]`` (None when `biases` is None).
    """

    value: Array
    grad_hidden: Array
    row_ids: Array
    grad_rows: Array
    grad_bias: Array | None


class FullSoftmaxEvaluation(NamedTuple):
    """Exact full-softmax metrics, computed in chunks of classes.

    Attributes
    ----------
    value : array, shape (n,), or None
        Softmax cross-entropy ``logsumexp(x) - x[label]`` of each example (None without
        labels).
    top_k : array of int64, shape (n, k)
        The `k` classes of largest logit, best first.
    correct : array of bool, shape (n,), or None
        Whether the top-1 class is the label.
    in_top_k : array of bool, shape (n,), or None
        Whether the label is among the `k` best.
    """

    value: Array | None
    top_k: Array
    correct: Array | None
    in_top_k: Array | None


# --------------------------------------------------------------------------------------------
# Validation and gathering
# --------------------------------------------------------------------------------------------


def _check_ids(ids: Any, n_classes: int, name: str, xp: Namespace, like: Array) -> Array:
    """Integer class ids in `like`'s namespace and device, all in ``[0, n_classes)``."""
    if isinstance(ids, (list, tuple, int, np.ndarray, np.generic)):
        a = np.asarray(ids)
        if a.dtype.kind not in "iu":
            raise TypeError(f"`{name}` must hold integer class ids, got dtype {a.dtype}")
        ids = xp.asarray(a.astype(np.int64), device=array_api_compat.device(like))
    if not xp.isdtype(ids.dtype, "integral"):
        raise TypeError(f"`{name}` must hold integer class ids, got dtype {ids.dtype}")
    flat = xp.reshape(ids, (-1,))
    if flat.shape[0]:
        bad = xp.astype((flat < 0) | (flat >= n_classes), xp.int8)
        if bool(xp.any(bad != 0)):
            i = int(xp.argmax(bad))
            raise ValueError(
                f"`{name}` must be in [0, {n_classes}), got {int(flat[i])} at flat index {i}"
            )
    return xp.astype(ids, index_dtype(xp, like), copy=False)


class _Inputs(NamedTuple):
    xp: Namespace
    dtype: Any
    cdt: Any
    hidden: Array
    weights: Array
    biases: Array | None
    labels: Array
    negatives: Array
    shared: bool


def _check_inputs(hidden: Any, weights: Any, biases: Any, labels: Any, negatives: Any) -> _Inputs:
    hidden, xp = namespace(hidden, "hidden")
    if hidden.ndim != 2:
        raise ValueError(f"`hidden` must be 2-D (n, d), got shape {tuple(hidden.shape)}")
    n, d = hidden.shape
    weights, wxp = namespace(weights, "weights")
    if wxp is not xp and not (is_numpy(xp) and is_numpy(wxp)):
        weights = xp.asarray(weights, device=array_api_compat.device(hidden))
    if weights.ndim != 2 or weights.shape[1] != d:
        raise ValueError(
            f"`weights` must have shape (n_classes, {d}) to match `hidden`, "
            f"got {tuple(weights.shape)}"
        )
    n_classes = weights.shape[0]
    dtype = result_dtype(hidden, xp)
    hidden = xp.astype(hidden, dtype, copy=False)
    weights = xp.astype(weights, dtype, copy=False)
    if biases is not None:
        biases = namespace(biases, "biases")[0]
        if (
            not hasattr(biases, "__array_namespace__")
            or array_api_compat.array_namespace(biases) is not xp
        ):
            biases = xp.asarray(biases, device=array_api_compat.device(hidden))
        if tuple(biases.shape) != (n_classes,):
            raise ValueError(f"`biases` must have shape ({n_classes},), got {tuple(biases.shape)}")
        biases = xp.astype(biases, dtype, copy=False)
    labels = _check_ids(labels, n_classes, "labels", xp, hidden)
    if tuple(labels.shape) != (n,):
        raise ValueError(f"`labels` must have shape ({n},), got {tuple(labels.shape)}")
    negatives = _check_ids(negatives, n_classes, "negatives", xp, hidden)
    if negatives.ndim == 2 and negatives.shape[0] != n:
        raise ValueError(
            f"`negatives` must have shape (m,) or ({n}, m), got {tuple(negatives.shape)}"
        )
    if negatives.ndim not in (1, 2):
        raise ValueError(
            f"`negatives` must have shape (m,) or ({n}, m), got {tuple(negatives.shape)}"
        )
    cdt = compute_dtype(dtype, xp, hidden)
    return _Inputs(xp, dtype, cdt, hidden, weights, biases, labels, negatives, negatives.ndim == 1)


def _logits(a: _Inputs) -> tuple[Array, Array, Array, Array]:
    """Label logits (n,), negative logits (n, m), and the gathered rows W[y], W[neg]."""
    xp = a.xp
    n, d = a.hidden.shape
    w_pos = xp.take(a.weights, a.labels, axis=0)
    x_pos = xp.sum(a.hidden * w_pos, axis=1)
    if a.shared:
        w_neg = xp.take(a.weights, a.negatives, axis=0)
        x_neg = a.hidden @ w_neg.T
    else:
        m = a.negatives.shape[1]
        w_neg = xp.reshape(xp.take(a.weights, xp.reshape(a.negatives, (-1,)), axis=0), (n, m, d))
        x_neg = xp.sum(a.hidden[:, None, :] * w_neg, axis=2)
    if a.biases is not None:
        x_pos = x_pos + xp.take(a.biases, a.labels, axis=0)
        nb = xp.take(a.biases, xp.reshape(a.negatives, (-1,)), axis=0)
        x_neg = x_neg + (nb[None, :] if a.shared else xp.reshape(nb, x_neg.shape))
    return x_pos, x_neg, w_pos, w_neg


def _coalesce(xp: Namespace, ids: Array, rows: Array, bias: Array) -> tuple[Array, Array, Array]:
    """Sum the row contributions that share an id: (distinct sorted ids, summed rows, bias)."""
    if is_numpy(xp):
        uniq, inv = np.unique(ids, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
        return (
            uniq,
            np.add.reduceat(rows[order], starts, axis=0),
            np.add.reduceat(bias[order], starts),
        )
    uniq, inv = xp.unique_inverse(ids)
    uniq_sorted = xp.sort(uniq)
    # Positions of the distinct ids after sorting them (unique_inverse need not sort).
    pos = xp.argsort(uniq)
    rank = xp.take(xp.argsort(pos), inv, axis=0)
    onehot = xp.astype(
        xp.arange(uniq_sorted.shape[0], device=array_api_compat.device(ids))[:, None]
        == rank[None, :],
        rows.dtype,
    )
    return uniq_sorted, onehot @ rows, xp.sum(onehot * bias[None, :], axis=1)


def _result(
    a: _Inputs,
    value: Array,
    g_pos: Array,
    g_neg: Array,
    w_pos: Array,
    w_neg: Array,
    cotangent: Array | None,
) -> SampledLossResult:
    """Assemble gradients from dvalue/dx_pos (n,) and dvalue/dx_neg (n, m).

    With `cotangent` (n,) the gradients are those of ``sum(cotangent * value)``.
    """
    xp = a.xp
    d = a.hidden.shape[1]
    if cotangent is not None:
        g_pos = g_pos * cotangent
        g_neg = g_neg * cotangent[:, None]
    g_pos = xp.astype(g_pos, a.dtype)
    g_neg = xp.astype(g_neg, a.dtype)
    if a.shared:
        grad_hidden = g_pos[:, None] * w_pos + g_neg @ w_neg
        neg_rows = g_neg.T @ a.hidden
        neg_bias = xp.sum(g_neg, axis=0)
        neg_ids = a.negatives
    else:
        grad_hidden = g_pos[:, None] * w_pos + xp.sum(g_neg[:, :, None] * w_neg, axis=1)
        neg_rows = xp.reshape(g_neg[:, :, None] * a.hidden[:, None, :], (-1, d))
        neg_bias = xp.reshape(g_neg, (-1,))
        neg_ids = xp.reshape(a.negatives, (-1,))
    ids = xp.concat([a.labels, neg_ids])
    rows = xp.concat([g_pos[:, None] * a.hidden, neg_rows], axis=0)
    bias = xp.concat([g_pos, neg_bias])
    row_ids, grad_rows, grad_bias = _coalesce(xp, ids, rows, bias)
    return SampledLossResult(
        xp.astype(value, a.dtype),
        grad_hidden,
        row_ids,
        grad_rows,
        grad_bias if a.biases is not None else None,
    )


def _hit_mask(a: _Inputs) -> Array:
    """True where a negative is not the example's own label (shape (n, m))."""
    neg = a.negatives[None, :] if a.shared else a.negatives
    return neg != a.labels[:, None]


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def negative_sampling_loss(
    hidden: Any,
    weights: Any,
    biases: Any,
    labels: Any,
    negatives: Any,
    /,
    *,
    remove_accidental_hits: bool = False,
    _cotangent: Array | None = None,
) -> SampledLossResult:
    r"""Negative-sampling loss (word2vec's objective) with its sparse gradients, fused.

    .. math::

        \ell_i = -\log \sigma(x_{i, y_i}) - \sum_{j \in S_i} \log \sigma(-x_{i, j}),
        \qquad x_{i, k} = h_i \cdot w_k + b_k

    Parameters
    ----------
    hidden : array, shape (n, d)
        Hidden features :math:`h`.
    weights : array, shape (n_classes, d)
        Output layer :math:`W` (only the label and negative rows are read).
    biases : array, shape (n_classes,), or None
        Output biases :math:`b`.
    labels : array of int, shape (n,)
        True classes, in ``[0, n_classes)``.
    negatives : array of int, shape (m,) or (n, m), or NegativeSample
        Negative classes: shared by the batch, or one row per example.
    remove_accidental_hits : bool, default=False
        Drop the negatives that equal the example's label (word2vec keeps them).

    Returns
    -------
    SampledLossResult
        ``value`` (n,), ``grad_hidden`` (n, d) and the sparse row update ``row_ids``,
        ``grad_rows``, ``grad_bias``, all gradients of ``value.sum()``.

    Raises
    ------
    ValueError
        For a shape mismatch, or a label or negative outside ``[0, n_classes)``.

    Notes
    -----
    The terms use the stable :func:`~sigmax.log_sigmoid` and the gradients
    :math:`\sigma(x) - 1 = -\sigma(-x)` and :math:`\sigma(x)`, computed from
    :math:`e^{-|x|}`, so every candidate contributes at every logit: a confidently wrong
    negative at :math:`x = 20` gets the gradient :math:`\sigma(20) \approx 1`, where gensim's
    :math:`|x| \ge 6` table skips it. The dot products run in the input dtype; the
    nonlinear terms in float64 (see :func:`~sigmax.sigmoid`).

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import negative_sampling_loss
    >>> h = np.array([[1.0, 0.0]])
    >>> W = np.array([[2.0, 0.0], [0.0, 1.0], [20.0, 0.0]])
    >>> r = negative_sampling_loss(h, W, None, [0], [2])
    >>> round(float(r.value[0]), 6), r.row_ids.tolist(), r.grad_rows[:, 0].round(4).tolist()
    (20.126928, [0, 2], [-0.1192, 1.0])
    """
    if isinstance(negatives, NegativeSample):
        negatives = negatives.ids
    a = _check_inputs(hidden, weights, biases, labels, negatives)
    xp = a.xp
    if _fused_numpy(a):
        return _negative_sampling_shared_numpy(a, remove_accidental_hits, _cotangent)
    x_pos, x_neg, w_pos, w_neg = _logits(a)
    x_pos = xp.astype(x_pos, a.cdt)
    x_neg = xp.astype(x_neg, a.cdt)
    neg_terms = log_sigmoid(-x_neg)
    g_neg = sigmoid(x_neg)
    if remove_accidental_hits:
        keep = _hit_mask(a)
        neg_terms = xp.where(keep, neg_terms, xp.zeros_like(neg_terms))
        g_neg = xp.where(keep, g_neg, xp.zeros_like(g_neg))
    value = -log_sigmoid(x_pos) - xp.sum(neg_terms, axis=1)
    g_pos = -sigmoid(-x_pos)
    return _result(a, value, g_pos, g_neg, w_pos, w_neg, _cotangent)


def _fused_numpy(a: _Inputs) -> bool:
    """Whether the fused NumPy path applies: float16/32 (computed in float64), shared negatives.

    float64 inputs keep the generic path, whose compensated log-softmax the fused one lacks.
    """
    return (
        is_numpy(a.xp)
        and a.shared
        and a.cdt != a.dtype
        and a.hidden.shape[0] > 0
        and a.negatives.shape[0] > 0
    )


def _negative_sampling_shared_numpy(
    a: _Inputs, remove_accidental_hits: bool, cotangent: np.ndarray | None
) -> SampledLossResult:
    """:func:`negative_sampling_loss` for NumPy float16/float32 with shared negatives.

    A class drawn ``c`` times is computed once and its term and gradient multiplied by ``c``,
    so the rows come out coalesced; the nonlinear terms run in float64 as in the generic path.
    """
    h, w, b, labels = a.hidden, a.weights, a.biases, a.labels
    n = h.shape[0]
    uniq, cnt = np.unique(a.negatives, return_counts=True)
    w_neg = np.take(w, uniq, axis=0)
    w_pos = np.take(w, labels, axis=0)
    x_neg = np.asarray(h @ w_neg.T, dtype=np.float64)
    x_pos = np.einsum("ij,ij->i", h, w_pos).astype(np.float64)
    if b is not None:
        x_neg += np.take(b, uniq)
        x_pos += np.take(b, labels)
    neg_terms = log_sigmoid(-x_neg)
    g_neg = sigmoid(x_neg)
    if remove_accidental_hits:
        pos = np.minimum(np.searchsorted(uniq, labels), uniq.shape[0] - 1)
        hit = np.flatnonzero(uniq[pos] == labels)
        neg_terms[hit, pos[hit]] = 0.0
        g_neg[hit, pos[hit]] = 0.0
    c = cnt.astype(np.float64)
    value = -log_sigmoid(x_pos) - neg_terms @ c
    g_neg *= c
    cot = np.ones(n) if cotangent is None else np.asarray(cotangent, dtype=np.float64)
    g_pos = -sigmoid(-x_pos) * cot
    return _assemble_shared_numpy(a, value, g_pos, g_neg, cot, uniq, w_pos, w_neg)


def _log_q_pair(
    negatives: Any, expected_counts: Any, log_q: Any, xp: Namespace, like: Array
) -> tuple[Array, Array] | None:
    if isinstance(negatives, NegativeSample) and expected_counts is None and log_q is None:
        if negatives.label_expected_counts is None:
            raise ValueError(
                "`negatives` is a NegativeSample drawn without `labels`: pass "
                "`labels=` to the sampler, or give `expected_counts` or `log_q`"
            )
        expected_counts = (negatives.label_expected_counts, negatives.expected_counts)
    if expected_counts is not None and log_q is not None:
        raise ValueError("give either `expected_counts` or `log_q`, not both")
    pair = expected_counts if expected_counts is not None else log_q
    if pair is None:
        return None
    name = "expected_counts" if expected_counts is not None else "log_q"
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"`{name}` must be a pair (for the labels, for the negatives), "
            f"got {type(pair).__name__}"
        )
    dev = array_api_compat.device(like)
    out = []
    for part in pair:
        if isinstance(part, np.ndarray) or not hasattr(part, "__array_namespace__"):
            part = xp.asarray(np.asarray(part, dtype=np.float64), device=dev)
        part = xp.astype(part, compute_dtype(like.dtype, xp, like))
        if expected_counts is not None:
            with np.errstate(divide="ignore"):
                part = xp.log(part)
        out.append(part)
    return out[0], out[1]


def sampled_softmax_loss(
    hidden: Any,
    weights: Any,
    biases: Any,
    labels: Any,
    negatives: Any,
    /,
    *,
    expected_counts: Any = None,
    log_q: Any = None,
    subtract_log_q: bool = True,
    label_log_q: bool = False,
    remove_accidental_hits: bool = True,
    _cotangent: Array | None = None,
) -> SampledLossResult:
    r"""Sampled softmax cross-entropy with its sparse gradients, fused.

    .. math::

        \ell_i = -\log \frac{e^{z_{i,0}}}{e^{z_{i,0}} + \sum_{j \in S_i} e^{z_{i,j}}},
        \quad z_{i,0} = x_{i,y_i}, \quad z_{i,j} = x_{i,j} - \log Q(j)

    with :math:`x_{i,k} = h_i \cdot w_k + b_k` and :math:`Q` the expected count of a class in
    the sample. The label is in the candidate set with certainty (expected count 1), so its
    logit is not corrected, and :math:`e^{x_y} + \sum_{j \in S} e^{x_j} / Q(j)` (accidental
    hits removed) is an unbiased estimate of the full normalizer
    :math:`\sum_k e^{x_k}`. ``label_log_q=True`` uses
    :math:`z_{i,0} = x_{i,y_i} - \log Q(y_i)` instead (TensorFlow's
    ``tf.nn.sampled_softmax_loss``).

    Parameters
    ----------
    hidden : array, shape (n, d)
    weights : array, shape (n_classes, d)
    biases : array, shape (n_classes,), or None
    labels : array of int, shape (n,)
    negatives : array of int, shape (m,) or (n, m), or NegativeSample
        Sampled classes, shared by the batch or one row per example. A
        :class:`~sigmax.NegativeSample` drawn with ``labels=`` brings its expected counts.
    expected_counts : pair of arrays ``(shape (n,), shape of negatives)``, optional
        Expected counts of the labels and of the negatives under the sampler.
    log_q : pair of arrays, optional
        Their logarithms, instead of `expected_counts`.
    subtract_log_q : bool, default=True
        Subtract :math:`\log Q` from the negatives' logits, which makes the sampled normalizer
        an unbiased estimate of the full one (Jean et al. 2015). When False, no counts are
        needed.
    label_log_q : bool, default=False
        Also subtract :math:`\log Q(y)` from the label's logit, as TensorFlow does. Then, with
        :math:`m` uniform draws from :math:`K` classes, every logit moves by the same
        :math:`\log(m/K)`, the correction cancels, and the normalizer is underestimated by
        the factor :math:`m/K`: the loss is satisfied while the label still trails the
        classes that were not drawn. In ``benchmarks/bench_sampled.py`` (50,000 classes,
        2,048 uniform negatives) it cost 1.5 points of top-1 (0.670 against 0.685). The label's part
        of `expected_counts` / `log_q` is used only when this is True.
    remove_accidental_hits : bool, default=True
        Mask the negatives equal to the example's label, so the label never competes with
        itself.

    Returns
    -------
    SampledLossResult

    Raises
    ------
    ValueError
        For shape mismatches, ids outside ``[0, n_classes)``, or ``subtract_log_q=True``
        without counts.

    Notes
    -----
    The :math:`1 + m` corrected logits go through :func:`~sigmax.log_softmax` (max shifted,
    ``log1p`` of the rest) with the accidental hits masked by ``where=``; masked entries get
    exactly zero gradient. The gradient with respect to the logits is
    :math:`\operatorname{softmax}(z) - e_0`, taken as ``exp(log_softmax)``. When every class is
    sampled once (all :math:`K`, without replacement), every expected count is 1, nothing is
    corrected, and the loss equals the full softmax cross-entropy.

    Examples
    --------
    >>> import numpy as np
    >>> import sigmax
    >>> from sigmax import sampled_softmax_loss, UniformSampler
    >>> rng = np.random.default_rng(0)
    >>> h, W, b = rng.standard_normal((2, 3)), rng.standard_normal((5, 3)), np.zeros(5)
    >>> s = UniformSampler(5).sample(5, rng=rng, replace=False, labels=[1, 4])
    >>> r = sampled_softmax_loss(h, W, b, [1, 4], s)
    >>> full = -np.take_along_axis(sigmax.log_softmax(h @ W.T), np.array([[1], [4]]), 1)[:, 0]
    >>> bool(np.allclose(r.value, full))
    True
    """
    if (
        subtract_log_q
        and not label_log_q
        and isinstance(negatives, NegativeSample)
        and negatives.label_expected_counts is None
        and expected_counts is None
        and log_q is None
    ):
        # The label's count is not needed: any placeholder of the labels' shape will do.
        n_lab = np.shape(labels)[0] if np.ndim(labels) else 1
        negatives = negatives._replace(label_expected_counts=np.ones(n_lab))
    pair = (
        _log_q_pair(negatives, expected_counts, log_q, *_ns_like(hidden))
        if (subtract_log_q)
        else None
    )
    if isinstance(negatives, NegativeSample):
        negatives = negatives.ids
    if subtract_log_q and pair is None:
        raise ValueError(
            "`subtract_log_q=True` needs the sampler's `expected_counts` or `log_q` "
            "(or pass a NegativeSample drawn with labels=), or set subtract_log_q=False"
        )
    a = _check_inputs(hidden, weights, biases, labels, negatives)
    xp = a.xp
    if pair is not None:
        lq_pos, lq_neg = (xp.astype(p, a.cdt) for p in pair)
        if tuple(lq_pos.shape) != tuple(a.labels.shape):
            raise ValueError(
                f"the labels' expected counts must have shape {tuple(a.labels.shape)}, "
                f"got {tuple(lq_pos.shape)}"
            )
        if tuple(lq_neg.shape) != tuple(a.negatives.shape):
            raise ValueError(
                f"the negatives' expected counts must have shape {tuple(a.negatives.shape)}, "
                f"got {tuple(lq_neg.shape)}"
            )
        if not label_log_q:
            lq_pos = xp.zeros_like(lq_pos)
    if _fused_numpy(a):
        return _sampled_softmax_shared_numpy(
            a, None if pair is None else (lq_pos, lq_neg), remove_accidental_hits, _cotangent
        )
    x_pos, x_neg, w_pos, w_neg = _logits(a)
    z_pos = xp.astype(x_pos, a.cdt)
    z_neg = xp.astype(x_neg, a.cdt)
    if pair is not None:
        z_pos = z_pos - lq_pos
        z_neg = z_neg - (lq_neg[None, :] if a.shared else lq_neg)
    z = xp.concat([z_pos[:, None], z_neg], axis=1)
    where = None
    if remove_accidental_hits:
        ones = xp.ones((z.shape[0], 1), dtype=xp.bool, device=array_api_compat.device(z))
        where = xp.concat([ones, _hit_mask(a)], axis=1)
    lp = log_softmax(z, where=where)
    p = xp.exp(lp)
    value = -lp[:, 0]
    # p - 1 would cancel when the label holds nearly all the mass.
    g_pos = xp.expm1(lp[:, 0])
    g_neg = p[:, 1:]
    return _result(a, value, g_pos, g_neg, w_pos, w_neg, _cotangent)


def _sampled_softmax_shared_numpy(
    a: _Inputs,
    lq: tuple[np.ndarray, np.ndarray] | None,
    remove_accidental_hits: bool,
    cotangent: np.ndarray | None,
) -> SampledLossResult:
    """:func:`sampled_softmax_loss` for NumPy float16/float32 with one shared row of negatives.

    The training hot path (``SampledSoftmaxClassifier``), fused so that no step holds more
    than one float64 ``(n, 1 + u)`` block:

    * A class drawn ``c`` times enters once, with ``log c`` added to its logit:
      ``c e^z = e^(z + log c)``, so the loss and every gradient are those of the ``c``
      separate copies, and the rows come out already coalesced (``u <= m`` distinct ids).
    * An accidental hit is the label's column, set to ``-inf``: it gets exactly zero mass.
    * The softmax runs in float64 with the max shifted. The loss is ``log1p`` of the other
      terms when the label holds the max, and ``log(sum) + max - z_label`` otherwise (at
      least ``log 2``, and finite where ``e^(z_label - max)`` underflows); ``1 - p_label``
      is ``others / sum``. Nothing cancels, so the results are far inside float32 rounding,
      as with :func:`~sigmax.log_softmax`.
    """
    h, w, b, labels, neg = a.hidden, a.weights, a.biases, a.labels, a.negatives
    n = h.shape[0]
    uniq, inv, cnt = np.unique(neg, return_inverse=True, return_counts=True)
    u = uniq.shape[0]
    w_neg = np.take(w, uniq, axis=0)
    w_pos = np.take(w, labels, axis=0)
    z = np.empty((n, 1 + u), dtype=np.float64)
    z[:, 1:] = h @ w_neg.T
    z[:, 0] = np.einsum("ij,ij->i", h, w_pos)
    col = np.log(cnt.astype(np.float64))
    if b is not None:
        col += np.take(b, uniq)
        z[:, 0] += np.take(b, labels)
    if lq is not None:
        lq_u = np.empty(u, dtype=np.float64)
        lq_u[inv.reshape(-1)] = lq[1]
        col -= lq_u
        z[:, 0] -= lq[0]
    z[:, 1:] += col
    if remove_accidental_hits:
        pos = np.minimum(np.searchsorted(uniq, labels), u - 1)
        hit = np.flatnonzero(uniq[pos] == labels)
        z[hit, 1 + pos[hit]] = -np.inf
    with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
        mx = np.max(z, axis=1)
        z -= mx[:, None]
        d0 = z[:, 0].copy()
        e = np.exp(z, out=z)
        others = np.sum(e[:, 1:], axis=1)
        total = e[:, 0] + others
        value = np.where(d0 == 0.0, np.log1p(others), np.log(total) - d0)
    cot = np.ones(n) if cotangent is None else np.asarray(cotangent, dtype=np.float64)
    scale = cot / total
    return _assemble_shared_numpy(a, value, -others * scale, e[:, 1:], scale, uniq, w_pos, w_neg)


def _assemble_shared_numpy(
    a: _Inputs,
    value: np.ndarray,
    g_pos64: np.ndarray,
    g_neg64: np.ndarray,
    scale: np.ndarray,
    uniq: np.ndarray,
    w_pos: np.ndarray,
    w_neg: np.ndarray,
) -> SampledLossResult:
    """Sparse gradients from dvalue/dx_label (n,) and ``scale[:, None] * g_neg64`` (n, u).

    `uniq` are the distinct sorted negative ids (the columns of `g_neg64`), so only the
    label rows need summing into the result.
    """
    h, labels = a.hidden, a.labels
    d = h.shape[1]
    g_pos = g_pos64.astype(a.dtype)
    g_neg = np.empty(g_neg64.shape, dtype=a.dtype)
    np.multiply(g_neg64, scale[:, None], out=g_neg, casting="same_kind")
    grad_hidden = g_neg @ w_neg
    grad_hidden += g_pos[:, None] * w_pos
    row_ids = np.union1d(uniq, labels)
    grad_rows = np.zeros((row_ids.shape[0], d), dtype=a.dtype)
    grad_rows[np.searchsorted(row_ids, uniq)] = g_neg.T @ h
    lab_at = np.searchsorted(row_ids, labels)
    np.add.at(grad_rows, lab_at, g_pos[:, None] * h)
    grad_bias = None
    if a.biases is not None:
        grad_bias = np.zeros(row_ids.shape[0], dtype=a.dtype)
        grad_bias[np.searchsorted(row_ids, uniq)] = np.sum(g_neg, axis=0)
        np.add.at(grad_bias, lab_at, g_pos)
    return SampledLossResult(value.astype(a.dtype), grad_hidden, row_ids, grad_rows, grad_bias)


def _ns_like(hidden: Any) -> tuple[Namespace, Array]:
    h, xp = namespace(hidden, "hidden")
    return xp, h


# --------------------------------------------------------------------------------------------
# Full softmax, streamed over chunks of classes
# --------------------------------------------------------------------------------------------


def _top_k_merge(xp: Namespace, vals: Array, ids: Array, k: int) -> tuple[Array, Array]:
    """The `k` largest of each row of `vals` (ties: smaller id first), best first."""
    if is_numpy(xp):
        if vals.shape[1] > k:
            part = np.argpartition(-vals, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(vals, part, axis=1)
            ids = np.take_along_axis(ids, part, axis=1)
        order = np.lexsort((ids, -vals), axis=-1)
        return np.take_along_axis(vals, order, axis=1), np.take_along_axis(ids, order, axis=1)
    # Sort by id first, then stably by value: equal values keep the smaller id first.
    o1 = xp.argsort(ids, axis=1, stable=True)
    vals, ids = _take_rows(xp, vals, o1), _take_rows(xp, ids, o1)
    o2 = xp.argsort(vals, axis=1, descending=True, stable=True)[:, :k]
    return _take_rows(xp, vals, o2), _take_rows(xp, ids, o2)


def _take_rows(xp: Namespace, a: Array, idx: Array) -> Array:
    n, c = a.shape
    off = xp.arange(n, dtype=idx.dtype, device=array_api_compat.device(a))[:, None] * c
    return xp.reshape(xp.take(xp.reshape(a, (-1,)), xp.reshape(idx + off, (-1,))), idx.shape)


def full_softmax_evaluate(
    hidden: Any,
    weights: Any,
    biases: Any,
    labels: Any = None,
    /,
    *,
    k: int = 5,
    chunk_classes: int = 8192,
    chunk_rows: int = 512,
) -> FullSoftmaxEvaluation:
    r"""Exact softmax cross-entropy, top-1 and top-k over all classes, in chunks of classes.

    .. math:: \ell_i = \log \sum_{k=1}^{K} e^{x_{i,k}} - x_{i,y_i}, \quad x = h W^T + b

    Parameters
    ----------
    hidden : array, shape (n, d)
    weights : array, shape (n_classes, d)
    biases : array, shape (n_classes,), or None
    labels : array of int, shape (n,), optional
        Without labels only ``top_k`` is computed.
    k : int, default=5
        How many best classes to return (capped at ``n_classes``).
    chunk_classes, chunk_rows : int
        Block sizes: at most ``chunk_rows x chunk_classes`` logits exist at once.

    Returns
    -------
    FullSoftmaxEvaluation
        ``value`` (n,), ``top_k`` (n, k), ``correct`` (n,), ``in_top_k`` (n,).

    Notes
    -----
    Each row block keeps a running max :math:`m`, the sum :math:`r` of
    :math:`e^{x - m}` over all seen entries but one maximal one, and the running top-k. A
    chunk with a larger max rescales :math:`r` (adding the old max term) and drops its own max
    term, so at the end :math:`\operatorname{logsumexp} = m + \operatorname{log1p}(r)` and the
    loss is :math:`(m - x_y) + \operatorname{log1p}(r)`, with :math:`x_y` read from the same
    matrix product as the other logits: a confident correct example keeps full relative
    accuracy. Logits are computed in the input dtype, the rest in float64. Memory beyond the
    inputs is :math:`O(\text{chunk\_rows} \cdot \text{chunk\_classes})`.

    Examples
    --------
    >>> import numpy as np
    >>> import sigmax
    >>> from sigmax import full_softmax_evaluate
    >>> rng = np.random.default_rng(0)
    >>> h, W, b = rng.standard_normal((6, 4)), rng.standard_normal((50, 4)), np.zeros(50)
    >>> y = np.arange(6)
    >>> ev = full_softmax_evaluate(h, W, b, y, k=3, chunk_classes=7)
    >>> full = sigmax.logsumexp(h @ W.T) - (h @ W.T)[np.arange(6), y]
    >>> bool(np.allclose(ev.value, full)), ev.top_k.shape
    (True, (6, 3))
    """
    hidden, xp = namespace(hidden, "hidden")
    n = hidden.shape[0] if hidden.ndim == 2 else 0
    # Without labels, placeholder labels pass validation and are never read.
    lab = np.zeros(n, dtype=np.int64) if labels is None else labels
    a = _check_inputs(hidden, weights, biases, lab, np.zeros(0, dtype=np.int64))
    xp = a.xp
    n_classes = a.weights.shape[0]
    k = min(_pos_int(k, "k"), n_classes)
    chunk_classes = _pos_int(chunk_classes, "chunk_classes")
    chunk_rows = _pos_int(chunk_rows, "chunk_rows")
    dev = array_api_compat.device(a.hidden)
    ints = index_dtype(xp, a.hidden)
    has_labels = labels is not None
    value_parts, top_parts = [], []
    for r0 in range(0, n, chunk_rows):
        r1 = min(r0 + chunk_rows, n)
        h = a.hidden[r0:r1, :]
        y = a.labels[r0:r1]
        nr = h.shape[0]
        m = xp.full((nr,), -math.inf, dtype=a.cdt, device=dev)
        rest = xp.zeros((nr,), dtype=a.cdt, device=dev)
        xy = xp.zeros((nr,), dtype=a.cdt, device=dev)
        best_v = xp.full((nr, 0), -math.inf, dtype=a.cdt, device=dev)
        best_i = xp.zeros((nr, 0), dtype=ints, device=dev)
        for c0 in range(0, n_classes, chunk_classes):
            c1 = min(c0 + chunk_classes, n_classes)
            z = h @ a.weights[c0:c1, :].T
            if a.biases is not None:
                z = z + a.biases[None, c0:c1]
            z = xp.astype(z, a.cdt)
            cols = xp.arange(c0, c1, dtype=ints, device=dev)
            if has_labels:
                hit = cols[None, :] == y[:, None]
                xy = xy + xp.sum(xp.where(hit, z, xp.zeros_like(z)), axis=1)
            cm = xp.max(z, axis=1)
            new_m = xp.maximum(m, cm)
            grew = cm > m
            with np.errstate(invalid="ignore", over="ignore"):
                e = xp.exp(z - new_m[:, None])
            # Drop one max entry of a chunk that sets a new max: it is the "1" of 1 + rest.
            am = xp.argmax(z, axis=1)
            drop = (cols[None, :] - c0 == am[:, None]) & grew[:, None]
            e = xp.where(drop, xp.zeros_like(e), e)
            scale = xp.exp(m - new_m)
            rest = xp.where(grew, (rest + 1.0) * scale, rest) + xp.sum(e, axis=1)
            m = new_m
            kk = min(k, c1 - c0)
            if is_numpy(xp) and c1 - c0 > kk:
                part = np.argpartition(-z, kk - 1, axis=1)[:, :kk]
                cv = np.take_along_axis(z, part, axis=1)
                ci = part.astype(np.int64) + c0
            else:
                cv = z
                ci = xp.broadcast_to(cols[None, :], z.shape)
            best_v, best_i = _top_k_merge(
                xp, xp.concat([best_v, cv], axis=1), xp.concat([best_i, ci], axis=1), k
            )
        top_parts.append(best_i)
        if has_labels:
            value_parts.append((m - xy) + xp.log1p(rest))
    top_k = xp.concat(top_parts, axis=0) if top_parts else xp.zeros((0, k), dtype=ints)
    if not has_labels:
        return FullSoftmaxEvaluation(None, top_k, None, None)
    value = (
        xp.astype(xp.concat(value_parts), a.dtype)
        if value_parts
        else xp.zeros((0,), dtype=a.dtype, device=dev)
    )
    correct = top_k[:, 0] == a.labels
    in_top_k = xp.any(top_k == a.labels[:, None], axis=1)
    return FullSoftmaxEvaluation(value, top_k, correct, in_top_k)


def _pos_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}") from None
    if v < 1:
        raise ValueError(f"`{name}` must be >= 1, got {v}")
    return v


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


class _SampledHead:
    """What both sampled heads share: sampling, reduction, full-link prediction."""

    _link = "softmax"

    def __init__(
        self,
        n_classes: int,
        /,
        *,
        sampler: _Sampler | None = None,
        n_negatives: int = 64,
        replace: bool = True,
        shared: bool = True,
        remove_accidental_hits: bool = True,
    ) -> None:
        self.n_classes = _pos_int(n_classes, "n_classes")
        if sampler is None:
            sampler = UniformSampler(self.n_classes)
        if not isinstance(sampler, _Sampler):
            raise TypeError(
                "`sampler` must be a UniformSampler, LogUniformSampler, UnigramSampler or "
                "HeadUniformSampler, "
                f"got {type(sampler).__name__}"
            )
        if sampler.n_classes != self.n_classes:
            raise ValueError(
                f"`sampler` must cover n_classes={self.n_classes} classes, "
                f"got one over {sampler.n_classes}"
            )
        self.sampler = sampler
        self.n_negatives = _pos_int(n_negatives, "n_negatives")
        if not replace and self.n_negatives > sampler.n_support:
            raise ValueError(
                f"`n_negatives` must be <= {sampler.n_support} (the classes the sampler can "
                f"draw) without replacement, got {self.n_negatives}"
            )
        self.replace = bool(replace)
        self.shared = bool(shared)
        self.remove_accidental_hits = bool(remove_accidental_hits)

    def n_outputs(self, n_classes: int | None = None) -> int:
        """Width of the output layer: one logit per class."""
        return self.n_classes

    def encode(self, y: Any, /) -> np.ndarray:
        """Integer labels in ``[0, n_classes)`` as int64 (raises ValueError otherwise)."""
        return np.asarray(self.sampler._check_ids(y, "labels"))

    def sample(self, labels: Any, /, *, rng: np.random.Generator) -> NegativeSample:
        """Draw the negatives for a batch with these `labels`."""
        lab = np.asarray(labels)
        return self.sampler.sample(
            self.n_negatives,
            rng=rng,
            replace=self.replace,
            batch_size=None if self.shared else lab.shape[0],
            labels=lab,
        )

    def _loss_fn(self, *args: Any, **kwargs: Any) -> SampledLossResult:  # pragma: no cover
        raise NotImplementedError

    def loss_and_grad(
        self,
        hidden: Any,
        weights: Any,
        biases: Any,
        labels: Any,
        /,
        *,
        rng: np.random.Generator | None = None,
        negatives: NegativeSample | Any = None,
        sample_weight: Any = None,
    ) -> SampledLossResult:
        """The (weighted) mean sampled loss and its sparse gradients, on sampled rows.

        Draws the negatives with `rng` unless `negatives` is given. ``value`` is the scalar
        ``sum(w_i l_i) / sum(w_i)``, and every gradient is that of the scalar.
        """
        if negatives is None:
            if rng is None:
                raise TypeError("give `rng` (a numpy.random.Generator) or `negatives`")
            lab = labels if isinstance(labels, np.ndarray) else np.asarray(labels)
            negatives = self.sample(lab, rng=rng)
        hidden, xp = namespace(hidden, "hidden")
        n = hidden.shape[0]
        dtype = result_dtype(hidden, xp)
        dev = array_api_compat.device(hidden)
        if sample_weight is None:
            cot = xp.full((n,), 1.0 / max(n, 1), dtype=dtype, device=dev)
        else:
            sw = xp.asarray(np.asarray(sample_weight, dtype=np.float64), device=dev)
            if tuple(sw.shape) != (n,):
                raise ValueError(f"`sample_weight` must have shape ({n},), got {tuple(sw.shape)}")
            cot = xp.astype(sw / xp.sum(sw), dtype)
        r = self._loss_fn(hidden, weights, biases, labels, negatives, _cotangent=cot)
        return r._replace(value=xp.sum(r.value * cot))

    def evaluate(
        self,
        hidden: Any,
        weights: Any,
        biases: Any,
        labels: Any = None,
        /,
        *,
        k: int = 5,
        chunk_classes: int = 8192,
    ) -> FullSoftmaxEvaluation:
        """Full-softmax loss, accuracy and top-k without an ``n x K`` matrix."""
        return full_softmax_evaluate(
            hidden, weights, biases, labels, k=k, chunk_classes=chunk_classes
        )

    def decide(self, logits: Any, /, *, top_k: int | None = None) -> Array:
        """The class of largest logit (n,), or the `top_k` best classes (n, top_k)."""
        x, xp = namespace(logits, "logits")
        if top_k is None:
            return xp.argmax(x, axis=-1)
        kk = min(_pos_int(top_k, "top_k"), x.shape[-1])
        return xp.argsort(x, axis=-1, descending=True, stable=True)[..., :kk]


class SampledSoftmaxHead(_SampledHead):
    r"""Softmax head trained with sampled softmax, predicting with the full softmax.

    Training touches :math:`1 + m` rows per example (:func:`sampled_softmax_loss`); prediction
    and :meth:`loss` use all :math:`K` logits, and :meth:`evaluate` streams them in chunks.

    Parameters
    ----------
    n_classes : int
    sampler : UniformSampler, LogUniformSampler, UnigramSampler or HeadUniformSampler, optional
        The proposal :math:`Q` (default uniform).
    n_negatives : int, default=64
    replace : bool, default=True
    shared : bool, default=True
        One set of negatives per batch (a dense ``(n, m)`` product) or one per example.
    subtract_log_q : bool, default=True
    label_log_q : bool, default=False
        See :func:`sampled_softmax_loss`.
    remove_accidental_hits : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import SampledSoftmaxHead, LogUniformSampler
    >>> head = SampledSoftmaxHead(1000, sampler=LogUniformSampler(1000), n_negatives=20)
    >>> rng = np.random.default_rng(0)
    >>> h, W, b = rng.standard_normal((8, 16)), np.zeros((1000, 16)), np.zeros(1000)
    >>> r = head.loss_and_grad(h, W, b, rng.integers(0, 1000, 8), rng=rng)
    >>> r.grad_rows.shape[0] <= 8 + 20, r.grad_hidden.shape
    (True, (8, 16))
    """

    def __init__(
        self,
        n_classes: int,
        /,
        *,
        sampler: _Sampler | None = None,
        n_negatives: int = 64,
        replace: bool = True,
        shared: bool = True,
        subtract_log_q: bool = True,
        label_log_q: bool = False,
        remove_accidental_hits: bool = True,
    ) -> None:
        super().__init__(
            n_classes,
            sampler=sampler,
            n_negatives=n_negatives,
            replace=replace,
            shared=shared,
            remove_accidental_hits=remove_accidental_hits,
        )
        self.subtract_log_q = bool(subtract_log_q)
        self.label_log_q = bool(label_log_q)

    def __repr__(self) -> str:
        return (
            f"SampledSoftmaxHead({self.n_classes}, sampler={self.sampler!r}, "
            f"n_negatives={self.n_negatives})"
        )

    def _loss_fn(self, *args: Any, **kwargs: Any) -> SampledLossResult:
        return sampled_softmax_loss(
            *args,
            subtract_log_q=self.subtract_log_q,
            label_log_q=self.label_log_q,
            remove_accidental_hits=self.remove_accidental_hits,
            **kwargs,
        )

    def predict_proba(self, logits: Any, /) -> Array:
        """Full softmax over the last axis."""
        return softmax(logits)

    def loss(self, logits: Any, labels: Any, /, *, sample_weight: Any = None) -> float:
        """Mean full softmax cross-entropy from full logits (n, K)."""
        x, xp = namespace(logits, "logits")
        lab = _check_ids(labels, x.shape[-1], "labels", xp, x)
        per = logsumexp(x) - _take_rows(xp, x, lab[:, None])[:, 0]
        return _weighted_mean(per, sample_weight)


class NegativeSamplingHead(_SampledHead):
    r"""One-vs-rest sigmoid head trained with negative sampling.

    Training uses :func:`negative_sampling_loss` on the label and :math:`m` negatives;
    :meth:`predict_proba` gives the independent sigmoid of every logit and :meth:`loss` the
    full one-vs-rest objective :math:`-\log\sigma(x_y) - \sum_{k \ne y} \log\sigma(-x_k)`.

    Parameters
    ----------
    n_classes : int
    sampler : sampler, optional
        Default uniform; word2vec uses ``UnigramSampler(counts, power=0.75)``.
    n_negatives : int, default=64
    replace : bool, default=True
    shared : bool, default=True
    remove_accidental_hits : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import NegativeSamplingHead
    >>> head = NegativeSamplingHead(50, n_negatives=5)
    >>> r = head.loss_and_grad(np.ones((2, 3)), np.zeros((50, 3)), None, [0, 1],
    ...                        rng=np.random.default_rng(0))
    >>> round(float(r.value), 4)  # 6 sigmoids at 0, each log 2
    4.1589
    """

    _link = "sigmoid"

    def __repr__(self) -> str:
        return (
            f"NegativeSamplingHead({self.n_classes}, sampler={self.sampler!r}, "
            f"n_negatives={self.n_negatives})"
        )

    def _loss_fn(self, *args: Any, **kwargs: Any) -> SampledLossResult:
        return negative_sampling_loss(
            *args, remove_accidental_hits=self.remove_accidental_hits, **kwargs
        )

    def predict_proba(self, logits: Any, /) -> Array:
        """Independent sigmoid of every logit (rows need not sum to 1)."""
        return sigmoid(logits)

    def loss(self, logits: Any, labels: Any, /, *, sample_weight: Any = None) -> float:
        """Mean full one-vs-rest sigmoid loss from full logits (n, K)."""
        x, xp = namespace(logits, "logits")
        lab = _check_ids(labels, x.shape[-1], "labels", xp, x)
        cols = xp.arange(x.shape[-1], device=array_api_compat.device(x))
        sign = xp.where(cols[None, :] == lab[:, None], 1.0, -1.0)
        per = -xp.sum(log_sigmoid(xp.astype(sign, x.dtype) * x), axis=-1)
        return _weighted_mean(per, sample_weight)


def _weighted_mean(per: Array, sample_weight: Any) -> float:
    p = (
        np.asarray(per, dtype=np.float64)
        if is_numpy(array_api_compat.array_namespace(per))
        else (np.asarray(array_api_compat.to_device(per, "cpu"), dtype=np.float64))
    )
    if sample_weight is None:
        return float(np.mean(p))
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(np.sum(w * p) / np.sum(w))
