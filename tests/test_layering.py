"""Imports flow one way: cli -> node -> consensus, ledger. ``consensus`` never imports ``node``
or ``cli``; ``ledger`` imports none of the others and no asyncio or network library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "ledger": {"consensus", "node", "cli", "asyncio", "aiohttp", "socket"},
    "consensus": {"node", "cli", "asyncio", "aiohttp", "lmdb", "socket", "time", "random"},
    "node": {"cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    for f in files:
        if package == "consensus" and f.name == "sim.py":
            continue  # the simulator (not imported by the package) owns the seeded PRNG
        bad = _imports(f) & FORBIDDEN[package]
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"
