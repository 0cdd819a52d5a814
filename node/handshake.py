"""Peer-link authentication and encryption: the Noise XX handshake with validator identities.

Protocol: ``Noise_XX_25519_ChaChaPoly_SHA256`` (Noise Protocol Framework, rev. 34, through
the ``noiseprotocol`` library), with the identity binding of the libp2p Noise handshake
(libp2p ``noise`` spec): each node's Noise static key is a fresh X25519 key per process, and
its handshake payload carries its validator index and an Ed25519 signature, by its genesis
validator key, of that static key.

::

    prologue = pack(["tpledger/peer/v2", chain_id, genesis_hash])
    -> e                       payload: pack([chain_id, genesis_hash])       (plaintext, bound)
    <- e, ee, s, es            payload: PeerIdentity(responder index, sig_R) (encrypted)
    -> s, se                   payload: PeerIdentity(initiator index, sig_I) (encrypted)

    sig_X = Ed25519_sign(validator key of X, [domain, chain_id, "peer-noise-identity",
                                               pack([role of X, index of X, static key of X])])

What this binds (the argument is in docs/security.md): the chain (prologue, and the chain id
in the signature's domain); both ephemeral contributions and both static keys (the Noise
transcript hash covers them; every payload is AEAD-encrypted with it as associated data, and
the final keys come from ``ee``, ``es`` and ``se``); both identities (a static key counts only
with a signature of it by the validator key at the claimed index; the ``es``/``se`` DH prove
possession of the static key); the direction (Noise's roles are asymmetric, and the signed
role says which side the key may play). After the handshake every frame is encrypted with the
Noise transport keys (one direction per link: the dialer sends, the listener receives), so a
relay or a man in the middle can neither read nor inject frames.

Noise messages are at most 65,535 bytes; a frame is cut into chunks of at most
``CHUNK_PLAINTEXT_BYTES`` and sent as one websocket message of their concatenated ciphertexts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from noise.connection import Keypair, NoiseConnection

from tpledger.ledger.encoding import HASH32, SIG, U8, Record, Str, pack, spec
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.keys import Signer, verify
from tpledger.node.errors import PeerAuthError

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
PROLOGUE_LABEL = "tpledger/peer/v2"
IDENTITY_KIND = "peer-noise-identity"
ROLE_INITIATOR = "initiator"
ROLE_RESPONDER = "responder"
MAX_NOISE_MESSAGE_BYTES = 65535
AEAD_TAG_BYTES = 16
CHUNK_PLAINTEXT_BYTES = MAX_NOISE_MESSAGE_BYTES - AEAD_TAG_BYTES
MAX_HANDSHAKE_MESSAGE_BYTES = 1024


@dataclass(frozen=True)
class PeerIdentity(Record):
    """The encrypted payload of handshake messages 2 and 3: who holds this Noise static key."""

    TAG: ClassVar[int] = 0x85
    MAX_BYTES: ClassVar[int] = 256
    index: int = spec(U8)
    signature: bytes = spec(SIG)


@dataclass(frozen=True)
class ChainHello(Record):
    """The plaintext payload of message 1, so that a peer on another chain gets a clear error
    (the prologue binds the same values: a lie here only makes the handshake fail)."""

    TAG: ClassVar[int] = 0x86
    MAX_BYTES: ClassVar[int] = 256
    chain_id: str = spec(Str(64, 1))
    genesis_hash: bytes = spec(HASH32)


def prologue(chain_id: str, genesis_hash: bytes) -> bytes:
    return pack([PROLOGUE_LABEL, chain_id, genesis_hash])


def identity_payload(role: str, index: int, static_public: bytes) -> bytes:
    """The bytes a validator key signs to vouch for a Noise static key (in one role)."""
    return pack([role, index, static_public])


class StaticIdentity:
    """This process's Noise static key and its two signed identity payloads."""

    def __init__(self, chain_id: str, my_index: int, signer: Signer) -> None:
        private = x25519.X25519PrivateKey.generate()
        self.private_bytes = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())
        self.public_bytes = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.index = my_index
        self.payloads = {
            role: PeerIdentity(my_index, signer.sign(
                chain_id, IDENTITY_KIND, identity_payload(role, my_index, self.public_bytes),
            )).encode()
            for role in (ROLE_INITIATOR, ROLE_RESPONDER)
        }


class NoiseLink:
    """Transport after a completed handshake: frames encrypted in ``CHUNK`` pieces."""

    def __init__(self, conn: NoiseConnection, peer_index: int) -> None:
        self._conn = conn
        self.peer_index = peer_index
        self.handshake_hash = bytes(conn.get_handshake_hash())

    def seal(self, frame: bytes) -> bytes:
        enc = self._conn.encrypt
        view = memoryview(frame)
        if len(frame) <= CHUNK_PLAINTEXT_BYTES:
            return bytes(enc(frame))
        return b"".join(bytes(enc(bytes(view[i:i + CHUNK_PLAINTEXT_BYTES])))
                        for i in range(0, len(frame), CHUNK_PLAINTEXT_BYTES))

    def open(self, data: bytes) -> bytes:
        """Decrypt one websocket message; raises PeerAuthError if any chunk is not authentic
        (the link must then be dropped: its nonces are out of step)."""
        if not data:
            raise PeerAuthError("empty encrypted frame")
        dec = self._conn.decrypt
        try:
            if len(data) <= MAX_NOISE_MESSAGE_BYTES:
                return bytes(dec(data))
            return b"".join(bytes(dec(data[i:i + MAX_NOISE_MESSAGE_BYTES]))
                            for i in range(0, len(data), MAX_NOISE_MESSAGE_BYTES))
        except Exception:  # the library raises cryptography's InvalidTag or its own errors
            raise PeerAuthError("frame failed authentication") from None


class Handshake:
    """One side of one handshake, sans-IO: ``write``/``read`` handshake messages in order.

    Initiator: ``message1()``, ``read_message2(m2)``, ``message3()``, ``link()``.
    Responder: ``read_message1(m1)``, ``message2()``, ``read_message3(m3)``, ``link()``.
    The initiator names the validator it dialled (``expected_peer``); anything else fails.
    """

    def __init__(self, *, initiator: bool, chain_id: str, genesis_hash: bytes,
                 validator_keys: Sequence[bytes], identity: StaticIdentity,
                 expected_peer: int | None = None) -> None:
        if initiator and expected_peer is None:
            raise ValueError("an initiator must name the validator it dials")
        self.initiator = initiator
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.keys = tuple(validator_keys)
        self.identity = identity
        self.expected_peer = expected_peer
        self.peer_index: int | None = None
        conn = NoiseConnection.from_name(PROTOCOL_NAME)
        if initiator:
            conn.set_as_initiator()
        else:
            conn.set_as_responder()
        conn.set_keypair_from_private_bytes(Keypair.STATIC, identity.private_bytes)
        conn.set_prologue(prologue(chain_id, genesis_hash))
        conn.start_handshake()
        self._conn = conn

    # -- initiator ---------------------------------------------------------------------------
    def message1(self) -> bytes:
        return bytes(self._conn.write_message(
            ChainHello(self.chain_id, self.genesis_hash).encode()))

    def read_message2(self, data: bytes) -> int:
        payload, remote_static = self._read(data)
        return self._check_identity(payload, remote_static, ROLE_RESPONDER)

    def message3(self) -> bytes:
        return bytes(self._conn.write_message(self.identity.payloads[ROLE_INITIATOR]))

    # -- responder ---------------------------------------------------------------------------
    def read_message1(self, data: bytes) -> None:
        payload, _ = self._read(data)
        try:
            hello = ChainHello.decode(payload)
        except EncodingError:
            raise PeerAuthError("handshake: malformed hello") from None
        if hello.chain_id != self.chain_id or hello.genesis_hash != self.genesis_hash:
            raise PeerAuthError("handshake: peer is on another chain")

    def message2(self) -> bytes:
        return bytes(self._conn.write_message(self.identity.payloads[ROLE_RESPONDER]))

    def read_message3(self, data: bytes) -> int:
        payload, remote_static = self._read(data)
        return self._check_identity(payload, remote_static, ROLE_INITIATOR)

    # -- both --------------------------------------------------------------------------------
    def link(self) -> NoiseLink:
        if self.peer_index is None or not self._conn.handshake_finished:
            raise PeerAuthError("handshake not complete")
        return NoiseLink(self._conn, self.peer_index)

    def _read(self, data: bytes) -> tuple[bytes, bytes | None]:
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_HANDSHAKE_MESSAGE_BYTES:
            raise PeerAuthError("handshake: message too large or not binary")
        state: Any = self._conn.noise_protocol.handshake_state  # kept: the lib drops it at the end
        try:
            payload = bytes(self._conn.read_message(bytes(data)))
        except Exception:  # InvalidTag, NoiseInvalidMessage, a bad point...: all one verdict
            raise PeerAuthError(
                "handshake: message failed authentication (another chain, a forged or "
                "replayed message)") from None
        public = getattr(getattr(state, "rs", None), "public_bytes", None)
        return payload, None if public is None else bytes(public)

    def _check_identity(self, payload: bytes, remote_static: bytes | None, role: str) -> int:
        try:
            ident = PeerIdentity.decode(payload)
        except EncodingError:
            raise PeerAuthError("handshake: malformed identity") from None
        index = ident.index
        if index >= len(self.keys) or index == self.identity.index:
            raise PeerAuthError("handshake: unknown validator index")
        if self.expected_peer is not None and index != self.expected_peer:
            raise PeerAuthError("handshake: the peer is not the validator dialled")
        if remote_static is None or not verify(
            self.keys[index], self.chain_id, IDENTITY_KIND,
            identity_payload(role, index, remote_static), ident.signature,
        ):
            raise PeerAuthError("handshake: peer failed to prove its validator key")
        self.peer_index = index
        return index

