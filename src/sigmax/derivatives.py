"""sigmax.derivatives (in progress)."""

__all__: list[str] = []
