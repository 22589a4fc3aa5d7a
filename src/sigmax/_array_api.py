"""Namespace resolution, dtype policy and the axis plumbing shared by every public function.

Every public function resolves the namespace of its input once, here, and computes either on
the NumPy fast path (cache-sized blocks, optionally on two threads) or on the generic Array API
path that works for any compliant namespace (array-api-strict, PyTorch, JAX, CuPy, Dask).
"""

from __future__ import annotations

import contextvars
import importlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from sigmax._validation import check_axis, check_real_input, check_real_numpy_dtype

__all__ = [
    "Array",
    "Namespace",
    "block_rows",
    "compute_dtype",
    "env_flag",
    "full",
    "fused",
    "index_dtype",
    "is_numpy",
    "namespace",
    "plain_ndarray",
    "result_dtype",
    "scratch",
    "unwrap_scalar",
]

Array = Any
Namespace = Any

#: Elements per block on the NumPy path. Each block runs about 15 NumPy calls (~1 us each of
#: call overhead) over per-thread work buffers; 65536 elements (512 KiB in float64) was the
#: fastest of 8Ki..128Ki on the machines measured (benchmarks/results/functions.md).
BLOCK_ELEMENTS = 1 << 16
#: Below this many elements threads cost more than they save.
THREAD_MIN_ELEMENTS = 1 << 18

#: Elements per block for the fused numba kernels, which work a row at a time: 8 times fewer
#: calls than `BLOCK_ELEMENTS`, still about 20 blocks per 10^7 elements to share between threads.
FUSED_BLOCK_ELEMENTS = 1 << 19

#: Larger work buffers are allocated per call instead of being kept per thread.
SCRATCH_MAX_ELEMENTS = 1 << 20

_executor: ThreadPoolExecutor | None = None
_local = threading.local()


# CPython keeps os.environ's contents in the dict `os.environ._data` (bytes keys on POSIX),
# which os.environ's own methods keep current. `os.environ.get` of an unset name raises and
# catches a KeyError inside: 0.7 us, a sixth of a one-sample softmax, paid on every call that
# checks for ``SIGMAX_DISABLE_NUMBA``. Elsewhere (Windows, other layouts) the public lookup.
_ENV_DATA: Any = getattr(os.environ, "_data", None)
if os.name != "posix" or not isinstance(_ENV_DATA, dict):
    _ENV_DATA = None
_ENV_KEYS: dict[str, bytes] = {}


def env_flag(name: str) -> bool:
    """Whether the environment variable `name` is set to anything but ``""`` or ``"0"``, as
    read now (a change made through ``os.environ`` counts from the next call)."""
    if _ENV_DATA is None:
        return os.environ.get(name, "0") not in ("", "0")
    key = _ENV_KEYS.get(name)
    if key is None:
        key = _ENV_KEYS[name] = os.fsencode(name)
    return _ENV_DATA.get(key, b"0") not in (b"", b"0")


def _n_threads() -> int:
    env = os.environ.get("SIGMAX_NUM_THREADS")
    if env is not None:
        return max(1, int(env))
    # The CPUs this process may run on (taskset, cgroups), not all of the machine's.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, 8))


def namespace(x: Any, name: str = "x") -> tuple[Array, Namespace]:
    """Return ``(array, xp)``. Python scalars, lists and tuples become NumPy arrays."""
    if isinstance(x, (list, tuple, int, float, bool, np.generic)) or (
        not hasattr(x, "__array_namespace__") and not array_api_compat.is_array_api_obj(x)
    ):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"`{name}` must be an array or a nested sequence of numbers, "
                f"got {type(x).__name__}: {exc}"
            ) from None
    if isinstance(x, np.ndarray) and type(x) is not np.ndarray:
        x = plain_ndarray(x, name)
    if type(x) is np.ndarray:
        # The common case without array-api-compat's dispatch and NumPy's isdtype, which
        # cost several microseconds a call (most of a call on a small array).
        check_real_numpy_dtype(x.dtype, name)
        if not x.dtype.isnative:
            # As NumPy's ufuncs: results in native byte order. Computing in the swapped
            # dtype also lost float64's compensated difference (its dtype is not float64's).
            x = x.astype(x.dtype.newbyteorder("="))
        return x, _NUMPY
    xp = array_api_compat.array_namespace(x)
    check_real_input(x, xp, name)
    return x, xp


def plain_ndarray(x: np.ndarray, name: str) -> np.ndarray:
    """An ndarray subclass (``np.matrix``, ``np.memmap``, ...) as a plain ndarray view, as
    the kernels and the results are plain arrays. A masked array is refused: its mask would
    be silently dropped."""
    if isinstance(x, np.ma.MaskedArray):
        # The functions' logits are "x"; softmax, log_softmax and logsumexp take a mask.
        hint = (
            "; softmax, log_softmax and logsumexp take the valid entries as `where=~x.mask`"
            if name == "x"
            else ""
        )
        raise TypeError(
            f"`{name}` must not be a numpy.ma.MaskedArray (its mask would be ignored): pass "
            f"`{name}.filled(value)` or `np.asarray({name})`{hint}"
        )
    return np.asarray(x)


#: array-api-compat's NumPy namespace, what `array_namespace` gives for a NumPy array.
_NUMPY = array_api_compat.array_namespace(np.empty(0))


def is_numpy(xp: Namespace) -> bool:
    return xp is _NUMPY or bool(array_api_compat.is_numpy_namespace(xp))


def result_dtype(x: Array, xp: Namespace) -> Any:
    """Floating inputs keep their dtype; integers and bools promote to the default float."""
    if type(x) is np.ndarray:
        return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if xp.isdtype(x.dtype, "real floating"):
        return x.dtype
    info = xp.__array_namespace_info__()
    return info.default_dtypes(device=array_api_compat.device(x))["real floating"]


def index_dtype(xp: Namespace, like: Array) -> Any:
    """The namespace's default integer dtype on `like`'s device: int64, or int32 where there
    is no int64 (JAX without x64, where asking for int64 warns and truncates)."""
    info = xp.__array_namespace_info__()
    return info.default_dtypes(device=array_api_compat.device(like))["integral"]


def compute_dtype(dtype: Any, xp: Namespace, x: Array | None = None) -> Any:
    """float16, bfloat16 and float32 are computed in float64 where the namespace has it.

    Rounding a float64 result once to float32 is within 0.5 + 2**-29 ULP: that is how the
    1-ULP bound for the narrow dtypes is met without a separate algorithm for each.
    """
    if dtype == xp.float64:
        return dtype
    if array_api_compat.is_jax_namespace(xp):
        import jax

        if not jax.config.read("jax_enable_x64"):
            return xp.float32
    # Apple's MPS backend has no float64.
    device_type = getattr(getattr(x, "device", None), "type", None)
    if array_api_compat.is_torch_namespace(xp) and device_type == "mps":
        return xp.float32
    return xp.float64


def unwrap_scalar(r: Array, xp: Namespace) -> Array:
    """A 0-d NumPy result becomes a NumPy scalar, as NumPy's own reductions return."""
    if is_numpy(xp) and getattr(r, "ndim", 1) == 0:
        return r[()]
    return r


def full(xp: Namespace, shape: tuple[int, ...], value: float, like: Array) -> Array:
    """A constant array on `like`'s device, in `like`'s dtype."""
    return xp.full(shape, value, dtype=like.dtype, device=array_api_compat.device(like))


def moveaxes_last(
    x: Array, axis: int | Sequence[int] | None, xp: Namespace, name: str = "axis"
) -> tuple[Array, Callable[[Array], Array], Callable[[Array, bool], Array]]:
    """Move the reduced axes of `x` to the end and merge them into one.

    Returns the reshaped array of shape ``(*kept, k)`` and two functions: one that undoes the
    move for a result of the same shape, and one that maps a reduced result of shape
    ``(*kept,)`` back to the input's layout (with or without the reduced axes kept as 1).
    """
    if isinstance(axis, int) and axis == -1 and x.ndim >= 1:
        # The default: nothing moves (the general code below costs microseconds a call).
        last_one = (*x.shape[:-1], 1)

        def keep(r: Array) -> Array:
            return r

        def keep_reduced(r: Array, keepdims: bool) -> Array:
            return xp.reshape(r, last_one) if keepdims else r

        return x, keep, keep_reduced
    axes = check_axis(axis, x.ndim, name)
    kept = [a for a in range(x.ndim) if a not in axes]
    kept_shape = tuple(x.shape[a] for a in kept)
    red_shape = tuple(x.shape[a] for a in axes)
    k = math.prod(red_shape)
    perm = kept + list(axes)
    identity = perm == list(range(x.ndim))
    y = x if identity else xp.permute_dims(x, tuple(perm))
    if len(axes) != 1 or x.ndim == 0:
        y = xp.reshape(y, (*kept_shape, k))
    inverse = [perm.index(a) for a in range(x.ndim)]

    def restore(r: Array) -> Array:
        if len(axes) != 1 or x.ndim == 0:
            r = xp.reshape(r, (*kept_shape, *red_shape))
        return r if identity else xp.permute_dims(r, tuple(inverse))

    def restore_reduced(r: Array, keepdims: bool) -> Array:
        if not keepdims:
            return r
        shape = [1 if a in axes else x.shape[a] for a in range(x.ndim)]
        return xp.reshape(r, tuple(shape))

    return y, restore, restore_reduced


def scratch(slot: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A per-thread work buffer of `shape`, reused across blocks and calls.

    Large ``np.empty`` calls go to ``mmap`` and fault their pages in on first touch, which cost
    as much as the arithmetic on a cache-sized block; reusing one buffer per thread keeps the
    block's working set hot in L2. The contents are undefined; callers overwrite them.
    """
    bufs: dict[tuple[str, np.dtype[Any]], np.ndarray] | None = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    dt = np.dtype(dtype)
    size = math.prod(shape)
    if size > SCRATCH_MAX_ELEMENTS:  # one huge slice: do not pin its memory to the thread
        return np.empty(shape, dtype=dt)
    buf = bufs.get((slot, dt))
    if buf is None or buf.size < size:
        buf = bufs[(slot, dt)] = np.empty(max(size, 1), dtype=dt)
    return buf[:size].reshape(shape)


def block_rows(
    n_rows: int,
    k: int,
    kernel: Callable[[slice], None],
    *,
    block_elements: int = BLOCK_ELEMENTS,
) -> None:
    """Run ``kernel(rows)`` over cache-sized row blocks, on threads when the work is large.

    NumPy releases the GIL inside ufuncs, so two threads each working on their own blocks run
    in parallel. The kernel writes into preallocated outputs, so blocks never overlap. Kernels
    that keep only a row in cache (the fused numba ones) take larger blocks, which cuts the
    per-call overhead.
    """
    rows_per_block = max(1, block_elements // max(k, 1))
    if 0 < n_rows <= rows_per_block and n_rows * k < THREAD_MIN_ELEMENTS:
        kernel(slice(0, n_rows))  # one block, this thread: the common small call, fast
        return
    blocks = [slice(i, min(i + rows_per_block, n_rows)) for i in range(0, n_rows, rows_per_block)]
    threads = _n_threads()
    # A kernel that calls back into block_rows (a derivative that computes a softmax per block)
    # runs the inner call serially: waiting on the pool from inside it could deadlock.
    nested = getattr(_local, "busy", False)
    if threads > 1 and not nested and len(blocks) > 1 and n_rows * k >= THREAD_MIN_ELEMENTS:
        global _executor
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sigmax")
        # Every thread, this one included, takes the next block from a shared iterator, so a
        # thread that the OS preempts (a busy shared machine) delays only its current block.
        # next() on an iterator of a list is atomic under the GIL. The first error propagates.
        todo = iter(blocks)

        def run() -> None:
            _local.busy = True
            try:
                for b in todo:
                    kernel(b)
            finally:
                _local.busy = False

        # np.errstate lives in a context variable (NumPy >= 2): run the workers in copies of
        # this thread's context so that the caller's errstate holds in them too.
        futures = [
            _executor.submit(contextvars.copy_context().run, run) for _ in range(threads - 1)
        ]
        try:
            run()
        finally:
            for fut in futures:
                fut.result()
    else:
        for b in blocks:
            kernel(b)


#: Calls on NumPy arrays of up to this many entries may go straight to a fused kernel
#: (`sigmax.functions`, `sigmax.derivatives`): the general path's argument handling costs
#: about 10 us a call, more than the work on one sample.
SMALL_CALL = 1 << 12


def small_numpy(x: Any, precision: str) -> bool:
    """A C-contiguous float32/float64 NumPy array in native byte order, of 1 to
    `SMALL_CALL` entries and at least one axis, with a valid `precision`."""
    return (
        type(x) is np.ndarray
        and x.ndim > 0
        and 0 < x.size <= SMALL_CALL
        and x.dtype.char in "fd"
        and x.dtype.isnative
        and x.flags.c_contiguous
        and precision in ("accurate", "fast")
    )


def small_along_last(x: np.ndarray, axis: Any, where: Any, temperature: Any) -> bool:
    """No mask, the last axis, and a valid temperature: a row-wise call on `x` as it is."""
    return (
        where is None
        and type(axis) is int
        and axis in (-1, x.ndim - 1)
        and type(temperature) in (float, int)
        and 0.0 < temperature < math.inf
    )


def small_out(x: np.ndarray, out: Any, *inputs: np.ndarray) -> np.ndarray | None:
    """A fresh array like `x`, or `out` when a kernel may write straight into it: else None
    (the general path checks it, and copies when it overlaps `x` or `inputs`)."""
    if out is None:
        return np.empty_like(x)
    if type(out) is not np.ndarray or out.shape != x.shape or out.dtype != x.dtype:
        return None
    flags = out.flags  # one flags object (each `out.flags` builds a new one)
    if not (flags.c_contiguous and flags.writeable) or np.may_share_memory(out, x):
        return None
    for a in inputs:  # a loop: a generator for any() costs more than the check here
        if np.may_share_memory(out, a):
            return None
    return out


_fused_modules: dict[str, ModuleType] = {}


def fused(module: str, *arrays: np.ndarray) -> ModuleType | None:
    """The optional numba module `module` when its kernels may run on `arrays`, else None.

    Imported on first use, so that ``import sigmax`` never pays for importing numba. The
    module's ``enabled(*arrays)`` decides (numba importable, ``SIGMAX_DISABLE_NUMBA`` unset,
    C-contiguous float32/float64 arrays of one dtype; no arrays: the caller checked them).
    """
    mod = _fused_modules.get(module)
    if mod is None:
        mod = _fused_modules[module] = importlib.import_module(module)
    return mod if mod.enabled(*arrays) else None
