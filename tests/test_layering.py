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


def _local(name: str) -> str:
    """``tpledger.node.x`` -> ``node.x``: the distribution's prefix off (see tpledger/__init__)."""
    return name.removeprefix("tpledger.")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {_local(a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(_local(node.module).split(".")[0])
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


# -- no import circle inside a package ---------------------------------------------------------
# Every import statement counts, function-level and ``if TYPE_CHECKING:`` ones included (a
# circle hidden in a function or behind a type annotation is still a circle). Circles that exist
# today outside cli/ are listed here so that they can be removed one by one; remove an entry
# together with its circle (a stale entry fails the test).
KNOWN_CYCLES: dict[str, set[frozenset[str]]] = {
    "cli": set(),
    "consensus": set(),
    "ledger": set(),
    "node": set(),
}


def _module_names(root: Path, package: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = f.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _imported_modules(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Modules of ``modules`` that ``path`` (module ``name``) imports, anywhere in the file."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_local(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _local(node.module or "")
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{a.name}" for a in node.names} & modules.keys()
            # ``from pkg import mod`` depends on pkg.mod; ``from pkg import name`` on pkg
            found |= submodules or {base}
    # A package's __init__ that runs on the way to a submodule is not counted: only the
    # module named by the import statement is.
    return {m for m in found if m in modules and m != name}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = _module_names(root, package)
    return {name: _imported_modules(path, name, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize("package", sorted(KNOWN_CYCLES))
def test_no_import_cycle_inside_a_package(package: str) -> None:
    found = import_cycles(import_graph(ROOT, package))
    new = found - KNOWN_CYCLES[package]
    assert not new, f"import circle(s) inside {package}/: {[sorted(c) for c in new]}"
    stale = KNOWN_CYCLES[package] - found
    assert not stale, (f"these circles are gone: remove them from KNOWN_CYCLES: "
                       f"{[sorted(c) for c in stale]}")


def test_cycle_finder_sees_function_level_and_package_imports(tmp_path: Path) -> None:
    """The broken variant: two modules importing each other inside functions, and a module
    importing its package whose ``__init__`` imports it back, are both reported."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f() -> None:\n    from pkg.b import g\n")
    (pkg / "b.py").write_text("def g() -> None:\n    from pkg import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import h\n")
    (pkg / "sub" / "c.py").write_text("import pkg.sub\n\ndef h() -> None: ...\n")
    (pkg / "d.py").write_text("from pkg.a import f\n")  # on no circle
    assert import_cycles(import_graph(tmp_path, "pkg")) == {
        frozenset({"pkg.a", "pkg.b"}), frozenset({"pkg.sub", "pkg.sub.c"})}


def test_the_node_core_is_imported_by_the_shell_only() -> None:
    """``node.runtime`` (the Node) is composed by ``node.shell``; the modules it uses (API,
    admission, openings service, evidence, submission codec ...) never import it back, not even
    for a type: they take narrow collaborators."""
    graph = import_graph(ROOT, "node")
    importers = sorted(m for m, deps in graph.items() if "node.runtime" in deps)
    assert importers == ["node.shell"], importers
