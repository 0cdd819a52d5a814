"""Bad input over the real HTTP API of a running cluster: every answer is a 4xx JSON error
with a stable code, and the node stays healthy and keeps committing."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse

import pytest

from tests.node.conftest import make_claims, status, wait_until
from tpledger.cli.cluster import LocalCluster
from tpledger.ledger.encoding import pack
from tpledger.ledger.tx import Decision, SignedTx, sign_tx
from tpledger.node.auth import sign_request

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)


def _request(url: str, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _error_code(status_code: int, body: bytes) -> str:
    assert 400 <= status_code < 500, (status_code, body[:200])
    doc = json.loads(body)
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    return str(doc["error"]["code"])


def _post(url: str, body: bytes, ctype: str) -> tuple[int, bytes]:
    st, _, data = _request(url, "POST", "/v1/txs", body, {"Content-Type": ctype})
    return st, data


def test_malformed_bodies_get_json_errors(cluster: LocalCluster) -> None:
    url = cluster.urls[0]
    cases: list[tuple[bytes, str, str]] = [
        (b"\xc1\xc1", "application/msgpack", "malformed_body"),
        (pack([[b"x", []]]) + b"\x00", "application/msgpack", "malformed_body"),  # trailing
        (b"\xcd\x00\x01", "application/msgpack", "malformed_body"),  # non-canonical int
        (b"\x81\xa1a\x01", "application/msgpack", "malformed_body"),  # a map
        (pack([["not-bytes", []]]), "application/msgpack", "malformed_body"),
        (b"{not json", "application/json", "malformed_body"),
        (b'{"txs": "nope"}', "application/json", "malformed_body"),
        (b'{"txs": [{"tx": "zz"}]}', "application/json", "malformed_body"),
        (b"[]", "application/msgpack", "malformed_body"),
        (pack([]), "application/msgpack", "empty_batch"),
        (b"hello", "text/plain", "unsupported_media_type"),
    ]
    for body, ctype, code in cases:
        st, data = _post(url, body, ctype)
        assert _error_code(st, data) == code, (body, data)


def test_oversize_body_is_refused(cluster: LocalCluster) -> None:
    st, data = _post(cluster.urls[1], b"\x00" * (9 * 1024 * 1024), "application/msgpack")
    assert st == 413
    assert _error_code(st, data) == "body_too_large"


def test_bad_signatures_roles_and_replays(cluster: LocalCluster) -> None:
    c = cluster
    url = c.urls[2]
    claims, _ = make_claims(c, "optic-paris", "mutuelle-a", 2, seed=77)
    good = claims[0].stx

    # A flipped signature byte: rejected, with the tx id named.
    forged = SignedTx(good.body, good.signer, bytes([good.signature[0] ^ 1]) + good.signature[1:])
    # An insurer signing a claim in an optician's name: wrong role.
    ins = c.key("mutuelle-a")
    wrong_role = sign_tx(c.genesis().chain_id, ins.signer, good.parse())
    # A decision by the optician on its own claim: wrong role for a payer's tx.
    self_decide = sign_tx(c.genesis().chain_id, c.key("optic-paris").signer,
                          Decision(claims[1].claim_id, 2, True, 100, ""))
    garbage_tx = b"\x93\x40\x01\xc0"
    body = pack([[forged.encode(), []], [wrong_role.encode(), []], [self_decide.encode(), []],
                 [garbage_tx, []]])
    st, data = _post(url, body, "application/msgpack")
    assert st == 200
    results = json.loads(data)["results"]
    codes = [r.get("code") for r in results]
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert codes[0] == "bad_signature"
    assert codes[1] in ("wrong_role", "wrong_org")
    assert codes[2] in ("wrong_role", "unknown_claim")
    assert codes[3] == "malformed_tx"

    # A sealed opening that does not match the claim's digest is refused.
    org, sealed = claims[1].sealed[0]
    bad_sealed = pack([[claims[1].stx.encode(), [[org, sealed[:-1] + bytes([sealed[-1] ^ 1])]]]])
    st, data = _post(url, bad_sealed, "application/msgpack")
    assert json.loads(data)["results"][0]["code"] == "sealed_mismatch"

    # Replay: the same signed claim submitted again after commit is refused.
    item = pack([[good.encode(), [list(p) for p in claims[0].sealed]]])
    st, data = _post(url, item, "application/msgpack")
    assert json.loads(data)["results"][0]["status"] == "pending"

    def committed() -> bool:
        with c.client("optic-paris", node=2) as cl:
            return cl.tx_status(good.tx_id())["status"] == "committed"

    wait_until(committed, 30, "the claim to commit")
    st, data = _post(url, item, "application/msgpack")
    res = json.loads(data)["results"][0]
    assert (res["status"], res["code"]) == ("rejected", "duplicate_tx")


def test_reads_need_a_fresh_valid_signature(cluster: LocalCluster) -> None:
    c = cluster
    url = c.urls[3]
    path = "/v1/claims/" + "00" * 32
    # Unsigned.
    st, _, data = _request(url, "GET", path)
    assert st == 401 and _error_code(st, data) == "unauthorized"
    # Garbage header.
    st, _, data = _request(url, "GET", path, headers={"Authorization": "Tpledger zz"})
    assert st == 401
    key = c.key("optic-paris")
    chain_id = c.genesis().chain_id
    now_ms = int(time.time() * 1000)
    # Signed for another path: bad signature.
    auth = sign_request(chain_id, key.signer, "GET", "/v1/claims/" + "11" * 32, b"", now_ms)
    st, _, data = _request(url, "GET", path, headers={"Authorization": auth})
    assert st == 401
    # Too old.
    auth = sign_request(chain_id, key.signer, "GET", path, b"", now_ms - 3_600_000)
    st, _, data = _request(url, "GET", path, headers={"Authorization": auth})
    assert st == 401
    # Valid once (unknown claim -> 404), then the same header replayed -> 401.
    auth = sign_request(chain_id, key.signer, "GET", path, b"", now_ms)
    st, _, data = _request(url, "GET", path, headers={"Authorization": auth})
    assert st == 404 and _error_code(st, data) == "unknown_claim"
    st, _, data = _request(url, "GET", path, headers={"Authorization": auth})
    assert st == 401 and b"replayed" in data
    # A key that is not a participant at all.
    from tpledger.ledger.keys import Signer

    stranger = Signer(os.urandom(32))
    auth = sign_request(chain_id, stranger, "GET", path, b"", now_ms)
    st, _, data = _request(url, "GET", path, headers={"Authorization": auth})
    assert st == 403
    # Bad ids and heights.
    for p in ("/v1/headers/abc", "/v1/headers/999999999", "/v1/consistency?old=x&new=1",
              "/v1/nope"):
        st, _, data = _request(url, "GET", p)
        _error_code(st, data)


def test_tx_status_waits_for_the_commit(cluster: LocalCluster) -> None:
    """``wait_ms``: a pending tx is answered when the commit that settles it happens, so one
    request right after the submission already says committed; bad values are 400s."""
    c = cluster
    claims, _ = make_claims(c, "optic-lyon", "mutuelle-b", 3, seed=77)
    with c.client("optic-lyon", node=2) as cl:
        results = cl.submit([(p.stx.encode(), p.sealed) for p in claims])
        assert [r["status"] for r in results] == ["pending"] * 3
        last = claims[-1].claim_id
        st = cl.tx_status(last, wait_ms=20_000)  # asked at once: without the wait, pending
        assert st["status"] == "committed" and st["height"] >= 1
        # a tx that is not pending is answered at once, whatever the wait
        assert cl.tx_status(b"\x05" * 32, wait_ms=20_000)["status"] == "unknown"
    key = c.key("optic-lyon")
    chain_id = c.genesis().chain_id
    for qs in ("?wait_ms=30001", "?wait_ms=-1", "?wait_ms=soon"):
        path = "/v1/txs/" + "00" * 32 + qs
        auth = sign_request(chain_id, key.signer, "GET", path, b"", int(time.time() * 1000))
        st_code, _, data = _request(c.urls[2], "GET", path, headers={"Authorization": auth})
        assert st_code == 400 and _error_code(st_code, data) == "bad_parameter"


def test_node_still_healthy_after_abuse(cluster: LocalCluster) -> None:
    before = [int(status(u)["height"]) for u in cluster.urls]  # type: ignore[call-overload]
    wait_until(lambda: all(int(status(u)["height"]) > b  # type: ignore[call-overload]
                           for u, b in zip(cluster.urls, before, strict=True)),
               30, "every node to commit again")
    assert not cluster.dead_nodes()
    st, _, data = _request(cluster.urls[0], "GET", "/metrics")
    assert st == 200 and b"tpledger_height" in data
    st, _, data = _request(cluster.urls[0], "GET", "/openapi.json")
    assert st == 200 and json.loads(data)["openapi"].startswith("3.")


def test_peer_endpoint_refuses_strangers_and_garbage(cluster: LocalCluster) -> None:
    """The validator link endpoint: a non-validator, a wrong chain, or garbage frames get the
    socket closed; the node keeps its real peer links and keeps committing."""
    import asyncio
    import contextlib

    import aiohttp

    from tpledger.ledger.keys import Signer
    from tpledger.node.errors import PeerAuthError
    from tpledger.node.handshake import Handshake, StaticIdentity

    c = cluster
    genesis = c.genesis()

    def initiator(chain_id: str, claimed_index: int) -> Handshake:
        """A handshake by a stranger (a key not in genesis) claiming a validator index."""
        return Handshake(initiator=True, chain_id=chain_id, genesis_hash=genesis.hash(),
                         validator_keys=genesis.validator_keys,
                         identity=StaticIdentity(chain_id, claimed_index, Signer(b"\x09" * 32)),
                         expected_peer=0)

    async def probe() -> list[int | None]:
        codes: list[int | None] = []
        async with aiohttp.ClientSession() as http:
            for first in (
                b"\x00garbage",
                initiator("other-chain", 1).message1(),
            ):
                async with http.ws_connect(c.urls[0] + "/v1/peer") as ws:
                    await ws.send_bytes(first)
                    msg = await ws.receive(timeout=10)
                    codes.append(ws.close_code if msg.type == aiohttp.WSMsgType.CLOSE
                                 or ws.closed else None)
            # Claiming validator 1 (and validator 0, the node itself) with a key we do not
            # hold: message 2 is answered, our identity's signature cannot verify.
            for claimed in (1, 0):
                hs = initiator(genesis.chain_id, claimed)
                async with http.ws_connect(c.urls[0] + "/v1/peer") as ws:
                    await ws.send_bytes(hs.message1())
                    m2 = await ws.receive(timeout=10)
                    assert m2.type == aiohttp.WSMsgType.BINARY
                    if claimed == 1:
                        assert hs.read_message2(m2.data) == 0  # the node proves it is v0
                    else:  # we claim the node's own index: our side's check refuses that
                        with contextlib.suppress(PeerAuthError):
                            hs.read_message2(m2.data)
                    await ws.send_bytes(hs.message3())
                    msg = await ws.receive(timeout=10)
                    codes.append(ws.close_code if msg.type == aiohttp.WSMsgType.CLOSE
                                 or ws.closed else None)
        return codes

    codes = asyncio.run(probe())
    assert all(code is not None for code in codes), codes
    h = int(status(c.urls[0])["height"])  # type: ignore[call-overload]
    wait_until(lambda: int(status(c.urls[0])["height"]) > h,  # type: ignore[call-overload]
               60, "the node to keep committing")
    # its peer links survived (or redialled: a link can drop on a missed pong under load)
    wait_until(lambda: all(status(c.urls[0])["peers"].values()),  # type: ignore[union-attr]
               30, "every peer link of node 0 up")
