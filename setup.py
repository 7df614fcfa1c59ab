"""The package list, found rather than written out, so that no new package can be left out of the wheel.

Everything else is in pyproject.toml; ``checkpoints/`` installs as ``wmark.checkpoints`` (its package-dir there).
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["wmark", "wmark.*", "attacks", "attacks.*"]) + ["wmark.checkpoints"])
