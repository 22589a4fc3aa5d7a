"""The namespace matrix: every public function and derivative over the `xp` fixture (numpy,
array_api_strict, torch, dask.array; JAX and CuPy when installed).

Each call must return an array of the input's library, dtype and device, with the values of the
NumPy result (the NumPy path runs on blocks, the others on one vectorized expression, so this
also checks the two paths against each other). Dask must stay lazy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
import pytest

import sigmax

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 6)) * 3
X[1, 2] = 40.0  # a confident row
V = RNG.standard_normal(X.shape)
S = sigmax.softmax(X)
SIG = sigmax.sigmoid(X)
MASK = RNG.uniform(size=X.shape) < 0.7
MASK[0] = True
MASK[3] = False
G_RED = RNG.standard_normal(X.shape[0])

# (name, call): call(a) gets a converter from NumPy to the namespace under test.
Call = Callable[[Callable[[np.ndarray], Any]], Any]
CASES: list[tuple[str, Call]] = [
    ("sigmoid", lambda a: sigmax.sigmoid(a(X))),
    ("log_sigmoid", lambda a: sigmax.log_sigmoid(a(X))),
    ("softmax", lambda a: sigmax.softmax(a(X), where=a(MASK), temperature=2.0)),
    ("softmax-axis0", lambda a: sigmax.softmax(a(X), axis=0)),
    ("softmax-axisNone", lambda a: sigmax.softmax(a(X), axis=None)),
    ("log_softmax", lambda a: sigmax.log_softmax(a(X), where=a(MASK))),
    ("logsumexp", lambda a: sigmax.logsumexp(a(X), where=a(MASK))),
    ("logsumexp-keepdims", lambda a: sigmax.logsumexp(a(X), axis=0, keepdims=True)),
    ("hardmax", lambda a: sigmax.hardmax(a(X))),
    ("sigmoid_jvp", lambda a: sigmax.sigmoid_jvp(a(X), a(V))),
    ("sigmoid_vjp", lambda a: sigmax.sigmoid_vjp(a(X), a(V))),
    ("sigmoid_jvp_from_output", lambda a: sigmax.sigmoid_jvp_from_output(a(SIG), a(V))),
    ("sigmoid_vjp_from_output", lambda a: sigmax.sigmoid_vjp_from_output(a(SIG), a(V))),
    ("softmax_jacobian", lambda a: sigmax.softmax_jacobian(a(X), where=a(MASK))),
    ("softmax_jvp", lambda a: sigmax.softmax_jvp(a(X), a(V), where=a(MASK), temperature=0.5)),
    ("softmax_vjp", lambda a: sigmax.softmax_vjp(a(X), a(V))),
    ("softmax_vjp-axis0", lambda a: sigmax.softmax_vjp(a(X), a(V), axis=0)),
    ("softmax_jvp_from_output", lambda a: sigmax.softmax_jvp_from_output(a(S), a(V))),
    ("softmax_vjp_from_output", lambda a: sigmax.softmax_vjp_from_output(a(S), a(V))),
    ("log_softmax_jvp", lambda a: sigmax.log_softmax_jvp(a(X), a(V), where=a(MASK))),
    ("log_softmax_vjp", lambda a: sigmax.log_softmax_vjp(a(X), a(V), temperature=3.0)),
    ("logsumexp_jvp", lambda a: sigmax.logsumexp_jvp(a(X), a(V), where=a(MASK))),
    ("logsumexp_vjp", lambda a: sigmax.logsumexp_vjp(a(X), a(G_RED), where=a(MASK))),
]
PUBLIC_ARRAY_FUNCTIONS = {
    *sigmax.functions.__all__,
    *sigmax.derivatives.__all__,
}


def test_every_public_function_is_in_the_matrix():
    covered = {name.split("-")[0] for name, _ in CASES}
    assert covered == PUBLIC_ARRAY_FUNCTIONS


def to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "compute"):
        a = a.compute()
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().float().numpy() if a.dtype.itemsize < 4 else a.cpu().numpy()
    if array_api_compat.is_jax_array(a):
        return np.asarray(a)  # DLPack has no bfloat16
    return np.asarray(np.from_dlpack(a) if not isinstance(a, np.ndarray) else a)


def converter(xp: Any, dtype_name: str) -> Callable[[np.ndarray], Any]:
    dtype = getattr(xp, dtype_name)

    def conv(a: np.ndarray) -> Any:
        if array_api_compat.is_dask_namespace(xp):
            import dask.array as da

            arr = da.from_array(a, chunks=(2, *a.shape[1:]))
        else:
            arr = xp.asarray(a)
        return arr if a.dtype == bool else xp.astype(arr, dtype)

    return conv


@pytest.mark.parametrize(("name", "call"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_matrix(xp, name, call, dtype_name):
    conv = converter(xp, dtype_name)
    x = conv(X)
    got = call(conv)
    want = call(lambda a: a if a.dtype == bool else a.astype(dtype_name))
    if array_api_compat.is_dask_namespace(xp):
        import dask.array as da

        assert isinstance(got, da.Array), "dask input must stay lazy"
    array_api_compat.array_namespace(x, got)  # same library, or this raises
    assert got.dtype == getattr(xp, dtype_name)
    assert array_api_compat.device(got) == array_api_compat.device(x)
    got_np = to_numpy(got)
    assert got_np.shape == np.shape(want)
    if dtype_name == "float64":
        np.testing.assert_allclose(got_np, want, rtol=1e-13, atol=1e-300)
    else:
        # Both are float64 results rounded to float32: equal up to one rounding.
        np.testing.assert_allclose(got_np, want, rtol=2.0**-23, atol=1e-40)


@pytest.mark.parametrize(("name", "call"), CASES, ids=[c[0] for c in CASES])
def test_half_precision_keeps_its_dtype(xp, name, call):
    halves = [n for n in ("float16", "bfloat16") if hasattr(xp, n)]
    if array_api_compat.is_torch_namespace(xp):
        import torch

        halves = [n for n in ("float16", "bfloat16") if hasattr(torch, n)]
        dtypes = {n: getattr(torch, n) for n in halves}
    elif array_api_compat.is_dask_namespace(xp):
        halves, dtypes = ["float16"], {"float16": np.float16}
    else:
        dtypes = {n: getattr(xp, n) for n in halves}
    if not halves:
        pytest.skip(f"{xp.__name__} has no half-precision dtype")
    base = converter(xp, "float32")
    for half in halves:

        def conv(a: np.ndarray, half: str = half) -> Any:
            return base(a) if a.dtype == bool else xp.astype(base(a), dtypes[half])

        got = call(conv)
        assert got.dtype == dtypes[half], half
        want = call(lambda a: a if a.dtype == bool else to_numpy(conv(a)).astype(np.float32))
        tol = 2.0**-7 if half == "bfloat16" else 2.0**-10
        np.testing.assert_allclose(to_numpy(got), want, rtol=tol, atol=1e-6)


def test_mixed_namespaces_are_a_type_error(xp):
    if array_api_compat.is_numpy_namespace(xp):
        pytest.skip("lists and NumPy arrays are NumPy input")
    with pytest.raises(TypeError, match="`cotangent`"):
        sigmax.softmax_vjp(xp.asarray(X), np.asarray(V))


@pytest.mark.parametrize(
    "name", ["sigmoid_vjp", "sigmoid_vjp_from_output", "softmax_vjp", "softmax_jvp_from_output"]
)
def test_fast_precision_in_every_namespace(xp, name):
    conv = converter(xp, "float32")
    fn = getattr(sigmax, name)
    arg = SIG if name.startswith("sigmoid") and "output" in name else X
    arg = S if name == "softmax_jvp_from_output" else arg
    got = fn(conv(arg), conv(V), precision="fast")
    assert got.dtype == xp.float32
    want = fn(arg, V)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-5, atol=1e-6)
