"""sigmax.equivalence (in progress)."""

__all__: list[str] = []
