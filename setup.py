"""Build of the optional C fast paths (``ledger/_speedups.c``); everything else is in
pyproject.toml. The package works without them: ``optional=True`` lets the install go on
when no C compiler is there, and ``ledger.encoding`` then uses its Python code."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ledger._speedups", ["ledger/_speedups.c"], optional=True,
                             extra_compile_args=["-O2"])])
