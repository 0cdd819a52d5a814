"""Keys and key files, domain-separated signatures, commit certificates, the genesis file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tpledger.ledger.errors import GenesisError, KeyFileError, SignatureError
from tpledger.ledger.genesis import DEFAULT_PARAMS, Genesis, Participant, Validator
from tpledger.ledger.keys import BoxKey, KeyFile, Signer, seal, verify
from tpledger.ledger.votes import (
    PRECOMMIT,
    PREVOTE,
    CertSignature,
    CommitCertificate,
    SignedVote,
    Vote,
    double_signers,
    quorum,
)

# -- keys --------------------------------------------------------------------------------------


def test_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    kf = KeyFile.generate("optic-paris", "optician")
    p = tmp_path / "k.key"
    kf.save(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    back = KeyFile.load(p)
    assert back.signer.public == kf.signer.public and back.box.public == kf.box.public
    assert (back.org, back.role) == ("optic-paris", "optician")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        kf.save(p)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "k.key"
    KeyFile.generate("cnam", "cnam").save(p)
    os.chmod(p, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyFile.load(p)


@pytest.mark.parametrize("mutate", [
    lambda b: {**b, "kind": "other"},
    lambda b: {**b, "role": "king"},
    lambda b: {**b, "ed25519_seed": "zz"},
    lambda b: {**b, "ed25519": "00" * 32},
    lambda b: {k: v for k, v in b.items() if k != "x25519_secret"},
])
def test_malformed_key_files_are_refused_without_echoing_secrets(tmp_path: Path,
                                                                 mutate: object) -> None:
    p = tmp_path / "k.key"
    KeyFile.generate("mutuelle-a", "insurer").save(p)
    body = json.loads(p.read_text())
    secret = body["ed25519_seed"]
    p.chmod(0o600)
    p.write_text(json.dumps(mutate(body)))  # type: ignore[operator]
    with pytest.raises(KeyFileError) as ei:
        KeyFile.load(p)
    assert secret not in str(ei.value)


def test_secrets_never_show_in_repr() -> None:
    kf = KeyFile.generate("optic-lyon", "optician")
    text = repr(kf) + str(kf) + repr(kf.signer) + repr(kf.box)
    assert kf.signer.seed().hex() not in text
    assert kf.box.secret().hex() not in text
    assert kf.signer.seed().hex()[:16] not in text


@settings(max_examples=50)
@given(st.binary(max_size=200), st.sampled_from(["tx", "vote", "read"]))
def test_signatures_are_domain_separated(payload: bytes, kind: str) -> None:
    s = Signer(b"\x07" * 32)
    sig = s.sign("chain-a", kind, payload)
    assert verify(s.public, "chain-a", kind, payload, sig)
    assert not verify(s.public, "chain-b", kind, payload, sig)
    assert not verify(s.public, "chain-a", kind + "x", payload, sig)
    assert not verify(s.public, "chain-a", kind, payload + b"\x00", sig)
    assert not verify(b"\x00" * 31, "chain-a", kind, payload, sig)  # never raises
    assert not verify(s.public, "chain-a", kind, payload, sig[:-1])


def test_sealed_box_opens_only_for_its_recipient() -> None:
    a, b = BoxKey.generate(), BoxKey.generate()
    sealed = seal(a.public, b"opening")
    assert a.open(sealed) == b"opening"
    with pytest.raises(SignatureError):
        b.open(sealed)
    with pytest.raises(SignatureError):
        a.open(sealed[:-1] + bytes([sealed[-1] ^ 1]))


# -- certificates ------------------------------------------------------------------------------

SIGNERS = [Signer(bytes([i + 1]) * 32) for i in range(4)]
KEYS = [s.public for s in SIGNERS]
BLOCK = b"\xab" * 32


def _cert(signers: list[int], block: bytes = BLOCK, height: int = 5,
          rnd: int = 0) -> CommitCertificate:
    votes = [Vote(height, rnd, PRECOMMIT, block, i).sign("c", SIGNERS[i]) for i in signers]
    return CommitCertificate.from_votes(votes)


def test_quorum_is_more_than_two_thirds() -> None:
    assert [quorum(n) for n in (1, 3, 4, 7, 10)] == [1, 3, 3, 5, 7]


def test_valid_certificate_checks_and_round_trips() -> None:
    c = _cert([0, 1, 3])
    c.check("c", KEYS)
    assert CommitCertificate.decode(c.encode()) == c


def test_bad_certificates_are_refused() -> None:
    c = _cert([0, 1, 2])
    with pytest.raises(SignatureError, match="quorum"):
        _cert([0, 1]).check("c", KEYS)
    with pytest.raises(SignatureError, match="bad precommit"):
        c.check("other-chain", KEYS)
    forged = CommitCertificate(c.height, c.round, b"\xcd" * 32, c.signatures)
    with pytest.raises(SignatureError, match="bad precommit"):
        forged.check("c", KEYS)
    dup = CommitCertificate(c.height, c.round, c.block_hash,
                            (c.signatures[0], c.signatures[0], c.signatures[1]))
    with pytest.raises(SignatureError, match="strictly increasing"):
        dup.check("c", KEYS)
    stranger = CommitCertificate(c.height, c.round, c.block_hash,
                                 (*c.signatures[:2], CertSignature(9, c.signatures[2].signature)))
    with pytest.raises(SignatureError, match="unknown validator"):
        stranger.check("c", KEYS)
    with pytest.raises(SignatureError):  # prevotes are not precommits
        CommitCertificate.from_votes(
            [Vote(5, 0, PREVOTE, BLOCK, i).sign("c", SIGNERS[i]) for i in range(3)])


def test_double_signers_of_conflicting_certificates() -> None:
    a = _cert([0, 1, 2])
    b = _cert([1, 2, 3], block=b"\xee" * 32)
    assert double_signers(a, b) == [1, 2]  # f + 1 = 2 provably faulty
    assert double_signers(a, _cert([1, 2, 3])) == []  # same block: no conflict
    assert double_signers(a, _cert([1, 2, 3], block=b"\xee" * 32, height=6)) == []


def test_signed_vote_verifies_only_for_its_validator() -> None:
    sv = Vote(1, 0, PREVOTE, None, 2).sign("c", SIGNERS[2])
    assert sv.verify("c", KEYS)
    assert SignedVote.decode(sv.encode()).verify("c", KEYS)
    assert not SignedVote(Vote(1, 0, PREVOTE, None, 1), sv.signature).verify("c", KEYS)
    assert not SignedVote(Vote(1, 0, PREVOTE, None, 9), sv.signature).verify("c", KEYS)


# -- genesis -----------------------------------------------------------------------------------


def _genesis() -> Genesis:
    parts = (Participant("optic-paris", "optician", KEYS[0], b"\x01" * 32),
             Participant("cnam", "cnam", KEYS[1], b"\x02" * 32))
    vals = tuple(Validator(f"v{i}", f"org{i}", k) for i, k in enumerate(KEYS))
    return Genesis("tpledger-test", 1, vals, parts, b"\x00" * 32, DEFAULT_PARAMS)


def test_genesis_json_round_trip_and_hash(tmp_path: Path) -> None:
    g = _genesis()
    p = tmp_path / "genesis.json"
    g.save(p)
    back = Genesis.load(p)
    assert back == g and back.hash() == g.hash()
    assert back.quorum == 3 and back.max_faulty == 1
    assert back.participant("cnam") is not None
    assert KEYS[0] in {p.ed25519 for p in back.participants}


@pytest.mark.parametrize("edit, msg", [
    (lambda b: b.update(kind="x"), "not a tpledger genesis"),
    (lambda b: b["validators"].append(dict(b["validators"][0])), "duplicate validator"),
    (lambda b: b["participants"][0].update(role="king"), "unknown role"),
    (lambda b: b.update(chain_id="Bad Chain"), "invalid genesis|malformed"),
    (lambda b: b.pop("params"), "malformed"),
    (lambda b: b["validators"][0].update(ed25519="zz"), "malformed"),
])
def test_bad_genesis_files_are_refused(tmp_path: Path, edit: object, msg: str) -> None:
    body = _genesis().to_json()
    edit(body)  # type: ignore[operator]
    p = tmp_path / "genesis.json"
    p.write_text(json.dumps(body))
    with pytest.raises(GenesisError, match=msg):
        Genesis.load(p)


def test_unreadable_or_non_json_genesis(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match="cannot read"):
        Genesis.load(tmp_path / "absent.json")
    (tmp_path / "g.json").write_text("{nope")
    with pytest.raises(GenesisError, match="not valid JSON"):
        Genesis.load(tmp_path / "g.json")


@settings(max_examples=200)
@given(st.text(max_size=40), st.text(max_size=12),
       st.one_of(st.binary(max_size=300), st.sampled_from([255, 256, 65535, 65536]).map(
           lambda n: b"\x07" * n)))
def test_signing_payload_is_the_documented_packing(chain_id: str, kind: str,
                                                   payload: bytes) -> None:
    from tpledger.ledger.encoding import pack
    from tpledger.ledger.keys import SIG_DOMAIN, signing_payload

    assert signing_payload(chain_id, kind, payload) == pack([SIG_DOMAIN, chain_id, kind, payload])
