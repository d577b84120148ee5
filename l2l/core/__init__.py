"""Optimizee plumbing and the unroll machinery shared by every unroll."""
