"""Distributions of optimizee tasks to meta-train on."""
