"""The compiled per-class converters against the plain spec-by-spec ones (the reference).

For every record class: valid values round-trip identically through both; any mutation of a
valid wire value is accepted by both with equal results, or refused by both with the same
message; objects holding wrong field values fail to encode with the same message.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tpledger.consensus.messages
import tpledger.ledger.audit
import tpledger.ledger.blocks
import tpledger.ledger.genesis
import tpledger.ledger.patient
import tpledger.ledger.proofs
import tpledger.ledger.store
import tpledger.ledger.tx
import tpledger.ledger.votes  # noqa: F401
from tests.ledger.helpers import make_world
from tpledger.ledger import encoding as enc
from tpledger.ledger.errors import EncodingError, LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.patient import MEMBER_CHARS, Opening, make_test_birth_date, make_test_nir

RECORDS = sorted(enc._TAGS.values(), key=lambda c: c.TAG)


def _valid(s: enc.Spec, depth: int = 0) -> st.SearchStrategy[Any]:
    t = type(s)
    if t is enc._Int:
        assert isinstance(s, enc._Int)
        return st.one_of(st.integers(s.lo, s.hi), st.sampled_from([s.lo, s.hi]))
    if t is enc._Bool:
        return st.booleans()
    if t is enc._Bytes:
        assert isinstance(s, enc._Bytes)
        return st.binary(min_size=s.min_len, max_size=min(s.max_len, s.min_len + 40))
    if t is enc._Str:
        assert isinstance(s, enc._Str)
        alphabet = st.sampled_from(s.charset) if s.charset else st.characters(codec="utf-8")
        return st.text(alphabet, min_size=s.min_len, max_size=min(s.max_len, s.min_len + 12))
    if t is enc._Optional:
        assert isinstance(s, enc._Optional)
        return st.one_of(st.none(), _valid(s.inner, depth))
    if t is enc._List:
        assert isinstance(s, enc._List)
        return st.lists(_valid(s.inner, depth + 1), min_size=s.min_len,
                        max_size=min(s.max_len, s.min_len + 3)).map(tuple)
    if t is enc._HashList:
        assert isinstance(s, enc._HashList)
        return st.lists(st.binary(min_size=32, max_size=32),
                        max_size=min(s.max_count, 3)).map(tuple)
    if t is enc._Nested:
        assert isinstance(s, enc._Nested)
        return _record(s.cls, depth + 1)
    raise AssertionError(f"no strategy for {s!r}")


def _special(cls: type[enc.Record]) -> st.SearchStrategy[Any] | None:
    """Records whose own invariants (``__post_init__``) random fields would rarely meet."""
    if cls is Opening:
        return st.builds(lambda seed, salt, member: Opening(
            salt, make_test_nir(random.Random(seed)), make_test_birth_date(random.Random(seed)),
            member), st.integers(0, 2**32), st.binary(min_size=32, max_size=32),
            st.text(MEMBER_CHARS, max_size=8))
    if cls is Genesis:
        return st.sampled_from([make_world(s).genesis for s in ("a", "b")])
    return None


def _record(cls: type[enc.Record], depth: int = 0) -> st.SearchStrategy[Any]:
    special = _special(cls)
    if special is not None:
        return special
    fields = {name: _valid(s, depth) for name, s in cls._specs()}

    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except (LedgerError, ValueError):  # a record's own __post_init__ invariants
            return None

    return st.fixed_dictionaries(fields).map(build).filter(lambda o: o is not None)


def _all_specs() -> list[enc.Spec]:
    out: list[enc.Spec] = []
    todo = [s for cls in RECORDS for _, s in cls._specs()]
    while todo:
        s = todo.pop()
        out.append(s)
        todo += [s.inner] if hasattr(s, "inner") else []
    return out


# Values just inside and just outside every bound any field declares: where a compiled check
# that is too lax would show.
_INTS = sorted({v for s in _all_specs() if isinstance(s, enc._Int)
                for v in (s.lo - 1, s.lo, s.hi, s.hi + 1) if -(2**63) <= v < 2**64})
_LENS = sorted({n for s in _all_specs() if isinstance(s, enc._Bytes | enc._Str)
                for n in (s.min_len - 1, s.min_len, s.max_len, s.max_len + 1) if 0 <= n <= 600})
wire_scalars = st.one_of(
    st.integers(-(2**63), 2**64 - 1), st.sampled_from(_INTS), st.binary(max_size=40),
    st.sampled_from(_LENS).map(lambda n: b"\x01" * n), st.text(max_size=12),
    st.sampled_from(_LENS).map(lambda n: "a" * n), st.booleans(), st.none(),
    st.floats(allow_nan=False),
)
wire_values = st.recursive(wire_scalars, lambda kids: st.lists(kids, max_size=4), max_leaves=8)


def _outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        out = fn(arg)
    except EncodingError as exc:
        return "error", str(exc)
    except LedgerError as exc:  # a record's own __post_init__
        return "ledger-error", (type(exc).__name__, str(exc))
    return "ok", out


def _near_bounds(s: enc.Spec) -> st.SearchStrategy[Any]:
    """Values at and just past the bounds of one field's spec."""
    if isinstance(s, enc._Optional):
        return _near_bounds(s.inner)
    if isinstance(s, enc._Int):
        return st.sampled_from([v for v in (s.lo - 1, s.lo, s.hi, s.hi + 1)
                                if -(2**63) <= v < 2**64])
    if isinstance(s, enc._Bytes | enc._Str):
        lens = st.sampled_from([n for n in (s.min_len - 1, s.min_len, s.max_len, s.max_len + 1)
                                if 0 <= n <= 70_000])
        if isinstance(s, enc._Bytes):
            return lens.map(lambda n: b"\x01" * n)
        char = (s.charset or "a")[0]
        return lens.map(lambda n: char * n)
    if isinstance(s, enc._List | enc._HashList):
        return st.lists(wire_values, max_size=5)
    return wire_values


def _mutate_field(cls: type[enc.Record], wire: list[Any], data: st.DataObject) -> list[Any]:
    i = data.draw(st.integers(0, len(cls._specs()) - 1))
    copy = list(wire)
    copy[2 + i] = data.draw(_near_bounds(cls._specs()[i][1]))
    return copy


def _mutate(wire: Any, data: st.DataObject) -> Any:
    """Replace one node (any depth) of a wire value by an arbitrary wire value."""
    if isinstance(wire, list) and wire and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(wire) - 1))
        copy = list(wire)
        copy[i] = _mutate(wire[i], data)
        return copy
    return data.draw(wire_values)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=60)
@given(data=st.data())
def test_compiled_decoder_matches_the_reference(cls: type[enc.Record],
                                                data: st.DataObject) -> None:
    obj = data.draw(_record(cls))
    wire = obj._generic_to_wire()
    assert obj.to_wire() == wire
    assert cls.from_wire(wire) == cls._generic_from_wire(wire) == obj
    mutated = _mutate(wire, data) if data.draw(st.booleans()) else _mutate_field(cls, wire, data)
    fast, ref = _outcome(cls.from_wire, mutated), _outcome(cls._generic_from_wire, mutated)
    assert fast == ref


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=40)
@given(data=st.data())
def test_compiled_encoder_refuses_what_the_reference_refuses(cls: type[enc.Record],
                                                             data: st.DataObject) -> None:
    obj = data.draw(_record(cls))
    names = [f.name for f in dataclasses.fields(cls)]
    name = data.draw(st.sampled_from(names))
    bad = object.__new__(cls)
    bad.__dict__.update({n: getattr(obj, n) for n in names})
    spec = dict(cls._specs())[name]
    bad.__dict__[name] = data.draw(st.one_of(_near_bounds(spec), wire_values, wire_values.map(
        lambda v: tuple(v) if isinstance(v, list) else v)))
    assert _outcome(lambda o: o.to_wire(), bad) == _outcome(lambda o: o._generic_to_wire(), bad)


def test_every_record_class_is_covered() -> None:
    names = {c.__name__ for c in RECORDS}
    assert {"Claim", "SignedTx", "Header", "Block", "SignedVote", "ClaimState"} <= names
