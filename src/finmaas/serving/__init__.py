"""Data plane: model pool, adaptive batching and the inference protocols."""
