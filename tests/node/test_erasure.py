"""``check_forget``: who may erase a claim's sealed openings, written once for API and peers."""

from __future__ import annotations

import pytest

from tests.ledger.helpers import make_world
from tests.node.test_policy import changed_registry
from tpledger.ledger.genesis import REVOKED, SUSPENDED
from tpledger.ledger.registry import Registry
from tpledger.node.erasure import (
    DEFAULT_MAX_AGE_MS,
    MAX_SKEW_MS,
    ForgetRefused,
    ForgetRequest,
    check_forget,
    sign_forget,
)

NOW = 1_800_000_000_000
CLAIM = b"\x42" * 32


def test_the_claims_payers_may_erase() -> None:
    w = make_world()
    for payer, org in ((w.insurers[0], "mutuelle-a"), (w.cnam, "cnam")):
        req = sign_forget(w.chain_id, payer.signer, CLAIM, NOW)
        assert check_forget(ForgetRequest.decode(req.encode()), w.chain_id,
                            Registry.of_genesis(w.genesis), "mutuelle-a", NOW) == org


def _refusal(req: ForgetRequest, insurer: str | None = "mutuelle-a", now: int = NOW,
             registry: Registry | None = None) -> str:
    w = make_world()
    with pytest.raises(ForgetRefused) as err:
        check_forget(req, w.chain_id, registry or Registry.of_genesis(w.genesis), insurer, now)
    return err.value.code


def test_a_revoked_or_suspended_payer_is_refused() -> None:
    """The registry in force decides: the insurer's key, revoked or suspended after the
    genesis, may no longer erase (its genesis entry alone would still let it)."""
    w = make_world()
    req = sign_forget(w.chain_id, w.insurers[0].signer, CLAIM, NOW)
    for status, code in ((REVOKED, "revoked_signer"), (SUSPENDED, "suspended_signer")):
        assert _refusal(req, registry=changed_registry(w.genesis, "mutuelle-a",
                                                       status=status)) == code


def test_everyone_else_is_refused() -> None:
    w = make_world()
    ok = sign_forget(w.chain_id, w.insurers[0].signer, CLAIM, NOW)
    cases = {
        "validator": (sign_forget(w.chain_id, w.validators[0], CLAIM, NOW), "forbidden"),
        "optician": (sign_forget(w.chain_id, w.opticians[0].signer, CLAIM, NOW), "forbidden"),
        "other insurer": (sign_forget(w.chain_id, w.insurers[1].signer, CLAIM, NOW),
                          "forbidden"),
        "other chain": (sign_forget("other", w.insurers[0].signer, CLAIM, NOW),
                        "bad_signature"),
        "other claim": (ForgetRequest(b"\x43" * 32, ok.time_ms, ok.nonce, ok.signer,
                                      ok.signature), "bad_signature"),
        "later time": (ForgetRequest(CLAIM, ok.time_ms + 1, ok.nonce, ok.signer, ok.signature),
                       "bad_signature"),
        "stale": (sign_forget(w.chain_id, w.insurers[0].signer, CLAIM,
                              NOW - DEFAULT_MAX_AGE_MS - 1), "stale_request"),
        "future": (sign_forget(w.chain_id, w.insurers[0].signer, CLAIM, NOW + MAX_SKEW_MS + 1),
                   "stale_request"),
    }
    for name, (req, code) in cases.items():
        assert _refusal(req) == code, name
    assert _refusal(ok, insurer=None) == "unknown_claim"


def test_a_check_without_the_payer_rule_is_caught() -> None:
    """The broken variant (a signature check alone, as a peer's word was before): the
    optician's own signed request would pass it; ``check_forget`` refuses it."""
    from tpledger.ledger.keys import verify
    from tpledger.node.erasure import FORGET_KIND, _payload

    w = make_world()
    req = sign_forget(w.chain_id, w.opticians[0].signer, CLAIM, NOW)
    signature_only = verify(req.signer, w.chain_id, FORGET_KIND,
                            _payload(req.claim_id, req.time_ms, req.nonce, req.signer),
                            req.signature)
    assert signature_only and _refusal(req) == "forbidden"
