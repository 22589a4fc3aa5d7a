"""The fused CUDA path (:mod:`sigmax._cuda_forward`).

Four layers, so that most of it runs without a GPU:

- dispatch (CPU): which inputs the CUDA path takes, the wiring in :mod:`sigmax.functions`, and
  the launch code against a stand-in for CuPy whose kernels work on the memory behind the
  pointer arguments (torch CPU tensors), so raw-pointer launches are checked end to end;
- the CUDA C source compiled by ``nvcc`` (skipped without it), as NVRTC will compile it;
- the same source compiled by ``g++`` against a CPU emulation of the CUDA thread model (one
  OS thread per CUDA thread, blocks one after another, shuffles and ``__syncthreads`` as
  barriers, so a shuffle that not all lanes of a warp reach deadlocks), launched with the
  configuration :func:`sigmax._cuda_forward.row_launch` picks but with a grid of at most 3
  blocks, so the grid-stride loops run too. References: sigmax's NumPy path and mpmath. This
  checks indexing, reductions, IEEE rules and the algorithm's accuracy, with glibc's ``exp``
  and ``log1p`` in place of CUDA's (both within 1 ULP);
- on a GPU (CuPy with a CUDA device): the kernels themselves, through the public functions,
  for CuPy arrays and torch CUDA tensors.

Bounds against sigmax's NumPy path: float32 1 ULP (the NumPy path computes in float64 and
rounds, so both are within about half an ULP of the truth), float64 4 ULP (both within 3 of
the truth, and errors of opposite signs are rare); logsumexp in float64 where it cancels is
held to 4 ulp of ``max(|m|, log1p(rest))``, as on the other namespaces.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sigmax
from sigmax import _cuda_forward, functions
from sigmax._cuda_forward import KINDS, SOURCE, row_launch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import _mpref
import gpu_fused_check as device_check

ROWS = ("softmax", "log_softmax", "logsumexp")
BOUND = {np.float32: 1.0, np.float64: 4.0}


# --------------------------------------------------------------------------------------------
# Comparison helpers: those of the device script, which runs these checks on a GPU
# --------------------------------------------------------------------------------------------

ulp_distance = device_check.ulp_distance
edge_rows = device_check.edge_rows
cast = device_check.cast
SPECIALS = device_check.SPECIALS


def max_error(name: str, got: Any, x: np.ndarray, temperature: float = 1.0) -> float:
    """The largest distance of `got` from sigmax's NumPy path: ULPs of the float64 result
    rounded to `x`'s dtype; logsumexp in float64 in ulps of ``max(|m|, log1p(rest))`` where
    it cancels. The sign of a zero is not compared."""
    return float(device_check.max_error(name, np.asarray(got), x, temperature)[0])


# --------------------------------------------------------------------------------------------
# Dispatch, on the CPU
# --------------------------------------------------------------------------------------------


def test_numpy_input_takes_the_cpu_path() -> None:
    x = np.ones((3, 4))
    assert _cuda_forward.rows_forward(x, "softmax", 1.0, "accurate") is None
    assert _cuda_forward.elementwise(x, "sigmoid", "accurate") is None


def test_array_api_strict_takes_the_generic_path() -> None:
    xp = pytest.importorskip("array_api_strict")
    x = xp.ones((3, 4))
    assert _cuda_forward.rows_forward(x, "logsumexp", 1.0, "accurate") is None
    assert _cuda_forward.elementwise(x, "log_sigmoid", "fast") is None


def test_torch_cpu_takes_the_generic_path() -> None:
    torch = pytest.importorskip("torch")
    x = torch.ones((3, 4), dtype=torch.float32)
    assert _cuda_forward.rows_forward(x, "log_softmax", 2.0, "accurate") is None
    assert _cuda_forward.elementwise(x, "sigmoid", "accurate") is None
    assert _cuda_forward.enabled(torch.ones(3, device="meta")) is None


def _pretend_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cuda_forward, "_cuda_kind", lambda x: "torch")


def test_missing_cupy_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_cuda(monkeypatch)
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    monkeypatch.setattr(_cuda_forward, "_cupy_module", None)
    monkeypatch.delenv("SIGMAX_DISABLE_CUDA", raising=False)
    x = np.ones((2, 3))
    assert _cuda_forward.rows_forward(x, "softmax", 1.0, "accurate") is None
    assert _cuda_forward.elementwise(x, "sigmoid", "accurate") is None
    assert _cuda_forward._cupy_module is False  # the failed import is remembered


def test_disable_cuda_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_cuda(monkeypatch)

    def no_import() -> None:
        raise AssertionError("CuPy must not be imported when SIGMAX_DISABLE_CUDA=1")

    monkeypatch.setattr(_cuda_forward, "_import_cupy", no_import)
    monkeypatch.setenv("SIGMAX_DISABLE_CUDA", "1")
    x = np.ones((2, 3))
    assert _cuda_forward.rows_forward(x, "softmax", 1.0, "accurate") is None
    assert _cuda_forward.elementwise(x, "log_sigmoid", "accurate") is None


_LAUNCHES = [(1, "rows_thread", 1), (2, "rows_thread", 1), (10, "rows_thread", 1)]
_LAUNCHES += [(32, "rows_thread", 1), (33, "rows_group", 32), (1024, "rows_group", 32)]
_LAUNCHES += [(1025, "rows_block", 32)]


@pytest.mark.parametrize(("k", "kernel", "width"), _LAUNCHES)
def test_row_launch(k: int, kernel: str, width: int) -> None:
    for n in (1, 7, 10**6, 10**9):
        name, grid, block, w = row_launch(n, k)
        assert (name, w, block) == (kernel, width, 256)
        rows_per_block = {"rows_thread": 256, "rows_group": 256 // width}.get(kernel, 1)
        assert 1 <= grid <= 65535
        assert grid == min(-(-n // rows_per_block), 65535)


def _fake_rows(calls: list[tuple[Any, ...]]) -> Callable[..., Any]:
    """A stand-in for the CUDA kernels on array-api-strict arrays: the NumPy path's result,
    so that the wiring (axis moves, keepdims, reshapes) is checked end to end."""
    import array_api_strict as xps

    def rows(y: Any, kind: str, t: float, precision: str) -> Any:
        calls.append((tuple(y.shape), kind, t, precision))
        fn = getattr(sigmax, kind)
        kw = {} if kind == "logsumexp" else {"temperature": t}
        return xps.asarray(fn(np.asarray(y), **kw))

    return rows


@pytest.mark.parametrize("name", ROWS)
def test_wiring_of_the_row_functions(
    name: str, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    xps = pytest.importorskip("array_api_strict")
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(_cuda_forward, "rows_forward", _fake_rows(calls))
    x = rng.standard_normal((3, 4, 5))
    fn = getattr(sigmax, name)
    kw: dict[str, Any] = {"keepdims": True} if name == "logsumexp" else {"temperature": 0.5}
    for axis in (-1, 1, (0, 2), None):
        got = fn(xps.asarray(x), axis=axis, **kw)
        assert isinstance(got, type(xps.asarray(x)))
        np.testing.assert_array_equal(np.asarray(got), fn(x, axis=axis, **kw))
    assert [c[1] for c in calls] == [name] * 4
    assert [c[0] for c in calls] == [(3, 4, 5), (3, 5, 4), (4, 15), (60,)]
    # `where` masks stay on the generic path.
    calls.clear()
    fn(xps.asarray(x), where=xps.asarray(x > 0))
    assert calls == []


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid"])
def test_wiring_of_the_elementwise_functions(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    xps = pytest.importorskip("array_api_strict")
    calls: list[tuple[str, str]] = []

    def fake(x: Any, fn: str, precision: str) -> Any:
        calls.append((fn, precision))
        return xps.asarray(getattr(sigmax, fn)(np.asarray(x)))

    monkeypatch.setattr(_cuda_forward, "elementwise", fake)
    x = np.linspace(-50, 50, 12).reshape(3, 4)
    got = getattr(functions, name)(xps.asarray(x))
    np.testing.assert_array_equal(np.asarray(got), getattr(sigmax, name)(x))
    assert calls == [(name, "accurate")]


class _FakeCuPy:
    """Just enough of CuPy for the launch code: a module whose kernels run sigmax's NumPy
    path on the memory behind the pointer arguments, and records of every call, so that a
    torch CPU tensor checks the raw-pointer launch end to end (pointers, argument order,
    output shape, stream, caches)."""

    def __init__(self, device: int) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.modules = 0
        self.lookups: list[str] = []
        self.device = device
        self.entered: list[int] = []
        fake = self

        class RawModule:
            def __init__(self, *, code: str, options: Any, name_expressions: Any) -> None:
                assert code == SOURCE
                assert "rows_thread<double>" in name_expressions
                fake.modules += 1

            def get_function(self, name: str) -> Callable[..., None]:
                fake.lookups.append(name)
                return lambda grid, block, args, stream=None: fake.launch(
                    name, grid, block, args, stream
                )

        class ExternalStream:
            def __init__(self, ptr: int, device_id: int) -> None:
                self.ptr, self.device_id = ptr, device_id

        class Device:
            def __init__(self, dev: int) -> None:
                self.dev = dev

            def __enter__(self) -> None:
                fake.entered.append(self.dev)

            def __exit__(self, *exc: Any) -> None:
                pass

        from types import SimpleNamespace

        runtime = SimpleNamespace(getDevice=lambda: self.device)
        self.RawModule = RawModule
        self.cuda = SimpleNamespace(runtime=runtime, ExternalStream=ExternalStream, Device=Device)

    @staticmethod
    def _view(ptr: Any, count: int, dtype: Any) -> np.ndarray:
        import ctypes

        buf = (ctypes.c_char * (count * np.dtype(dtype).itemsize)).from_address(int(ptr))
        return np.frombuffer(buf, dtype=dtype)

    def launch(self, name: str, grid: Any, block: Any, args: Any, stream: Any) -> None:
        kernel, ctype = name[:-1].split("<")
        dtype = np.float32 if ctype == "float" else np.float64
        self.calls.append((kernel, grid, block, stream.ptr, stream.device_id))
        if kernel == "sigmoid_elementwise":
            size, log_form = (int(a) for a in args[2:])
            x = self._view(args[0], size, dtype)
            fn = sigmax.log_sigmoid if log_form else sigmax.sigmoid
            self._view(args[1], size, dtype)[:] = fn(x)
            return
        n, k, t, code, width = (a.item() for a in args[2:])
        name_, grid_, block_, width_ = row_launch(n, k)
        assert (kernel, grid, block, width) == (name_, (grid_,), (block_,), width_)
        kind = {v: key for key, v in KINDS.items()}[code]
        x = self._view(args[0], n * k, dtype).reshape(n, k)
        kw = {} if kind == "logsumexp" else {"temperature": t}
        got = getattr(sigmax, kind)(x, **kw)
        self._view(args[1], got.size, dtype)[:] = got.reshape(-1)


@pytest.mark.parametrize("same_device", [True, False])
def test_torch_launch_passes_pointers_and_the_current_stream(
    same_device: bool, monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    torch = pytest.importorskip("torch")
    _pretend_cuda(monkeypatch)
    monkeypatch.delenv("SIGMAX_DISABLE_CUDA", raising=False)
    # A CPU tensor's device index is -1; the fake's current device is that or another.
    fake = _FakeCuPy(-1 if same_device else 3)
    monkeypatch.setattr(_cuda_forward, "_import_cupy", lambda: fake)
    for cache in ("_modules", "_functions", "_streams"):
        monkeypatch.setattr(_cuda_forward, cache, {})
    monkeypatch.setattr(
        torch.cuda, "current_stream", lambda dev: type("S", (), {"cuda_stream": 77})
    )
    for k in (1, 10, 33, 1100):
        for dtype in (torch.float32, torch.float64):
            # A contiguous view at an offset: the pointer must be that of its first entry.
            x = torch.from_numpy(rng.standard_normal((6, k)) * 5).to(dtype)[1:]
            assert x.is_contiguous()
            assert x.storage_offset() == k
            for kind in ROWS:
                t = 1.0 if kind == "logsumexp" else 0.5
                got = _cuda_forward.rows_forward(x, kind, t, "fast")
                kw = {} if kind == "logsumexp" else {"temperature": t}
                np.testing.assert_array_equal(got.numpy(), getattr(sigmax, kind)(x.numpy(), **kw))
            got = _cuda_forward.elementwise(x, "log_sigmoid", "accurate")
            np.testing.assert_array_equal(got.numpy(), sigmax.log_sigmoid(x.numpy()))
    assert _cuda_forward.rows_forward(torch.ones((0, 4)), "softmax", 1.0, "fast").shape == (0, 4)
    assert all(c[3:] == (77, -1) for c in fake.calls)
    assert fake.modules == 1  # compiled once, and each kernel looked up once
    assert len(fake.lookups) == len(set(fake.lookups)) == 4 * 2
    assert fake.entered == ([] if same_device else [-1] * len(fake.calls))


# --------------------------------------------------------------------------------------------
# The CUDA source, compiled by nvcc
# --------------------------------------------------------------------------------------------

_INSTANTIATE = "".join(
    f"template __global__ void {kernel}<{t}>(const {t}*, {t}*, long long, {args});\n"
    for kernel, args in [
        ("rows_thread", "long long, double, int, int"),
        ("rows_group", "long long, double, int, int"),
        ("rows_block", "long long, double, int, int"),
        ("sigmoid_elementwise", "int"),
    ]
    for t in ("float", "double")
)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("defines", [(), ("-DSIGMAX_UNROLL=1", "-DSIGMAX_NO_BOUNDS")])
def test_source_compiles_with_nvcc(tmp_path: Path, defines: tuple[str, ...]) -> None:
    """As it ships, and as the device benchmark's variant for comparison."""
    src = tmp_path / "k.cu"
    src.write_text(SOURCE + _INSTANTIATE)
    # CuPy appends -ftz=true to the options; the kernels must keep subnormals all the same.
    cmd = ["nvcc", *_cuda_forward.OPTIONS, *defines, "-ftz=true", "-arch=sm_80"]
    cmd += ["--Werror", "all-warnings"]
    cmd.append("-ptx")
    proc = subprocess.run(
        [*cmd, str(src), "-o", str(tmp_path / "k.ptx")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    # The data never meet a flushing instruction: float results are rounded from double by a
    # cvt without .ftz. (The .ftz.f32 compares inside CUDA's double exp and log1p act on
    # high words of doubles, where a "subnormal" means |x| < 2**-1015 and changes nothing.)
    assert "cvt.rn.f32.f64" in ptx
    assert "cvt.f64.f32" in ptx
    assert re.search(r"cvt\.[a-z0-9.]*ftz", ptx) is None


# --------------------------------------------------------------------------------------------
# The CUDA source on a CPU emulation of the thread model
# --------------------------------------------------------------------------------------------

_SHIM = r"""
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <memory>
#include <thread>
#include <vector>
struct Dim3 { unsigned x, y, z; };
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a function's static is its block's shared memory.
#define __shared__ static
static std::barrier<>* g_block;
static std::vector<std::unique_ptr<std::barrier<>>> g_warps;
static unsigned long long g_slots[1024];
inline void __syncthreads() { g_block->arrive_and_wait(); }
template <class V> V __shfl_xor_sync(unsigned, V v, int o) {
    unsigned t = threadIdx.x, w = t >> 5;
    std::memcpy(&g_slots[t], &v, sizeof(V));
    g_warps[w]->arrive_and_wait();
    V r;
    std::memcpy(&r, &g_slots[(w << 5) | ((t & 31) ^ (unsigned)o)], sizeof(V));
    g_warps[w]->arrive_and_wait();
    return r;
}
inline double __longlong_as_double(long long b) { double d; std::memcpy(&d, &b, 8); return d; }
template <class F> void launch(unsigned grid, unsigned block, F f) {
    blockDim = {block, 1, 1};
    gridDim = {grid, 1, 1};
    std::barrier<> bb(block);
    g_block = &bb;
    for (unsigned w = 0; w < block / 32; ++w) g_warps.emplace_back(new std::barrier<>(32));
    for (unsigned b = 0; b < grid; ++b) {
        std::vector<std::thread> ts;
        for (unsigned i = 0; i < block; ++i)
            ts.emplace_back([=] { threadIdx = {i, 0, 0}; blockIdx = {b, 0, 0}; f(); });
        for (auto& t : ts) t.join();
    }
}
"""

_DRIVER = r"""
// argv: kernel dtype grid block n k t kind width in out
template <class T> int run(char** argv) {
    const char* kern = argv[1];
    unsigned grid = atoi(argv[3]), block = atoi(argv[4]);
    long long n = atoll(argv[5]), k = atoll(argv[6]);
    double t = strtod(argv[7], nullptr);
    int kind = atoi(argv[8]), width = atoi(argv[9]);
    bool elem = strcmp(kern, "sigmoid_elementwise") == 0;
    long long nin = elem ? n : n * k, nout = elem || kind != 2 ? nin : n;
    std::vector<T> x(nin), out(nout);
    FILE* f = fopen(argv[10], "rb");
    if (fread(x.data(), sizeof(T), nin, f) != (size_t)nin) return 2;
    fclose(f);
    const T* xp = x.data();
    T* op = out.data();
    if (!strcmp(kern, "rows_thread"))
        launch(grid, block, [=] { rows_thread<T>(xp, op, n, k, t, kind, width); });
    else if (!strcmp(kern, "rows_group"))
        launch(grid, block, [=] { rows_group<T>(xp, op, n, k, t, kind, width); });
    else if (!strcmp(kern, "rows_block"))
        launch(grid, block, [=] { rows_block<T>(xp, op, n, k, t, kind, width); });
    else
        launch(grid, block, [=] { sigmoid_elementwise<T>(xp, op, n, kind); });
    f = fopen(argv[11], "wb");
    fwrite(op, sizeof(T), nout, f);
    fclose(f);
    return 0;
}
int main(int, char** argv) {
    return strcmp(argv[2], "float") == 0 ? run<float>(argv) : run<double>(argv);
}
"""


class Emulator:
    def __init__(self, exe: Path, work: Path) -> None:
        self.exe, self.work = exe, work

    def _run(self, kernel: str, x: np.ndarray, n: int, k: int, grid: int, block: int, *args: Any):
        x = np.ascontiguousarray(x)
        src, dst = self.work / "in.bin", self.work / "out.bin"
        x.tofile(src)
        ctype = "float" if x.dtype == np.float32 else "double"
        cmd = [str(self.exe), kernel, ctype, str(min(grid, 3)), str(block), str(n), str(k)]
        cmd += [str(a) for a in args] + [str(src), str(dst)]
        subprocess.run(cmd, check=True, timeout=120)
        return np.fromfile(dst, dtype=x.dtype)

    def rows(self, x: np.ndarray, kind: str, temperature: float = 1.0) -> np.ndarray:
        n, k = x.shape
        name, grid, block, width = row_launch(n, k)
        out = self._run(name, x, n, k, grid, block, repr(temperature), KINDS[kind], width)
        return out.reshape((n,) if kind == "logsumexp" else (n, k))

    def elementwise(self, x: np.ndarray, name: str) -> np.ndarray:
        n = x.size
        grid = max(1, -(-n // 256))
        out = self._run(
            "sigmoid_elementwise", x, n, 1, grid, 256, 1.0, int(name == "log_sigmoid"), 0
        )
        return out.reshape(x.shape)


def build_emulator(work: Path, *defines: str) -> Emulator:
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ is not installed")
    (work / "emu.cpp").write_text(_SHIM + SOURCE + _DRIVER)
    exe = work / "emu"
    # No FMA contraction and no fast math, as with NVRTC and --fmad=false.
    cmd = [cxx, "-std=c++20", "-O1", "-ffp-contract=off", "-pthread", *defines, "emu.cpp"]
    proc = subprocess.run([*cmd, "-o", "emu"], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0 and "barrier" in proc.stderr:
        pytest.skip("g++ without C++20 <barrier>")
    assert proc.returncode == 0, proc.stderr
    return Emulator(exe, work)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    return build_emulator(tmp_path_factory.mktemp("cuda_emu"))


@pytest.mark.parametrize("unroll", [1, 3])
def test_unrolling_keeps_the_results(
    emu: Emulator, unroll: int, tmp_path: Path, rng: np.random.Generator
) -> None:
    """The sum and write passes take SIGMAX_UNROLL entries at a time but add them in index
    order, so every unroll gives the same bits (here with the tails of 10, 33 and 1100)."""
    other = build_emulator(tmp_path, f"-DSIGMAX_UNROLL={unroll}", "-DSIGMAX_NO_BOUNDS")
    for k, n in [(10, 300), (33, 30), (1100, 4)]:
        for dtype in (np.float32, np.float64):
            x = cast(rng.standard_normal((n, k)) * 10, dtype)
            for kind in ROWS:
                np.testing.assert_array_equal(other.rows(x, kind), emu.rows(x, kind))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 10, 31, 32, 33, 1000, 1500])
def test_emulated_rows_match_numpy(
    emu: Emulator, k: int, dtype: Any, rng: np.random.Generator
) -> None:
    # More rows than one grid of 3 blocks holds for short rows (768 rows of one thread,
    # 24 of a 32-lane group), so rows are strided.
    n = 1000 if k <= 32 else (30 if k <= 1024 else 7)
    x = cast(rng.standard_normal((n, k)) * 10, dtype)
    for kind in ROWS:
        got = emu.rows(x, kind)
        if dtype == np.float32:
            assert max_error(kind, got, x) <= BOUND[dtype], kind
        else:
            # Among 1000 rows some log_softmax entries cancel (d ~ L) to about 4 ULP of the
            # NumPy path's float64 blocks, so float64 is held to the truth instead.
            assert longdouble_error(kind, got, x) <= _mpref.BOUND[dtype], kind


def longdouble_error(kind: str, got: np.ndarray, x: np.ndarray) -> float:
    """The largest error of finite float64 results `got` against an x87 long double
    evaluation (11 more bits, so its own error is below 0.01 ULP here), in ULPs of the
    result; logsumexp where it cancels in ulps of ``max(|m|, log(sum))``."""
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("no 80-bit long double on this platform")
    z = x.astype(np.longdouble)
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - m)
    # log(sum) = log1p(rest), with the max terms (each exactly 1) kept out of `rest`.
    rest = np.where(z == m, 0, e).sum(axis=-1, keepdims=True)
    rest += (z == m).sum(axis=-1, keepdims=True) - 1
    log_s = np.log1p(rest)
    ref = {
        "softmax": lambda: e / (1 + rest),
        "log_softmax": lambda: (z - m) - log_s,
        "logsumexp": lambda: (m + log_s)[:, 0],
    }[kind]()
    scale = np.abs(ref)
    if kind == "logsumexp":
        scale = np.maximum(scale, np.maximum(np.abs(m[:, 0]), log_s[:, 0]))
    ulp = np.spacing(scale.astype(np.float64)).astype(np.longdouble)
    return float(np.max(np.abs(got.astype(np.longdouble) - ref) / ulp))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 4, 32, 33, 40, 1100])
def test_emulated_edge_rows(emu: Emulator, k: int, dtype: Any) -> None:
    x = cast(edge_rows(k), dtype)
    for kind in ROWS:
        assert max_error(kind, emu.rows(x, kind), x) <= (BOUND[dtype] if k > 1 else 0), kind


@pytest.mark.parametrize("temperature", [0.37, 3.0, 1e-300])
def test_emulated_temperature(emu: Emulator, temperature: float, rng: np.random.Generator) -> None:
    for dtype, k in [(np.float32, 10), (np.float64, 10), (np.float32, 40), (np.float64, 1100)]:
        x = cast(rng.standard_normal((5, k)) * 10, dtype)
        for kind in ("softmax", "log_softmax"):
            got = emu.rows(x, kind, temperature)
            assert max_error(kind, got, x, temperature) <= BOUND[dtype], (dtype, k, kind)


def test_emulated_subnormals_are_not_flushed(emu: Emulator) -> None:
    x = np.array([[0.0, -100.0]], dtype=np.float32)
    assert emu.rows(x, "softmax")[0, 1] == np.float32(3.7835e-44)
    assert emu.elementwise(np.float32([-100.0]), "sigmoid")[0] == np.float32(3.7835e-44)
    assert emu.elementwise(np.float32([100.0]), "log_sigmoid")[0] == np.float32(-3.7835e-44)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid"])
def test_emulated_elementwise(
    emu: Emulator, name: str, dtype: Any, rng: np.random.Generator
) -> None:
    x = cast(np.concatenate([rng.standard_normal(1000) * 30, SPECIALS]), dtype)
    assert max_error(name, emu.elementwise(x, name), x) <= BOUND[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_accuracy_against_mpmath(emu: Emulator, dtype: Any) -> None:
    """The kernels' algorithm on the accuracy suite's cases, at the library's bounds."""
    rng = np.random.default_rng(5)
    bound = _mpref.BOUND[dtype]
    for name in _mpref.FUNCTIONS:
        ref_fn = _mpref.REFERENCES[name]
        if name in _mpref.ELEMENTWISE:
            for case, raw in _mpref.elementwise_cases(dtype, rng):
                x = cast(raw, dtype)
                x = x[np.isfinite(x)]
                err = _mpref.ulp_errors(emu.elementwise(x, name), ref_fn(x), dtype).max()
                assert err <= bound, (name, case, err)
            continue
        for case, rows in _mpref.row_cases(dtype, rng):
            if name == "logsumexp" and case == "logsumexp near 0":
                continue  # held to an absolute bound below
            for raw in rows:
                row = cast(raw, dtype)
                if np.all(np.isfinite(row)):
                    got = np.atleast_1d(emu.rows(row[None, :], name)[0])
                    err = _mpref.max_ulp(got, ref_fn(row.astype(np.float64)), dtype)
                    assert err <= bound, (name, case, row.size, err)
    if dtype == np.float64:
        _, absolute = _mpref.near_zero_logsumexp_errors(
            lambda x: emu.rows(np.ascontiguousarray(x), "logsumexp"), rng, n=100
        )
        assert absolute <= 4.0


# --------------------------------------------------------------------------------------------
# On a GPU
# --------------------------------------------------------------------------------------------


def _gpu_namespaces() -> list[str]:
    names = []
    try:
        import cupy

        if cupy.cuda.is_available():
            names.append("cupy")
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available() and names:
            names.append("torch")
    except ImportError:
        pass
    return names


def _gpu_skip() -> None:
    pytest.importorskip("cupy")
    if not _gpu_namespaces():
        pytest.skip("no CUDA device")


@pytest.fixture(params=["cupy", "torch"])
def to_gpu(request: pytest.FixtureRequest) -> Callable[[np.ndarray], Any]:
    _gpu_skip()
    if request.param not in _gpu_namespaces():
        pytest.skip(f"{request.param} has no CUDA device")
    if request.param == "cupy":
        import cupy

        return cupy.asarray
    import torch

    return lambda a: torch.from_numpy(np.ascontiguousarray(a)).to("cuda")


def _host(a: Any) -> np.ndarray:
    return np.asarray(a.get()) if hasattr(a, "get") else a.detach().cpu().numpy()


def _same_kind(got: Any, x: Any) -> None:
    assert type(got) is type(x)
    assert got.dtype == x.dtype
    assert str(got.device) == str(x.device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 10, 33, 1000, 5000])
def test_gpu_rows_match_numpy(
    to_gpu: Callable[[np.ndarray], Any], k: int, dtype: Any, rng: np.random.Generator
) -> None:
    x = cast(rng.standard_normal((64, k)) * 10, dtype)
    g = to_gpu(x)
    for kind in ROWS:
        assert _cuda_forward.rows_forward(g, kind, 1.0, "accurate") is not None
        got = getattr(sigmax, kind)(g)
        _same_kind(got, g)
        assert max_error(kind, _host(got), x) <= BOUND[dtype], kind
    got = sigmax.log_softmax(g, temperature=0.37)
    assert max_error("log_softmax", _host(got), x, 0.37) <= BOUND[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 4, 40, 1100])
def test_gpu_edge_rows(to_gpu: Callable[[np.ndarray], Any], k: int, dtype: Any) -> None:
    x = cast(edge_rows(k), dtype)
    for kind in ROWS:
        got = getattr(sigmax, kind)(to_gpu(x))
        assert max_error(kind, _host(got), x) <= (BOUND[dtype] if k > 1 else 0), kind


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid"])
def test_gpu_elementwise(
    to_gpu: Callable[[np.ndarray], Any], name: str, dtype: Any, rng: np.random.Generator
) -> None:
    x = cast(np.concatenate([rng.standard_normal(10_000) * 30, SPECIALS]), dtype)
    g = to_gpu(x)
    assert _cuda_forward.elementwise(g, name, "accurate") is not None
    got = getattr(sigmax, name)(g)
    _same_kind(got, g)
    assert max_error(name, _host(got), x) <= BOUND[dtype]


def test_gpu_subnormals_are_not_flushed(to_gpu: Callable[[np.ndarray], Any]) -> None:
    tiny = np.float32(3.7835e-44)
    assert _host(sigmax.softmax(to_gpu(np.float32([0.0, -100.0]))))[1] == tiny
    assert _host(sigmax.sigmoid(to_gpu(np.float32([-100.0]))))[0] == tiny
    assert _host(sigmax.log_softmax(to_gpu(np.float32([0.0, -100.0]))))[0] == -tiny


def test_gpu_disabled_path_agrees(
    to_gpu: Callable[[np.ndarray], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    x = cast(np.random.default_rng(3).standard_normal((50, 20)), np.float32)
    fused = _host(sigmax.softmax(to_gpu(x)))
    monkeypatch.setenv("SIGMAX_DISABLE_CUDA", "1")
    assert _cuda_forward.rows_forward(to_gpu(x), "softmax", 1.0, "accurate") is None
    generic = _host(sigmax.softmax(to_gpu(x)))
    assert ulp_distance(fused, generic).max() <= 1


def test_gpu_torch_grad_and_views_take_the_generic_path() -> None:
    _gpu_skip()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    x = torch.randn(8, 5, device="cuda", dtype=torch.float64, requires_grad=True)
    assert _cuda_forward.enabled(x) is None
    sigmax.log_softmax(x).sum().backward()
    assert x.grad is not None
    assert _cuda_forward.enabled(x.detach().T) is None
    got = sigmax.softmax(x.detach(), axis=0)  # moved axis: generic path, right values
    assert max_error("softmax", _host(got).T.copy(), x.detach().cpu().numpy().T.copy()) <= 4
