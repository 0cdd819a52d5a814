"""Persistent Merkle tree: agreement with the RFC 9162 reference, read bounds, stores, bench."""

from __future__ import annotations

import importlib
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger.test_merkle import LEAVES as CT_LEAVES  # the CT vectors, in one place
from tests.ledger.test_merkle import ROOTS
from tpledger.ledger import merkle
from tpledger.ledger.errors import StoreError
from tpledger.ledger.merkle_tree import (
    MemoryNodeStore,
    NodeStore,
    OverlayNodeStore,
    PersistentTree,
)

CT_ROOT_8 = ROOTS[8].hex()
CT_LEVEL1 = [
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
]


class PlainStore:
    """Only the four NodeStore methods (no batch fast paths); counts every call."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.reads = 0
        self.writes = 0

    def get_node(self, level: int, index: int) -> bytes | None:
        self.reads += 1
        return self.nodes.get((level, index))

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        self.writes += 1
        self.nodes[(level, index)] = digest

    def get_size(self) -> int:
        return self.size

    def set_size(self, size: int) -> None:
        self.size = size


def leaf_hashes(n: int, seed: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(seed.to_bytes(4, "big") + i.to_bytes(8, "big")) for i in range(n)]


def build(hashes: Sequence[bytes], batches: Sequence[int], store: NodeStore) -> PersistentTree:
    tree = PersistentTree(store)
    pos = 0
    for b in batches:
        tree.append_leaf_hashes(hashes[pos : pos + b])
        pos += b
    tree.append_leaf_hashes(hashes[pos:])
    return tree


# ---------------------------------------------------------------------------------------------
# CT vectors


@pytest.mark.parametrize("split", [[], [1] * 8, [3, 1, 2], [5], [2, 2, 2, 2], [7]])
def test_ct_vectors_any_batching(split: list[int]) -> None:
    store = MemoryNodeStore()
    tree = PersistentTree(store)
    pos = 0
    for b in [*split, 8 - sum(split)]:
        assert tree.append_entries(CT_LEAVES[pos : pos + b]) == pos + b
        pos += b
    assert tree.size == 8
    assert tree.root().hex() == CT_ROOT_8
    for size in range(9):
        assert tree.root(size) == merkle.root_of(CT_LEAVES[:size])
    assert [store.nodes[(1, i)].hex() for i in range(4)] == CT_LEVEL1
    # exactly the complete subtrees are stored: 8 + 4 + 2 + 1
    assert sorted(store.nodes) == sorted(
        (level, i) for level in range(4) for i in range(8 >> level)
    )
    for index in range(8):
        for size in range(index + 1, 9):
            assert tree.inclusion_path(index, size) == merkle.inclusion_path(
                CT_LEAVES[:size], index
            )
    for new in range(9):
        for old in range(new + 1):
            assert tree.consistency_path(old, new) == merkle.consistency_path(CT_LEAVES[:new], old)


def test_empty_tree() -> None:
    tree = PersistentTree(MemoryNodeStore())
    assert tree.size == 0
    assert tree.root() == merkle.EMPTY_ROOT
    assert tree.append_leaf_hashes([]) == 0
    assert tree.consistency_path(0) == []
    with pytest.raises(StoreError):
        tree.inclusion_path(0)


# ---------------------------------------------------------------------------------------------
# Cross-check against the deliberately simple reference


@st.composite
def tree_case(draw: st.DrawFn) -> tuple[list[int], int, int, int, int]:
    batches = draw(st.lists(st.integers(0, 40), min_size=1, max_size=8))
    total = sum(batches)
    size = draw(st.integers(0, total))
    index = draw(st.integers(0, max(0, size - 1)))
    old = draw(st.integers(0, size))
    return batches, total, size, index, old


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_case(), st.sampled_from(["memory", "plain", "overlay"]))
def test_matches_reference(case: tuple[list[int], int, int, int, int], kind: str) -> None:
    batches, total, size, index, old = case
    hashes = leaf_hashes(total, seed=len(batches))
    store: NodeStore
    if kind == "memory":
        store = MemoryNodeStore()
    elif kind == "plain":
        store = PlainStore()
    else:
        base = MemoryNodeStore()
        build(hashes, batches[: len(batches) // 2], base)  # half in the base, half buffered
        store = OverlayNodeStore(base)
    tree = PersistentTree(store)
    pos = tree.size
    for b in batches:
        take = hashes[pos : pos + b]
        assert tree.append_leaf_hashes(take) == pos + len(take)
        pos += len(take)
    tree.append_leaf_hashes(hashes[pos:])
    assert tree.size == total

    prefix = hashes[:size]
    assert tree.root(size) == merkle.root_from_leaf_hashes(prefix)
    assert tree.root() == merkle.root_from_leaf_hashes(hashes)
    if size:
        path = tree.inclusion_path(index, size)
        assert path == merkle.inclusion_path_from_leaf_hashes(prefix, index)
        assert merkle.verify_inclusion(hashes[index], index, size, path, tree.root(size))
        assert tree.leaf_hash(index) == hashes[index]
    cpath = tree.consistency_path(old, size)
    assert cpath == merkle.consistency_path_from_leaf_hashes(prefix, old)
    assert merkle.verify_consistency(old, size, tree.root(old), tree.root(size), cpath)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 64))
def test_stored_nodes_are_exactly_complete_subtrees(n: int, batch: int) -> None:
    hashes = leaf_hashes(n)
    store = MemoryNodeStore()
    build(hashes, [batch] * (n // batch), store)
    expected = {(level, i) for level in range(n.bit_length()) for i in range(n >> level)}
    assert set(store.nodes) == expected
    for level, i in expected:
        width = 1 << level
        sub = hashes[i * width : (i + 1) * width]
        assert store.nodes[(level, i)] == merkle.root_from_leaf_hashes(sub)


# ---------------------------------------------------------------------------------------------
# Cost bounds


def test_read_and_write_bounds_at_100k() -> None:
    n = 100_000
    store = PlainStore()
    tree = PersistentTree(store)
    hashes = leaf_hashes(n)
    rng = random.Random(1234)
    pos = blocks = 0
    while pos < n:  # uneven blocks, like a ledger
        b = rng.randint(1, 2500)
        tree.append_leaf_hashes(hashes[pos : pos + b])
        pos += b
        blocks += 1
    assert tree.size == n
    assert store.writes < 2 * n  # amortised O(1) writes per leaf
    assert store.reads <= blocks * math.log2(n)  # appends read only frontier nodes

    bound = 4 * math.log2(n) + 8
    depth = math.ceil(math.log2(n))
    tight = {"root": depth + 1, "inclusion": 2 * depth + 1, "consistency": 2 * depth + 2}
    reference_root = merkle.root_from_leaf_hashes(hashes)
    worst = 0
    for _ in range(300):
        size = rng.randint(1, n)
        index = rng.randrange(size)
        old = rng.randint(0, size)
        for op in ("root", "inclusion", "consistency"):
            store.reads = 0
            if op == "root":
                root = tree.root(size)
            elif op == "inclusion":
                path = tree.inclusion_path(index, size)
            else:
                cpath = tree.consistency_path(old, size)
            worst = max(worst, store.reads)
            assert store.reads <= min(bound, tight[op]), (op, size, index, old, store.reads)
        assert merkle.verify_inclusion(hashes[index], index, size, path, root)
        assert merkle.verify_consistency(old, size, tree.root(old), root, cpath)
    assert tree.root() == reference_root
    # single appends read only the frontier too
    store.reads = 0
    tree.append_leaf_hashes([merkle.leaf_hash(b"one more")])
    assert store.reads <= math.log2(n) + 1
    assert worst > 0


def test_batch_fast_paths_are_used() -> None:
    store = MemoryNodeStore()
    calls: list[str] = []
    orig_get, orig_put = store.get_nodes, store.put_nodes

    def get_nodes(keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        calls.append("get")
        return orig_get(keys)

    def put_nodes(level: int, start: int, digests: Sequence[bytes]) -> None:
        calls.append("put")
        orig_put(level, start, digests)

    store.get_nodes = get_nodes  # type: ignore[method-assign]
    store.put_nodes = put_nodes  # type: ignore[method-assign]
    tree = PersistentTree(store)
    tree.append_leaf_hashes(leaf_hashes(1000))
    assert calls.count("put") == 10  # one per level with new nodes
    calls.clear()
    tree.inclusion_path(357, 999)
    assert calls == ["get"]  # one batched fetch per proof


# ---------------------------------------------------------------------------------------------
# Stores, errors


def test_overlay_is_a_dry_run() -> None:
    hashes = leaf_hashes(50)
    base = MemoryNodeStore()
    PersistentTree(base).append_leaf_hashes(hashes[:21])
    snapshot = dict(base.nodes)

    overlay = OverlayNodeStore(base)
    tree = PersistentTree(overlay)
    assert tree.size == 21
    assert tree.append_leaf_hashes(hashes[21:]) == 50
    assert base.nodes == snapshot and base.size == 21  # base untouched
    assert overlay.written_size() == 50
    assert tree.root() == merkle.root_from_leaf_hashes(hashes)
    assert PersistentTree(base).root() == merkle.root_from_leaf_hashes(hashes[:21])

    direct = MemoryNodeStore()
    PersistentTree(direct).append_leaf_hashes(hashes[:21])
    before = dict(direct.nodes)
    PersistentTree(direct).append_leaf_hashes(hashes[21:])
    new_nodes = {k: v for k, v in direct.nodes.items() if k not in before}
    assert overlay.writes() == new_nodes  # only new nodes, nothing rewritten

    overlay.apply_to(base)
    assert base.nodes == direct.nodes and base.size == 50

    # the one-node write path buffers too
    overlay2 = OverlayNodeStore(base)
    overlay2.put_node(40, 0, b"\x07" * 32)
    overlay2.set_size(51)
    assert base.get_node(40, 0) is None and base.size == 50
    assert overlay2.get_node(40, 0) == b"\x07" * 32 and overlay2.get_size() == 51
    assert overlay2.get_nodes([(40, 0), (0, 0), (0, 50)]) == [b"\x07" * 32, hashes[0], None]
    assert overlay2.writes() == {(40, 0): b"\x07" * 32}


def test_bad_arguments_raise_store_error() -> None:
    tree = PersistentTree(MemoryNodeStore())
    tree.append_entries([b"a", b"b", b"c"])
    for call in [
        lambda: tree.root(4),
        lambda: tree.root(-1),
        lambda: tree.root(True),
        lambda: tree.inclusion_path(3),
        lambda: tree.inclusion_path(2, 2),
        lambda: tree.inclusion_path(-1),
        lambda: tree.consistency_path(4),
        lambda: tree.consistency_path(2, 1),
        lambda: tree.consistency_path(1, 4),
        lambda: tree.leaf_hash(3),
        lambda: tree.append_leaf_hashes([b"short"]),
        lambda: tree.append_entries(["text"]),  # type: ignore[list-item]
    ]:
        with pytest.raises(StoreError):
            call()
    assert tree.size == 3 and tree.root() == merkle.root_of([b"a", b"b", b"c"])


def test_missing_node_is_a_store_error() -> None:
    store = MemoryNodeStore()
    tree = PersistentTree(store)
    tree.append_leaf_hashes(leaf_hashes(6))
    del store.nodes[(1, 2)]  # leaves 4..5
    with pytest.raises(StoreError, match="missing"):
        tree.root()
    with pytest.raises(StoreError, match="missing"):
        tree.append_leaf_hashes(leaf_hashes(2, seed=9))  # pairs (1, 2) with the new (1, 3)
    assert tree.root(4) == merkle.root_from_leaf_hashes(leaf_hashes(4))


# ---------------------------------------------------------------------------------------------
# Bench smoke test


def _bench_module() -> ModuleType:
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.merkle_bench")


def test_bench_smoke() -> None:
    bench = _bench_module()
    res = bench.run_bench(leaves=2000, batch=300, proofs=200)
    names = [r.name for r in res.rows]
    assert len(names) == 8 and len(set(names)) == 8
    for row in res.rows:
        assert row.count > 0 and row.seconds >= 0 and row.rate > 0
    ratios = [r for r in res.rows if r.ratio is not None]
    assert len(ratios) == 4
    assert res.row("ours merkle.verify_inclusion").count == 200
    expected = merkle.root_of(bench.make_entries(2000)).hex()
    assert res.root_hex == expected
    table = res.table()
    assert "pymerkle" in table and "2,000 leaves" in table
