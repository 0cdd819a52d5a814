"""RFC 9162 §2.1 Merkle functions: Certificate Transparency vectors and properties."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpledger.ledger import merkle
from tpledger.ledger.errors import ProofError
from tpledger.ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_from_inclusion_path,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testonly/constants.go and proof/verify_test.go (the RFC 6962 suite)
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
NODE_HASHES = [  # [level][index] of every complete subtree of the 8-leaf tree
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


# (0-based leaf index, tree size, path)
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

# (old size, new size, path)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Hashing and CT vectors


def test_hash_definitions() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = b"\x11" * 32, b"\x22" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)


def test_leaf_hashes_match_ct() -> None:
    assert [leaf_hash(e).hex() for e in LEAVES] == NODE_HASHES[0]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_ct(size: int) -> None:
    assert root_of(LEAVES[:size]) == ROOTS[size]


def test_root_of_size_8_literal() -> None:
    assert root_of(LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_complete_subtree_hashes_match_ct() -> None:
    for level, row in enumerate(NODE_HASHES):
        width = 1 << level
        for index, expected in enumerate(row):
            sub = LEAVES[index * width : (index + 1) * width]
            assert root_of(sub).hex() == expected


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_vectors(index: int, size: int, path: list[bytes]) -> None:
    assert inclusion_path(LEAVES[:size], index) == path
    lh = leaf_hash(LEAVES[index])
    root = ROOTS[size]
    assert verify_inclusion(lh, index, size, path, root)
    # The probes of transparency-dev/merkle's verifierCheck.
    probes: list[tuple[Any, ...]] = [
        (lh, index - 1, size, path, root),
        (lh, index + 1, size, path, root),
        (lh, index ^ 2, size, path, root),
        (lh, index, size * 2, path, root),
        (lh, index, size // 2, path, root),
        (b"WrongLeaf", index, size, path, root),
        (lh, index, size, path, EMPTY_ROOT),
        (lh, index, size, path, SOME_HASH),
        (lh, index, size, [*path, b""], root),
        (lh, index, size, [*path, root], root),
        (lh, index, size, [b"", *path], root),
        (lh, index, size, [root, *path], root),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = flip(bad[i], 3)
        probes.append((lh, index, size, bad, root))
    if path:
        probes.append((lh, index, size, path[:-1], root))
    if len(path) > 1:
        probes.append((lh, index, size, [path[0], SOME_HASH, *path[1:]], root))
    for probe in probes:
        assert not verify_inclusion(*probe), probe


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_consistency_vectors(old: int, new: int, path: list[bytes]) -> None:
    assert consistency_path(LEAVES[:new], old) == path
    r1, r2 = ROOTS[old], ROOTS[new]
    assert verify_consistency(old, new, r1, r2, path)
    if not path:
        return
    probes: list[tuple[Any, ...]] = [
        (old - 1, new, r1, r2, path),
        (old + 1, new, r1, r2, path),
        (old ^ 2, new, r1, r2, path),
        (old, new * 2, r1, r2, path),
        (old, new // 2, r1, r2, path),
        (old, new, b"WrongRoot", r2, path),
        (old, new, r1, b"WrongRoot", path),
        (old, new, r2, r1, path),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*path, b""]),
        (old, new, r1, r2, [*path, r1]),
        (old, new, r1, r2, [*path, r2]),
        (old, new, r1, r2, [b"", *path]),
        (old, new, r1, r2, [r1, *path]),
        (old, new, r1, r2, [r2, *path]),
        (old, new, r1, r2, [path[0], *path]),
        (old, new, r1, r2, path[:-1]),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = flip(bad[i], 4)
        probes.append((old, new, r1, r2, bad))
    for probe in probes:
        assert not verify_consistency(*probe), probe


def test_single_entry_inclusion() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], h)
    assert not verify_inclusion(b"", 0, 1, [], b"")
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
        assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_trivial_consistency() -> None:
    r = ROOTS[3]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert verify_consistency(3, 3, r, r, [])
    assert not verify_consistency(3, 3, r, ROOTS[4], [])  # same size, different roots
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT])
    assert not verify_consistency(1, 1, r, r, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, SOME_HASH, ROOTS[1], [])  # size 0 has a fixed root
    assert not verify_consistency(1, 0, ROOTS[1], EMPTY_ROOT, [])  # time travel
    assert not verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])
    assert not verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])  # missing proof
    assert consistency_path(LEAVES, 0) == []
    assert consistency_path(LEAVES, 8) == []


def test_generators_reject_bad_arguments() -> None:
    with pytest.raises(ProofError):
        inclusion_path([], 0)
    with pytest.raises(ProofError):
        inclusion_path(LEAVES, 8)
    with pytest.raises(ProofError):
        inclusion_path(LEAVES, -1)
    with pytest.raises(ProofError):
        inclusion_path(LEAVES, True)
    with pytest.raises(ProofError):
        consistency_path(LEAVES, 9)
    with pytest.raises(ProofError):
        consistency_path(LEAVES, -1)
    with pytest.raises(ProofError):
        root_of(["text"])  # type: ignore[list-item]
    with pytest.raises(ProofError):
        merkle.root_from_leaf_hashes([b"short"])


def test_oversize_path_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # A well-formed-looking 65-element path is refused before any hashing.
    calls: list[bytes] = []

    def counting_sha256(data: bytes = b"") -> Any:
        calls.append(data)
        return hashlib.sha256(data)

    monkeypatch.setattr(merkle, "_sha256", counting_sha256)
    h = SOME_HASH
    assert not verify_inclusion(h, 2**62, 2**63 - 1, [h] * 65, h)
    assert not verify_consistency(2**62 + 1, 2**63 - 1, h, h, [h] * 65)
    assert calls == []
    assert not verify_inclusion(h, 2**62, 2**63 - 1, [h] * 64, h)
    assert calls  # the same shape with 64 elements is hashed (and fails)
    assert not verify_inclusion(h, 0, 2**63 - 1, [h] * 65, h)
    assert not verify_consistency(1, 2**63 - 1, h, h, [h] * 65)
    assert not verify_inclusion(h, 0, 2**63, [h] * 63, h)  # size beyond MAX_TREE_SIZE


# ---------------------------------------------------------------------------------------------
# Properties

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

entry_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=40, unique=True)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    entries = draw(entry_lists)
    return entries, draw(st.integers(0, len(entries) - 1))


@st.composite
def tree_and_old_size(draw: st.DrawFn) -> tuple[list[bytes], int]:
    entries = draw(entry_lists)
    return entries, draw(st.integers(0, len(entries)))


@SETTINGS
@given(tree_and_index(), st.integers(0, 255))
def test_inclusion_property(case: tuple[list[bytes], int], bit: int) -> None:
    entries, index = case
    size = len(entries)
    root = root_of(entries)
    lh = leaf_hash(entries[index])
    path = inclusion_path(entries, index)
    assert len(path) <= max(0, (size - 1).bit_length())
    assert verify_inclusion(lh, index, size, path, root)
    assert root_from_inclusion_path(lh, index, size, path) == root
    # any single bit flip anywhere fails
    assert not verify_inclusion(flip(lh, bit), index, size, path, root)
    assert not verify_inclusion(lh, index, size, path, flip(root, bit))
    for i in range(len(path)):
        bad = list(path)
        bad[i] = flip(bad[i], bit)
        assert not verify_inclusion(lh, index, size, bad, root)
    # every other index fails (entries are distinct)
    for j in range(size + 2):
        if j != index:
            assert not verify_inclusion(lh, j, size, path, root)
    # a wrong size fails against that size's own root
    for other in range(index + 1, size + 3):
        if other != size:
            other_root = root_of(entries[:other]) if other <= size else flip(root, bit)
            assert not verify_inclusion(lh, index, other, path, other_root)


@SETTINGS
@given(tree_and_old_size(), st.integers(0, 255))
def test_consistency_property(case: tuple[list[bytes], int], bit: int) -> None:
    entries, old = case
    new = len(entries)
    r1, r2 = root_of(entries[:old]), root_of(entries)
    path = consistency_path(entries, old)
    assert len(path) <= merkle.MAX_PATH_LEN
    assert verify_consistency(old, new, r1, r2, path)
    assert not verify_consistency(old, new, flip(r1, bit), r2, path)
    if old > 0:  # every tree extends the empty one
        assert not verify_consistency(old, new, r1, flip(r2, bit), path)
    for i in range(len(path)):
        bad = list(path)
        bad[i] = flip(bad[i], bit)
        assert not verify_consistency(old, new, r1, r2, bad)
    if 0 < old < new:
        assert not verify_consistency(old, new, r1, r2, path[:-1])
        assert not verify_consistency(old, new, r1, r2, [*path, SOME_HASH])
        # other old sizes fail with their own roots, except where the proof is empty anyway
        for other in range(1, new):
            if other != old:
                assert not verify_consistency(other, new, root_of(entries[:other]), r2, path)


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=5),
    st.lists(st.one_of(st.binary(min_size=31, max_size=33), st.none(), st.integers()), max_size=70),
    st.tuples(st.binary(min_size=32, max_size=32)),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(garbage, garbage, garbage, garbage, garbage)
def test_verifiers_never_raise(a: Any, b: Any, c: Any, d: Any, e: Any) -> None:
    assert verify_inclusion(a, b, c, d, e) in (True, False)
    assert verify_consistency(a, b, c, d, e) in (True, False)
    assert root_from_inclusion_path(a, b, c, d) is None or isinstance(a, bytes)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(-3, 2**64 + 3),
    st.integers(-3, 2**64 + 3),
    st.lists(st.binary(min_size=32, max_size=32), max_size=66),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_verifiers_reject_random_wellformed_input(
    x: int, y: int, path: list[bytes], h1: bytes, h2: bytes
) -> None:
    # random hashes never verify (a forgery would need a SHA-256 preimage)
    assert not verify_inclusion(h1, x, y, path, h2)
    if not (x == y and h1 == h2 and not path):
        assert not verify_consistency(x, y, h1, h2, path)
