"""Behaviour of the forward functions: the edge table of DESIGN.md, options (axis, where,
temperature, out), hypothesis properties and metamorphic relations.

Accuracy against mpmath is in ``test_accuracy.py``, the namespace matrix in
``test_namespaces.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sigmax
from _mpref import ulps_apart
from sigmax import _array_api, hardmax, log_sigmoid, log_softmax, logsumexp, sigmoid, softmax

inf, nan = np.inf, np.nan
EPS = np.finfo(np.float64).eps
ALONG_AXIS = [softmax, log_softmax, logsumexp]

# --------------------------------------------------------------------------------------------
# The edge table
# --------------------------------------------------------------------------------------------

#: input row -> (softmax, log_softmax, logsumexp)
L2, L3 = np.log(2), np.log(3)
EDGE_TABLE = [
    ("nan in the slice", [1.0, nan, 2.0], [nan] * 3, [nan] * 3, nan),
    ("+inf entries share the mass", [inf, 1.0, inf], [0.5, 0, 0.5], [-L2, -inf, -L2], inf),
    ("one +inf", [-inf, 0.0, inf], [0, 0, 1], [-inf, -inf, 0], inf),
    ("all +inf", [inf, inf, inf], [1 / 3] * 3, [-L3] * 3, inf),
    ("all -inf is fully masked", [-inf, -inf, -inf], [0] * 3, [-inf] * 3, -inf),
    ("-inf entries get 0", [-inf, 0.0, 0.0], [0, 0.5, 0.5], [-inf, -L2, -L2], L2),
    ("overflow-free", [1000.0, 1000.0], [0.5, 0.5], [-L2, -L2], 1000 + L2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "p", "logp", "lse"), [c[1:] for c in EDGE_TABLE], ids=[c[0] for c in EDGE_TABLE]
)
def test_edge_table(row, p, logp, lse, backend):
    np.testing.assert_allclose(softmax(row), p, rtol=1e-15)
    np.testing.assert_allclose(log_softmax(row), logp, rtol=1e-15)
    np.testing.assert_allclose(logsumexp(row), lse, rtol=1e-15)


def test_fully_masked_slice():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    where = np.array([[True, False, True], [False, False, False]])
    np.testing.assert_array_equal(softmax(x, where=where)[1], 0)
    np.testing.assert_array_equal(log_softmax(x, where=where)[1], -inf)
    assert logsumexp(x, where=where)[1] == -inf
    # Masked entries of a live slice: probability 0, log-probability -inf.
    assert softmax(x, where=where)[0, 1] == 0
    assert log_softmax(x, where=where)[0, 1] == -inf
    # where broadcasts
    np.testing.assert_array_equal(softmax(x, where=np.array([True, False, True]))[:, 1], 0)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
def test_empty_arrays(shape):
    x = np.zeros(shape)
    for fn in (softmax, log_softmax, hardmax, sigmoid, log_sigmoid):
        assert fn(x).shape == shape
    assert logsumexp(x).shape == shape[:-1]
    if shape[-1] == 0:
        np.testing.assert_array_equal(logsumexp(x), -inf)
    assert logsumexp(x, keepdims=True).shape == (*shape[:-1], 1)
    assert logsumexp(np.zeros((2, 0)), axis=None) == -inf


@pytest.mark.parametrize("fn", ALONG_AXIS, ids=lambda f: f.__name__)
def test_bad_axis_and_where_name_the_argument(fn):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="`axis`"):
        fn(x, axis=2)
    with pytest.raises(ValueError, match="`axis`"):
        fn(x, axis=(0, 0))
    with pytest.raises(TypeError, match="`axis`"):
        fn(x, axis=1.0)
    with pytest.raises(ValueError, match="`where`"):
        fn(x, where=np.ones((3, 2), bool))
    with pytest.raises(TypeError, match="`where`"):
        fn(x, where=np.ones((2, 3)))
    with pytest.raises(ValueError, match="`axis`"):
        hardmax(x, axis=-3)


@pytest.mark.parametrize("fn", [sigmoid, log_sigmoid, softmax, log_softmax, logsumexp, hardmax])
def test_ndarray_subclasses(fn, tmp_path):
    x = np.array([[0.5, -2.0, 3.0], [1.0, 1.0, -40.0]])
    want = np.asarray(fn(x))
    # A masked array would lose its mask in the kernels: refused, naming the argument.
    with pytest.raises(TypeError, match=r"`x` must not be a numpy\.ma\.MaskedArray"):
        fn(np.ma.array(x, mask=x < 0))
    # Other subclasses are computed as their plain ndarray, and give a plain ndarray.
    mm = np.memmap(tmp_path / "x.f8", dtype=np.float64, mode="w+", shape=x.shape)
    mm[...] = x
    with pytest.warns(PendingDeprecationWarning):
        matrix = np.matrix(x)
    for sub in (mm, matrix):
        got = fn(sub)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn", [sigmoid, log_sigmoid, softmax, log_softmax, logsumexp, hardmax])
def test_input_types(fn):
    with pytest.raises(TypeError, match="`x`"):
        fn(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="`x`"):
        fn(["a", "b"])
    # Lists, scalars, ints and bools are accepted; ints and bools promote to float64.
    assert np.asarray(fn([1, 2, 3])).dtype == np.float64
    assert np.asarray(fn(np.array([True, False]))).dtype == np.float64
    assert np.asarray(fn(np.array([1, 2], np.int8))).dtype == np.float64
    assert np.asarray(fn(np.array([1, 2], np.float32))).dtype == np.float32
    assert np.asarray(fn(np.array([1, 2], np.float16))).dtype == np.float16
    np.testing.assert_allclose(fn([1, 2, 3]), fn(np.array([1.0, 2.0, 3.0])), rtol=0)
    assert np.ndim(fn(2.0)) == 0


def test_scalar_values():
    assert float(softmax(3.0)) == 1.0
    assert float(log_softmax(3.0)) == 0.0
    assert float(logsumexp(3.0)) == 3.0
    assert float(sigmoid(0)) == 0.5


def test_temperature(rng, backend):
    x = rng.standard_normal((4, 5)) * 10
    for t in (0.25, 2.0, 8.0):  # powers of two: x / t is exact, so the results are identical
        np.testing.assert_array_equal(softmax(x, temperature=t), softmax(x / t))
        np.testing.assert_array_equal(log_softmax(x, temperature=t), log_softmax(x / t))
    np.testing.assert_allclose(softmax(x, temperature=3.0), softmax(x / 3.0), rtol=1e-13)
    for bad in (0, -1.0, inf, nan):
        with pytest.raises(ValueError, match="`temperature`"):
            softmax(x, temperature=bad)
    with pytest.raises(TypeError, match="`temperature`"):
        softmax(x, temperature="hot")
    # T -> 0 is the hardmax (without ties)
    np.testing.assert_array_equal(softmax(x, temperature=1e-3), hardmax(x))


def test_hardmax_ties_take_the_first_maximum():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-inf, -inf, -1.0], [0.0, nan, 1.0]])
    want = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [nan, nan, nan]])
    np.testing.assert_array_equal(hardmax(x), want)
    np.testing.assert_array_equal(hardmax(x.T, axis=0), want.T)
    np.testing.assert_array_equal(hardmax([[1.0, 5.0], [7.0, 2.0]], axis=None), [[0, 0], [1, 0]])


@pytest.mark.parametrize("fn", [sigmoid, log_sigmoid, softmax, log_softmax])
def test_out(rng, fn, backend):
    x = rng.standard_normal((6, 5))
    out = np.empty_like(x)
    assert fn(x, out=out) is out
    np.testing.assert_array_equal(out, fn(x))
    out_t = np.empty((5, 6)).T
    fn(x, out=out_t)
    np.testing.assert_array_equal(out_t, fn(x))
    in_place = x.copy()
    fn(in_place, out=in_place)
    np.testing.assert_array_equal(in_place, fn(x))
    with pytest.raises(ValueError, match="`out`"):
        fn(x, out=np.empty((6, 4)))
    with pytest.raises(ValueError, match="`out`"):
        fn(x, out=np.empty((6, 5), np.float32))
    with pytest.raises(TypeError, match="`out`"):
        fn(torch.zeros(6, 5, dtype=torch.float64), out=out)


# --------------------------------------------------------------------------------------------
# axis: int, tuple, None, and the metamorphic relations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", ALONG_AXIS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("k", [0, 1, 2, -1, -2])
def test_axis_equals_moveaxis(rng, fn, k, backend):
    x = rng.standard_normal((3, 4, 5)) * 5
    got = fn(x, axis=k)
    moved = fn(np.moveaxis(x, k, -1))
    want = moved if fn is logsumexp else np.moveaxis(moved, -1, k)
    if backend == "numpy" or fn is logsumexp or k == 2:
        np.testing.assert_array_equal(got, want)
    else:
        # softmax and log_softmax over axis 0 (20 slices side by side) run on the column
        # kernels, the moved slices on the row kernels: the same algorithm summed in
        # another order, each within 3 ULP of mpmath (tests/test_columns.py), so at most
        # 6 apart (3 measured over 300 random arrays).
        assert ulps_apart(np.asarray(got), np.asarray(want)).max() <= 6


@pytest.mark.parametrize("fn", ALONG_AXIS, ids=lambda f: f.__name__)
def test_axis_tuple_and_none(rng, fn):
    x = rng.standard_normal((3, 4, 5)) * 5
    flat = np.moveaxis(x, 1, 0).reshape(4, 15)
    got = fn(x, axis=(0, 2))
    want = fn(flat)
    if fn is not logsumexp:
        want = np.moveaxis(want.reshape(4, 3, 5), 0, 1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fn(x, axis=(2, 0)), got)
    all_ = fn(x, axis=None)
    want_all = fn(x.reshape(-1))
    np.testing.assert_array_equal(all_, want_all if fn is logsumexp else want_all.reshape(x.shape))
    if fn is logsumexp:
        assert fn(x, axis=(0, 2), keepdims=True).shape == (1, 4, 1)
        assert fn(x, axis=None, keepdims=True).shape == (1, 1, 1)


@pytest.mark.parametrize("fn", ALONG_AXIS, ids=lambda f: f.__name__)
def test_mask_equals_dropping_the_entries(rng, fn):
    x = rng.standard_normal((6, 8)) * 4
    where = rng.uniform(size=x.shape) < 0.5
    where[:, 0] = True
    got = fn(x, where=where)
    for i in range(x.shape[0]):
        kept = fn(x[i, where[i]])
        np.testing.assert_allclose(got[i] if fn is logsumexp else got[i, where[i]], kept, 1e-15)


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------

# Logits on a 1/64 grid: adding an integer shift is exact, so shift invariance is exact too.
grid = st.integers(-64 * 300, 64 * 300).map(lambda i: i / 64)
rows = hnp.arrays(np.float64, st.integers(1, 40), elements=grid)
finite = st.floats(-700, 700, allow_nan=False)
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(rows, st.integers(-(2**20), 2**20))
def test_shift_invariance(x, c):
    """Exact wherever each slice is shifted by its own max (the NumPy path and the row
    kernels); the short-row kernel never shifts (its results depend on each row alone), so
    there the two sides are two roundings of the same value, each within the 3-ULP bound."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMAX_DISABLE_NUMBA", "1")
        np.testing.assert_array_equal(softmax(x + c), softmax(x))
        np.testing.assert_array_equal(log_softmax(x + c), log_softmax(x))
    np.testing.assert_allclose(softmax(x + c), softmax(x), rtol=6 * EPS, atol=0)
    np.testing.assert_array_equal(log_softmax(x + c), log_softmax(x))
    assert float(logsumexp(x + c)) == pytest.approx(float(logsumexp(x)) + c, rel=2 * EPS)


@SETTINGS
@given(rows, st.sampled_from([np.float16, np.float32, np.float64]))
def test_rows_sum_to_one(x, dtype):
    p = softmax(x.astype(dtype))
    assert p.dtype == dtype
    eps = float(np.finfo(dtype).eps)
    assert abs(float(np.sum(p.astype(np.float64))) - 1.0) <= eps * (1 + x.size / 2)
    assert np.all((p >= 0) & (p <= 1))


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 50), elements=finite))
def test_sigmoid_symmetry(x):
    # sigmoid(-x) = 1 - sigmoid(x), up to the rounding of the right-hand side.
    np.testing.assert_allclose(sigmoid(-x), 1.0 - sigmoid(x), rtol=0, atol=EPS)
    np.testing.assert_allclose(log_sigmoid(x), np.log(sigmoid(x)), rtol=4 * EPS, atol=2e-16)


@SETTINGS
@given(grid, grid)
def test_two_entry_softmax_is_sigmoid_of_the_difference(a, b):
    p = softmax([a, b])
    assert p[0] == pytest.approx(float(sigmoid(a - b)), rel=4 * EPS, abs=1e-320)
    assert p[1] == pytest.approx(float(sigmoid(b - a)), rel=4 * EPS, abs=1e-320)
    assert log_softmax([a, b])[0] == pytest.approx(float(log_sigmoid(a - b)), rel=4 * EPS)


@SETTINGS
@given(rows)
def test_log_softmax_is_log_of_softmax(x):
    p = softmax(x)
    ok = p > 1e-300  # not tiny: log of a subnormal loses digits
    lp = log_softmax(x)
    np.testing.assert_allclose(lp[ok], np.log(p[ok]), rtol=4 * EPS, atol=2 * EPS)
    assert np.all(lp <= 0)
    assert float(logsumexp(x)) == pytest.approx(float(np.max(x) - lp[np.argmax(x)]), rel=EPS)


@SETTINGS
@given(rows)
def test_hardmax_is_one_hot_of_argmax(x):
    h = hardmax(x)
    assert h.sum() == 1
    assert h[np.argmax(x)] == 1


def test_public_names():
    import sigmax.functions as f

    for name in f.__all__:
        assert getattr(sigmax, name) is getattr(f, name)


def test_large_nonfinite_input_on_threads_does_not_warn(rng, backend):
    # Large enough for the thread pool: the caller's np.errstate must hold in the workers.
    import warnings

    x = rng.standard_normal((4000, 100))
    x[5, 3] = nan
    x[7] = -inf
    x[9, :3] = inf
    where = np.ones(x.shape, bool)
    where[11] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in ALONG_AXIS:
            got = fn(x, where=where)
            assert np.all(np.isnan(got[5]))
        p = softmax(x)
        np.testing.assert_array_equal(p[7], 0)
        np.testing.assert_array_equal(p[9, :3], 1 / 3)
        sigmoid(x)
        log_sigmoid(x)


@pytest.mark.parametrize("fn", [softmax, log_softmax])
@pytest.mark.parametrize("k", [5, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_in_place_with_a_declined_row(rng, fn, k, dtype, backend):
    # In place, with a row that the fused kernels hand back to the NumPy path (nan) after
    # the rows before it were written, and one whose exps leave the normal range: the
    # result must be that of a separate output array.
    x = (rng.standard_normal((40, k)) * 3).astype(dtype)
    x[7, 1] = np.nan
    x[3] -= 2000.0
    for precision in ("accurate", "fast"):
        want = np.asarray(fn(x, precision=precision))
        in_place = x.copy()
        assert fn(in_place, out=in_place, precision=precision) is in_place
        np.testing.assert_array_equal(in_place, want)


@pytest.mark.parametrize("fn", [sigmoid, log_sigmoid, softmax, log_softmax])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_calls_match_the_general_path(rng, fn, dtype, backend):
    # Calls of up to `SMALL_CALL` entries go straight to a kernel; larger ones through the
    # general path's blocks. The same rows give the same bits either way, with and without
    # `out=`, at a temperature, and in non-native byte order (converted first: results are
    # native, as NumPy's ufuncs give them; computed in the swapped dtype, float64 once lost
    # its compensated difference, 24 ULP off).
    x = (rng.standard_normal((3, 10)) * 4).astype(dtype)
    big = np.tile(x, (1000, 1))
    assert big.size > _array_api.SMALL_CALL >= x.size
    opts = {} if fn in (sigmoid, log_sigmoid) else {"temperature": 0.7}
    want = np.asarray(fn(big, **opts))[:3]

    def same(got: np.ndarray) -> None:
        if backend == "numpy":  # its blocks of 16 rows or more are summed transposed
            np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
        else:
            np.testing.assert_array_equal(got, want)

    same(fn(x, **opts))
    out = np.empty_like(x)
    assert fn(x, out=out, **opts) is out
    same(out)
    swapped = x.astype(x.dtype.newbyteorder(">" if np.little_endian else "<"))
    got = fn(swapped, **opts)
    assert got.dtype == np.dtype(dtype)
    same(got)


@pytest.mark.parametrize("k", [10, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_logsumexp_matches_the_general_path(rng, k, dtype, backend):
    # Including rows that cancel (m < 0, log1p(rest) ~ -m), which are refined on both paths.
    x = (rng.standard_normal((4, k)) * 3).astype(dtype)
    x[1] = np.log(rng.dirichlet(np.ones(k))).astype(dtype)
    big = np.tile(x, (2000 // k + 20, 1))
    assert big.size > _array_api.SMALL_CALL >= x.size
    want = np.asarray(logsumexp(big))[:4]
    got = logsumexp(x)
    assert got.shape == (4,)
    assert got.dtype == dtype
    if backend == "numpy":  # its blocks of 16 rows or more are summed transposed
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=1e-15)
    else:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(logsumexp(x, keepdims=True)[:, 0], got)


def test_concurrent_calls_from_user_threads() -> None:
    """Several user threads calling at once share sigmax's block pool (each call's blocks
    queue behind the others'): every result equals the same call made alone."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    shapes = [(30_000, 10), (300, 1000), (8_000, 37), (60, 5000)]
    xs = [
        rng.standard_normal(shapes[i % 4]).astype(np.float32 if i % 2 else np.float64)
        for i in range(8)
    ]

    def work(i: int) -> tuple[np.ndarray, ...]:
        x = xs[i % 8]
        return (
            softmax(x),
            log_softmax(x),
            logsumexp(x),
            sigmoid(x),
            sigmax.softmax_vjp(x, x),
            sigmax.softmax_cross_entropy(x, np.zeros(x.shape[0], int)),
        )

    alone = [work(i) for i in range(8)]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(work, list(range(8)) * 3))
    for i, results in enumerate(together):
        for got, want in zip(results, alone[i % 8], strict=True):
            np.testing.assert_array_equal(got, want)
