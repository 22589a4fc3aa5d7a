"""scikit-learn's estimator checks, for every sigmax estimator.

No check is skipped or marked as an expected failure. scikit-learn marks two for its own
`LogisticRegression` (sample_weight equivalence on dense and sparse data); sigmax passes both.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks

from sigmax.estimators import MLPClassifier, SigmoidClassifier, SoftmaxClassifier

ESTIMATORS = [
    SigmoidClassifier(),
    SoftmaxClassifier(),
    SigmoidClassifier(solver="newton-cg"),
    SoftmaxClassifier(solver="adam", max_iter=20, random_state=0),
    # Full-batch L-BFGS keeps the checks deterministic and fast, as scikit-learn does for its
    # own MLP in the sample-weight checks. C=1 because the checks compare predict_log_proba
    # with log(predict_proba): on their well-separated blobs a barely regularized network
    # drives a probability to 0.0, where the exact log-probability (-800) is finite.
    MLPClassifier(hidden_layer_sizes=(8,), C=1.0, solver="lbfgs", max_iter=50, random_state=0),
    MLPClassifier(
        head="sigmoid", hidden_layer_sizes=(8,), C=1.0, solver="lbfgs", max_iter=50, random_state=0
    ),
    MLPClassifier(hidden_layer_sizes=(8,), C=1.0, learning_rate_init=0.01, random_state=0),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
