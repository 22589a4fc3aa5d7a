"""Save and load fitted estimators as ``.npz`` files, without pickle.

The file holds the fitted arrays and one JSON string of metadata: the format version, the
sigmax version, the estimator class, its parameters, the head, the classes and the shapes.
Writing goes through a temporary file in the same folder and `os.replace`, so a crash never
leaves a half-written model under the final name. Reading uses ``allow_pickle=False`` and
checks every field, so a corrupt, truncated or foreign file raises a `ValueError` that says
what is wrong.

A :class:`~sigmax.estimators.sampled.SampledSoftmaxClassifier` is stored as its prediction
state (``coef_``, ``intercept_``, ``components_``, the classes and the training history). The
optimizer moments and the negative sampler are not saved, so a loaded one predicts exactly as
the saved one but cannot continue with ``partial_fit``: fit it again instead.

Examples
--------
>>> import os, tempfile
>>> from sklearn.datasets import load_iris
>>> import sigmax
>>> X, y = load_iris(return_X_y=True)
>>> clf = sigmax.SoftmaxClassifier(max_iter=500).fit(X, y)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> clf.save(path)
>>> same = sigmax.load(path)
>>> bool((same.predict(X) == clf.predict(X)).all())
True
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "sigmax-estimator"
FORMAT_VERSION = 1

#: Private state besides the flat parameter vector that a fitted estimator needs.
_STATE = ("_multilabel", "_single_logit", "_n_outputs", "n_iter_", "loss_", "n_features_in_")
#: The same for SampledSoftmaxClassifier (its arrays are saved one by one, not flattened).
_SAMPLED_STATE = (
    "n_iter_",
    "t_",
    "n_features_in_",
    "loss_curve_",
    "validation_scores_",
    "epoch_times_",
)
_SAMPLED_ARRAYS = ("coef_", "intercept_", "components_")


def _classes() -> dict[str, type]:
    from sigmax.estimators.linear import SigmoidClassifier, SoftmaxClassifier
    from sigmax.estimators.mlp import MLPClassifier
    from sigmax.estimators.sampled import SampledSoftmaxClassifier

    return {
        c.__name__: c
        for c in (SigmoidClassifier, SoftmaxClassifier, MLPClassifier, SampledSoftmaxClassifier)
    }


def _json_param(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {"__items__": [[_json_scalar(k), float(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return list(value)
    if name == "random_state" and not (value is None or isinstance(value, int)):
        return None  # a generator's state is not part of the model
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_scalar(v: Any) -> Any:
    if isinstance(v, list):
        return [_json_scalar(e) for e in v]
    return v.item() if isinstance(v, np.generic) else v


def _from_json_param(value: Any) -> Any:
    if isinstance(value, dict) and "__items__" in value:
        return {k: v for k, v in value["__items__"]}
    return value


def save(estimator: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted sigmax estimator to `path` atomically (see the module docstring)."""
    from sklearn.utils.validation import check_is_fitted

    import sigmax

    check_is_fitted(estimator)
    name = type(estimator).__name__
    if name not in _classes():
        raise TypeError(f"`estimator` must be a sigmax estimator, got {name}")
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind == "O":
        try:
            classes = classes.astype(str)
        except (TypeError, ValueError):
            raise ValueError("`classes_` must be numbers or strings to be saved") from None
    if classes.dtype.kind not in "biufU":
        raise ValueError(f"`classes_` of dtype {classes.dtype} cannot be saved without pickle")
    params = {k: _json_param(k, v) for k, v in estimator.get_params(deep=False).items()}
    arrays: dict[str, np.ndarray] = {"classes": classes}
    if hasattr(estimator, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(estimator.feature_names_in_, dtype=str)
    if name == "SampledSoftmaxClassifier":
        for key in _SAMPLED_ARRAYS:
            value = getattr(estimator, key)
            if value is not None:
                arrays[key] = np.asarray(value)
        state = {k: _json_scalar(getattr(estimator, k)) for k in _SAMPLED_STATE}
        shapes = [list(arrays[k].shape) for k in _SAMPLED_ARRAYS if k in arrays]
        head = "softmax"
        n_params = sum(int(arrays[k].size) for k in _SAMPLED_ARRAYS if k in arrays)
    else:
        arrays["w"] = np.asarray(estimator._w)
        state = {k: _json_scalar(getattr(estimator, k)) for k in _STATE}
        if hasattr(estimator, "_layer_shapes"):
            shapes = [list(s) for s in estimator._layer_shapes]
        else:
            shapes = [list(estimator._shape)]
        head = estimator._head_name()
        n_params = int(arrays["w"].size)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sigmax_version": sigmax.__version__,
        "estimator": name,
        "head": head,
        "params": params,
        "state": state,
        "shapes": shapes,
        "n_params": n_params,
        "classes_dtype": str(classes.dtype),
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".sigmax-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator written by ``save``; raise `ValueError` for anything else.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator : SigmoidClassifier, SoftmaxClassifier, MLPClassifier or SampledSoftmaxClassifier
        Fitted, ready to predict.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is corrupt, truncated, not a sigmax model, or of another format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path` {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"{path!r} is not a readable sigmax model file (corrupt or truncated?): {exc}"
        ) from None
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U":
        raise ValueError(f"{path!r} is not a sigmax model file: no metadata record")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path!r} has corrupt metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a sigmax model file (format {meta!r:.60})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has format version {version!r}; this sigmax reads version "
            f"{FORMAT_VERSION}. Re-save the model with the sigmax that reads it."
        )
    classes = _classes()
    name = meta.get("estimator")
    if name not in classes:
        raise ValueError(f"{path!r} names an unknown estimator {name!r}")
    if name == "SampledSoftmaxClassifier":
        return _load_sampled(path, classes[name], meta, arrays)
    for key in ("w", "classes"):
        if key not in arrays:
            raise ValueError(f"{path!r} is missing the array {key!r}")
    w = np.asarray(arrays["w"], dtype=float)
    if w.ndim != 1 or w.size != meta.get("n_params"):
        raise ValueError(
            f"{path!r} has {w.size} parameters, the metadata says {meta.get('n_params')}"
        )
    est = classes[name]()
    est.set_params(**{k: _from_json_param(v) for k, v in meta["params"].items()})
    if "hidden_layer_sizes" in meta["params"]:
        est.set_params(hidden_layer_sizes=tuple(meta["params"]["hidden_layer_sizes"]))
    for k, v in meta["state"].items():
        setattr(est, k, v)
    est.classes_ = arrays["classes"]
    if "feature_names_in" in arrays:
        est.feature_names_in_ = arrays["feature_names_in"].astype(object)
    shapes = [tuple(s) for s in meta["shapes"]]
    if name == "MLPClassifier":
        est._layer_shapes = shapes
        expected = sum(a * b + b for a, b in shapes)
    else:
        est._shape = shapes[0]
        d, m = shapes[0]
        expected = d * m + (m if est.fit_intercept else 0)
    if expected != w.size:
        raise ValueError(f"{path!r}: shapes {shapes} need {expected} parameters, got {w.size}")
    est._w = w
    est._head_ = est._head()
    est._publish()
    return est


def _load_sampled(path: str, cls: type, meta: dict[str, Any], arrays: dict[str, Any]) -> Any:
    """Rebuild a SampledSoftmaxClassifier from its arrays, checking their shapes agree."""
    for key in ("classes", "coef_", "intercept_"):
        if key not in arrays:
            raise ValueError(f"{path!r} is missing the array {key!r}")
    est = cls()
    est.set_params(**{k: _from_json_param(v) for k, v in meta["params"].items()})
    coef = np.asarray(arrays["coef_"], dtype=np.float32)
    intercept = np.asarray(arrays["intercept_"], dtype=np.float32)
    components = arrays.get("components_")
    k = arrays["classes"].shape[0]
    n_features = meta.get("state", {}).get("n_features_in_")
    hidden = n_features if components is None else est.n_components
    problems = []
    if coef.ndim != 2 or coef.shape != (k, hidden):
        problems.append(f"coef_ has shape {coef.shape}, expected {(k, hidden)}")
    if intercept.shape != (k,):
        problems.append(f"intercept_ has shape {intercept.shape}, expected {(k,)}")
    if components is not None and components.shape != (n_features, hidden):
        problems.append(
            f"components_ has shape {components.shape}, expected {(n_features, hidden)}"
        )
    if problems:
        raise ValueError(f"{path!r} is inconsistent: " + "; ".join(problems))
    for key, value in meta["state"].items():
        setattr(est, key, value)
    est.classes_ = arrays["classes"]
    if "feature_names_in" in arrays:
        est.feature_names_in_ = arrays["feature_names_in"].astype(object)
    est.coef_ = coef
    est.intercept_ = intercept
    est.components_ = None if components is None else np.asarray(components, dtype=np.float32)
    return est
