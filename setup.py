"""The one thing pyproject.toml cannot say with setuptools < 74.1: the optional C extension.

``optional=True``: without a compiler (or Python headers) the build warns and the install
goes on; mltune then decodes perf records in Python (see mltune.tracing.DECODING)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mltune._fasttrace", ["tuner/_fasttrace.c"], optional=True,
                             extra_compile_args=["-O2", "-fno-fast-math"])])
