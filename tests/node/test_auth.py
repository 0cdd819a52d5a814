"""Signed HTTP requests (``node/auth.py``): a good signature passes once; a replay, a request
outside the clock window, or one whose method, path or body changed is refused. Each check is
also shown switched off."""

from __future__ import annotations

import pytest

import tpledger.node.auth as auth
from tpledger.ledger.keys import Signer
from tpledger.node.auth import RequestVerifier, sign_request
from tpledger.node.errors import AuthError

CHAIN = "tpledger-test"
NOW_MS = 1_700_000_000_000
SIGNER = Signer(b"\x07" * 32)


def _header(path: str = "/v1/claims", body: bytes = b"", time_ms: int = NOW_MS) -> str:
    return sign_request(CHAIN, SIGNER, "GET", path, body, time_ms)


def test_a_signed_request_names_its_signer_once() -> None:
    v = RequestVerifier(CHAIN)
    h = _header()
    assert v.verify(h, "GET", "/v1/claims", b"", NOW_MS) == SIGNER.public
    with pytest.raises(AuthError, match="replayed"):
        v.verify(h, "GET", "/v1/claims", b"", NOW_MS + 1)


def test_a_replay_passes_once_nonces_are_forgotten() -> None:
    """Broken variant: a verifier that keeps no nonce accepts the captured header again."""
    v = RequestVerifier(CHAIN, max_nonces=0)
    h = _header()
    v.verify(h, "GET", "/v1/claims", b"", NOW_MS)
    assert v.verify(h, "GET", "/v1/claims", b"", NOW_MS) == SIGNER.public


@pytest.mark.parametrize("skew_ms", [-60_001, 60_001])
def test_requests_outside_the_clock_window_are_refused(skew_ms: int) -> None:
    v = RequestVerifier(CHAIN, max_skew_ms=60_000)
    with pytest.raises(AuthError, match="too far"):
        v.verify(_header(time_ms=NOW_MS + skew_ms), "GET", "/v1/claims", b"", NOW_MS)
    # within the window, the same request passes
    v.verify(_header(time_ms=NOW_MS + skew_ms // 2), "GET", "/v1/claims", b"", NOW_MS)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/claims", b""), ("GET", "/v1/claims?limit=1000", b""),
    ("GET", "/v1/claims", b"x"),
])
def test_a_changed_request_is_refused(method: str, path: str, body: bytes,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    h = _header()
    with pytest.raises(AuthError, match="bad request signature"):
        RequestVerifier(CHAIN).verify(h, method, path, body, NOW_MS)
    # Broken variant: without the signature check the changed request would pass.
    monkeypatch.setattr(auth, "verify", lambda *a: True)
    assert RequestVerifier(CHAIN).verify(h, method, path, body, NOW_MS) == SIGNER.public


def test_another_chain_signature_is_refused() -> None:
    with pytest.raises(AuthError, match="bad request signature"):
        RequestVerifier("other-chain").verify(_header(), "GET", "/v1/claims", b"", NOW_MS)


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Tpledger zz", "Tpledger 00",
                                    "Tpledger " + "0" * 2000])
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(AuthError):
        RequestVerifier(CHAIN).verify(header, "GET", "/v1/claims", b"", NOW_MS)


def test_nonce_memory_is_bounded() -> None:
    v = RequestVerifier(CHAIN, max_nonces=3)
    for _ in range(10):
        v.verify(_header(), "GET", "/v1/claims", b"", NOW_MS)
    assert len(v._seen) == 3
    # nonces older than twice the window are forgotten (no replay can pass the clock check)
    v.verify(_header(time_ms=NOW_MS + 130_000), "GET", "/v1/claims", b"", NOW_MS + 130_000)
    assert len(v._seen) == 1
