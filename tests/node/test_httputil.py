"""Strict path and query arguments and JSON errors (``node/httputil.py``)."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import make_mocked_request

from tpledger.ledger.errors import StoreCorruption
from tpledger.node.errors import ApiError
from tpledger.node.httputil import _damage_in, error_response, height_arg, hex32, int_arg


def test_hex32_takes_64_hex_characters_only() -> None:
    assert hex32("ab" * 32, "claim id") == b"\xab" * 32
    for bad in ("ab" * 31, "ab" * 33, "zz" * 32, ""):
        with pytest.raises(ApiError) as info:
            hex32(bad, "claim id")
        assert info.value.code == "bad_id"


@pytest.mark.parametrize(("query", "code"), [("", "missing_parameter"), ("?n=-1", "bad_parameter"),
                                             ("?n=1.5", "bad_parameter"),
                                             ("?n=" + "9" * 21, "bad_parameter")])
def test_int_arg_refuses_what_is_not_a_whole_number(query: str, code: str) -> None:
    with pytest.raises(ApiError) as info:
        int_arg(make_mocked_request("GET", "/x" + query), "n")
    assert info.value.code == code
    assert int_arg(make_mocked_request("GET", "/x?n=42"), "n") == 42
    assert int_arg(make_mocked_request("GET", "/x"), "n", 7) == 7


def test_height_arg_is_within_the_chain() -> None:
    def req(h: str) -> object:
        return make_mocked_request("GET", f"/v1/blocks/{h}", match_info={"height": h})

    assert height_arg(req("3"), 3) == 3  # type: ignore[arg-type]
    for h, code in (("0", "unknown_height"), ("4", "unknown_height"), ("x", "bad_height")):
        with pytest.raises(ApiError) as info:
            height_arg(req(h), 3)  # type: ignore[arg-type]
        assert info.value.code == code


def test_errors_are_json_with_a_stable_code() -> None:
    r = error_response(503, "mempool_full", "retry", retry_after_s=1)
    assert r.status == 503 and r.headers["Retry-After"] == "1"
    assert json.loads(r.body) == {"error": {"code": "mempool_full", "message": "retry"}}


def test_damage_is_found_behind_what_a_handler_made_of_it() -> None:
    damage = StoreCorruption("claims", b"\x01")
    try:
        try:
            raise damage
        except StoreCorruption:
            raise ApiError(400, "bad", "x") from None
    except ApiError as exc:
        assert _damage_in(exc) is damage
    assert _damage_in(ValueError()) is None
