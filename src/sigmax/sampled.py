"""sigmax.sampled (in progress)."""

__all__: list[str] = []
