"""The training loop, length-bucketed batching and device choice."""
