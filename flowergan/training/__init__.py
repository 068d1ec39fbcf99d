"""Training a generator: the run's options and plan, the loss phases, EMA, checkpoints, logs and the loop."""
