"""The one thing pyproject.toml cannot say with setuptools < 74.1: the optional C extension.

``optional=True``: without a compiler (or Python headers) the build warns and the install
goes on; mltune then scores candidates with the NumPy evaluator (see mltune.forest.NATIVE)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mltune._fastforest", ["tuner/_fastforest.c"], optional=True,
                             extra_compile_args=["-O2", "-fno-fast-math"])])
