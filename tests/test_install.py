"""The built wheel works alone (issue 14): built with ``pip wheel . --no-deps``, installed in a
fresh venv, run from a directory outside the repository: ``tpledger lpp list`` (the LPP table is
package data), ``cluster init`` and ``tpledger demo`` (real node subprocesses).

The fresh venv gets the wheel only (``--no-deps``); its dependencies come from the project's
venv through one ``.pth`` line (a plain path: the project venv's own ``.pth`` files, among them
the editable install's finder, are not processed), so the test needs no download beyond the
build backend and the imported ``ledger`` must be the wheel's, never the repository's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT_S, check=False)
    assert p.returncode == 0, f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
         cwd=out)
    (whl,) = out.glob("tpledger-*.whl")
    return whl


def test_wheel_carries_the_lpp_table_and_no_license_warning(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "tpledger/ledger/seeds/lpp_optique_v1.csv" in names
    assert "tpledger/ledger/seeds/SOURCES.md" in names
    # one top-level name in site-packages, never the generic cli/node/ledger/consensus
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"tpledger"}, names
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["tpledger"]
    meta = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta  # SPDX string, not the deprecated table


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    site = Path(_run([str(root / "bin" / "python"), "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install",
          "-q", "--no-deps", "--no-index", str(wheel)], cwd=root.parent)
    return root


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TPLEDGER_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return env


def test_installed_wheel_runs_outside_the_repository(venv: Path, tmp_path: Path) -> None:
    env = _env(venv)
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import tpledger.ledger as l, tpledger.cli as c; print(l.__file__, c.__file__)"],
                 cwd=tmp_path, env=env).stdout
    assert str(REPO) not in where and str(venv) in where, where  # the wheel's code, not ours
    for generic in ("ledger", "cli", "node", "consensus"):  # nothing installed under those names
        p = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {generic}"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        assert p.returncode != 0 and "ModuleNotFoundError" in p.stderr, (generic, p.stderr)
    out = _run(["tpledger", "lpp", "list"], cwd=tmp_path, env=env).stdout
    assert "2210546\t" in out  # piped: tab-separated rows of the shipped table
    _run(["tpledger", "cluster", "init", "c", "--validators", "4"], cwd=tmp_path, env=env)
    assert (tmp_path / "c" / "genesis.json").is_file()
    demo = _run(["tpledger", "demo"], cwd=tmp_path, env=env)
    assert "demo OK" in demo.stdout + demo.stderr
