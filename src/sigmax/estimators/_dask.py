"""Fitting and predicting on Dask arrays.

Full-batch solvers get the exact objective and gradient from per-chunk partial sums: each
row chunk returns ``(sum_i s_i l_i, sum_i s_i dl_i/dw, sum_i s_i)`` for the current ``w``,
and the few small vectors are added up. Only ``w`` travels to the workers and only
gradients come back, so ``X`` never has to fit in one machine's memory. Minibatch solvers
stream one chunk at a time. The labels and sample weights (one number per row) are held in
memory.

Examples
--------
The same code runs on a laptop and on a cluster; only the client changes::

    from dask.distributed import Client
    import dask.array as da
    import sigmax

    client = Client("tcp://scheduler:8786")          # or Client() for a local cluster
    X = da.from_zarr("s3://bucket/features.zarr")    # (n_samples, n_features), row chunks
    y = da.from_zarr("s3://bucket/labels.zarr")
    clf = sigmax.SoftmaxClassifier(C=1.0).fit(X, y)  # exact L-BFGS on chunk partial sums
    proba = clf.predict_proba(X)                     # lazy, one task per chunk
    proba.to_zarr("s3://bucket/proba.zarr")
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import column_or_1d

__all__ = ["fit_dask", "map_blocks_predict"]


def _block_partials(
    est: Any, w: np.ndarray, Xb: np.ndarray, Tb: Any, swb: np.ndarray, v: np.ndarray | None
) -> tuple[float, np.ndarray, float]:
    s = float(swb.sum())
    if s == 0:
        return 0.0, np.zeros_like(w), 0.0
    Xb = np.asarray(Xb, dtype=np.float64)
    if v is None:
        f, g = est._loss_grad(w, Xb, Tb, swb)
        out = (f * s, g * s, s)
    else:
        out = (0.0, est._loss_hvp(w, v, Xb, Tb, swb) * s, s)
    # The linear body caches the last chunk's logits for the next Hessian-vector product;
    # do not let the estimator (shipped with every task) carry a chunk around.
    est._cache = None
    return out


def _as_numpy(a: Any) -> Any:
    if a is None:
        return None
    return np.asarray(a.compute() if hasattr(a, "compute") else a)


def fit_dask(est: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    import dask
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`X` must be 2-D (n_samples, n_features), got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    X = X.rechunk({1: -1})  # whole rows per chunk: each chunk's gradient is complete
    n, d = X.shape
    y = _as_numpy(y)
    sample_weight = _as_numpy(sample_weight)
    if y.shape[0] != n:
        raise ValueError(f"`X` has {n} rows but `y` has {y.shape[0]}")
    if not (y.ndim == 2 and y.shape[1] > 1):
        y = column_or_1d(y, warn=True)
    if est.early_stopping and est.solver in ("sgd", "adam"):
        raise ValueError(
            "early_stopping is not supported on Dask input; hold out a validation set and "
            "call partial_fit per epoch instead"
        )
    for attr in ("feature_names_in_",):
        if hasattr(est, attr):
            delattr(est, attr)
    warm = est.warm_start and hasattr(est, "_w")
    old = (est._w, est.classes_) if warm else None
    if not warm:
        est._optimizer_ = None
    est.n_features_in_ = d
    est._head_ = est._head()
    T = est._encode_targets(y, reset=True)
    sw = est._weights(y, sample_weight, np.empty((n, 0)))
    rng = check_random_state(est.random_state)
    est._init_params(d, est._n_outputs, rng)
    if old is not None and old[0].shape == est._w.shape and np.array_equal(old[1], est.classes_):
        est._w = old[0].copy()

    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    blocks = X.to_delayed().ravel()
    pieces = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    if est.solver in ("sgd", "adam"):
        gen = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        batch = est.batch_size

        def epoch_batches() -> Iterator[tuple[Any, Any, Any]]:
            for i in gen.permutation(len(pieces)):
                a, b = pieces[i]
                Xb = np.asarray(X.blocks[i].compute(), dtype=np.float64)
                Tb, swb = T[a:b], sw[a:b]
                for idx in _batches(b - a, batch, gen):
                    if swb[idx].sum() > 0:
                        yield Xb[idx], Tb[idx], swb[idx]

        est._solve_minibatch(epoch_batches, None, epochs=est.max_iter, warn=True)
        est._publish()
        return est

    part = dask.delayed(_block_partials, pure=False)

    def reduce(w: np.ndarray, v: np.ndarray | None) -> tuple[float, np.ndarray]:
        tasks = [
            part(est, w, blk, T[a:b], sw[a:b], v)
            for blk, (a, b) in zip(blocks, pieces, strict=True)
        ]
        results = dask.compute(*tasks)
        total = sum(r[2] for r in results)
        f = sum(r[0] for r in results) / total
        g = np.sum([r[1] for r in results], axis=0) / total
        return float(f), g

    est._solve_full(
        lambda w: reduce(w, None),
        lambda w, v: reduce(w, v)[1],
        float(sw.sum()),
    )
    est._publish()
    return est


def _batches(n: int, batch: int, gen: np.random.Generator) -> Iterator[np.ndarray]:
    perm = gen.permutation(n)
    for start in range(0, n, batch):
        yield perm[start : start + batch]


def map_blocks_predict(est: Any, X: Any, method: str) -> Any:
    """Apply `method` to each row chunk of `X`; returns a lazy Dask array."""
    import dask.array as da
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    X = da.asarray(X)
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[-1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input"
        )
    X = X.rechunk({1: -1})
    fn = getattr(est, method)
    k = len(est.classes_)
    one_d = (method == "predict" and not est._multilabel) or (
        method == "decision_function"
        and not est._multilabel
        and (est._single_logit or (k == 2 and est._head_name() == "softmax"))
    )
    if method == "predict":
        dtype = est.classes_.dtype if not est._multilabel else np.dtype(int)
    else:
        dtype = np.dtype(np.float64)
    if one_d:
        return X.map_blocks(fn, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype=dtype))
    return X.map_blocks(
        fn, chunks=(X.chunks[0], (k,)), dtype=dtype, meta=np.empty((0, 0), dtype=dtype)
    )
