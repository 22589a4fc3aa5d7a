"""Device check of the fused CUDA kernels (:mod:`sigmax._cuda_forward`): correctness, then speed.

Run once on a machine with an NVIDIA GPU, CuPy and (optionally) torch with CUDA:

    PYTHONPATH=src python3 benchmarks/gpu_fused_check.py

Part 1 prints one line per check, ``PASS``/``FAIL``, what ran (namespace, function, dtype, k)
and the largest distance found from sigmax's NumPy path against its bound: float32 in ULPs of
the float64 NumPy result rounded to float32 (bound 1), float64 in ULPs of the NumPy float64
result (bound 4; logsumexp where it cancels in ulps of ``max(|m|, log1p(rest))``). Every
exception is caught and printed, with NVRTC's log for a compile error. Part 2 times: the
per-call host overhead on a (1, 10) input (sigmax, its launch layer alone, the peer); the
softmax kernels alone (CUDA events) as shipped and compiled without unrolling and launch
bounds, and k = 10 in the older lane-group layout; then sigmax (fused, and the generic Array
API path with ``SIGMAX_DISABLE_CUDA=1``) against torch's and CuPy's own functions: medians of
20 CUDA-synchronised calls after 3 warm-ups, with ratios.
Everything also goes to ``$OUT/gpu_fused_check.txt`` when ``$OUT`` is set. No mpmath; the
whole run takes about a minute or two on an H200 (part 2 stops early past 200 s).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harness
import sigmax
from sigmax import _cuda_forward

ROWS = ("softmax", "log_softmax", "logsumexp")
BOUND = {np.dtype(np.float32): 1.0, np.dtype(np.float64): 4.0}
inf, nan = np.inf, np.nan
START = time.perf_counter()
_out_dir = os.environ.get("OUT")
LOG = Path(_out_dir) / "gpu_fused_check.txt" if _out_dir else None
failures = 0


def log(line: str = "") -> None:
    print(line, flush=True)
    if LOG is not None:
        with LOG.open("a") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------------------------
# Comparison against the NumPy path
# --------------------------------------------------------------------------------------------


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` in ULPs, on ordered bit patterns: -0 == +0, nan == nan, inf == inf."""
    it = np.int32 if a.dtype == np.float32 else np.int64

    def ordered(v: np.ndarray) -> np.ndarray:
        i = v.view(it).astype(np.int64)
        return np.where(i < 0, np.iinfo(it).min - i, i)

    oa, ob = ordered(a), ordered(b)
    d = np.where(
        (oa < 0) == (ob < 0),
        np.abs(oa - ob).astype(np.float64),
        np.abs(oa.astype(np.float64) - ob.astype(np.float64)),
    )
    na, nb = np.isnan(a), np.isnan(b)
    return np.where(na & nb, 0.0, np.where(na | nb, np.inf, d))


def reference(name: str, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    kw = {"temperature": temperature} if temperature != 1.0 else {}
    with np.errstate(all="ignore"):
        return np.asarray(getattr(sigmax, name)(x.astype(np.float64), **kw)).astype(x.dtype)


def truth(name: str, x: np.ndarray, where: tuple, temperature: float) -> str:
    """For a failure: both results' errors against a ``np.longdouble`` evaluation (64-bit
    significand on x86), to tell whether the kernel or the NumPy path is off."""
    if np.finfo(np.longdouble).nmant <= 52 or not where:
        return ""
    with np.errstate(all="ignore"):
        if name in ("sigmoid", "log_sigmoid"):
            v = np.longdouble(x[where])
            val = 1 / (1 + np.exp(-v)) if name == "sigmoid" else -np.log1p(np.exp(-v))
        else:
            z = x[where[0]].astype(np.longdouble) / np.longdouble(temperature)
            m = z.max()
            e = np.exp(z - m)
            lse = np.log(e.sum())
            val = {
                "softmax": lambda: e[where[-1]] / e.sum(),
                "log_softmax": lambda: (z[where[-1]] - m) - lse,
                "logsumexp": lambda: m + lse,
            }[name]()
    return f" (longdouble value {val!r})"


def max_error(name: str, got: np.ndarray, x: np.ndarray, temperature: float = 1.0) -> tuple:
    """(largest distance, where, got there, NumPy there)."""
    ref = reference(name, x, temperature)
    # The sign of a zero is not compared: the NumPy path gives log_softmax 0.0 at a lone max
    # in a block of finite rows, -0.0 in a block with a non-finite row (the kernels: -0.0).
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return (np.inf, f"shape/dtype {got.shape} {got.dtype} vs {ref.shape} {ref.dtype}", 0, 0)
    err = ulp_distance(got, ref)
    if name == "logsumexp" and x.dtype == np.float64:
        with np.errstate(all="ignore"):
            m = np.max(x, axis=-1) / temperature
            big = np.maximum(np.abs(m), np.abs(ref - m))
            absolute = np.abs(got - ref) / np.spacing(big)
        err = np.where(np.isfinite(absolute), np.minimum(err, absolute), err)
    if err.size == 0:
        return (0.0, (), 0, 0)
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    where = tuple(int(v) for v in i)
    if err[i] > BOUND[x.dtype]:
        where = f"{where}{truth(name, x, where, temperature)}"
    return (float(err[i]), where, got[i], ref[i])


def report(label: str, fn: Callable[[], tuple], bound: float) -> None:
    """Run one check and print one line; any exception is a FAIL with its traceback."""
    global failures
    try:
        err, where, got, ref = fn()
    except Exception as exc:
        failures += 1
        log(f"FAIL {label}: {type(exc).__name__}: {exc}")
        log_compile_error(exc)
        for line in traceback.format_exc().splitlines()[-6:]:
            log("     " + line)
        return
    ok = err <= bound
    failures += not ok
    detail = "" if ok else f"  at {where}: got {got!r}, NumPy {ref!r}"
    log(f"{'PASS' if ok else 'FAIL'} {label:52s} max {err:g} ulp (bound {bound:g}){detail}")


def log_compile_error(exc: BaseException) -> None:
    get_log = getattr(exc, "get_message", None)
    if type(exc).__name__ == "CompileException" and get_log is not None:
        log("     NVRTC log:")
        for line in str(get_log()).splitlines():
            log("     | " + line)


def cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(x.astype(dtype))


def edge_rows(k: int) -> np.ndarray:
    """The IEEE cases as rows of length `k` (1, or >= 4 with the special entries far apart)."""
    if k == 1:
        return np.array([[3.0], [inf], [-inf], [nan], [-0.0], [1e300]])
    j = [0, k // 3, (2 * k) // 3, k - 1]

    def row(*vals: float, fill: float = -inf) -> np.ndarray:
        r = np.full(k, fill)
        r[j] = vals
        return r

    return np.stack(
        [
            row(1.0, nan, 2.0, 0.0, fill=0.5),
            row(1.0, inf, 2.0, 0.0, fill=0.5),
            row(inf, 0.0, inf, 1.0, fill=0.5),
            row(inf, -inf, inf, inf),
            row(-inf, 0.0, 1.0, -inf),
            row(-inf, -inf, -inf, -inf),
            row(nan, inf, -inf, 0.0),
            row(5.0, 5.0, 5.0, 5.0, fill=5.0),
            row(0.0, -100.0, -200.0, -1000.0),
            row(1e308, -1e308, 0.0, 1.0),
            row(-0.0, 0.0, -0.0, 0.0, fill=0.0),
        ]
    )


SPECIALS = np.array([nan, inf, -inf, 0.0, -0.0, -100.0, 100.0, -800.0, 800.0, 40.0, 1e-45, 1e300])


# --------------------------------------------------------------------------------------------
# Part 1: correctness
# --------------------------------------------------------------------------------------------


def namespaces() -> dict[str, tuple[Callable[[np.ndarray], Any], Callable[[Any], np.ndarray]]]:
    import cupy as cp

    out: dict[str, Any] = {"cupy": (cp.asarray, lambda a: np.asarray(a.get()))}
    try:
        import torch

        if torch.cuda.is_available():
            out["torch"] = (
                lambda a: torch.from_numpy(np.ascontiguousarray(a)).to("cuda"),
                lambda a: a.detach().cpu().numpy(),
            )
        else:
            log("torch has no CUDA device: torch checks skipped")
    except ImportError as exc:
        log(f"torch not importable ({exc}): torch checks skipped")
    return out


def fused(name: str, g: Any, **kw: Any) -> Any:
    """The public function on `g`, after checking that the fused path takes `g`."""
    if _cuda_forward.enabled(g) is None:
        raise RuntimeError("the fused path does not take this input")
    r = getattr(sigmax, name)(g, **kw)
    if type(r) is not type(g) or str(r.device) != str(g.device) or r.dtype != g.dtype:
        raise TypeError(f"result {type(r).__name__} {r.dtype} on {r.device}")
    return r


def check_compile() -> bool:
    global failures
    import cupy as cp

    ok = True
    for name in ("rows_thread", "rows_group", "rows_block", "sigmoid_elementwise"):
        for dt, ctype in ((np.float32, "float"), (np.float64, "double")):
            label = f"compile {name}<{np.dtype(dt).name}>"
            try:
                _cuda_forward._function(cp, cp.cuda.runtime.getDevice(), name, ctype)
            except Exception as exc:
                ok = False
                failures += 1
                log(f"FAIL {label}: {type(exc).__name__}: {str(exc)[:2000]}")
                log_compile_error(exc)
                return ok
            log(f"PASS {label}")
    return ok


def check_values(ns: str, to: Callable[[np.ndarray], Any], back: Callable[[Any], np.ndarray]):
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        bound = BOUND[np.dtype(dt)]
        dn = np.dtype(dt).name
        for k in (1, 2, 10, 33, 1000, 5000):
            x = cast(rng.standard_normal((256, k)) * 10, dt)
            for name in ROWS:
                report(
                    f"{ns} {name} {dn} k={k}",
                    lambda name=name, x=x: max_error(name, back(fused(name, to(x))), x),
                    bound,
                )
        for k in (10, 5000):
            x = cast(rng.standard_normal((64, k)) * 10, dt)
            for name in ("softmax", "log_softmax"):
                for t in (0.37, 3.0):
                    report(
                        f"{ns} {name} {dn} k={k} temperature={t}",
                        lambda name=name, x=x, t=t: max_error(
                            name, back(fused(name, to(x), temperature=t)), x, t
                        ),
                        bound,
                    )
        for k in (1, 4, 40, 1100):
            x = cast(edge_rows(k), dt)
            for name in ROWS:
                report(
                    f"{ns} {name} {dn} IEEE edge rows k={k}",
                    lambda name=name, x=x: max_error(name, back(fused(name, to(x))), x),
                    bound if k > 1 else 0.0,
                )
        xe = cast(np.concatenate([rng.standard_normal(100_000) * 30, SPECIALS]), dt)
        for name in ("sigmoid", "log_sigmoid"):
            report(
                f"{ns} {name} {dn} n={xe.size} with specials",
                lambda name=name, xe=xe: max_error(name, back(fused(name, to(xe))), xe),
                bound,
            )
        # Grid-stride loops: more rows than one grid (65535 blocks) covers.
        for n, k in ((10_000_000, 2), (70_000, 1100)):
            x = cast(rng.standard_normal((n, k)) * 5, dt)
            part = np.r_[0:50, n - 2000 : n]
            for name in ("softmax", "logsumexp"):
                report(
                    f"{ns} {name} {dn} n={n} k={k} (grid stride)",
                    lambda name=name, x=x, part=part: max_error(
                        name, back(fused(name, to(x)))[part], x[part]
                    ),
                    bound,
                )
            del x

    tiny = np.float32(3.7835e-44)

    def subnormals() -> tuple:
        got = [
            back(fused("softmax", to(np.float32([0.0, -100.0]))))[1],
            back(fused("sigmoid", to(np.float32([-100.0]))))[0],
            -back(fused("log_softmax", to(np.float32([0.0, -100.0]))))[0],
            -back(fused("log_sigmoid", to(np.float32([100.0]))))[0],
        ]
        bad = [g for g in got if g != tiny]
        return (float(len(bad)), "softmax, sigmoid, log_softmax, log_sigmoid", got, tiny)

    report(f"{ns} float32 subnormal results kept (3.7835e-44)", subnormals, 0.0)


def check_torch_specifics() -> None:
    import torch

    rng = np.random.default_rng(1)
    x = cast(rng.standard_normal((4096, 300)), np.float32)

    def side_stream() -> tuple:
        s = torch.cuda.Stream()
        g = torch.from_numpy(x).to("cuda")
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            r = fused("softmax", g)
        s.synchronize()
        return max_error("softmax", r.cpu().numpy(), x)

    report("torch softmax on a side stream", side_stream, 1.0)

    def requires_grad() -> tuple:
        g = torch.from_numpy(x.astype(np.float64)).to("cuda").requires_grad_(True)
        if _cuda_forward.enabled(g) is not None:
            raise RuntimeError("a tensor that requires grad must take the generic path")
        sigmax.log_softmax(g).sum().backward()
        if g.grad is None:
            raise RuntimeError("no gradient")
        got = sigmax.log_softmax(g).detach().cpu().numpy()
        return max_error("log_softmax", got, x.astype(np.float64))

    report("torch requires_grad: generic path, autograd works", requires_grad, 4.0)

    def transposed() -> tuple:
        g = torch.from_numpy(x).to("cuda").T
        r = sigmax.softmax(g, axis=0)  # a moved, non-contiguous axis: generic path
        return max_error("softmax", np.ascontiguousarray(r.cpu().numpy().T), x)

    report("torch softmax axis=0 of a transposed tensor", transposed, 1.0)


def check_disabled() -> None:
    import cupy as cp

    x = cast(np.random.default_rng(2).standard_normal((300, 50)), np.float32)

    def generic() -> tuple:
        os.environ["SIGMAX_DISABLE_CUDA"] = "1"
        try:
            if _cuda_forward.rows_forward(cp.asarray(x), "softmax", 1.0, "accurate") is not None:
                raise RuntimeError("SIGMAX_DISABLE_CUDA=1 ignored")
            r = sigmax.softmax(cp.asarray(x)).get()
        finally:
            del os.environ["SIGMAX_DISABLE_CUDA"]
        return max_error("softmax", r, x)

    # The generic path computes in float64 too, so it is within the same bound.
    report("cupy generic path with SIGMAX_DISABLE_CUDA=1", generic, 1.0)


# --------------------------------------------------------------------------------------------
# Part 2: speed
# --------------------------------------------------------------------------------------------


def generic(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        os.environ["SIGMAX_DISABLE_CUDA"] = "1"
        try:
            return fn()
        finally:
            del os.environ["SIGMAX_DISABLE_CUDA"]

    return run


def peers(ns: str) -> dict[str, Callable[[Any], Any] | None]:
    if ns == "torch":
        import torch

        return {
            "softmax": lambda a: torch.softmax(a, -1),
            "log_softmax": lambda a: torch.log_softmax(a, -1),
            "logsumexp": lambda a: torch.logsumexp(a, -1),
            "sigmoid": torch.sigmoid,
        }
    import cupyx.scipy.special as sp

    def get(name: str, **kw: Any) -> Callable[[Any], Any] | None:
        f = getattr(sp, name, None)
        return None if f is None else (lambda a: f(a, **kw))

    return {
        "softmax": get("softmax", axis=-1),
        "log_softmax": get("log_softmax", axis=-1),
        "logsumexp": get("logsumexp", axis=-1),
        "sigmoid": get("expit"),
    }


def overhead(nss: list[str]) -> None:
    """Per-call host cost on a (1, 10) input, where the kernels take no time: sigmax's public
    function, the launch layer alone (``_cuda_forward``), and the peer."""
    import cupy as cp

    log("\n## Per-call overhead on a (1, 10) float32 input (microseconds)\n")
    log("async = 2000 calls then one synchronisation, per call (the host's cost per launch);")
    log("synced = median of 200 calls each followed by a synchronisation (launch to result).")
    log("launch = sigmax._cuda_forward.rows_forward / elementwise, without sigmax's")
    log("argument handling.\n")
    log("| op | array | sigmax async | sigmax synced | launch async | peer async | peer synced |")
    log("|---|---|---|---|---|---|---|")
    base = np.random.default_rng(4).standard_normal((1, 10)).astype(np.float32)
    for ns in nss:
        if ns == "torch":
            import torch

            a: Any = torch.from_numpy(base).to("cuda")
            sync = torch.cuda.synchronize
        else:
            a = cp.asarray(base)
            sync = cp.cuda.Device().synchronize
        ps = peers(ns)
        for op in ("softmax", "sigmoid"):
            ours = getattr(sigmax, op)
            if op == "sigmoid":
                layer = lambda a=a: _cuda_forward.elementwise(a, "sigmoid", "accurate")  # noqa: E731
            else:
                layer = lambda a=a: _cuda_forward.rows_forward(a, "softmax", 1.0, "accurate")  # noqa: E731
            peer = ps[op]
            row = [
                async_time(lambda ours=ours, a=a: ours(a), sync),
                harness.time_synced(lambda ours=ours, a=a: ours(a), sync, repeat=200),
                async_time(layer, sync),
                async_time(lambda peer=peer, a=a: peer(a), sync) if peer else float("nan"),
                harness.time_synced(lambda peer=peer, a=a: peer(a), sync, repeat=200)
                if peer
                else float("nan"),
            ]
            cells = " | ".join(f"{v * 1e6:.1f}" for v in row)
            log(f"| {op} | {ns} | {cells} |")


#: Compile-time settings of the row kernels compared with the shipped ones.
VARIANTS: dict[str, tuple[str, ...]] = {
    "shipped": (),
    "unroll 1": ("-DSIGMAX_UNROLL=1",),
    "unroll 1, no launch bounds": ("-DSIGMAX_UNROLL=1", "-DSIGMAX_NO_BOUNDS"),
}


def kernel_variants() -> None:
    """The softmax kernels alone (CUDA events, no host work) as shipped, compiled without
    the unrolling and the launch bounds, and for k = 10 in the lane-group layout that ran
    before the one-thread-per-row layout, so that one run shows what each change bought."""
    import cupy as cp

    log("\n## Row kernels alone: softmax, CUDA-event median of 10 launches (microseconds)\n")
    log("same bits = the output equals the shipped kernel's bit for bit.\n")
    log("| shape | dtype | kernel | variant | time | same bits |")
    log("|---|---|---|---|---|---|")
    mods = {
        label: cp.RawModule(
            code=_cuda_forward.SOURCE,
            options=_cuda_forward.OPTIONS + defines,
            name_expressions=_cuda_forward.NAMES,
        )
        for label, defines in VARIANTS.items()
    }
    rng = np.random.default_rng(5)
    for n, k in ((1_000_000, 10), (10_000, 1_000), (2_000, 50_000)):
        for dt, ctype in ((np.float32, "float"), (np.float64, "double")):
            x = cp.asarray((rng.standard_normal((n, k)) * 5).astype(dt))
            name, grid, block, width = _cuda_forward.row_launch(n, k)
            runs = [(name, grid, width, label) for label in VARIANTS]
            if name == "rows_thread":
                w = 16 if k > 8 else 8
                runs.append(("rows_group", min(-(-n // (block // w)), 65535), w, "shipped"))
            shipped = None
            for kernel, g, w, label in runs:
                fn = mods[label].get_function(f"{kernel}<{ctype}>")
                out = cp.empty_like(x)
                args = (x, out, np.int64(n), np.int64(k), np.float64(1.0), np.int32(0), np.int32(w))

                def launch(fn: Any = fn, g: int = g, b: int = block, args: tuple = args) -> None:
                    fn((g,), (b,), args)

                t = event_time(cp, launch)
                if shipped is None:
                    shipped = out
                same = "yes" if bool((out.view(np.uint8) == shipped.view(np.uint8)).all()) else "NO"
                log(f"| ({n}, {k}) | {np.dtype(dt).name} | {kernel} | {label} | {t:.1f} | {same} |")
            del x, out, shipped


def event_time(cp: Any, launch: Callable[[], None]) -> float:
    start, end = cp.cuda.Event(), cp.cuda.Event()
    for _ in range(3):
        launch()
    times = []
    for _ in range(10):
        start.record()
        launch()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1e3)
    return statistics.median(times)


def async_time(fn: Callable[[], Any], sync: Callable[[], None], calls: int = 2000) -> float:
    for _ in range(20):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - t0) / calls


def timings(nss: list[str]) -> None:
    import cupy as cp

    log("\n## Timings (median seconds of 20 CUDA-synchronised calls after 3 warm-ups)\n")
    log("fused = sigmax's CUDA kernels; generic = sigmax with SIGMAX_DISABLE_CUDA=1 (one kernel")
    log("per array operation); peer = torch.softmax/log_softmax/logsumexp/sigmoid on torch")
    log("tensors, cupyx.scipy.special.softmax/log_softmax/logsumexp/expit on CuPy arrays.")
    for n, k in ((1_000_000, 10), (10_000, 1_000), (2_000, 50_000)):
        name, grid, block, width = _cuda_forward.row_launch(n, k)
        log(f"({n}, {k}): {name}, grid {grid} x {block} threads, width {width}")
    log("")
    log("| op | array | shape | dtype | fused | generic | peer | fused/peer | generic/fused |")
    log("|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(3)
    for shape in ((1_000_000, 10), (10_000, 1_000), (2_000, 50_000)):
        base = rng.standard_normal(shape, dtype=np.float32) * 5
        for dt in (np.float32, np.float64):
            for ns in nss:
                if time.perf_counter() - START > 200:
                    log("(timings stopped: past 200 s)")
                    return
                if ns == "torch":
                    import torch

                    a: Any = torch.from_numpy(base.astype(dt)).to("cuda")
                    sync = torch.cuda.synchronize
                else:
                    a = cp.asarray(base.astype(dt))
                    sync = cp.cuda.Device().synchronize
                for op, peer in peers(ns).items():
                    ours = getattr(sigmax, op)
                    try:
                        t_f = harness.time_synced(lambda ours=ours, a=a: ours(a), sync)
                        t_g = harness.time_synced(generic(lambda ours=ours, a=a: ours(a)), sync)
                        t_p = (
                            harness.time_synced(lambda peer=peer, a=a: peer(a), sync)
                            if peer is not None
                            else float("nan")
                        )
                    except Exception as exc:
                        log(f"| {op} | {ns} | {shape} | {np.dtype(dt).name} | error: {exc} |")
                        continue
                    log(
                        f"| {op} | {ns} | {shape} | {np.dtype(dt).name} | {t_f:.2e} | "
                        f"{t_g:.2e} | {t_p:.2e} | {t_f / t_p:.2f} | {t_g / t_f:.1f} |"
                    )
                del a
                sync()


def main() -> int:
    if LOG is not None:
        LOG.write_text("")
    try:
        import cupy as cp
    except ImportError as exc:
        log(f"FAIL cupy not importable: {exc}")
        return 1
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    log(
        f"cupy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
        f"device {name} (sm_{props['major']}{props['minor']}), numpy {np.__version__}, "
        f"python {sys.version.split()[0]}"
    )
    try:
        import torch

        log(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    except ImportError:
        pass
    log(f"NVRTC options: {_cuda_forward.OPTIONS}\n")
    log("## Checks\n")
    if not check_compile():
        log(f"\nfailures: {failures} (compile failed, nothing else run)")
        return 1
    nss = namespaces()
    for ns, (to, back) in nss.items():
        try:
            check_values(ns, to, back)
        except Exception as exc:  # a bug in this script: say so and go on
            log(f"FAIL {ns} checks aborted: {type(exc).__name__}: {exc}")
            log(traceback.format_exc())
    if "torch" in nss:
        check_torch_specifics()
    check_disabled()
    log(f"\nchecks done in {time.perf_counter() - START:.0f} s, failures: {failures}")
    try:
        overhead(list(nss))
    except Exception as exc:
        log(f"overhead aborted: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    try:
        kernel_variants()
    except Exception as exc:
        log(f"kernel variants aborted: {type(exc).__name__}: {exc}")
        log_compile_error(exc)
        log(traceback.format_exc())
    try:
        timings(list(nss))
    except Exception as exc:
        log(f"timings aborted: {type(exc).__name__}: {exc}")
        log(traceback.format_exc())
    log(f"\ntotal {time.perf_counter() - START:.0f} s, failures: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
