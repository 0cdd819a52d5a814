"""The Noise XX handshake with validator identities (``node/handshake.py``), in memory."""

from __future__ import annotations

import pytest

from tpledger.ledger.keys import Signer
from tpledger.node.errors import PeerAuthError
from tpledger.node.handshake import CHUNK_PLAINTEXT_BYTES, Handshake, StaticIdentity

CHAIN = "test-chain"
GH = b"\x07" * 32
SIGNERS = [Signer(bytes([i + 1]) * 32) for i in range(4)]
KEYS = tuple(s.public for s in SIGNERS)


def _pair(dialer: int, listener: int, claimed: int | None = None, signer: Signer | None = None,
          chain: str = CHAIN) -> tuple[Handshake, Handshake]:
    ident = StaticIdentity(chain, dialer if claimed is None else claimed,
                           signer or SIGNERS[dialer])
    i = Handshake(initiator=True, chain_id=chain, genesis_hash=GH, validator_keys=KEYS,
                  identity=ident, expected_peer=listener)
    r = Handshake(initiator=False, chain_id=CHAIN, genesis_hash=GH, validator_keys=KEYS,
                  identity=StaticIdentity(CHAIN, listener, SIGNERS[listener]))
    return i, r


def _run(i: Handshake, r: Handshake) -> tuple[int, int]:
    r.read_message1(i.message1())
    a = i.read_message2(r.message2())
    b = r.read_message3(i.message3())
    return a, b


def test_honest_handshake_and_transport() -> None:
    i, r = _pair(0, 2)
    assert _run(i, r) == (2, 0)
    li, lr = i.link(), r.link()
    assert li.handshake_hash == lr.handshake_hash
    for size in (0, 1, CHUNK_PLAINTEXT_BYTES, CHUNK_PLAINTEXT_BYTES + 1, 3 * 65535 + 7):
        frame = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert lr.open(li.seal(frame)) == frame


def test_a_key_claiming_another_index_is_refused() -> None:
    i, r = _pair(0, 2, claimed=1)  # validator 0's key, claiming index 1
    r.read_message1(i.message1())
    i.read_message2(r.message2())
    with pytest.raises(PeerAuthError, match="validator key"):
        r.read_message3(i.message3())


def test_the_dialler_refuses_a_listener_that_is_not_the_one_dialled() -> None:
    i, r = _pair(0, 2)
    i.expected_peer = 3
    r.read_message1(i.message1())
    with pytest.raises(PeerAuthError, match="not the validator dialled"):
        i.read_message2(r.message2())


def test_another_chain_is_refused() -> None:
    i, r = _pair(0, 2, chain="other")
    with pytest.raises(PeerAuthError, match="another chain"):
        r.read_message1(i.message1())


def test_replayed_messages_fail() -> None:
    i, r = _pair(0, 2)
    m1 = i.message1()
    r.read_message1(m1)
    i.read_message2(r.message2())
    m3 = i.message3()
    r.read_message3(m3)
    r2 = Handshake(initiator=False, chain_id=CHAIN, genesis_hash=GH, validator_keys=KEYS,
                   identity=StaticIdentity(CHAIN, 2, SIGNERS[2]))
    r2.read_message1(m1)  # a replayed message 1 is just an initiator's ephemeral ...
    r2.message2()
    with pytest.raises(PeerAuthError):  # ... but message 3 was keyed to another ephemeral
        r2.read_message3(m3)


def test_a_relay_gets_no_keys_and_cannot_inject_or_replay() -> None:
    i, r = _pair(1, 0)
    _run(i, r)  # the relay forwarded these messages unchanged
    li, lr = i.link(), r.link()
    c1 = li.seal(b"frame one")
    assert lr.open(c1) == b"frame one"
    for forged in (b"plain frame", c1, c1[:-1] + bytes([c1[-1] ^ 1])):
        with pytest.raises(PeerAuthError):
            lr.open(forged)


def test_the_old_reflection_needs_a_signature_over_our_static_key() -> None:
    """Reflection, Noise edition: the stranger takes validator 1's identity payload from a
    handshake validator 1 made with it, and offers it to validator 0 with its own static key.
    The signature covers validator 1's static key, not the stranger's: refused."""
    stranger = Signer(b"\x66" * 32)
    v1_ident = StaticIdentity(CHAIN, 1, SIGNERS[1])
    forged = StaticIdentity(CHAIN, 1, stranger)
    forged.payloads = v1_ident.payloads  # validator 1's signed payloads, the stranger's key
    i = Handshake(initiator=True, chain_id=CHAIN, genesis_hash=GH, validator_keys=KEYS,
                  identity=forged, expected_peer=0)
    r = Handshake(initiator=False, chain_id=CHAIN, genesis_hash=GH, validator_keys=KEYS,
                  identity=StaticIdentity(CHAIN, 0, SIGNERS[0]))
    r.read_message1(i.message1())
    i.read_message2(r.message2())
    with pytest.raises(PeerAuthError, match="validator key"):
        r.read_message3(i.message3())


def test_a_handshake_without_identity_checks_is_caught() -> None:
    """The broken variant: skipping the identity check would accept a stranger as v1."""
    stranger = Signer(b"\x66" * 32)
    i, r = _pair(0, 2, claimed=1, signer=stranger)
    r._check_identity = lambda payload, static, role: 1  # type: ignore[method-assign]
    r.read_message1(i.message1())
    i.read_message2(r.message2())
    assert r.read_message3(i.message3()) == 1  # what the checks prevent
    i2, r2 = _pair(0, 2, claimed=1, signer=stranger)
    r2.read_message1(i2.message1())
    i2.read_message2(r2.message2())
    with pytest.raises(PeerAuthError):
        r2.read_message3(i2.message3())
