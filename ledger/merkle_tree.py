"""Persistent append-only Merkle tree (RFC 9162 §2.1) over a node store.

Only complete-subtree hashes are stored: key ``(level, index)`` holds the hash of leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a node
never changes once written, so the root and every proof at *any* past size can be rebuilt
from O(log n) stored nodes:

* appending k leaves reads at most popcount(size) frontier nodes and writes < 2k nodes;
  the parents of a batch are computed level by level in memory, then written per level
  (``put_nodes`` when the store has it, see :class:`NodeStore`);
* ``root(m)`` reads popcount(m) nodes; an inclusion or consistency path reads at most
  2 ceil(log2(m)) + 2 nodes (one right-edge range, the rest complete subtrees), fetched in
  one ``get_nodes`` call when the store has it (see :class:`NodeStore`).

The output is byte-for-byte the RFC 9162 ``MTH``/``PATH``/``PROOF`` of ``ledger.merkle``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import repeat
from typing import Protocol, runtime_checkable

from tpledger.ledger.errors import StoreError
from tpledger.ledger.merkle import EMPTY_ROOT, HASH_LEN, MAX_TREE_SIZE

_sha256 = hashlib.sha256


@runtime_checkable
class NodeStore(Protocol):
    """Where the tree keeps its complete-subtree hashes and its size.

    Optional fast paths, used when a store has them (looked up per method): ``put_nodes(level,
    start, digests)`` writes ``digests`` at ``(level, start)``, ``(level, start + 1)``, ...;
    ``get_nodes(keys)`` reads many ``(level, index)`` keys at once (``None`` where missing).
    """

    def get_node(self, level: int, index: int) -> bytes | None: ...

    def put_node(self, level: int, index: int, digest: bytes) -> None: ...

    def get_size(self) -> int: ...

    def set_size(self, size: int) -> None: ...


class MemoryNodeStore:
    """Dict-backed node store (tests, tools)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def get_node(self, level: int, index: int) -> bytes | None:
        return self.nodes.get((level, index))

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        self.nodes[(level, index)] = digest

    def put_nodes(self, level: int, start: int, digests: Sequence[bytes]) -> None:
        self.nodes.update(
            zip(
                zip(repeat(level), range(start, start + len(digests)), strict=False),
                digests,
                strict=True,
            )
        )

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        return list(map(self.nodes.get, keys))

    def get_size(self) -> int:
        return self.size

    def set_size(self, size: int) -> None:
        self.size = size


class OverlayNodeStore:
    """Buffers writes in a dict over a base store that is only read (dry runs).

    ``writes()`` returns the buffered nodes, ``written_size()`` the buffered size (or
    ``None``); ``apply_to(target)`` copies both into another store.
    """

    def __init__(self, base: NodeStore) -> None:
        self.base = base
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._size: int | None = None

    def get_node(self, level: int, index: int) -> bytes | None:
        d = self._nodes.get((level, index))
        return d if d is not None else self.base.get_node(level, index)

    def put_node(self, level: int, index: int, digest: bytes) -> None:
        self._nodes[(level, index)] = digest

    def put_nodes(self, level: int, start: int, digests: Sequence[bytes]) -> None:
        self._nodes.update(
            zip(
                zip(repeat(level), range(start, start + len(digests)), strict=False),
                digests,
                strict=True,
            )
        )

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes | None]:
        return [self.get_node(level, index) for level, index in keys]

    def get_size(self) -> int:
        return self._size if self._size is not None else self.base.get_size()

    def set_size(self, size: int) -> None:
        self._size = size

    def writes(self) -> dict[tuple[int, int], bytes]:
        """A copy of the buffered node writes."""
        return dict(self._nodes)

    def written_size(self) -> int | None:
        return self._size

    def apply_to(self, target: NodeStore) -> None:
        """Write the buffered nodes, then the buffered size, into ``target``."""
        put_many = getattr(target, "put_node_items", None)
        if put_many is not None:
            put_many(sorted(self._nodes.items()))
        else:
            for (level, index), digest in sorted(self._nodes.items()):
                target.put_node(level, index, digest)
        if self._size is not None:
            target.set_size(self._size)


class PersistentTree:
    """An RFC 9162 Merkle tree whose complete subtrees live in a :class:`NodeStore`.

    Bad arguments (index or size out of range, malformed leaf hashes) raise ``StoreError``,
    as does a store missing a node it should hold.
    """

    def __init__(self, nodes: NodeStore) -> None:
        self.nodes = nodes

    @property
    def size(self) -> int:
        return self.nodes.get_size()

    # -- appending --------------------------------------------------------------------------

    def append_entries(self, entries: Sequence[bytes]) -> int:
        """Append raw entries (hashed as RFC 9162 leaves); returns the new size."""
        sha = _sha256
        try:
            hashes = [sha(b"\x00" + e).digest() for e in entries]
        except TypeError as exc:
            raise StoreError("Merkle entries must be bytes") from exc
        return self._append(hashes)

    def append_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaf hashes; returns the new size."""
        hashes = list(leaf_hashes)
        for h in hashes:
            if not isinstance(h, bytes) or len(h) != HASH_LEN:
                raise StoreError("leaf hashes must be 32-byte bytes")
        return self._append(hashes)

    def _append(self, cur: list[bytes]) -> int:
        nodes = self.nodes
        old = nodes.get_size()
        new = old + len(cur)
        if new > MAX_TREE_SIZE:
            raise StoreError("Merkle tree full")
        if not cur:
            return old
        put_many = getattr(nodes, "put_nodes", None)
        put = nodes.put_node
        sha = _sha256
        start, level = old, 0
        while True:
            if put_many is not None:
                put_many(level, start, cur)
            else:
                for i, d in enumerate(cur):
                    put(level, start + i, d)
            if start & 1:  # the first new node pairs with the stored left frontier node
                cur = [*self._fetch([(level, start - 1)]), *cur]
                start -= 1
            if len(cur) < 2:
                break
            it = iter(cur)
            cur = [
                sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)
            ]  # odd one waits
            start >>= 1
            level += 1
        nodes.set_size(new)
        return new

    def set_leaf_hash(self, index: int, leaf_hash: bytes) -> None:
        """Replace leaf ``index``'s hash in place (a positional tree, e.g. the registry's):
        rewrites the complete-subtree nodes ``(level, index >> level)`` that contain it,
        reading one sibling per level. Earlier roots and paths are then those of the new
        leaf (a store that keeps them versions its nodes)."""
        n = self.nodes.get_size()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise StoreError("leaf index out of range")
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_LEN:
            raise StoreError("leaf hashes must be 32-byte bytes")
        put = self.nodes.put_node
        put(0, index, leaf_hash)
        cur, level, j = leaf_hash, 0, index
        while ((j >> 1) + 1) << (level + 1) <= n:  # the parent is a complete subtree
            sibling = self._fetch([(level, j ^ 1)])[0]
            cur = _sha256(b"\x01" + (sibling + cur if j & 1 else cur + sibling)).digest()
            j >>= 1
            level += 1
            put(level, j, cur)

    # -- reading ----------------------------------------------------------------------------
    #
    # Every read builds a plan first: a flat list of node keys and, per output hash, how many
    # consecutive keys fold into it (1 for a complete subtree, more for a right-edge range).
    # All keys are then fetched at once (``get_nodes`` when the store has it).

    def _fetch(self, keys: list[tuple[int, int]]) -> list[bytes]:
        get_many = getattr(self.nodes, "get_nodes", None)
        if get_many is not None:
            vals: list[bytes | None] = get_many(keys)
        else:
            get = self.nodes.get_node
            vals = [get(level, index) for level, index in keys]
        if None in vals:
            level, index = keys[vals.index(None)]
            raise StoreError(f"Merkle node ({level}, {index}) missing from the store")
        return vals  # type: ignore[return-value]

    def _resolve(self, keys: list[tuple[int, int]], groups: list[int]) -> list[bytes]:
        vals = self._fetch(keys)
        sha = _sha256
        out: list[bytes] = []
        pos = 0
        for g in groups:
            if g == 1:
                out.append(vals[pos])
            else:
                j = pos + g - 1
                r = vals[j]
                while j > pos:
                    j -= 1
                    r = sha(b"\x01" + vals[j] + r).digest()
                out.append(r)
            pos += g
        return out

    def _check_size(self, size: int | None) -> int:
        current = self.nodes.get_size()
        if size is None:
            return current
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= current:
            raise StoreError("tree size out of range")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Root of the tree of the first ``size`` leaves (default: all)."""
        n = self._check_size(size)
        if n == 0:
            return EMPTY_ROOT
        keys: list[tuple[int, int]] = []
        return self._resolve(keys, [_range_keys(0, n, keys)])[0]

    def leaf_hash(self, index: int) -> bytes:
        """The stored hash of leaf ``index``."""
        n = self.nodes.get_size()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise StoreError("leaf index out of range")
        return self._fetch([(0, index)])[0]

    def inclusion_path(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]) (default size: current).

        Below level ``inner`` (the highest bit where ``index`` and ``size - 1`` differ) the
        siblings are complete subtrees, except the one at level ``inner - 1``, which spans to the
        right edge; above it, the path takes the left sibling at each set bit of ``index``.
        """
        n = self._check_size(size)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise StoreError("leaf index out of range")
        inner = (index ^ (n - 1)).bit_length()
        keys = [(level, (index >> level) ^ 1) for level in range(inner - 1)]
        groups = [1] * len(keys)
        if inner:
            level = inner - 1
            groups.append(_range_keys(((index >> level) ^ 1) << level, n, keys))
        rest, level = index >> inner, inner
        while rest:
            if rest & 1:
                keys.append((level, (index >> level) ^ 1))
                groups.append(1)
            rest >>= 1
            level += 1
        return self._resolve(keys, groups)

    def consistency_path(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[0:new_size]); empty if old_size is 0 or new_size.

        Walks SUBPROOF top-down, collecting the ranges whose hashes it emits, then reverses.
        """
        n = self._check_size(new_size)
        if isinstance(old_size, bool) or not isinstance(old_size, int) or not 0 <= old_size <= n:
            raise StoreError("old tree size out of range")
        if old_size in (0, n):
            return []
        ranges: list[tuple[int, int]] = []
        lo, hi, complete_old = 0, n, True
        while old_size != hi:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            mid = lo + k
            if old_size <= mid:
                ranges.append((mid, hi))
                hi = mid
            else:
                ranges.append((lo, mid))
                lo = mid
                complete_old = False
        if not complete_old:
            ranges.append((lo, hi))
        keys: list[tuple[int, int]] = []
        groups = [_range_keys(a, b, keys) for a, b in reversed(ranges)]
        return self._resolve(keys, groups)


def _range_keys(start: int, end: int, keys: list[tuple[int, int]]) -> int:
    """Append the keys of the complete subtrees covering leaves [start, end); return how many.

    ``start`` must be a multiple of the largest of them (true of every RFC 9162 subtree).
    """
    length = end - start
    if length & (length - 1) == 0:
        level = length.bit_length() - 1
        keys.append((level, start >> level))
        return 1
    count = 0
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
            count += 1
    return count
