"""Offline readers of the data sets the problems train on."""
