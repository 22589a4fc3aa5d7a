"""sigmax.losses (in progress)."""

__all__: list[str] = []
