"""Attacks on the validator links and on erasure, against real node processes.

* A stranger replays the old handshake-reflection attack (issue 10, hole 1): with the old
  challenge/signature handshake it ended authenticated as validator 1 and erased openings with
  a bare ``forget`` frame; the Noise handshake refuses it at the first message.
* A recorded handshake replayed, a relay in the middle of an honest link injecting frames, a
  validator key claiming another index: none ends authenticated.
* A Byzantine validator, authenticated with its real key, sends ``forget`` frames without a
  valid payer request (issue 10, hole 2): nothing is erased; the payer's own signed request,
  even relayed by that validator, is obeyed on every node.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import pytest

from tests.node.conftest import wait_until
from tests.security.conftest import Sec
from tpledger.ledger.encoding import HASH32, SIG, U8, Bytes, Record, Str, spec
from tpledger.ledger.keys import Signer
from tpledger.node.erasure import sign_forget
from tpledger.node.handshake import Handshake, NoiseLink, StaticIdentity
from tpledger.node.peers import FRAME_FORGET, PeerFrame

pytestmark = [pytest.mark.cluster]


# -- the handshake tpledger used before (kept here as the attacker's script) --------------------
@dataclass(frozen=True)
class OldHello(Record):
    TAG: ClassVar[int] = 0x82
    MAX_BYTES: ClassVar[int] = 512
    chain_id: str = spec(Str(64, 1))
    genesis_hash: bytes = spec(HASH32)
    index: int = spec(U8)
    nonce: bytes = spec(Bytes(32))


@dataclass(frozen=True)
class OldHelloAck(Record):
    TAG: ClassVar[int] = 0x83
    MAX_BYTES: ClassVar[int] = 512
    index: int = spec(U8)
    nonce: bytes = spec(Bytes(32))
    signature: bytes = spec(SIG)


@dataclass(frozen=True)
class OldHelloAuth(Record):
    TAG: ClassVar[int] = 0x84
    MAX_BYTES: ClassVar[int] = 512
    signature: bytes = spec(SIG)


async def _closed_or_binary(ws: aiohttp.ClientWebSocketResponse) -> bytes | None:
    """The next binary message, or None when the node closed the socket."""
    msg = await ws.receive(timeout=10)
    if msg.type != aiohttp.WSMsgType.BINARY:
        return None
    return bytes(msg.data)


async def reflection_attack(s: Sec, claim_id: bytes) -> str:
    """The reflection attack, step by step; returns where it stopped ("authenticated" if it
    went through and the forget frame was sent)."""
    g = s.cluster.genesis()
    async with aiohttp.ClientSession() as http:
        to_a = await http.ws_connect(s.url(0) + "/v1/peer")  # to A (v0), claiming to be B (v1)
        await to_a.send_bytes(OldHello(g.chain_id, g.hash(), 1, os.urandom(32)).encode())
        ack_a = await _closed_or_binary(to_a)
        if ack_a is None:
            return "refused at the first message"
        challenge = OldHelloAck.decode(ack_a).nonce
        to_b = await http.ws_connect(s.url(1) + "/v1/peer")  # to B, claiming A, with A's nonce
        await to_b.send_bytes(OldHello(g.chain_id, g.hash(), 0, challenge).encode())
        ack_b = await _closed_or_binary(to_b)
        if ack_b is None:
            return "refused by B"
        await to_a.send_bytes(OldHelloAuth(OldHelloAck.decode(ack_b).signature).encode())
        await to_a.send_bytes(PeerFrame(FRAME_FORGET, claim_id).encode())
        await asyncio.sleep(1.0)
        return "closed by A" if to_a.closed else "authenticated"


def test_handshake_reflection_by_a_stranger_fails(sec: Sec) -> None:
    s = sec
    cid = s.claims["optic-paris"][0]
    outcome = asyncio.run(reflection_attack(s, bytes.fromhex(cid)))
    assert outcome == "refused at the first message"
    time.sleep(0.5)
    for node in range(4):
        assert s.openings_held(cid, node) == ["cnam", "mutuelle-a"], node


# -- Noise-level attacks -------------------------------------------------------------------------
def _handshake(s: Sec, signer: Signer, claimed: int, target: int = 0) -> Handshake:
    g = s.cluster.genesis()
    return Handshake(initiator=True, chain_id=g.chain_id, genesis_hash=g.hash(),
                     validator_keys=g.validator_keys,
                     identity=StaticIdentity(g.chain_id, claimed, signer), expected_peer=target)


async def _dial(s: Sec, hs: Handshake, http: aiohttp.ClientSession,
                recorded: list[bytes] | None = None,
                ) -> tuple[aiohttp.ClientWebSocketResponse, NoiseLink | None]:
    """Run the initiator's side against v0; the link, or None if v0 closed the socket."""
    ws = await http.ws_connect(s.url(0) + "/v1/peer")
    m1 = hs.message1()
    await ws.send_bytes(m1)
    m2 = await _closed_or_binary(ws)
    assert m2 is not None, "v0 answers message 1 of a well-formed handshake"
    hs.read_message2(m2)
    m3 = hs.message3()
    await ws.send_bytes(m3)
    if recorded is not None:
        recorded.extend([m1, m3])
    if await _refused(ws):
        return ws, None
    return ws, hs.link()


async def _refused(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Whether v0 refuses the handshake: it closes with POLICY_VIOLATION at once. (A link that
    was accepted may be closed later with a normal code, when the real validator redials and
    its link replaces ours.)"""
    try:  # generous: a loaded machine may take a while to refuse
        msg = await ws.receive(timeout=3.0)
    except TimeoutError:
        return False
    return msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION


def _run(coro_fn: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with aiohttp.ClientSession() as http:
            return await coro_fn(http)
    return asyncio.run(main())


def test_validator_key_for_another_index_is_refused(sec: Sec) -> None:
    s = sec
    v3 = s.validator_key(3).signer

    async def attempt(http: aiohttp.ClientSession) -> tuple[bool, bool]:
        _, as_itself = await _dial(s, _handshake(s, v3, claimed=3), http)
        _, as_v1 = await _dial(s, _handshake(s, v3, claimed=1), http)
        return as_itself is not None, as_v1 is not None

    as_itself, as_v1 = _run(attempt)
    assert as_itself, "control: v3's own key authenticates as v3"
    assert not as_v1, "v3's key must not authenticate as validator 1"


def test_replayed_handshake_is_refused(sec: Sec) -> None:
    s = sec
    v3 = s.validator_key(3).signer

    async def attempt(http: aiohttp.ClientSession) -> tuple[bool, bool]:
        recorded: list[bytes] = []
        _, first = await _dial(s, _handshake(s, v3, claimed=3), http, recorded)
        m1, m3 = recorded
        ws = await http.ws_connect(s.url(0) + "/v1/peer")  # a stranger replays v3's messages
        await ws.send_bytes(m1)
        assert await _closed_or_binary(ws) is not None  # a fresh message 2, other ephemeral
        await ws.send_bytes(m3)
        return first is not None, not await _refused(ws)

    first, replay = _run(attempt)
    assert first and not replay


def test_relay_between_honest_nodes_cannot_inject(sec: Sec) -> None:
    """v3 dials v0 through the attacker's relay: the relay sees only ciphertext; what it
    injects (a plain forget frame, a replayed ciphertext) fails authentication, v0 drops the
    link and erases nothing; v3 redials and the chain keeps committing."""
    s = sec
    cid = s.claims["optic-paris"][1]
    wait_until(lambda: len(s.relay.to_target) >= 4, 60, "v3's link to v0 through the relay")
    sessions = s.relay.sessions
    s.relay.inject(PeerFrame(FRAME_FORGET, bytes.fromhex(cid)).encode())
    wait_until(lambda: s.relay.sessions > sessions, 60, "v3 to redial after v0 dropped the link")
    sessions = s.relay.sessions
    wait_until(lambda: len(s.relay.to_target) >= 4, 60, "frames on the new relayed link")
    s.relay.inject(s.relay.to_target[-1])  # a replayed ciphertext: nonce out of step
    wait_until(lambda: s.relay.sessions > sessions, 60, "v3 to redial again")
    for node in range(4):
        assert s.openings_held(cid, node) == ["cnam", "mutuelle-a"], node
    with s.client("cnam") as cl:
        h = int(cl.status()["height"])
    wait_until(lambda: int(s.client("cnam").status()["height"]) > h + 1, 30,
               "the chain to keep committing")


# -- erasure through an authenticated (Byzantine) validator -------------------------------------
def _bad_signature(request: bytes) -> bytes:
    """The request with one bit of its signature's R flipped: never a valid signature. (Its
    last byte set to 0 was not: that is S's top byte, 0 in about 1 signature of 16.)"""
    at = len(request) - 64  # the signature ends the request; R is its first half
    return request[:at] + bytes([request[at] ^ 0x01]) + request[at + 1:]


def test_byzantine_validator_cannot_erase_on_its_own_word(sec: Sec) -> None:
    s = sec
    g = s.cluster.genesis()
    target, other = (bytes.fromhex(c) for c in s.claims["optic-paris"][2:4])
    lyon = bytes.fromhex(s.claims["optic-lyon"][0])
    now = int(time.time() * 1000)
    v3 = s.validator_key(3).signer
    forged = [
        target,  # the old frame: a bare claim id
        sign_forget(g.chain_id, v3, target, now).encode(),  # a validator is not a payer
        sign_forget(g.chain_id, s.key("optic-paris").signer, target, now).encode(),  # optician
        sign_forget(g.chain_id, s.key("mutuelle-b").signer, target, now).encode(),  # other AMC
        sign_forget(g.chain_id, s.key("mutuelle-a").signer, target,
                    now - 30 * 86_400_000).encode(),  # the payer's, but stale
        sign_forget("other-chain", s.key("mutuelle-a").signer, target, now).encode(),
        _bad_signature(sign_forget(g.chain_id, s.key("mutuelle-b").signer, lyon, now).encode()),
    ]
    valid = sign_forget(g.chain_id, s.key("mutuelle-a").signer, other, now).encode()

    async def send(http: aiohttp.ClientSession) -> None:
        ws, link = await _dial(s, _handshake(s, v3, claimed=3), http)
        assert link is not None
        for payload in [*forged, valid]:
            await ws.send_bytes(link.seal(PeerFrame(FRAME_FORGET, payload).encode()))
        await asyncio.sleep(1.0)
        assert not ws.closed, "v0 kept the authenticated link (it refuses frames, not links)"
        await ws.close()

    s.cluster.stop_node("v3")  # its key is ours now: v3 plays the Byzantine validator
    try:
        _run(send)
    finally:
        s.cluster.start_node("v3")
        s.cluster.wait_ready()
    wait_until(lambda: all(s.openings_held(other.hex(), n) == [] for n in range(4)), 60,
               "the payer's own request, relayed by v3, to erase on every node")
    for node in range(4):
        assert s.openings_held(target.hex(), node) == ["cnam", "mutuelle-a"], node
        assert s.openings_held(lyon.hex(), node, "mutuelle-b") == ["cnam", "mutuelle-b"], node

