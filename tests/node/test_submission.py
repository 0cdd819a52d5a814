"""The submission envelope (``node/submission.py``): what the client, bench and gossip build is
what the API and gossip parse; anything else is a clean SubmissionError with the API's code."""

from __future__ import annotations

import json

import msgpack
import pytest

import tpledger.node.submission as submission
from tpledger.node.submission import (
    SubmissionError,
    encode_submission,
    parse_json_submission,
    parse_submission,
)

ITEMS = [(b"tx-1", [("mutuelle-a", b"box-a"), ("cnam", b"box-c")]), (b"tx-2", [])]


def test_what_is_built_parses_back() -> None:
    assert parse_submission(encode_submission(ITEMS), 10) == ITEMS
    # tuples or lists, as the client and the bench hold them
    as_lists = [(tx, [list(p) for p in sealed]) for tx, sealed in ITEMS]
    assert encode_submission(as_lists) == encode_submission(ITEMS)  # type: ignore[arg-type]


def test_json_form_parses_to_the_same_items() -> None:
    doc = {"txs": [{"tx": tx.hex(), "sealed": {o: b.hex() for o, b in sealed}}
                   for tx, sealed in ITEMS]}
    assert parse_json_submission(json.dumps(doc).encode(), 10) == ITEMS


def _packed(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(("body", "fragment"), [
    (b"\xc1", "msgpack"),
    (_packed(5), "array of [tx, sealed]"),
    (_packed([[b"tx", []]] * 3), "too many transactions"),
    (_packed([[b"tx"]]), "each item must be"),
    (_packed([["tx-as-str", []]]), "each item must be"),
    (_packed([[b"tx", [["org", b"b"]] * 5]]), "each item must be"),
    (_packed([[b"tx", [["org", "box-as-str"]]]]), "each sealed opening"),
    (_packed([[b"tx", [["o" * 65, b"box"]]]]), "each sealed opening"),
    (_packed([[b"tx", [["org", b"x" * 4097]]]]), "each sealed opening"),
])
def test_malformed_envelopes_are_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(SubmissionError) as info:
        parse_submission(body, 2)
    assert info.value.code == "malformed_body"
    assert fragment in str(info.value) or fragment == "msgpack"


def test_the_opening_size_bound_is_what_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken variant: with the bound lifted, an oversize opening would be carried along."""
    body = _packed([[b"tx", [["org", b"x" * 4097]]]])
    with pytest.raises(SubmissionError):
        parse_submission(body, 2)
    monkeypatch.setattr(submission, "MAX_SEALED_BYTES", 10_000)
    assert parse_submission(body, 2) == [(b"tx", [("org", b"x" * 4097)])]


@pytest.mark.parametrize(("doc", "code"), [
    (b"[1", "malformed_body"),
    (b'{"x": []}', "malformed_body"),
    (json.dumps({"txs": [{"tx": "00"}] * 3}).encode(), "batch_too_large"),
    (b'{"txs": [{"tx": 1}]}', "malformed_body"),
    (b'{"txs": [{"tx": "zz"}]}', "malformed_body"),
    (b'{"txs": [{"tx": "00", "sealed": {"a": 1}}]}', "malformed_body"),
    (b'{"txs": [{"tx": "00", "sealed": ["a"]}]}', "malformed_body"),
    (b'{"txs": [{"tx": "00", "sealed": {"a": "", "b": "", "c": "", "d": "", "e": ""}}]}',
     "malformed_body"),
])
def test_malformed_json_is_refused_with_its_code(doc: bytes, code: str) -> None:
    with pytest.raises(SubmissionError) as info:
        parse_json_submission(doc, 2)
    assert info.value.code == code
