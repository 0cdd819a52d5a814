"""Bounded JSON parsing and the echo rule for values from outside."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpledger.ledger.jsonsafe import json_depth, loads_bounded
from tpledger.ledger.patient import WITHHELD, make_test_birth_date, make_test_nir, shown

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                     lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                     max_leaves=30)


def _depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@given(_json)
def test_depth_matches_a_simple_model(v: object) -> None:
    text = json.dumps(v).encode()
    assert json_depth(text, 1000) == _depth(v)
    assert loads_bounded(text, len(text), max(_depth(v), 1)) == v


def test_deep_or_large_input_is_refused_before_parsing() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError, match="deeper"):
        loads_bounded(deep, len(deep))
    with pytest.raises(ValueError, match="larger"):
        loads_bounded(b"[1]", 2)
    assert loads_bounded(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 100, 2) == {
        "a": "[" * 40}


def test_values_that_look_like_a_nir_or_a_date_are_withheld() -> None:
    import random

    rng = random.Random(5)
    for _ in range(200):
        nir, bd = make_test_nir(rng), make_test_birth_date(rng)
        for v in (nir, nir[:13], f"{nir[:5]} {nir[5:10]} {nir[10:]}", bd,
                  "/".join(reversed(bd.split("-"))), bd.replace("-", "")):
            assert shown(v) == WITHHELD, v
    for v in ("mutuelle-a", "2210546", "12.04", "optic-paris"):
        assert shown(v) == repr(v)
