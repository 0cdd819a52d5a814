"""Signed HTTP requests: how a participant or validator proves who is reading.

Header: ``Authorization: Tpledger <hex>``, where ``<hex>`` is the canonical encoding of
:class:`RequestAuth`: the signer's Ed25519 key, a time in ms, a random nonce and a signature
of kind ``"read"`` over ``[method, path_with_query, sha256(body), time_ms, nonce]``.
The server accepts a request within ``max_skew_ms`` of its clock and never the same nonce twice
(bounded memory), so a captured header cannot be replayed.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from tpledger.ledger.encoding import PUBKEY, SIG, U64, Bytes, Record, pack, spec
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.keys import Signer, verify
from tpledger.node.errors import AuthError

READ_KIND = "read"
SCHEME = "Tpledger"


@dataclass(frozen=True)
class RequestAuth(Record):
    TAG: ClassVar[int] = 0x80
    MAX_BYTES: ClassVar[int] = 512
    signer: bytes = spec(PUBKEY)
    time_ms: int = spec(U64)
    nonce: bytes = spec(Bytes(16))
    signature: bytes = spec(SIG)


def _payload(method: str, path_qs: str, body: bytes, time_ms: int, nonce: bytes) -> bytes:
    return pack([method.upper(), path_qs, hashlib.sha256(body).digest(), time_ms, nonce])


def sign_request(
    chain_id: str, signer: Signer, method: str, path_qs: str, body: bytes, time_ms: int
) -> str:
    """The value of the Authorization header for this request."""
    nonce = os.urandom(16)
    sig = signer.sign(chain_id, READ_KIND, _payload(method, path_qs, body, time_ms, nonce))
    return f"{SCHEME} " + RequestAuth(signer.public, time_ms, nonce, sig).encode().hex()


class RequestVerifier:
    """Checks Authorization headers; remembers recent nonces (bounded) to refuse replays."""

    def __init__(self, chain_id: str, max_skew_ms: int = 60_000, max_nonces: int = 100_000):
        self.chain_id = chain_id
        self.max_skew_ms = max_skew_ms
        self.max_nonces = max_nonces
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def verify(
        self, header: str | None, method: str, path_qs: str, body: bytes, now_ms: int
    ) -> bytes:
        """Return the signer's public key, or raise :class:`AuthError`."""
        if not header:
            raise AuthError("this request must be signed (Authorization: Tpledger ...)")
        scheme, _, value = header.partition(" ")
        if scheme != SCHEME or len(value) > 1024:
            raise AuthError("unsupported authorization scheme")
        try:
            auth = RequestAuth.decode(bytes.fromhex(value.strip()))
        except (ValueError, EncodingError):
            raise AuthError("malformed authorization header") from None
        if abs(auth.time_ms - now_ms) > self.max_skew_ms:
            raise AuthError("request time too far from the server clock")
        payload = _payload(method, path_qs, body, auth.time_ms, auth.nonce)
        if not verify(auth.signer, self.chain_id, READ_KIND, payload, auth.signature):
            raise AuthError("bad request signature")
        if auth.nonce in self._seen:
            raise AuthError("replayed request")
        self._seen[auth.nonce] = auth.time_ms
        # Forget nonces older than the skew window, and never hold more than max_nonces.
        while self._seen and (
            len(self._seen) > self.max_nonces
            or next(iter(self._seen.values())) < now_ms - 2 * self.max_skew_ms
        ):
            self._seen.popitem(last=False)
        return auth.signer
