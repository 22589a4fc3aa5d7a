"""Shared fixtures: the namespace matrix (`xp`) and a seeded generator (`rng`)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest


def _available(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


NAMESPACES = ["numpy", "array_api_strict"]
for _name in ("torch", "dask.array", "jax.numpy", "cupy"):
    if _available(_name):
        NAMESPACES.append(_name)

if "jax.numpy" in NAMESPACES:
    import jax

    # JAX silently makes float64 arrays float32 unless asked; the matrix tests float64.
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(params=NAMESPACES)
def xp(request: pytest.FixtureRequest):
    """An Array API namespace, wrapped by array-api-compat where it needs wrapping."""
    import array_api_compat

    mod = importlib.import_module(request.param)
    if request.param == "array_api_strict":
        return mod
    example = mod.asarray([1.0])
    return array_api_compat.array_namespace(example)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


@pytest.fixture(params=["numpy", "fused", "short"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on the pure-NumPy path and on the optional fused numba kernels: "fused"
    sends every slice length to the row kernels (which otherwise take only slices longer
    than 64, and the BCE kernel only inputs of 256 elements or more), "short" every softmax
    slice to the short-row kernel (which otherwise takes only slices of 64 or fewer)."""
    from sigmax import _numba_kernels, functions, losses

    if request.param == "numpy":
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1")
    else:
        if _numba_kernels.numba is None:
            pytest.skip("numba is not installed")
        monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "0")
        if request.param == "short":
            monkeypatch.setattr(functions, "FUSED_MIN_K", 1 << 62)
            return "short"
        monkeypatch.setattr(functions, "FUSED_MIN_K", 0)
        monkeypatch.setattr(losses, "_FUSED_MIN_K", 0)
        monkeypatch.setattr(losses, "_SIGMOID_FUSED_MIN", 0)
    return str(request.param)
