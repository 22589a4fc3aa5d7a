r"""Fused CUDA kernels for the forward functions, on CuPy arrays and torch CUDA tensors.

On a GPU the generic Array API path launches one kernel per array operation (about 15 for a
softmax), so it runs an order of magnitude behind a fused softmax. These kernels make one
launch per call. They are CUDA C, compiled at run time by NVRTC through ``cupy.RawModule``
(once per process and device; CuPy keeps the binary in its disk cache), never with fast math.
CuPy adds ``-ftz=true`` to every compilation, which flushes subnormal float32 results to 0
(in ``expf`` and even in the conversion from double), so every kernel computes in double
precision and converts with inline PTX (``cvt.rn.f32.f64``), which keeps subnormals.

Row kernels (softmax, log_softmax, logsumexp along the last axis of a C-contiguous
``(n, k)`` array), the algorithm of the CPU kernels (:mod:`sigmax._numba_forward`):

- ``m = max z`` (with ``z = x / T`` divided in double, as the NumPy path divides in its
  compute dtype), and a flag for a NaN in the row (``fmax`` skips NaN);
- ``d = z - m`` with its exact rounding error ``e`` (TwoSum) for double input; float input
  differs exactly in double (``e = 0``); ``d = 0`` at the max entries, also for ``m = +inf``;
- ``v = exp(d) (1 + e)`` by ``fma``, and the row sum of ``v`` as a pair ``hi + lo`` (TwoSum
  in every thread and through the shuffle tree), so ``hi >= 1`` (the max term is exactly 1)
  and ``rest = (hi - 1) + lo`` keeps full relative accuracy;
- softmax ``q = exp(d) / hi`` corrected to first order, ``q (1 + e - lo / hi)``; log_softmax
  ``(d - L) + e`` with ``L = log1p(rest)``; logsumexp ``m + L``.

IEEE rules as on NumPy, decided in the kernel: a NaN in a row makes the row NaN; ``+inf``
entries share the mass equally (log_softmax ``-log(c)`` for ``c`` of them);
a row of ``-inf`` gives probabilities 0, log-probabilities and logsumexp ``-inf``. The
log-probability of a lone max is ``-0.0``, as on the generic path (NumPy's finite blocks give
``+0.0``).

Layout: rows of up to :data:`THREAD_MAX_K` entries go one to a thread, which loops over its
row (no shuffles: a lane-group layout spends ``2 log2(width)`` dependent shuffle rounds per
row for one entry per lane, and holds only ``32 / width`` rows per warp). Rows of up to
:data:`WARP_MAX_K` entries go one to a group of lanes of a warp (32 lanes, or the next power
of two >= k), reduced with ``__shfl_xor_sync``; longer rows go one to a 256-thread block
(warp shuffles, then shared memory across the warps). All loop over rows with a grid stride,
so any ``n`` fits in the grid. Each row is read three times (max, sum, write); the second and
third reads come from L1/L2 while the rows in flight fit there.

Launch: the compiled functions are cached per (device, kernel, dtype) and CuPy's handles on
torch streams per (device, stream); a torch tensor goes to the kernel as its raw device
pointer (no DLPack round trip), on torch's current stream.

Elementwise kernels: sigmoid ``(x >= 0 ? 1 : e) / (1 + e)`` and log_sigmoid
``min(x, 0) - log1p(e)`` with ``e = exp(-|x|)``, in double. They are memory-bound on a GPU,
so ``precision="fast"`` runs the same kernels (and so do the row kernels).

Used by :mod:`sigmax.functions` for float32/float64 C-contiguous CuPy arrays, and torch CUDA
tensors when CuPy is importable (launched on torch's current stream; not tensors that require
grad), without ``where`` masks. ``SIGMAX_DISABLE_CUDA=1``
turns them off; anything else goes to the generic path (the functions here return None).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from sigmax._array_api import env_flag

__all__ = ["KINDS", "THREAD_MAX_K", "WARP_MAX_K", "elementwise", "enabled", "rows_forward"]

#: The kernels' codes for the row functions.
KINDS = {"softmax": 0, "log_softmax": 1, "logsumexp": 2}
#: Rows up to this long go one to a thread.
THREAD_MAX_K = 32
#: Longer rows up to this long go to (part of) a warp, longer ones to a block.
WARP_MAX_K = 1024
_THREADS = 256
#: The grids loop over rows with a stride, so they need not cover a huge array.
_MAX_BLOCKS = 65535
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

SOURCE = r"""
#define SIGMAX_INF __longlong_as_double(0x7ff0000000000000LL)
#define SIGMAX_NAN __longlong_as_double(0x7ff8000000000000LL)
#define SIGMAX_FULL 0xffffffffu
// Entries each thread takes at a time in the sum and write passes (the benchmark compiles
// other values to compare), and the row kernels' launch bounds (off with SIGMAX_NO_BOUNDS).
#ifndef SIGMAX_UNROLL
#define SIGMAX_UNROLL 4
#endif
#ifdef SIGMAX_NO_BOUNDS
#define SIGMAX_BOUNDS(blocks)
#else
#define SIGMAX_BOUNDS(blocks) __launch_bounds__(256, blocks)
#endif

enum { SOFTMAX = 0, LOG_SOFTMAX = 1, LOGSUMEXP = 2 };

// s + err == a + b exactly (Knuth's TwoSum, any order of a and b). Compiled with
// --fmad=false, so nothing here is contracted into an FMA that would break it.
__device__ __forceinline__ void two_sum(double a, double b, double& s, double& err) {
    s = a + b;
    double bb = s - a;
    err = (a - (s - bb)) + (b - bb);
}

// (hi, lo) += (bhi, blo). Symmetric: both lanes of a shuffle pair get the same pair.
__device__ __forceinline__ void add_pair(double& hi, double& lo, double bhi, double blo) {
    double s, err;
    two_sum(hi, bhi, s, err);
    hi = s;
    lo = (lo + blo) + err;
}

// Conversions in inline PTX: CuPy compiles with -ftz=true, under which the compiler's own
// conversions between float and double flush subnormals (cvt.rn.ftz.f32.f64). These keep
// them. (Host compilers, for the tests' CPU emulation, take the plain casts.)
__device__ __forceinline__ double widen(double v) { return v; }
__device__ __forceinline__ double widen(float v) {
#ifdef __CUDA_ARCH__
    double r;
    asm("cvt.f64.f32 %0, %1;" : "=d"(r) : "f"(v));
    return r;
#else
    return static_cast<double>(v);
#endif
}
__device__ __forceinline__ void store(double* p, long long j, double v) { p[j] = v; }
__device__ __forceinline__ void store(float* p, long long j, double v) {
#ifdef __CUDA_ARCH__
    float r;
    asm("cvt.rn.f32.f64 %0, %1;" : "=f"(r) : "d"(v));
    p[j] = r;
#else
    p[j] = static_cast<float>(v);
#endif
}

template <typename T>
__device__ __forceinline__ double load(const T* p, long long j, double t) {
    double z = widen(p[j]);
    return t == 1.0 ? z : z / t;
}

// d + e == z - m. Float input differs exactly in double (e = 0); double input carries the
// TwoSum error. At the max entries d = 0, also for m = +inf where inf - inf would be nan.
template <typename T>
__device__ __forceinline__ void diff(double z, double m, double& d, double& e) {
    e = 0.0;
    if (z == m) {
        d = 0.0;
        return;
    }
    d = z - m;
    if constexpr (sizeof(T) == 8) {
        double bb = d - z;
        e = (z - (d - bb)) + (-m - bb);
        // d = -inf (a -inf entry, or overflow): the term is 0 whatever e is.
        if (!(fabs(e) < SIGMAX_INF)) e = 0.0;
    }
}

// exp(d + e) to first order; |e| is below half an ulp of d.
__device__ __forceinline__ double term(double d, double e) {
    double v = exp(d);
    return fma(v, e, v);
}

struct Row {
    double m, hi, lo, corr, inv, lse;
    bool nan;
};

__device__ __forceinline__ void finish(Row& r, double m, int nan, double hi, double lo) {
    r.m = m;
    r.nan = nan != 0;
    r.hi = hi;
    r.lo = lo;
    r.corr = lo / hi;
    r.inv = 1.0 / hi;
    // hi >= 1 (the max term is exactly 1), so hi - 1 is exact.
    r.lse = log1p((hi - 1.0) + lo);
}

__device__ __forceinline__ double row_logsumexp(const Row& r) {
    if (r.nan) return SIGMAX_NAN;
    if (r.m == -SIGMAX_INF) return -SIGMAX_INF;
    return r.m + r.lse;
}

template <typename T>
__device__ __forceinline__ double entry(int kind, double z, const Row& r) {
    if (r.nan) return SIGMAX_NAN;
    if (r.m == -SIGMAX_INF) return kind == SOFTMAX ? 0.0 : -SIGMAX_INF;
    double d, e;
    diff<T>(z, r.m, d, e);
    if (kind == SOFTMAX) {
        // exp(d) (1 + e) / (hi (1 + lo / hi)) to first order: one rounding fewer than
        // correcting the numerator and the denominator one after the other. A float
        // result takes exp(d) * (1 / hi): a double division costs about ten multiplies,
        // and the extra rounding (2**-53) moves a float rounding only within 2**-29 of a tie.
        double q;
        if constexpr (sizeof(T) == 4) {
            q = exp(d) * r.inv;
        } else {
            q = exp(d) / r.hi;
        }
        return fma(q, e - r.corr, q);
    }
    // The max entries get -L (-0.0 for a lone max, as the generic path gives); this also
    // serves the +inf entries of a row with +inf, where d - L would be computed from inf.
    if (d == 0.0) return -r.lse;
    return (d - r.lse) + e;
}

template <typename T>
__device__ __forceinline__ void row_max(const T* xr, long long k, long long j0, long long step,
                                        double t, double& m, int& nan) {
    for (long long j = j0; j < k; j += step) {
        double z = load(xr, j, t);
        nan |= z != z;
        m = fmax(m, z);
    }
}

template <typename T>
__device__ __forceinline__ void row_sum(const T* xr, long long k, long long j0, long long step,
                                        double t, double m, double& hi, double& lo) {
    // SIGMAX_UNROLL entries at a time: their loads and exps are independent, so that many
    // dependent double-precision chains overlap instead of one. The terms are still added in
    // index order, so the sum is the same as one at a time.
    constexpr int U = SIGMAX_UNROLL;
    long long j = j0;
    for (; j + (U - 1) * step < k; j += U * step) {
        double v[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            double d, e;
            diff<T>(load(xr, j + u * step, t), m, d, e);
            v[u] = term(d, e);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) add_pair(hi, lo, v[u], 0.0);
    }
    for (; j < k; j += step) {
        double d, e;
        diff<T>(load(xr, j, t), m, d, e);
        add_pair(hi, lo, term(d, e), 0.0);
    }
}

template <typename T>
__device__ __forceinline__ void row_write(const T* xr, T* out, long long row, long long k,
                                          long long j0, long long step, double t, int kind,
                                          const Row& r) {
    if (kind == LOGSUMEXP) {
        if (j0 == 0) store(out, row, row_logsumexp(r));
        return;
    }
    T* orow = out + row * k;
    constexpr int U = SIGMAX_UNROLL;
    long long j = j0;
    // SIGMAX_UNROLL at a time, as in row_sum.
    for (; j + (U - 1) * step < k; j += U * step) {
        double v[U];
#pragma unroll
        for (int u = 0; u < U; ++u) v[u] = entry<T>(kind, load(xr, j + u * step, t), r);
#pragma unroll
        for (int u = 0; u < U; ++u) store(orow, j + u * step, v[u]);
    }
    for (; j < k; j += step) {
        store(orow, j, entry<T>(kind, load(xr, j, t), r));
    }
}

// Launch bounds: 256 threads a block (the launch code's `_THREADS`) and the most blocks an SM
// can hold without spills at SIGMAX_UNROLL 4 (ptxas 13.0 for sm_90, double/float: rows_thread
// 62/60 registers, 4 blocks; rows_group 80/68 and rows_block 66/56, 3 blocks, 4 for
// rows_block<float>, which takes 68 registers and 3 blocks without bounds). Asking one block
// more makes ptxas spill.

// One row per thread, for short rows: no shuffles, and 32 rows per warp instead of 32 / width.
// A warp's loads at one j touch k cache lines, which its next loads (and the next two passes)
// find in L1/L2. `width` is unused (the launch code passes it to every row kernel).
template <typename T>
__global__ void SIGMAX_BOUNDS(4)
    rows_thread(const T* __restrict__ x, T* __restrict__ out, long long n, long long k, double t,
                int kind, int width) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long row = blockIdx.x * (long long)blockDim.x + threadIdx.x; row < n;
         row += stride) {
        const T* xr = x + row * k;
        double m = -SIGMAX_INF;
        int nan = 0;
        row_max(xr, k, 0, 1, t, m, nan);
        double hi = 0.0, lo = 0.0;
        row_sum(xr, k, 0, 1, t, m, hi, lo);
        Row r;
        finish(r, m, nan, hi, lo);
        row_write(xr, out, row, k, 0, 1, t, kind, r);
    }
}

// One row per group of `width` lanes (a power of two <= 32), 32 / width rows per warp.
template <typename T>
__global__ void SIGMAX_BOUNDS(3)
    rows_group(const T* __restrict__ x, T* __restrict__ out, long long n, long long k, double t,
               int kind, int width) {
    const int lane = threadIdx.x & 31;
    const int sub = lane & (width - 1);
    const int groups = 32 / width;
    const long long group = lane / width;
    const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    const long long stride = (((long long)gridDim.x * blockDim.x) >> 5) * groups;
    // The bound is the same for the whole warp, so every lane takes part in every shuffle.
    for (long long base = warp * groups; base < n; base += stride) {
        const long long row = base + group;
        const bool active = row < n;
        const T* xr = x + (active ? row : 0) * k;
        double m = -SIGMAX_INF;
        int nan = 0;
        if (active) row_max(xr, k, sub, width, t, m, nan);
        for (int o = width >> 1; o > 0; o >>= 1) {
            m = fmax(m, __shfl_xor_sync(SIGMAX_FULL, m, o));
            nan |= __shfl_xor_sync(SIGMAX_FULL, nan, o);
        }
        double hi = 0.0, lo = 0.0;
        if (active) row_sum(xr, k, sub, width, t, m, hi, lo);
        for (int o = width >> 1; o > 0; o >>= 1) {
            double ohi = __shfl_xor_sync(SIGMAX_FULL, hi, o);
            double olo = __shfl_xor_sync(SIGMAX_FULL, lo, o);
            add_pair(hi, lo, ohi, olo);
        }
        if (!active) continue;
        Row r;
        finish(r, m, nan, hi, lo);
        row_write(xr, out, row, k, sub, width, t, kind, r);
    }
}

// One row per block (blockDim.x a multiple of 32, at most 256: the launch bounds).
template <typename T>
__global__ void SIGMAX_BOUNDS(3)
    rows_block(const T* __restrict__ x, T* __restrict__ out, long long n, long long k, double t,
               int kind, int width) {
    __shared__ double sh_hi[32];
    __shared__ double sh_lo[32];
    __shared__ int sh_nan[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const T* xr = x + row * k;
        double m = -SIGMAX_INF;
        int nan = 0;
        row_max(xr, k, threadIdx.x, blockDim.x, t, m, nan);
        for (int o = 16; o > 0; o >>= 1) {
            m = fmax(m, __shfl_xor_sync(SIGMAX_FULL, m, o));
            nan |= __shfl_xor_sync(SIGMAX_FULL, nan, o);
        }
        if (lane == 0) {
            sh_hi[warp] = m;
            sh_nan[warp] = nan;
        }
        __syncthreads();
        m = sh_hi[0];
        nan = sh_nan[0];
        for (int w = 1; w < warps; ++w) {
            m = fmax(m, sh_hi[w]);
            nan |= sh_nan[w];
        }
        __syncthreads();  // sh_hi is written again below
        double hi = 0.0, lo = 0.0;
        row_sum(xr, k, threadIdx.x, blockDim.x, t, m, hi, lo);
        for (int o = 16; o > 0; o >>= 1) {
            double ohi = __shfl_xor_sync(SIGMAX_FULL, hi, o);
            double olo = __shfl_xor_sync(SIGMAX_FULL, lo, o);
            add_pair(hi, lo, ohi, olo);
        }
        if (lane == 0) {
            sh_hi[warp] = hi;
            sh_lo[warp] = lo;
        }
        __syncthreads();
        hi = sh_hi[0];
        lo = sh_lo[0];
        for (int w = 1; w < warps; ++w) add_pair(hi, lo, sh_hi[w], sh_lo[w]);
        __syncthreads();  // before the next row's max overwrites sh_hi
        Row r;
        finish(r, m, nan, hi, lo);
        row_write(xr, out, row, k, threadIdx.x, blockDim.x, t, kind, r);
    }
}

// sigmoid (log_form 0) or log_sigmoid (1), with e = exp(-|x|) <= 1: nothing overflows and
// 1 - sigmoid is never formed. NaN stays NaN; +-inf give the limits.
template <typename T>
__global__ void sigmoid_elementwise(const T* __restrict__ x, T* __restrict__ out, long long n,
                                    int log_form) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        double z = widen(x[i]);
        double e = exp(-fabs(z));
        double r;
        if (log_form) {
            r = (z < 0.0 ? z : 0.0) - log1p(e);
        } else {
            r = (z >= 0.0 ? 1.0 : e) / (1.0 + e);
        }
        store(out, i, r);
    }
}
"""

#: The kernels, as CuPy names them (``name_expressions``).
NAMES = tuple(
    f"{kernel}<{ctype}>"
    for kernel in ("rows_thread", "rows_group", "rows_block", "sigmoid_elementwise")
    for ctype in ("float", "double")
)
#: NVRTC options. C++17 for ``if constexpr``; no FMA contraction, which would break TwoSum
#: (the explicit ``fma`` calls stay); IEEE division is NVRTC's default. (CuPy appends
#: ``-ftz=true``; see the conversions in the source.)
OPTIONS = ("--std=c++17", "--fmad=false")

_cupy_module: Any = None
_modules: dict[int, Any] = {}
_functions: dict[tuple[int, str, str], Any] = {}
_streams: dict[tuple[int, int], Any] = {}


def _import_cupy() -> Any:
    """CuPy, or None where it does not import (the import is tried once per process)."""
    global _cupy_module
    if _cupy_module is None:
        try:
            import cupy
        except ImportError:
            _cupy_module = False
        else:
            _cupy_module = cupy
    return _cupy_module or None


def _cuda_kind(x: Any) -> str | None:
    """The kind of array ("cupy" or "torch") when the kernels may take `x`: float32 or
    float64, C-contiguous, on a CUDA device. Else None. Imports nothing."""
    if array_api_compat.is_cupy_array(x):
        ok = x.dtype in _CTYPE and x.flags.c_contiguous
        return "cupy" if ok else None
    if array_api_compat.is_torch_array(x) and x.is_cuda:
        import torch

        # A tensor that requires grad keeps the generic path, which autograd can follow
        # (a raw-pointer launch would be invisible to it).
        ok = x.dtype in (torch.float32, torch.float64) and x.is_contiguous() and not x.requires_grad
        return "torch" if ok else None
    return None


def enabled(x: Any) -> Any:
    """CuPy when the kernels may run on `x`, else None: not disabled by
    ``SIGMAX_DISABLE_CUDA``, a suitable CuPy array or torch CUDA tensor, CuPy importable."""
    if env_flag("SIGMAX_DISABLE_CUDA"):
        return None
    if _cuda_kind(x) is None:
        return None
    return _import_cupy()


def _function(cp: Any, dev: int, name: str, ctype: str) -> Any:
    """The kernel ``name<ctype>`` on device `dev`, which must be CuPy's current device (the
    module loads into the current context). Compiled on first use, then cached: a lookup
    through ``RawModule`` builds a new function object every time."""
    key = (dev, name, ctype)
    fn = _functions.get(key)
    if fn is None:
        mod = _modules.get(dev)
        if mod is None:
            mod = _modules[dev] = cp.RawModule(code=SOURCE, options=OPTIONS, name_expressions=NAMES)
        fn = _functions[key] = mod.get_function(f"{name}<{ctype}>")
    return fn


def _stream(cp: Any, dev: int, ptr: int) -> Any:
    """A CuPy handle on the CUDA stream `ptr` of device `dev`, cached (it only holds the
    pointer, so a pointer that a new stream reuses is still right)."""
    key = (dev, ptr)
    s = _streams.get(key)
    if s is None:
        if len(_streams) >= 64:
            _streams.clear()
        s = _streams[key] = cp.cuda.ExternalStream(ptr, device_id=dev)
    return s


def row_launch(n: int, k: int) -> tuple[str, int, int, int]:
    """The kernel, grid size, block size and group width for `n` rows of `k` entries."""
    if k <= THREAD_MAX_K:
        return "rows_thread", min(-(-n // _THREADS), _MAX_BLOCKS), _THREADS, 1
    if k <= WARP_MAX_K:
        width = 1
        while width < min(k, 32):
            width *= 2
        rows_per_block = _THREADS // width
        return "rows_group", min(-(-n // rows_per_block), _MAX_BLOCKS), _THREADS, width
    return "rows_block", min(n, _MAX_BLOCKS), _THREADS, 32


def _run(
    cp: Any, x: Any, out_shape: tuple[int, ...], name: str, grid: int, args: tuple[Any, ...]
) -> Any:
    """Allocate the output in `x`'s namespace and device, then launch
    ``name(x, out, *args)`` with `grid` blocks of :data:`_THREADS` on `x`'s device: on CuPy's
    current stream for a CuPy array, on torch's current stream for a tensor."""
    ctype = "float" if x.itemsize == 4 else "double"
    if array_api_compat.is_cupy_array(x):
        dev = x.device.id
        if dev == cp.cuda.runtime.getDevice():
            out = cp.empty(out_shape, dtype=x.dtype)
            if out.size:
                _function(cp, dev, name, ctype)((grid,), (_THREADS,), (x, out, *args))
            return out
        with x.device:
            out = cp.empty(out_shape, dtype=x.dtype)
            if out.size:
                _function(cp, dev, name, ctype)((grid,), (_THREADS,), (x, out, *args))
        return out
    import torch

    out = x.new_empty(out_shape)
    if not out.numel():
        return out
    dev = x.get_device()
    # torch's current stream: no synchronization, and the caching allocator's stream
    # bookkeeping stays right for both tensors. The kernels take the raw device pointers
    # (8-byte arguments, as a `T*` is): no DLPack export and import per call.
    stream = _stream(cp, dev, torch.cuda.current_stream(dev).cuda_stream)
    ptrs = (np.uint64(x.data_ptr()), np.uint64(out.data_ptr()))
    if dev == cp.cuda.runtime.getDevice():
        _function(cp, dev, name, ctype)((grid,), (_THREADS,), (*ptrs, *args), stream=stream)
    else:
        with cp.cuda.Device(dev):
            _function(cp, dev, name, ctype)((grid,), (_THREADS,), (*ptrs, *args), stream=stream)
    return out


def rows_forward(y: Any, kind: str, temperature: float, precision: str) -> Any:
    """softmax, log_softmax or logsumexp (`kind`) of ``y / temperature`` along its last axis,
    or None when the kernels do not apply to `y`.

    `y` has shape ``(..., k)``, ``k >= 1``; the result has `y`'s shape, or ``y.shape[:-1]``
    for logsumexp, in `y`'s namespace, device and dtype. `precision` is already validated:
    both values run the same (accurate) kernels.
    """
    cp = enabled(y)
    if cp is None:
        return None
    lead = tuple(y.shape[:-1])
    k = int(y.shape[-1])
    n = math.prod(lead)
    name, grid, _, width = row_launch(n, k)
    args = (np.int64(n), np.int64(k), np.float64(temperature), np.int32(KINDS[kind]))
    shape = lead if kind == "logsumexp" else tuple(y.shape)
    return _run(cp, y, shape, name, grid, (*args, np.int32(width)))


def elementwise(x: Any, name: str, precision: str) -> Any:
    """sigmoid or log_sigmoid (`name`) of `x`, or None when the kernels do not apply."""
    cp = enabled(x)
    if cp is None:
        return None
    shape = tuple(x.shape)
    size = math.prod(shape)
    grid = min(max(-(-size // _THREADS), 1), _MAX_BLOCKS)
    args = (np.int64(size), np.int32(name == "log_sigmoid"))
    return _run(cp, x, shape, "sigmoid_elementwise", grid, args)
