"""scikit-learn estimators (in progress)."""

__all__: list[str] = []
