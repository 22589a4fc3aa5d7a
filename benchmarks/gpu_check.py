"""GPU check: sigmax on torch-CUDA, CuPy and JAX arrays, against the NumPy results, plus timings.

Run on a machine with an NVIDIA GPU (not in CI):

    python benchmarks/gpu_check.py

For each namespace it checks that every public array function returns the input's namespace,
device and dtype, and values within a few ULP of sigmax's own NumPy result. Then it times the
forward softmax, log_softmax and the fused softmax cross-entropy against torch on the GPU
(medians of CUDA-synchronised runs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import harness
import sigmax

rng = np.random.default_rng(0)
X = rng.standard_normal((64, 33)) * 30
V = rng.standard_normal((64, 33))
LABELS = rng.integers(0, 33, size=64)


def cases() -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    out: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
    for name in ("sigmoid", "log_sigmoid", "softmax", "log_softmax", "logsumexp", "hardmax"):
        out.append((name, getattr(sigmax, name), (X,)))
    for name in ("softmax_vjp", "softmax_jvp", "log_softmax_vjp", "sigmoid_vjp", "sigmoid_jvp"):
        if hasattr(sigmax, name):
            out.append((name, getattr(sigmax, name), (X, V)))
    if hasattr(sigmax, "softmax_cross_entropy"):
        out.append(("softmax_cross_entropy", sigmax.softmax_cross_entropy, (X, LABELS)))
    if hasattr(sigmax, "sigmoid_cross_entropy"):
        t = (V > 0).astype(np.float64)
        out.append(("sigmoid_cross_entropy", sigmax.sigmoid_cross_entropy, (X, t)))
    return out


def to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "get"):
        return np.asarray(a.get())
    if hasattr(a, "cpu"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def check_namespace(
    label: str, convert: Callable[[np.ndarray, Any], Any], dtypes: list[Any]
) -> int:
    failures = 0
    for fdt, npdt in dtypes:
        for name, fn, args in cases():
            ref = fn(*[a.astype(npdt) if a.dtype.kind == "f" else a for a in args])
            conv = [
                convert(a.astype(npdt), fdt) if a.dtype.kind == "f" else convert(a, None)
                for a in args
            ]
            try:
                got = fn(*conv)
            except Exception as exc:  # report and go on: this is a survey
                print(f"FAIL {label} {name} {npdt.__name__}: {type(exc).__name__}: {exc}")
                failures += 1
                continue
            same_type = type(got) is type(conv[0])
            dev_ok = str(getattr(got, "device", "")) == str(getattr(conv[0], "device", ""))
            g = to_numpy(got).astype(np.float64)
            r = np.asarray(ref, dtype=np.float64)
            tol = 4 * np.finfo(npdt).eps
            # Derivatives cancel (g - sum(g s)), so the absolute scale is that of the largest entry.
            scale = float(np.nanmax(np.abs(r))) if name.endswith(("vjp", "jvp")) else 1e-30
            close = np.allclose(g, r, rtol=tol, atol=tol * scale, equal_nan=True)
            ok = same_type and dev_ok and close and str(got.dtype).endswith(np.dtype(npdt).name)
            failures += not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} {label:10s} {name:24s} {npdt.__name__:8s} "
                f"type={same_type} device={dev_ok} dtype={got.dtype} "
                f"maxrel={np.nanmax(np.abs(g - r) / np.maximum(np.abs(r), 1e-300)):.2e}"
            )
    return failures


def main() -> int:
    failures = 0
    import torch

    print(
        "torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0)
    )
    dev = torch.device("cuda")
    tdt = {np.float32: torch.float32, np.float64: torch.float64}
    failures += check_namespace(
        "torch-cuda",
        lambda a, dt: torch.as_tensor(a, device=dev, dtype=dt),
        [(tdt[np.float32], np.float32), (tdt[np.float64], np.float64)],
    )
    try:
        import cupy as cp

        failures += check_namespace(
            "cupy", lambda a, dt: cp.asarray(a), [(None, np.float32), (None, np.float64)]
        )
    except ImportError as exc:
        print("cupy not importable:", exc)
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        print("jax", jax.__version__, jax.devices())
        failures += check_namespace(
            "jax", lambda a, dt: jnp.asarray(a), [(None, np.float32), (None, np.float64)]
        )
    except ImportError as exc:
        print("jax not importable:", exc)

    print("\nGPU timings (median seconds, CUDA-synchronised), torch tensors:")
    sync = torch.cuda.synchronize
    for shape in [(1_000_000, 10), (10_000, 1_000), (2_000, 50_000)]:
        for dt in (torch.float32, torch.float64):
            x = torch.randn(shape, device=dev, dtype=dt)
            y = torch.randint(0, shape[1], (shape[0],), device=dev)
            rows = [
                ("softmax", lambda x=x: sigmax.softmax(x), lambda x=x: torch.softmax(x, -1)),
                (
                    "log_softmax",
                    lambda x=x: sigmax.log_softmax(x),
                    lambda x=x: torch.log_softmax(x, -1),
                ),
            ]
            if hasattr(sigmax, "softmax_cross_entropy_value_and_grad"):

                def torch_ce(x: Any = x, y: Any = y) -> Any:
                    xx = x.detach().requires_grad_(True)
                    loss = torch.nn.functional.cross_entropy(xx, y, reduction="sum")
                    loss.backward()
                    return xx.grad

                rows.append(
                    (
                        "ce value+grad",
                        lambda x=x, y=y: sigmax.softmax_cross_entropy_value_and_grad(x, y),
                        torch_ce,
                    )
                )
            for name, ours, theirs in rows:
                a = harness.time_synced(ours, sync)
                b = harness.time_synced(theirs, sync)
                print(
                    f"{name:14s} {shape!s:18s} {dt!s:14s} "
                    f"sigmax {a:.2e}  torch {b:.2e}  ratio {a / b:.2f}"
                )
    print("failures:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
