"""scikit-learn estimators: a linear or MLP body with a sigmoid or softmax head.

Every estimator fits in memory (NumPy, SciPy sparse) or out of core (Dask arrays), saves to
``.npz`` without pickle (:meth:`save`, :func:`load`), and passes scikit-learn's estimator
checks.
"""

from __future__ import annotations

from sigmax.estimators.linear import SigmoidClassifier, SoftmaxClassifier
from sigmax.estimators.mlp import MLPClassifier
from sigmax.estimators.persistence import load

__all__ = ["MLPClassifier", "SigmoidClassifier", "SoftmaxClassifier", "load"]

try:
    from sigmax.estimators.sampled import SampledSoftmaxClassifier
except ImportError:  # written in parallel; exported once it exists
    pass
else:
    __all__ += ["SampledSoftmaxClassifier"]
