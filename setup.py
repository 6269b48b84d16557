"""Only the package list lives here; everything else is in pyproject.toml.

pyproject.toml can either list packages or find them, not both, and the CUDA
kernels live in the top-level ``kernels/`` folder (next to the README, where a
reader finds them), installed as the data package ``minicnn.kernels``.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["minicnn*"]) + ["minicnn.kernels"])
