import numpy as np

import sigmax


def test_version_and_public_names():
    assert sigmax.__version__
    for name in [n for n in sigmax.__all__ if n not in sigmax._LAZY]:
        assert hasattr(sigmax, name)


def test_softmax_rows_sum_to_one(rng):
    x = rng.standard_normal((5, 7))
    np.testing.assert_allclose(sigmax.softmax(x).sum(-1), 1.0, rtol=1e-15)
