"""Experiment tooling: training loop, evaluation, records, plots, compare, CLI."""
