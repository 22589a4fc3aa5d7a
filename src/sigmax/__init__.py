"""sigmax: sigmoid and softmax output layers, done exactly.

The public API is flat: every public name of the submodules is importable from ``sigmax``.
The array modules need only NumPy and array-api-compat; the estimators (which need SciPy and
scikit-learn) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from sigmax import derivatives, equivalence, functions, heads, losses, sampled
from sigmax.derivatives import *  # noqa: F403
from sigmax.equivalence import *  # noqa: F403
from sigmax.functions import *  # noqa: F403
from sigmax.heads import *  # noqa: F403
from sigmax.losses import *  # noqa: F403
from sigmax.sampled import *  # noqa: F403

__version__ = "0.1.0"

#: Names served lazily from modules that need the optional scikit-learn stack.
_LAZY = {
    "SigmoidClassifier": "sigmax.estimators",
    "SoftmaxClassifier": "sigmax.estimators",
    "MLPClassifier": "sigmax.estimators",
    "SampledSoftmaxClassifier": "sigmax.estimators",
    "load": "sigmax.estimators",
}

__all__ = [
    "__version__",
    *functions.__all__,
    *derivatives.__all__,
    *losses.__all__,
    *heads.__all__,
    *equivalence.__all__,
    *sampled.__all__,
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sigmax' has no attribute {name!r}")
