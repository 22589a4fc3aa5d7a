"""The optional fused BCE kernel (:mod:`sigmax._numba_bce`).

Its end results are held to the mpmath bounds of the NumPy path by ``test_losses.py`` (the
`backend` fixture). Here: its own ``log1p`` against mpmath over [0, 1], subnormals included,
and the fused path against the NumPy path on blocks large enough to run on threads, with
``pos_weight``, label smoothing, ``where``, per-row weights and non-finite logits.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from _mpref import ulp_errors
from sigmax import _numba_kernels, losses

pytest.importorskip("numba")
if _numba_kernels.numba is None:  # pragma: no cover
    pytest.skip("numba is not installed", allow_module_level=True)

from sigmax import _numba_bce as B


def _unit_cases(rng: np.random.Generator) -> np.ndarray:
    tiny = np.finfo(np.float64).tiny
    special = [0.0, 5e-324, 1e-320, tiny, np.nextafter(tiny, 0.0), 1e-300, 1e-17, 2.0**-53]
    special += [1e-8, 0.25, np.sqrt(2.0) - 1.0, 0.5, np.nextafter(0.5, 0.0), 0.5 + 2.0**-53]
    special += [0.75, np.nextafter(1.0, 0.0), 1.0]
    return np.concatenate(
        [
            special,
            rng.uniform(0.0, 1.0, 2000),
            rng.uniform(0.45, 0.55, 500),  # both sides of the reduction's switch at 1/2
            np.exp(rng.uniform(np.log(5e-324), 0.0, 1500)),  # every binade, subnormals too
        ]
    )


@pytest.mark.parametrize(("full", "dtype", "bound"), [(True, np.float64, 1.0), (False, None, 0.0)])
def test_log1p_unit_against_mpmath(
    rng: np.random.Generator, full: bool, dtype: type | None, bound: float
) -> None:
    u = _unit_cases(rng)
    got = np.empty_like(u)
    B.log1p_unit(u, got, full)
    with mpmath.workdps(40):
        ref = [mpmath.log1p(mpmath.mpf(float(v))) for v in u]
    if full:
        err = ulp_errors(got, ref, np.float64)
        assert err.max() <= bound, (u[np.argmax(err)], err.max())
    else:
        # For results rounded to float32: relative error within 2**-30 of the exact value
        # (the module promises 2**-32 from the series, plus a few float64 roundings).
        with mpmath.workdps(40):
            rel = [
                0.0 if r == 0 else float(abs(mpmath.mpf(float(g)) - r) / r)
                for g, r in zip(got, ref, strict=True)
            ]
        assert max(rel) <= 2.0**-30
        assert ulp_errors(got.astype(np.float32), ref, np.float32).max() <= 1.0
    assert got[0] == 0.0
    assert got[1] == 5e-324


def test_log1p_unit_nan_propagates() -> None:
    got = np.empty(1)
    for full in (True, False):
        B.log1p_unit(np.array([np.nan]), got, full)
        assert np.isnan(got[0])


def _run(
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    z: np.ndarray,
    t: np.ndarray,
    **kw: object,
) -> tuple[np.ndarray, np.ndarray]:
    monkeypatch.setenv("SIGMAX_DISABLE_NUMBA", "1" if backend == "numpy" else "0")
    v, g = losses._sigmoid_run(
        z,
        t,
        kw.get("pos_weight"),
        kw.get("label_smoothing", 0.0),
        kw.get("where"),
        "both",
        str(kw.get("precision", "accurate")),
        weight=kw.get("weight"),  # type: ignore[arg-type]
    )
    assert isinstance(v, np.ndarray)
    assert isinstance(g, np.ndarray)
    return v, g


def _close(a: np.ndarray, b: np.ndarray, ulps: float, atol: float) -> None:
    """Equal nan and non-finite entries; elsewhere within `ulps` of the larger, or `atol`."""
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    inf = np.isinf(a) | np.isinf(b)
    np.testing.assert_array_equal(a[inf], b[inf])
    ok = ~np.isnan(a) & ~inf
    a64, b64 = a[ok].astype(np.float64), b[ok].astype(np.float64)
    spacing = np.spacing(np.maximum(np.abs(a[ok]), np.abs(b[ok]))).astype(np.float64)
    bad = np.abs(a64 - b64) > np.maximum(ulps * spacing, atol)
    assert not bad.any(), (a64[bad][:5], b64[bad][:5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"pos_weight": "per-label"},
        {"label_smoothing": 0.1},
        {"where": True},
        {"weight": True},
        {"precision": "fast"},
    ],
    ids=["plain", "pos_weight", "smoothing", "where", "weight", "fast"],
)
def test_fused_matches_numpy_path_on_threaded_blocks(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: type, opts: dict
) -> None:
    # 2**19 elements: eight blocks of the fused kernel, run on two threads.
    monkeypatch.setenv("SIGMAX_NUM_THREADS", "2")
    n, k = 1 << 16, 8
    z = (rng.standard_normal((n, k)) * rng.uniform(0.1, 40.0, (n, 1))).astype(dtype)
    t = rng.uniform(size=(n, k))
    t[: n // 2] = np.round(t[: n // 2])  # hard targets in the first half
    z[:4, :4] = [[np.inf, -np.inf, np.nan, 0.0]] * 4
    t[:4, :4] = [[1.0] * 4, [0.0] * 4, [1.0, 0.0, 1.0, 0.0], [0.5] * 4]
    t = t.astype(dtype)
    kw = dict(opts)
    if "pos_weight" in kw:
        kw["pos_weight"] = rng.uniform(0.0, 4.0, k)
        kw["pos_weight"][0] = 0.0
    if "where" in kw:
        kw["where"] = rng.uniform(size=(n, k)) < 0.7
    if "weight" in kw:
        w = rng.uniform(0.0, 3.0, n)
        w[::7] = 0.0
        w[:4] = 0.0  # zero weights on the infinite losses: exactly 0, never nan
        kw["weight"] = w
    v0, g0 = _run("numpy", monkeypatch, z, t, **kw)
    v1, g1 = _run("fused", monkeypatch, z, t, **kw)
    assert v1.dtype == g1.dtype == dtype
    if "weight" in kw:
        assert not np.isnan(v1[:4]).any()
    eps = float(np.finfo(dtype).eps)
    fast32 = dtype == np.float32 and opts.get("precision") == "fast"
    # Both paths are within the bounds of the exact value: values within twice that apart
    # (the NumPy path's "fast" float32 within 4 ULP, the kernel's within 1).
    _close(v0, v1, 5.0 if fast32 else 2.0 * losses_bound(dtype), 0.0)
    # The gradient sigma(z) - t cancels for soft targets: an absolute bound there.
    hard = np.isin(t, (0.0, 1.0)) & ("label_smoothing" not in kw)
    scale = 1.0 if "weight" not in kw else np.repeat(kw["weight"], k).reshape(n, k)
    scale = scale * (1.0 if "pos_weight" not in kw else np.maximum(kw["pos_weight"], 1.0))
    atol = 4 * eps * scale
    _close(g0[hard], g1[hard], 4.0 if fast32 else 2.0 * losses_bound(dtype), 0.0)
    diff = np.abs(g0.astype(np.float64) - g1)[~hard & ~np.isnan(g0)]
    assert (diff <= (atol * np.ones_like(g0))[~hard & ~np.isnan(g0)]).all()


def losses_bound(dtype: type) -> float:
    return 1.0 if dtype == np.float32 else 3.0


def test_fused_takes_other_target_and_weight_dtypes(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = rng.standard_normal((300, 5)) * 10
    t = rng.uniform(size=(300, 5)) < 0.4
    w = rng.integers(0, 3, 300)
    ref = _run("numpy", monkeypatch, z, t.astype(np.float64), weight=w.astype(np.float64))
    monkeypatch.setattr(losses, "_SIGMOID_FUSED_MIN", 0)
    for targets in (t, t.astype(np.int8), t.astype(np.float16)):
        got = _run("fused", monkeypatch, z, targets, weight=w)
        for a, b in zip(ref, got, strict=True):
            _close(a, b, 3.0, 0.0)


def test_small_inputs_stay_on_the_numpy_path(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    calls: list[int] = []
    real = B.bce_block
    monkeypatch.setattr(B, "bce_block", lambda x, *a: (calls.append(x.size), real(x, *a))[1])
    z = rng.standard_normal(losses._SIGMOID_FUSED_MIN)
    t = rng.uniform(size=z.size)
    _run("fused", monkeypatch, z[:-1], t[:-1])
    assert calls == []
    _run("fused", monkeypatch, z, t)
    assert calls == [z.size]
    calls.clear()
    _run("numpy", monkeypatch, z, t)  # SIGMAX_DISABLE_NUMBA=1
    assert calls == []
