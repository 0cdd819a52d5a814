"""Erasure of sealed openings: only on the signed request of one of the claim's payers.

A payer signs a :class:`ForgetRequest` (kind ``"forget-openings"``, domain-separated by the
chain id) naming the claim. The node it is sent to checks it, erases its copies, keeps the
request as the claim's tombstone, and relays the request itself to its peers; each peer runs
the same :func:`check_forget` before erasing and before relaying. No peer, not even a
validator, can erase on its own word: a peer frame without a valid request erases nothing.

Checks (written once, here): the request decodes strictly; the signature verifies against the
signer's key for this chain; the signer is an active participant in the registry in force
(a revoked or suspended key is refused: ``revoked_signer``) and a payer of that claim
(``node.policy.is_payer``); the claim is committed; the request is fresh: not after the
node's clock plus ``MAX_SKEW_MS``, and not older than ``max_age_ms`` (a node that was down may
still receive it later through a peer's queue). A request for a claim already erased here is a
replay: it changes nothing and is not relayed again (each node relays a claim's erasure once).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from tpledger.ledger.encoding import HASH32, PUBKEY, SIG, U64, Bytes, Record, pack, spec
from tpledger.ledger.keys import Signer, verify
from tpledger.ledger.registry import Registry
from tpledger.node.errors import NodeError
from tpledger.node.policy import is_payer, refusal_of

FORGET_KIND = "forget-openings"
MAX_SKEW_MS = 60_000
DEFAULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000


class ForgetRefused(NodeError):
    """A forget request that must not be obeyed; ``code`` is stable, ``status`` HTTP-like."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ForgetRequest(Record):
    TAG: ClassVar[int] = 0x87
    MAX_BYTES: ClassVar[int] = 256
    claim_id: bytes = spec(HASH32)
    time_ms: int = spec(U64)
    nonce: bytes = spec(Bytes(16))
    signer: bytes = spec(PUBKEY)
    signature: bytes = spec(SIG)


def _payload(claim_id: bytes, time_ms: int, nonce: bytes, signer: bytes) -> bytes:
    return pack([claim_id, time_ms, nonce, signer])


def sign_forget(chain_id: str, signer: Signer, claim_id: bytes, time_ms: int) -> ForgetRequest:
    nonce = os.urandom(16)
    sig = signer.sign(chain_id, FORGET_KIND, _payload(claim_id, time_ms, nonce, signer.public))
    return ForgetRequest(claim_id, time_ms, nonce, signer.public, sig)


def check_forget(req: ForgetRequest, chain_id: str, registry: Registry,
                 claim_insurer: str | None, now_ms: int,
                 max_age_ms: int = DEFAULT_MAX_AGE_MS) -> str:
    """Raise :class:`ForgetRefused` unless ``req`` entitles erasing the claim's openings;
    return the requesting payer's org. ``registry``: the registry in force; ``claim_insurer``
    is the committed claim's insurer (None: no such committed claim)."""
    payload = _payload(req.claim_id, req.time_ms, req.nonce, req.signer)
    if not verify(req.signer, chain_id, FORGET_KIND, payload, req.signature):
        raise ForgetRefused(401, "bad_signature", "the forget request's signature is not valid")
    p = registry.signer(req.signer)
    if p is None:
        raise ForgetRefused(403, *refusal_of(registry, req.signer))
    if claim_insurer is None:
        raise ForgetRefused(404, "unknown_claim", "no committed claim with this id")
    if not is_payer(p, claim_insurer):
        raise ForgetRefused(403, "forbidden", "only the claim's payers may forget openings")
    if req.time_ms > now_ms + MAX_SKEW_MS:
        raise ForgetRefused(400, "stale_request", "the forget request is dated in the future")
    if now_ms - req.time_ms > max_age_ms:
        raise ForgetRefused(400, "stale_request", "the forget request is too old; sign a new one")
    return p.org
