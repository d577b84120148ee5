"""Hand-designed baselines: TensorFlow's optimizers and particle swarm optimization."""
