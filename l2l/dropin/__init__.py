"""Using a trained optimizer on one's own model, in graph mode or in Keras."""
