"""Dask input: the reductions map over blocks and take the NumPy path, lazily and silently."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import sigmax

da = pytest.importorskip("dask.array")


@pytest.fixture
def logits(rng):
    x = rng.standard_normal((60, 9)) * 30
    x[3, 2] = np.inf  # +inf shares the mass
    x[5] = -np.inf  # all -inf: no mass
    x[7, 1] = np.nan  # nan poisons its row
    return x


@pytest.mark.parametrize("chunks", [(25, 9), (25, 4), (60, 2)])
@pytest.mark.parametrize("fn", [sigmax.softmax, sigmax.log_softmax])
def test_softmax_family_equals_numpy_on_any_chunking(fn, logits, chunks, rng):
    mask = rng.random(logits.shape) > 0.3
    d = da.from_array(logits, chunks=chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the IEEE cases must not warn when Dask computes
        got = fn(d, where=mask)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), fn(logits, where=mask))


@pytest.mark.parametrize("axis", [-1, 0, None, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_axes_and_keepdims(logits, axis, keepdims):
    d = da.from_array(logits, chunks=(25, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sigmax.logsumexp(d, axis=axis, keepdims=keepdims)
        want = sigmax.logsumexp(logits, axis=axis, keepdims=keepdims)
        assert got.shape == np.shape(want)
        np.testing.assert_array_equal(got.compute(), want)


def test_dtypes_are_kept_and_integers_promote():
    x32 = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    assert sigmax.softmax(da.from_array(x32, chunks=(1, 4))).dtype == np.float32
    ints = da.from_array(np.arange(6).reshape(2, 3), chunks=(1, 3))
    got = sigmax.softmax(ints)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got.compute(), sigmax.softmax(np.arange(6).reshape(2, 3)))
