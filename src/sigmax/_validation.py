"""The one place that checks user input and words the errors.

Every message names the argument, what was expected and what came, for example
"`labels` must be in [0, 10), got 12 at index 7".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_axis",
    "check_out",
    "check_positive_scalar",
    "check_real_input",
    "check_where",
]


def check_real_input(x: Any, xp: Any, name: str = "x") -> None:
    """Reject complex, string and object input with a `TypeError`."""
    dtype = x.dtype
    if isinstance(dtype, np.dtype) and dtype.kind not in "fiub":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {dtype}")
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
