"""Build of the optional C fast paths (``ledger/_speedups.c``) and of the wheel's copy of the
LPP seed table; everything else is in pyproject.toml. The package works without the C code:
``optional=True`` lets the install go on when no C compiler is there, and ``ledger.encoding``
then uses its Python code.

The seed table lives in the repository's top-level ``seeds/`` folder; a wheel carries it as
package data at ``tpledger/ledger/seeds/`` (copied by ``build_py`` below), where
``ledger.lpp.LppTable.default`` finds it through :mod:`importlib.resources`.
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

SEED_FILES = ("lpp_optique_v1.csv", "SOURCES.md")


class BuildPyWithSeeds(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "tpledger" / "ledger" / "seeds"
        target.mkdir(parents=True, exist_ok=True)
        for name in SEED_FILES:
            shutil.copyfile(Path("seeds") / name, target / name)


setup(
    cmdclass={"build_py": BuildPyWithSeeds},
    ext_modules=[Extension("tpledger.ledger._speedups", ["ledger/_speedups.c"], optional=True,
                           extra_compile_args=["-O2"])],
)
