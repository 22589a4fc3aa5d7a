"""sigmax.heads (in progress)."""

__all__: list[str] = []
