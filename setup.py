"""The one thing pyproject.toml cannot say with setuptools < 74.1: the optional C extensions.

``optional=True``: without a compiler (or Python headers) the build warns and the install
goes on; mltune then decodes perf records in Python (see mltune.tracing.DECODING) and scores
candidates with NumPy (see mltune.forest.NATIVE), and switches perf events with plain
ioctls (see mltune.perf.SWITCH)."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-fno-fast-math"]

setup(ext_modules=[
    Extension("mltune._fasttrace", ["tuner/_fasttrace.c"], optional=True,
              extra_compile_args=FLAGS),
    Extension("mltune._fastforest", ["tuner/_fastforest.c"], optional=True,
              extra_compile_args=FLAGS),
    Extension("mltune._perfswitch", ["tuner/_perfswitch.c"], optional=True,
              extra_compile_args=[*FLAGS, "-pthread"], extra_link_args=["-pthread"]),
])
