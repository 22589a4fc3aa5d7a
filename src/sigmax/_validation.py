"""The one place that checks user input and words the errors.

Every message names the argument, what was expected and what came, for example
"`labels` must be in [0, 10), got 12 at index 7".
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_axis",
    "check_out",
    "check_positive_scalar",
    "check_real_input",
    "check_real_numpy_dtype",
    "check_where",
]


def check_real_numpy_dtype(dtype: np.dtype, name: str = "x") -> None:
    """`check_real_input` for a NumPy dtype, without a namespace (the common, fast case)."""
    if dtype.kind == "c":
        raise TypeError(f"`{name}` must be real; complex input ({dtype}) is not supported")
    # JAX's bfloat16 is an ml_dtypes extension type, which NumPy lists as kind "V".
    if dtype.kind not in "fiub" and dtype.name != "bfloat16":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {dtype}")


def check_real_input(x: Any, xp: Any, name: str = "x") -> None:
    """Reject complex, string and object input with a `TypeError`."""
    dtype = x.dtype
    if isinstance(dtype, np.dtype):
        check_real_numpy_dtype(dtype, name)
    if xp.isdtype(dtype, "complex floating"):
        raise TypeError(f"`{name}` must be real; complex input ({dtype}) is not supported")
    if not xp.isdtype(dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {dtype}")


def check_axis(axis: int | Sequence[int] | None, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Normalize `axis` (an int, a tuple of ints or None) to sorted non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    out: list[int] = []
    for a in items:
        if isinstance(a, bool):
            raise TypeError(f"`{name}` must be an int, a tuple of ints or None, got {axis!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(
                f"`{name}` must be an int, a tuple of ints or None, got {axis!r}"
            ) from None
        if not -max(ndim, 1) <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(f"`{name}` must be in [-{ndim}, {ndim}) for a {ndim}-d input, got {a}")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must not repeat an axis, got {axis!r}")
    if ndim == 0:
        return ()
    return tuple(sorted(out))


def check_where(where: Any, x: Any, xp: Any) -> Any:
    """Return `where` as a boolean array of `x`'s shape, on `x`'s device."""
    import array_api_compat

    if not hasattr(where, "shape") or not hasattr(where, "dtype"):
        where = np.asarray(where)
        if not array_api_compat.is_numpy_namespace(xp):
            where = xp.asarray(where, device=array_api_compat.device(x))
    if where.dtype != xp.bool and not (isinstance(where.dtype, np.dtype) and where.dtype == bool):
        raise TypeError(f"`where` must be a boolean array, got dtype {where.dtype}")
    if tuple(where.shape) == tuple(x.shape):
        return where
    try:
        np.broadcast_shapes(tuple(where.shape), tuple(x.shape))
        if np.broadcast_shapes(tuple(where.shape), tuple(x.shape)) != tuple(x.shape):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"`where` must be broadcastable to the input's shape {tuple(x.shape)}, "
            f"got shape {tuple(where.shape)}"
        ) from None
    return xp.broadcast_to(where, tuple(x.shape))


def check_positive_scalar(value: Any, name: str) -> float:
    """A finite, strictly positive real number, such as a temperature."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a positive real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a positive real number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value!r}")
    return v


def check_out(out: Any, shape: tuple[int, ...], dtype: Any, xp: Any) -> Any:
    """`out=` is a NumPy-only convenience: an ndarray of the result's shape and dtype."""
    import array_api_compat

    if not array_api_compat.is_numpy_namespace(xp):
        raise TypeError("`out` is supported for NumPy input only")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(
            f"`out` must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
            f"got shape {out.shape} and dtype {out.dtype}"
        )
    return out


# --------------------------------------------------------------------------------------------
# Loss inputs: labels, targets and per-class weights (used by sigmax.losses and sigmax.heads)
# --------------------------------------------------------------------------------------------


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy view or copy of any Array API array, for checking values at the boundary."""
    if isinstance(a, np.ndarray):
        return a
    import array_api_compat

    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(a):
        # CuPy refuses implicit host copies (np.asarray and DLPack both fail on a GPU array).
        return a.get()
    try:
        return np.asarray(a)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(a)


def is_traced(a: Any) -> bool:
    """Whether `a` is a JAX tracer (inside ``jax.jit``, ``jax.grad``, ``jax.vmap``...), whose
    values cannot be read on the host: the losses then check its shape and dtype only."""
    jax = sys.modules.get("jax")  # never imported here: a tracer means JAX is loaded
    return jax is not None and isinstance(a, jax.core.Tracer)


def _where_text(idx: tuple[int, ...]) -> str:
    return f"index {idx[0]}" if len(idx) == 1 else f"index {idx}"


def _first_bad(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def check_shape(a: Any, shape: tuple[int, ...], name: str, what: str) -> None:
    """`a` must have exactly `shape`; `what` says where the expected shape comes from."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)} ({what}), got {tuple(a.shape)}")


def check_labels(
    labels: np.ndarray, n_classes: int, ignore_index: int | None = None, name: str = "labels"
) -> np.ndarray:
    """Integer class labels in ``[0, n_classes)`` (or equal to `ignore_index`), as ``intp``.

    Floats are accepted when they hold whole numbers; bools and anything else are rejected.
    """
    a = np.asarray(labels)
    if a.dtype.kind == "b" or a.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must hold integer class indices, got dtype {a.dtype}")
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a != np.floor(a))
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(
                f"`{name}` must be whole numbers (class indices), got {a[i].item()!r} "
                f"at {_where_text(i)}"
            )
    ok = (a >= 0) & (a < n_classes)
    if ignore_index is not None:
        ok |= a == ignore_index
    if not ok.all():
        i = _first_bad(~ok)
        v = a[i].item()
        raise ValueError(
            f"`{name}` must be in [0, {n_classes})"
            + (f" or equal to ignore_index={ignore_index}" if ignore_index is not None else "")
            + f", got {int(v) if float(v).is_integer() else v} at {_where_text(i)}"
        )
    return a.astype(np.intp, copy=False)


def check_unit_interval(a: np.ndarray, name: str = "targets") -> None:
    """Values in [0, 1] (no nan)."""
    a = np.asarray(a)
    if a.dtype.kind == "b" or a.size == 0:
        return
    # Two reductions without temporaries decide the common case; nan fails both.
    if a.min() >= 0 and a.max() <= 1:
        return
    with np.errstate(invalid="ignore"):
        bad = ~((a >= 0) & (a <= 1))
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"`{name}` must be in [0, 1], got {a[i].item()!r} at {_where_text(i)}")


def check_probability_rows(a: np.ndarray, eps: float, name: str = "targets") -> None:
    """Rows along the last axis that are probability vectors: in [0, 1], summing to 1.

    The tolerance on the sum is ``max(16, k) * eps``, with `eps` the machine epsilon of the
    computation's dtype: rounding each of ``k`` entries can move the sum by up to ``k * eps / 2``.
    """
    check_unit_interval(a, name)
    a = np.asarray(a, dtype=np.float64)
    k = a.shape[-1] if a.ndim else 1
    tol = max(16, k) * eps
    s = a.sum(axis=-1) if a.ndim else a
    bad = np.abs(s - 1.0) > tol
    if np.any(bad):
        i = _first_bad(np.atleast_1d(bad))
        raise ValueError(
            f"`{name}` rows must sum to 1 (within {tol:.1e}), "
            f"got sum {float(np.atleast_1d(s)[i])!r}"
            f" for the row at {_where_text(i)}"
        )


def check_nonnegative_weights(
    w: Any, name: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Finite, non-negative weights (such as `class_weight` or `pos_weight`) as float64."""
    a = np.asarray(to_numpy(w) if not isinstance(w, (int, float, list, tuple)) else w)
    if a.dtype.kind not in "iuf" or a.dtype.kind == "b":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if shape is not None and a.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}, got {a.shape}")
    bad = ~(np.isfinite(a) & (a >= 0))
    if bad.any():
        i = _first_bad(np.atleast_1d(bad))
        raise ValueError(
            f"`{name}` must be finite and >= 0, got {np.atleast_1d(a)[i].item()!r} "
            f"at {_where_text(i)}"
        )
    return a


def check_label_smoothing(value: Any, name: str = "label_smoothing") -> float:
    """A real number in [0, 1)."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number in [0, 1), got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}")
    return v
