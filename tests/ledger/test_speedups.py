"""The optional C fast paths (``ledger/_speedups.c``) against the Python code they shadow.

The canonical msgpack parser may only accept what the Python reference accepts, with the same
value; everything else goes back to the reference, so ``unpack`` answers exactly as it would
without C. The record builders are compared with the Python decoders in
``test_compiled_codec.py`` (``cls.from_wire`` is the C builder when it is built) and here with
the Python compiled decoder directly.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ledger.test_compiled_codec import RECORDS, _mutate, _mutate_field, _outcome, _record
from tpledger.ledger import encoding as enc
from tpledger.ledger.errors import EncodingError

C = enc._c
needs_c = pytest.mark.skipif(C is None, reason="ledger._speedups is not built here")

_EDGE_INTS = [0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
              2**63, 2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2**31),
              -(2**31) - 1, -(2**63)]
_LENGTHS = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.sampled_from(_EDGE_INTS),
    st.binary(max_size=40), st.sampled_from(_LENGTHS).map(lambda n: b"b" * n),
    st.text(max_size=12), st.sampled_from(_LENGTHS).map(lambda n: "s" * n),
    st.sampled_from(["é", "日本", "\U0001f600"]),
)
values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.sampled_from([15, 16, 17]).flatmap(
        lambda n: st.lists(kids, min_size=n, max_size=n))), max_leaves=20)


def _reference(data: bytes, max_bytes: int = enc.MAX_ENCODED_BYTES) -> tuple[str, Any]:
    try:
        return "ok", enc._unpack_py(data, max_bytes, True, True)
    except EncodingError as exc:
        return "error", str(exc)


def _c(data: bytes, max_bytes: int = enc.MAX_ENCODED_BYTES) -> tuple[str, Any]:
    try:
        return "ok", C.unpack(data, max_bytes)
    except ValueError:
        return "refused", None


def _typed(v: Any) -> Any:
    """A value with its exact types spelled out (True == 1 in Python, not on the wire)."""
    if isinstance(v, list):
        return [_typed(x) for x in v]
    return (type(v).__name__, v)


def test_speedups_are_built_where_a_compiler_is() -> None:
    if not (sysconfig.get_config_var("CC") and shutil.which("cc")):
        pytest.skip("no C compiler here: the Python code runs alone")
    if os.environ.get("TPLEDGER_NO_SPEEDUPS"):
        pytest.skip("turned off by TPLEDGER_NO_SPEEDUPS")
    assert C is not None and enc.speedups_enabled()


@needs_c
@settings(max_examples=300)
@given(values)
def test_c_parser_reads_every_canonical_value_as_the_reference(v: Any) -> None:
    data = enc.pack(v)
    kind, got = _c(data)
    assert kind == "ok"
    assert _typed(got) == _typed(v) == _typed(_reference(data)[1])
    assert _typed(enc.unpack(data)) == _typed(v)


@needs_c
@settings(max_examples=400)
@given(values, st.data())
def test_c_parser_is_never_looser_than_the_reference(v: Any, data: st.DataObject) -> None:
    raw = bytearray(enc.pack(v))
    how = data.draw(st.sampled_from(["flip", "cut", "extend", "splice", "random"]))
    if how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "cut" and raw:
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=4))
    elif how == "splice" and raw:
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    elif how == "random":
        raw = bytearray(data.draw(st.binary(max_size=64)))
    b = bytes(raw)
    max_bytes = data.draw(st.sampled_from([enc.MAX_ENCODED_BYTES, 8, 64]))
    kind, got = _c(b, max_bytes)
    ref = _reference(b, max_bytes)
    if kind == "ok":
        assert ref[0] == "ok" and _typed(got) == _typed(ref[1])
    # and the public function answers exactly as the reference, C or not
    try:
        public: tuple[str, Any] = ("ok", _typed(enc.unpack(b, max_bytes)))
    except EncodingError as exc:
        public = ("error", str(exc))
    assert public == ((ref[0], _typed(ref[1])) if ref[0] == "ok" else ref)


@needs_c
@pytest.mark.parametrize("data", [
    b"\xcc\x05", b"\xcd\x00\x80", b"\xce\x00\x00\xff\xff", b"\xcf\x00\x00\x00\x00\xff\xff\xff\xff",
    b"\xd0\x05", b"\xd0\xe0", b"\xd1\xff\x80", b"\xd2\xff\xff\x80\x00",
    b"\xd3\xff\xff\xff\xff\x80\x00\x00\x00", b"\xd9\x01a", b"\xda\x00\x01a", b"\xc5\x00\x01x",
    b"\xc6\x00\x00\x00\x01x", b"\xdc\x00\x01\x01", b"\xdd\x00\x00\x00\x01\x01",
    b"\xca\x00\x00\x00\x00", b"\xcb" + bytes(8), b"\x80", b"\x81\x01\x01", b"\xd4\x00\x00",
    b"\xc1", b"\x01\x01", b"\x92\x01", b"\xa1\xff", b"\xa3\xed\xa0\x80", b"", b"\xc4\x05ab",
    b"\x91" * 40 + b"\x01",
], ids=lambda d: d[:6].hex() or "empty")
def test_c_parser_refuses_non_canonical_and_foreign_encodings(data: bytes) -> None:
    assert _c(data)[0] == "refused"
    # what the public function says is the reference's verdict
    ref = _reference(data)
    if ref[0] == "error":
        with pytest.raises(EncodingError, match=ref[1][:20].replace("(", r"\(")):
            enc.unpack(data)


@needs_c
def test_c_parser_limits() -> None:
    assert _c(b"\xc4\x05abcde", 5)[0] == "refused"  # the input itself is over the limit
    assert _c(b"\xc4\x05abcde", 7) == ("ok", b"abcde")
    assert _c(b"\x92\xc4\x03abc\xa2xy", 4)[0] == "refused"  # a field longer than max_bytes
    assert _c(msgpack.packb([1] * 100), 1000)[1] == [1] * 100
    assert _c(b"\xdd\x00\x0f\x42\x41", 10_000)[0] == "refused"  # count past the input's end


@needs_c
@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=40)
@given(data=st.data())
def test_c_builder_matches_the_python_decoder(cls: type[enc.Record],
                                              data: st.DataObject) -> None:
    enc._from_wire_of(cls)  # compiled on first use
    python = cls.__dict__["_py_from_wire_fn"].__func__
    obj = data.draw(_record(cls))
    wire = obj._generic_to_wire()
    assert cls.from_wire(wire) == python(wire) == obj
    mutated = _mutate(wire, data) if data.draw(st.booleans()) else _mutate_field(cls, wire, data)
    assert _outcome(cls.from_wire, mutated) == _outcome(python, mutated)


@needs_c
def test_claims_decode_in_c() -> None:
    from tpledger.ledger.tx import Claim

    fn = Claim.__dict__["_from_wire_fn"].__func__
    assert C.state(fn)[0] is Claim  # the class's decoder is the C builder


# A shop's client reference is unique per claim: the C builder checks it against the spec's
# character table instead of a set of strings seen before (every new reference missed that set
# and sent the whole claim to the Python decoder: ~3 µs per claim, the issue-14 regression).
_REF_EDGES = ["A", "~", "!" * 64, "", "a" * 65, "a b", " ", "é", "a\x7f", "a\x00", "日本",
              "a\U0001f600", "INV-2026-0001"]


def _claim_wire(ref: str) -> list[Any]:
    from tests.ledger.helpers import make_claim, make_world
    from tpledger.ledger.tx import Claim

    claim = make_claim(make_world("refs")).parse()
    assert isinstance(claim, Claim)
    wire = claim._generic_to_wire()
    wire[-1] = ref  # client_ref is the last field
    return wire


def _counting_decoder(ref_field: tuple[Any, ...]) -> tuple[Any, list[int]]:
    """A C builder of Claim with ``ref_field`` for client_ref and a fallback that counts."""
    from tpledger.ledger.tx import Claim

    python = Claim.__dict__["_py_from_wire_fn"].__func__
    calls = [0]

    def fallback(obj: Any) -> Any:
        calls[0] += 1
        return python(obj)

    plan = (*enc._c_plan(Claim)[:-1], ref_field)
    return C.decoder(Claim, Claim.TAG, Claim.VERSION, plan, fallback, object.__new__), calls


@needs_c
@pytest.mark.parametrize("ref", _REF_EDGES)
def test_client_refs_are_checked_in_c_exactly_as_in_python(ref: str) -> None:
    from tpledger.ledger.tx import Claim

    python = Claim.__dict__["_py_from_wire_fn"].__func__
    wire = _claim_wire(ref)
    assert _outcome(Claim.from_wire, wire) == _outcome(python, wire)


@needs_c
def test_a_looser_c_table_would_be_caught() -> None:
    """The broken variant: a table allowing every ASCII char accepts what Python refuses."""
    from tpledger.ledger.tx import Claim

    python = Claim.__dict__["_py_from_wire_fn"].__func__
    loose, _ = _counting_decoder(("client_ref", enc._K_STR_ASCII, 1, 64, bytes([1]) * 128))
    wire = _claim_wire("a b")
    assert _outcome(loose, wire)[0] == "ok" != _outcome(python, wire)[0]


@needs_c
def test_fresh_client_refs_decode_in_c_without_the_python_fallback() -> None:
    from tpledger.ledger.tx import Claim, ClientRef

    field = enc._c_plan(Claim)[-1]
    assert field[:2] == ("client_ref", enc._K_STR_ASCII)
    fast, fast_calls = _counting_decoder(field)
    # the old plan: a set of strings accepted before, which a fresh reference always misses
    old, old_calls = _counting_decoder(("client_ref", enc._K_STR_KNOWN, 0, 0, set()))
    for i in range(50):
        wire = _claim_wire(f"INV-{i}")
        assert fast(wire) == old(wire) == Claim.from_wire(wire)
    assert fast_calls == [0] and old_calls == [50]
    assert not ClientRef._known_good  # type: ignore[attr-defined] - nothing remembered
