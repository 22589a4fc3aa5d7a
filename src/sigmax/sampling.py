r"""Candidate samplers for sampled softmax and negative sampling.

Three proposal distributions :math:`Q` over the class ids ``0 .. n_classes - 1``:

* :class:`UniformSampler`: :math:`Q(k) = 1/K`.
* :class:`LogUniformSampler` (Zipfian): :math:`Q(k) = \log\frac{k+2}{k+1} / \log(K+1)`, for
  class ids sorted by decreasing frequency.
* :class:`UnigramSampler`: :math:`Q(k) \propto c_k^{\alpha}` from class counts, drawn from a
  Vose alias table in O(1) per draw.

And one candidate set that is not a plain proposal:

* :class:`HeadUniformSampler`: the most frequent classes in every sample (expected count 1),
  the rest drawn uniformly from the other classes.

Every sampler draws with an explicit :class:`numpy.random.Generator` and reports, for each
sampled id and for the true labels, the *expected count* of that id in the sample. Its log is
the :math:`\log Q` correction of sampled softmax.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "HeadUniformSampler",
    "LogUniformSampler",
    "NegativeSample",
    "UniformSampler",
    "UnigramSampler",
]


class NegativeSample(NamedTuple):
    """Sampled candidate ids and their expected counts.

    Attributes
    ----------
    ids : numpy.ndarray of int64, shape (num,) or (batch, num)
        Sampled class ids: one row shared by the whole batch, or one row per example.
    expected_counts : numpy.ndarray of float64, same shape as `ids`
        Expected number of occurrences of each id in its row of the sample.
    label_expected_counts : numpy.ndarray of float64, shape (batch,), or None
        Expected count of each true label in the sample of its example (its row, or the
        shared row), when ``labels`` were given to :meth:`sample`.
    """

    ids: np.ndarray
    expected_counts: np.ndarray
    label_expected_counts: np.ndarray | None


def _check_generator(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "`rng` must be a numpy.random.Generator (for example np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {v}")
    return v


def _expected_count(p: np.ndarray, num_tries: np.ndarray | float, num: int, replace: bool) -> Any:
    """Expected count of an id of probability `p` in a sample of `num` ids.

    With replacement it is ``num * p``. Without replacement the sample is drawn with
    replacement until `num` distinct ids are seen after ``num_tries`` draws, so an id is in it
    with probability ``1 - (1 - p)**num_tries``, written ``-expm1(num_tries * log1p(-p))`` to
    stay exact for tiny ``p`` (as TensorFlow's candidate samplers do).
    """
    if replace:
        return num * p
    with np.errstate(divide="ignore"):
        return -np.expm1(num_tries * np.log1p(-p))


class _Sampler:
    """Shared drawing logic; subclasses define ``_draw`` and ``probability``."""

    n_classes: int

    def probability(self, ids: Any, /) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def probabilities(self) -> np.ndarray:
        """The whole distribution :math:`Q`, shape ``(n_classes,)`` (sums to 1)."""
        return self.probability(np.arange(self.n_classes))

    def _check_ids(self, ids: Any, name: str) -> np.ndarray:
        a = np.asarray(ids)
        if a.dtype.kind not in "iu":
            raise TypeError(f"`{name}` must hold integer class ids, got dtype {a.dtype}")
        bad = np.flatnonzero((a.ravel() < 0) | (a.ravel() >= self.n_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"`{name}` must be in [0, {self.n_classes}), got {a.ravel()[i]} at index "
                f"{np.unravel_index(i, a.shape) if a.ndim > 1 else i}"
            )
        return a.astype(np.int64, copy=False)

    def _unique_row(self, rng: np.random.Generator, num: int) -> tuple[np.ndarray, int]:
        """`num` distinct ids, drawn with replacement until enough are seen, and the tries."""
        seen: dict[int, None] = {}
        tries = 0
        while len(seen) < num:
            # Draw in batches sized to what is still missing; ids are kept in first-seen order.
            batch = self._draw(rng, max(2 * (num - len(seen)), 16))
            for t, k in enumerate(batch.tolist()):
                if k not in seen:
                    seen[k] = None
                    if len(seen) == num:
                        tries += t + 1
                        break
            else:
                tries += batch.size
        return np.fromiter(seen, dtype=np.int64, count=num), tries

    def sample(
        self,
        num: int,
        /,
        *,
        rng: np.random.Generator,
        replace: bool = True,
        batch_size: int | None = None,
        labels: Any = None,
    ) -> NegativeSample:
        r"""Draw `num` candidate ids, shared by a batch or one row per example.

        Parameters
        ----------
        num : int
            Candidates per row.
        rng : numpy.random.Generator
            The source of randomness (required, so that runs are reproducible).
        replace : bool, default=True
            Draw with replacement (ids may repeat). Without replacement the row is drawn with
            replacement until `num` distinct ids are seen ("unique" sampling), and the
            expected count becomes the inclusion probability
            :math:`1 - (1 - Q(k))^{T}` for ``T`` draws.
        batch_size : int, optional
            If given, draw one independent row per example: ``ids`` has shape
            ``(batch_size, num)``. Otherwise one row of shape ``(num,)`` shared by the batch.
        labels : array of int, shape (batch,), optional
            True class ids; their expected counts are returned in ``label_expected_counts``.

        Returns
        -------
        NegativeSample
            ``(ids, expected_counts, label_expected_counts)``.

        Raises
        ------
        ValueError
            If ``num > n_classes`` without replacement, if an id in `labels` is out of range,
            or if `labels` and `batch_size` disagree.
        """
        rng = _check_generator(rng)
        num = _check_count(num, "num", 0)
        if not replace and num > self.n_support:
            raise ValueError(
                f"`num` must be <= the {self.n_support} classes of nonzero probability when "
                f"sampling without replacement, got {num}"
            )
        lab = None if labels is None else self._check_ids(labels, "labels").reshape(-1)
        if batch_size is not None:
            batch_size = _check_count(batch_size, "batch_size", 0)
            if lab is not None and lab.shape[0] != batch_size:
                raise ValueError(
                    f"`labels` must have batch_size={batch_size} entries, got {lab.shape[0]}"
                )
        rows = 1 if batch_size is None else batch_size
        if replace:
            ids = self._draw(rng, rows * num).reshape(rows, num)
            tries = np.full((rows, 1), float(num))
        else:
            ids = np.empty((rows, num), dtype=np.int64)
            tries = np.empty((rows, 1))
            for r in range(rows):
                ids[r], tries[r, 0] = self._draw_unique(rng, num)
        counts = _expected_count(self.probability(ids), tries, num, replace)
        lab_counts = None
        if lab is not None:
            t = tries[:, 0] if batch_size is not None else tries[0, 0]
            lab_counts = _expected_count(self.probability(lab), t, num, replace)
        if batch_size is None:
            ids, counts = ids[0], counts[0]
        return NegativeSample(ids, counts, lab_counts)

    def _draw_unique(self, rng: np.random.Generator, num: int) -> tuple[np.ndarray, float]:
        return self._unique_row(rng, num)

    @property
    def n_support(self) -> int:
        """Number of classes with nonzero probability."""
        return self.n_classes


class UniformSampler(_Sampler):
    r"""Uniform proposal, :math:`Q(k) = 1/K`.

    Parameters
    ----------
    n_classes : int
        Number of classes :math:`K`.

    Notes
    -----
    Without replacement every id is in a row of `num` with probability exactly ``num / K``;
    that is the expected count reported (the rows are drawn by :meth:`Generator.choice`).

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import UniformSampler
    >>> s = UniformSampler(10).sample(4, rng=np.random.default_rng(0), replace=False)
    >>> s.ids.shape, float(s.expected_counts[0])
    ((4,), 0.4)
    """

    def __init__(self, n_classes: int) -> None:
        self.n_classes = _check_count(n_classes, "n_classes", 1)

    def __repr__(self) -> str:
        return f"UniformSampler(n_classes={self.n_classes})"

    def probability(self, ids: Any, /) -> np.ndarray:
        """:math:`Q(k)` for each id in `ids` (same shape)."""
        a = self._check_ids(ids, "ids")
        return np.full(a.shape, 1.0 / self.n_classes)

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.integers(0, self.n_classes, size=size, dtype=np.int64)

    def _draw_unique(self, rng: np.random.Generator, num: int) -> tuple[np.ndarray, float]:
        ids = rng.choice(self.n_classes, size=num, replace=False).astype(np.int64)
        # T with 1 - (1 - 1/K)**T == num / K makes the shared formula give the exact num / K.
        p = 1.0 / self.n_classes
        if num == self.n_classes:
            return ids, math.inf
        return ids, math.log1p(-num / self.n_classes) / math.log1p(-p) if p < 1 else 1.0


class LogUniformSampler(_Sampler):
    r"""Log-uniform (Zipfian) proposal over ids sorted by decreasing frequency.

    .. math:: Q(k) = \frac{\log(k + 2) - \log(k + 1)}{\log(K + 1)}, \quad k = 0, \dots, K - 1

    Parameters
    ----------
    n_classes : int
        Number of classes :math:`K`.

    Notes
    -----
    A draw is ``floor(exp(u * log(K + 1))) - 1`` for ``u ~ U[0, 1)``, the inverse of the CDF
    :math:`\log(k + 1) / \log(K + 1)`: O(1) per draw and no table. The probability is computed
    as ``log1p(1 / (k + 1)) / log1p(K)``, exact also for large ids.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import LogUniformSampler
    >>> q = LogUniformSampler(4).probabilities()
    >>> [round(float(v), 4) for v in q], float(q.sum())
    ([0.4307, 0.2519, 0.1787, 0.1386], 1.0)
    """

    def __init__(self, n_classes: int) -> None:
        self.n_classes = _check_count(n_classes, "n_classes", 1)
        self._log_range = math.log1p(self.n_classes)

    def __repr__(self) -> str:
        return f"LogUniformSampler(n_classes={self.n_classes})"

    def probability(self, ids: Any, /) -> np.ndarray:
        """:math:`Q(k)` for each id in `ids` (same shape)."""
        a = self._check_ids(ids, "ids")
        return np.log1p(1.0 / (a + 1.0)) / self._log_range

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        u = rng.random(size)
        k = np.floor(np.exp(u * self._log_range)).astype(np.int64) - 1
        # exp can round up to K + 1 when u is within an ulp of 1.
        return np.minimum(k, self.n_classes - 1)


class UnigramSampler(_Sampler):
    r"""Proposal proportional to a power of the class counts, from a Vose alias table.

    .. math:: Q(k) = \frac{c_k^{\alpha}}{\sum_j c_j^{\alpha}}

    Parameters
    ----------
    counts : array of real, shape (n_classes,)
        Non-negative class counts (or any unnormalised weights), not all zero.
    power : float, default=0.75
        The exponent :math:`\alpha` (0.75 as in word2vec; 1 gives the unigram, 0 uniform over
        classes with nonzero count).

    Raises
    ------
    ValueError
        If `counts` is not 1-D, is empty, has a negative or non-finite entry, or is all zero.

    Notes
    -----
    The alias table (Vose's method) has one probability and one alias per class. A draw picks
    a column uniformly and keeps it or takes its alias by one uniform compare: O(1) per draw,
    O(K) memory and O(K) set-up. Classes with zero count are never drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import UnigramSampler
    >>> s = UnigramSampler([9.0, 0.0, 1.0], power=1.0)
    >>> [float(v) for v in s.probabilities()]
    [0.9, 0.0, 0.1]
    >>> ids = s.sample(10000, rng=np.random.default_rng(0)).ids
    >>> int((ids == 1).sum())
    0
    """

    def __init__(self, counts: Any, /, *, power: float = 0.75) -> None:
        c = _check_counts(counts)
        if not np.any(c > 0):
            raise ValueError("`counts` must have at least one entry > 0, got all zeros")
        if isinstance(power, bool) or not isinstance(power, (int, float, np.floating)):
            raise TypeError(f"`power` must be a real number, got {power!r}")
        if not (math.isfinite(power) and power >= 0):
            raise ValueError(f"`power` must be finite and >= 0, got {power!r}")
        self.n_classes = c.size
        self.power = float(power)
        w = np.where(c > 0, c**self.power, 0.0)
        # Normalise by the largest weight first so that huge counts cannot overflow the sum.
        w = w / w.max()
        self._q = w / w.sum()
        self._n_support = int(np.count_nonzero(self._q))
        self._prob, self._alias = _vose_alias(self._q)

    def __repr__(self) -> str:
        return f"UnigramSampler(<{self.n_classes} counts>, power={self.power})"

    @property
    def n_support(self) -> int:
        return self._n_support

    def probability(self, ids: Any, /) -> np.ndarray:
        """:math:`Q(k)` for each id in `ids` (same shape)."""
        return self._q[self._check_ids(ids, "ids")]

    def probabilities(self) -> np.ndarray:
        return self._q.copy()

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        col = rng.integers(0, self.n_classes, size=size, dtype=np.int64)
        keep = rng.random(size) < self._prob[col]
        return np.where(keep, col, self._alias[col])


def _check_counts(counts: Any) -> np.ndarray:
    c = np.asarray(counts)
    if c.dtype.kind not in "iuf":
        raise TypeError(f"`counts` must hold real numbers, got dtype {c.dtype}")
    c = c.astype(np.float64)
    if c.ndim != 1:
        raise ValueError(f"`counts` must be 1-D, got shape {c.shape}")
    if c.size == 0:
        raise ValueError("`counts` must not be empty")
    bad = np.flatnonzero(~np.isfinite(c) | (c < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"`counts` must be finite and >= 0, got {c[i]} at index {i}")
    return c


class HeadUniformSampler(_Sampler):
    r"""The `n_head` most frequent classes in every sample, plus uniform draws from the rest.

    A sample of ``num`` candidates is the head :math:`H` (the `n_head` classes of largest
    count) and ``m = num - n_head`` draws, uniform over the :math:`T = K - |H|` other classes:

    .. math::

        E[c_k] = 1 \;(k \in H), \qquad E[c_k] = \frac{m}{T} \;(k \notin H),

    with or without replacement (without, the draws are distinct and :math:`m/T` is the
    inclusion probability). The expected counts are what :func:`~sigmax.sampled_softmax_loss`
    corrects by, so the head enters the sampled normalizer exactly and only the tail is
    estimated.

    Parameters
    ----------
    counts : array of real, shape (n_classes,)
        Non-negative class counts (training frequencies); ties are broken by the lower id.
    n_head : int
        How many of the most frequent classes are always in the sample, ``0 <= n_head <=
        n_classes`` (0 is the uniform sampler).

    Raises
    ------
    ValueError
        For bad `counts` (as :class:`UnigramSampler`), an `n_head` out of range, or, in
        :meth:`sample`, ``num < n_head`` or more tail draws than tail classes without
        replacement.

    Notes
    -----
    Why: with a skewed class distribution the few frequent classes hold most of the softmax
    mass of almost every example (they have the large biases). Drawn uniformly, each is in a
    sample of :math:`m` with probability :math:`m/K`, and the sampled normalizer swings by
    its :math:`K/m`-weighted term; kept in every sample, it costs one row and adds no variance.
    In ``benchmarks/bench_sampled.py`` (Zipf classes, :math:`K` = 50,000, 2,048 candidates)
    half the candidates as head gained 1.5 points of top-1 over uniform draws (0.700 against
    0.685).
    :meth:`probability` and :meth:`probabilities` describe the drawn part only (zero on the
    head, :math:`1/T` on the tail).

    Examples
    --------
    >>> import numpy as np
    >>> from sigmax import HeadUniformSampler
    >>> s = HeadUniformSampler([50, 1, 30, 2, 0, 1], n_head=2)
    >>> r = s.sample(4, rng=np.random.default_rng(0), labels=[0, 5])
    >>> r.ids[:2].tolist(), r.expected_counts.tolist(), r.label_expected_counts.tolist()
    ([0, 2], [1.0, 1.0, 0.5, 0.5], [1.0, 0.5])
    """

    def __init__(self, counts: Any, /, *, n_head: int) -> None:
        c = _check_counts(counts)
        self.n_classes = c.size
        self.n_head = _check_count(n_head, "n_head", 0)
        if self.n_head > self.n_classes:
            raise ValueError(f"`n_head` must be <= n_classes={self.n_classes}, got {self.n_head}")
        order = np.argsort(-c, kind="stable")
        self.head_ids = np.sort(order[: self.n_head]).astype(np.int64)
        self._tail = np.sort(order[self.n_head :]).astype(np.int64)
        self._in_head = np.zeros(self.n_classes, dtype=bool)
        self._in_head[self.head_ids] = True

    def __repr__(self) -> str:
        return f"HeadUniformSampler(<{self.n_classes} counts>, n_head={self.n_head})"

    def probability(self, ids: Any, /) -> np.ndarray:
        """Probability of each id in one draw of the tail part (0 for head ids)."""
        a = self._check_ids(ids, "ids")
        return np.where(self._in_head[a], 0.0, 1.0 / max(self._tail.size, 1))

    def _draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self._tail[rng.integers(0, self._tail.size, size=size, dtype=np.int64)]

    def sample(
        self,
        num: int,
        /,
        *,
        rng: np.random.Generator,
        replace: bool = True,
        batch_size: int | None = None,
        labels: Any = None,
    ) -> NegativeSample:
        """Draw `num` candidates: the head, then ``num - n_head`` tail draws (see the class).

        Parameters and return as :meth:`UniformSampler.sample`.
        """
        rng = _check_generator(rng)
        num = _check_count(num, "num", 0)
        m = num - self.n_head
        if m < 0:
            raise ValueError(f"`num` must be >= n_head={self.n_head}, got {num}")
        if not replace and m > self._tail.size:
            raise ValueError(
                f"`num` must be <= n_classes={self.n_classes} when sampling without "
                f"replacement, got {num}"
            )
        if m > 0 and self._tail.size == 0:
            raise ValueError(f"`num` must be <= n_head={self.n_head} when every class is head")
        lab = None if labels is None else self._check_ids(labels, "labels").reshape(-1)
        if batch_size is not None:
            batch_size = _check_count(batch_size, "batch_size", 0)
            if lab is not None and lab.shape[0] != batch_size:
                raise ValueError(
                    f"`labels` must have batch_size={batch_size} entries, got {lab.shape[0]}"
                )
        rows = 1 if batch_size is None else batch_size
        if replace:
            tail = self._draw(rng, rows * m).reshape(rows, m)
        else:
            tail = np.empty((rows, m), dtype=np.int64)
            for r in range(rows):
                tail[r] = self._tail[rng.choice(self._tail.size, size=m, replace=False)]
        ids = np.concatenate([np.broadcast_to(self.head_ids, (rows, self.n_head)), tail], axis=1)
        q = m / self._tail.size if self._tail.size else 0.0
        counts = np.where(self._in_head[ids], 1.0, q)
        lab_counts = None if lab is None else np.where(self._in_head[lab], 1.0, q)
        if batch_size is None:
            ids, counts = ids[0], counts[0]
        return NegativeSample(ids, counts, lab_counts)


def _vose_alias(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias table for the distribution `q` (sums to 1): keep-probabilities, aliases.

    The classic stack-based construction, O(K) steps. Leftover columns (whose scaled mass is
    1 up to rounding) keep themselves with probability 1.
    """
    n = q.size
    scaled = (q * n).tolist()
    prob = [1.0] * n
    alias = list(range(n))
    small = [i for i, v in enumerate(scaled) if v < 1.0]
    large = [i for i, v in enumerate(scaled) if v >= 1.0]
    while small and large:
        s = small.pop()
        g = large[-1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small.append(large.pop())
    return np.asarray(prob), np.asarray(alias, dtype=np.int64)
