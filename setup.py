"""Packaging entry point for tools that still call setup.py.

Everything is declared in pyproject.toml: the wheel holds the package `l2l`
and the top-level research-script modules meta, networks, preprocess,
problems and util. train.py and evaluate.py stay in the repository as
scripts; installed, they are the commands l2l-train and l2l-evaluate.
"""

import setuptools

setuptools.setup()
