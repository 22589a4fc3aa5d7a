r"""The exact equivalence between a 2-class softmax layer and a sigmoid layer.

For two classes the softmax depends only on the difference of the logits,

.. math:: \operatorname{softmax}(z_0, z_1)_1 = \frac{e^{z_1}}{e^{z_0} + e^{z_1}}
          = \sigma(z_1 - z_0),

so a softmax layer with rows :math:`(w_0, b_0)` and :math:`(w_1, b_1)` gives the same
probabilities as the sigmoid layer :math:`(w_1 - w_0,\ b_1 - b_0)`, which models
:math:`P(\text{class } 1)`. The converse is one-to-many: any :math:`(w_0, b_0)` with
:math:`w_1 = w_0 + w` works. Two choices are useful: the *reference* form :math:`w_0 = 0`, and
the *symmetric* form :math:`w_0 = -w_1 = -w/2`, which is the one an L2 penalty selects (the
penalty :math:`\|w_0\|^2 + \|w_1\|^2` is smallest, for a fixed difference, when the rows are
opposite). That is why a softmax with penalty strength :math:`C` equals a sigmoid with
:math:`2C`; see :func:`c_sigmoid_from_softmax`.

More generally, each softmax output is a sigmoid whose "middle" shifts with the other inputs:
:math:`\operatorname{softmax}(z)_i = \sigma\big(z_i - \operatorname{logsumexp}(z_{-i})\big)`
(:func:`softmax_as_shifted_sigmoid`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import array_api_compat

from sigmax._array_api import Array, compute_dtype, moveaxes_last, namespace, result_dtype
from sigmax.functions import logsumexp, sigmoid

__all__ = [
    "c_sigmoid_from_softmax",
    "c_softmax_from_sigmoid",
    "sigmoid_to_softmax",
    "softmax_as_shifted_sigmoid",
    "softmax_to_sigmoid",
]


def softmax_to_sigmoid(coef: Any, intercept: Any, /) -> tuple[Array, Array]:
    r"""Convert a 2-class softmax layer into the sigmoid layer with identical probabilities.

    .. math:: w = w_1 - w_0, \qquad b = b_1 - b_0, \qquad
              \sigma(x^\top w + b) = \operatorname{softmax}(x^\top W^\top + b)_1

    Parameters
    ----------
    coef : array, shape (2, n_features)
        One row per class, as scikit-learn's ``coef_``.
    intercept : array, shape (2,)

    Returns
    -------
    coef : array, shape (1, n_features)
        scikit-learn's binary layout; the sigmoid gives :math:`P(\text{class } 1)`.
    intercept : array, shape (1,)

    Raises
    ------
    ValueError
        If the shapes are not ``(2, d)`` and ``(2,)``.

    Notes
    -----
    The logit of the converted layer, :math:`x^\top(w_1 - w_0) + (b_1 - b_0)`, equals
    :math:`z_1 - z_0` up to rounding; the probabilities then agree to within the rounding of
    that difference (a few ULP in practice; exactly for the layers
    :func:`sigmoid_to_softmax` returns).

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import softmax_to_sigmoid
    >>> softmax_to_sigmoid(np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([0.25, -0.5]))
    (array([[2. , 2.5]]), array([-0.75]))
    """
    w, _ = namespace(coef, "coef")
    b, _ = namespace(intercept, "intercept")
    if w.ndim != 2 or w.shape[0] != 2:
        raise ValueError(f"`coef` must have shape (2, n_features), got {tuple(w.shape)}")
    if tuple(b.shape) != (2,):
        raise ValueError(f"`intercept` must have shape (2,), got {tuple(b.shape)}")
    return w[1:2, :] - w[0:1, :], b[1:2] - b[0:1]


def sigmoid_to_softmax(
    coef: Any,
    intercept: Any,
    /,
    *,
    parametrization: Literal["reference", "symmetric"] = "reference",
) -> tuple[Array, Array]:
    r"""Convert a sigmoid layer into a 2-class softmax layer with identical probabilities.

    .. math:: \text{reference: } W = \begin{pmatrix} 0 \\ w \end{pmatrix},\ b = (0, b);
              \qquad
              \text{symmetric: } W = \begin{pmatrix} -w/2 \\ w/2 \end{pmatrix},\
              b = (-b/2, b/2)

    Parameters
    ----------
    coef : array, shape (n_features,) or (1, n_features)
        The sigmoid's weights (scikit-learn's binary ``coef_`` has shape ``(1, d)``).
    intercept : float or array, shape () or (1,)
    parametrization : {"reference", "symmetric"}, default="reference"
        ``"reference"`` pins class 0 at zero; ``"symmetric"`` splits the difference so that
        the rows sum to zero, which is the minimum-norm choice an L2 penalty selects.

    Returns
    -------
    coef : array, shape (2, n_features)
    intercept : array, shape (2,)

    Notes
    -----
    Halving is exact in binary floating point (barring underflow), so the round trip
    ``softmax_to_sigmoid(*sigmoid_to_softmax(w, b))`` gives back exactly ``(w, b)`` in both
    parametrizations, and the softmax logit difference is exactly the sigmoid's logit.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import sigmoid_to_softmax
    >>> sigmoid_to_softmax(np.array([[2.0, 2.5]]), np.array([-0.75]), parametrization="symmetric")
    (array([[-1.  , -1.25],
           [ 1.  ,  1.25]]), array([ 0.375, -0.375]))
    """
    if parametrization not in ("reference", "symmetric"):
        raise ValueError(
            f"`parametrization` must be 'reference' or 'symmetric', got {parametrization!r}"
        )
    w, xp = namespace(coef, "coef")
    b, _ = namespace(intercept, "intercept")
    if w.ndim == 2 and w.shape[0] == 1:
        w = w[0, :]
    if w.ndim != 1:
        raise ValueError(
            f"`coef` must have shape (n_features,) or (1, n_features), got {tuple(w.shape)}"
        )
    if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != 1):
        raise ValueError(f"`intercept` must be a scalar or have shape (1,), got {tuple(b.shape)}")
    b = xp.reshape(b, (1,))
    if parametrization == "reference":
        lo_w, hi_w, lo_b, hi_b = xp.zeros_like(w), w, xp.zeros_like(b), b
    else:
        hi_w, hi_b = w / 2, b / 2
        lo_w, lo_b = -hi_w, -hi_b
    return xp.stack([lo_w, hi_w], axis=0), xp.concat([lo_b, hi_b])


def c_sigmoid_from_softmax(C: float, /) -> float:
    r"""The sigmoid's inverse L2 strength equal to a 2-class softmax with strength `C`.

    scikit-learn's objectives (``LogisticRegression``, L2 penalty) are

    .. math:: \text{softmax: } C \sum_i \ell^{\mathrm{soft}}_i
              + \tfrac12 (\|w_0\|^2 + \|w_1\|^2),
              \qquad
              \text{sigmoid: } C' \sum_i \ell^{\mathrm{sig}}_i + \tfrac12 \|w\|^2 .

    The softmax loss depends only on :math:`w = w_1 - w_0`, and for a fixed :math:`w` the
    penalty is smallest at :math:`w_0 = -w_1 = -w/2` (the symmetric form), where
    :math:`\|w_0\|^2 + \|w_1\|^2 = \|w\|^2 / 2`. With :math:`\ell^{\mathrm{soft}}_i =
    \ell^{\mathrm{sig}}_i` the softmax objective becomes
    :math:`C \sum_i \ell_i + \tfrac14 \|w\|^2`, which is half of
    :math:`2C \sum_i \ell_i + \tfrac12 \|w\|^2`: the same minimizer as a sigmoid with
    :math:`C' = 2C`. (Intercepts are not penalized, so they map by difference alone.)

    Parameters
    ----------
    C : float
        Inverse regularization strength of the softmax (> 0).

    Returns
    -------
    float
        :math:`2C`.

    Examples
    --------
    >>> from sigmax import c_sigmoid_from_softmax
    >>> c_sigmoid_from_softmax(0.5)
    1.0
    """
    c = float(C)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"`C` must be finite and > 0, got {C!r}")
    return 2.0 * c


def c_softmax_from_sigmoid(C: float, /) -> float:
    r"""The inverse of :func:`c_sigmoid_from_softmax`: a sigmoid with `C` is a softmax with C/2.

    Examples
    --------
    >>> from sigmax import c_softmax_from_sigmoid
    >>> c_softmax_from_sigmoid(1.0)
    0.5
    """
    c = float(C)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"`C` must be finite and > 0, got {C!r}")
    return c / 2.0


def softmax_as_shifted_sigmoid(x: Any, i: int, /, *, axis: int = -1) -> Array:
    r"""Softmax entry `i`, computed as a sigmoid whose middle shifts with the other logits.

    .. math:: \operatorname{softmax}(z)_i = \frac{e^{z_i}}{e^{z_i} + \sum_{j \ne i} e^{z_j}}
              = \sigma\Big(z_i - \log \sum_{j \ne i} e^{z_j}\Big)

    This is the seed's picture: for class :math:`i` the softmax is a logistic curve in
    :math:`z_i`, centred at :math:`\operatorname{logsumexp}(z_{-i})`, so raising any other logit
    moves the curve to the right.

    Parameters
    ----------
    x : array, shape (..., n_classes, ...)
        Logits with at least two classes along `axis`.
    i : int
        The class (negative values count from the end).
    axis : int, default=-1

    Returns
    -------
    array, shape of `x` without `axis`
        Equal to ``softmax(x, axis=axis)`` at index `i`.

    Notes
    -----
    The shift is formed as :math:`s = \operatorname{logsumexp}_{j \ne i}(z_j - z_i)`, so a
    common offset cancels before any rounding that matters, and the result is
    :math:`\sigma(-s)`. float16/float32 are computed in float64 and agree with the softmax to
    1 ULP. In float64 the sigmoid's own condition number :math:`|s|` shows: the error is a few
    ULP times :math:`1 + |s|` (the softmax itself is computed with a compensated difference and
    does not have this factor). ``z_i = +inf`` gives 1 (if it is the only ``+inf``) and
    ``z_i = -inf`` gives 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import softmax, softmax_as_shifted_sigmoid
    >>> z = np.array([1.0, 2.0, 3.0])
    >>> a, b = float(softmax_as_shifted_sigmoid(z, 2)), float(softmax(z)[2])
    >>> round(a, 12), abs(a - b) <= np.spacing(b)
    (0.665240955775, np.True_)
    """
    x, xp = namespace(x, "x")
    dtype = result_dtype(x, xp)
    cdt = compute_dtype(dtype, xp, x)
    if x.ndim == 0:
        raise ValueError("`x` must have at least one dimension (the class axis)")
    y, _, _ = moveaxes_last(x, axis, xp)
    k = y.shape[-1]
    if k < 2:
        raise ValueError(f"`x` must have at least 2 classes along `axis`, got {k}")
    if isinstance(i, bool) or not isinstance(i, int) or not -k <= i < k:
        raise ValueError(f"`i` must be an int in [-{k}, {k}), got {i!r}")
    i = i % k
    z = xp.astype(y, cdt)
    others = xp.arange(k, device=array_api_compat.device(x)) != i
    shift = logsumexp(z - z[..., i : i + 1], axis=-1, where=xp.broadcast_to(others, z.shape))
    return xp.astype(sigmoid(-shift), dtype)
