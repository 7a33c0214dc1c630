"""Training loop, metrics and distributed helpers shared by every model."""
