"""The canonical codec: round trips, and strict rejection of everything else."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpledger.ledger.encoding import (
    HASH32,
    U64,
    HashList,
    ListOf,
    Nested,
    Optional,
    Record,
    Str,
    VarBytes,
    decode_any,
    pack,
    spec,
    tagged_hash,
    unpack,
)
from tpledger.ledger.errors import EncodingError


@dataclass(frozen=True)
class Inner(Record):
    TAG: ClassVar[int] = 0x7E0
    n: int = spec(U64)
    label: str = spec(Str(8, 1, "abc"))


@dataclass(frozen=True)
class Outer(Record):
    TAG: ClassVar[int] = 0x7E1
    MAX_BYTES: ClassVar[int] = 4096
    digest_: bytes = spec(HASH32)
    blob: bytes = spec(VarBytes(64))
    items: tuple[Inner, ...] = spec(ListOf(Nested(Inner), 5))
    maybe: int | None = spec(Optional(U64))


inners = st.builds(Inner, st.integers(0, 2**64 - 1), st.text("abc", min_size=1, max_size=8))
outers = st.builds(Outer, st.binary(min_size=32, max_size=32), st.binary(max_size=64),
                   st.lists(inners, max_size=5).map(tuple),
                   st.none() | st.integers(0, 2**64 - 1))


@settings(max_examples=200)
@given(outers)
def test_round_trip_is_identity_and_bytes_are_unique(o: Outer) -> None:
    data = o.encode()
    back = Outer.decode(data)
    assert back == o
    assert back.encode() == data
    assert Outer.decode(bytes(data)).encode() == data


@settings(max_examples=300)
@given(outers, st.data())
def test_any_mutation_is_rejected_or_reencodes_identically(o: Outer, data: st.DataObject) -> None:
    raw = bytearray(o.encode())
    kind = data.draw(st.sampled_from(["flip", "truncate", "append", "insert"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "append":
        raw += data.draw(st.binary(min_size=1, max_size=4))
    else:
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=3))
    try:
        back = Outer.decode(bytes(raw))
    except EncodingError:
        return  # the only exception type a decoder may raise
    # A mutation that still decodes must be another valid object with exactly these bytes.
    assert back.encode() == bytes(raw)
    assert back != o


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_encoding_error(raw: bytes) -> None:
    with contextlib.suppress(EncodingError):
        Outer.decode(raw)


def test_non_canonical_forms_are_rejected() -> None:
    o = Outer(b"\x01" * 32, b"", (Inner(5, "a"),), None)
    wire = o.to_wire()
    good = pack(wire)
    # The same value with a wider integer encoding (uint16 for a fixint), or str8 for a fixstr.
    wide_int = good.replace(b"\x94\xcd\x07\xe0\x01\x05", b"\x94\xcd\x07\xe0\x01\xcd\x00\x05")
    assert wide_int != good
    with pytest.raises(EncodingError, match="non-canonical"):
        Outer.decode(wide_int)
    with pytest.raises(EncodingError):
        unpack(b"\xd9\x01a")  # str8 holding one byte
    with pytest.raises(EncodingError, match="trailing"):
        Outer.decode(good + b"\xc0")
    with pytest.raises(EncodingError):
        unpack(msgpack.packb({"a": 1}))  # maps are never used
    with pytest.raises(EncodingError, match="forbidden wire type"):
        unpack(msgpack.packb([1.5]))  # floats neither
    with pytest.raises(EncodingError, match="exceeds"):
        unpack(b"\x90" * 10, max_bytes=5)


def test_wrong_tag_version_arity_and_types_are_rejected() -> None:
    o = Outer(b"\x01" * 32, b"x", (), 7)
    w = o.to_wire()
    for bad, msg in [
        ([Inner.TAG, *w[1:]], "tag"),
        ([w[0], 2, *w[2:]], "version"),
        (w[:-1], "elements"),
        ([*w[:2], b"\x01" * 31, *w[3:]], "32 bytes"),
        ([*w[:3], "text", *w[4:]], "bytes"),
        ([*w[:4], [[Inner.TAG, 1, 1, "zz"]], w[5]], "character"),
        ([*w[:4], [[Inner.TAG, 1, 1, "a"]] * 6, w[5]], "items"),
        ([*w[:5], -1], "range"),
        ([*w[:5], True], "integer"),
    ]:
        with pytest.raises(EncodingError, match=msg):
            Outer.decode(pack(bad))


def test_oversize_object_is_refused_on_encode_and_decode() -> None:
    @dataclass(frozen=True)
    class Small(Record):
        TAG: ClassVar[int] = 0x7E2
        MAX_BYTES: ClassVar[int] = 16
        blob: bytes = spec(VarBytes(100))

    with pytest.raises(EncodingError, match="more than 16"):
        Small(b"x" * 50).encode()
    with pytest.raises(EncodingError, match="exceeds"):
        Small.decode(pack([0x7E2, 1, b"x" * 50]))


def test_decode_any_selects_by_tag() -> None:
    i = Inner(3, "b")
    assert decode_any(i.encode(), (Outer, Inner), 1024) == i
    with pytest.raises(EncodingError, match="unknown type tag"):
        decode_any(i.encode(), (Outer,), 1024)


def test_tagged_hashes_are_domain_separated() -> None:
    assert tagged_hash("a", b"bc") != tagged_hash("ab", b"c")
    assert Inner(1, "a").digest() != tagged_hash("tpledger/Outer", Inner(1, "a").encode())


def test_duplicate_tags_are_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="tag"):
        @dataclass(frozen=True)
        class Clash(Record):
            TAG: ClassVar[int] = 0x7E0
            n: int = spec(U64)


@dataclass(frozen=True)
class Path3(Record):
    TAG: ClassVar[int] = 0x7E3
    path: tuple[bytes, ...] = spec(HashList(3))


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=3).map(tuple))
def test_hash_list_packs_hashes_in_one_byte_string(path: tuple[bytes, ...]) -> None:
    p = Path3(path)
    data = p.encode()
    assert Path3.decode(data) == p
    assert unpack(data)[2] == b"".join(path)  # one bin field on the wire


def test_hash_list_rejects_bad_lengths_and_counts() -> None:
    for bad in (b"\x00" * 31, b"\x00" * 33, b"\x00" * 128):
        with pytest.raises(EncodingError, match="multiple of 32"):
            Path3.decode(pack([0x7E3, 1, bad]))
    with pytest.raises(EncodingError, match="at most 3"):
        Path3((b"\x00" * 32,) * 4).encode()
    with pytest.raises(EncodingError, match="32 bytes"):
        Path3((b"\x00" * 31,)).encode()
