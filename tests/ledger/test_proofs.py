"""Proof bundles, checkpoints, consistency proofs: verify, and reject every tampering."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpledger.ledger.errors import ProofError
from tpledger.ledger.proofs import (
    BUNDLE_MAGIC,
    Checkpoint,
    ConsistencyProof,
    ProofBundle,
    Verifier,
    verify_bundle,
    verify_checkpoint,
    verify_consistency_proof,
)
from tpledger.ledger.store import Store
from tpledger.ledger.tx import SignedTx

try:
    from tests.ledger import helpers as h
except ModuleNotFoundError:  # pytest run without the repo root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ledger import helpers as h

WORLD = h.make_world("proofs")
CODES = {"decode", "chain", "header", "inclusion", "tx_signature", "participant",
         "certificate", "consistency", "registry", "revoked"}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store of 7 blocks with uneven sizes (tree sizes not powers of two)."""
    s = h.open_store(tmp_path_factory.mktemp("proofs") / "db", WORLD)
    sizes = [1, 0, 3, 5, 2, 8, 1]
    txs: list[SignedTx] = []
    for n in sizes:
        batch = [h.make_claim(WORLD, i % 2, i % 2) for i in range(n)]
        h.add_block(WORLD, s, batch)
        txs.extend(batch)
    yield s, txs
    s.close()


def test_every_tx_verifies_at_every_later_height(filled: Any) -> None:
    store, txs = filled
    assert isinstance(store, Store)
    v = Verifier(WORLD.genesis)
    for stx in txs:
        loc = store.tx_location(stx.tx_id())
        assert loc is not None
        for height in range(loc.height, store.height + 1):
            b = store.proof(stx.tx_id(), height=height)
            assert b.tree_size == store.header(height).tree_size
            r = v.verify_bundle(b.to_bytes())
            assert r.ok, r
            assert r.claim_id == stx.tx_id() and r.height == height
            assert r.leaf_index == loc.leaf_index and r.signer_org in ("optic-a", "optic-b")
            assert r.tx_type == "claim"


def test_bundle_file_roundtrip_and_json(filled: Any, tmp_path: Path) -> None:
    store, txs = filled
    b = store.proof(txs[3].tx_id())
    f = tmp_path / "claim.tplproof"
    f.write_bytes(b.to_bytes())
    assert f.read_bytes().startswith(BUNDLE_MAGIC)
    assert ProofBundle.from_bytes(f.read_bytes()) == b
    assert verify_bundle(ProofBundle.from_bytes(f.read_bytes()), WORLD.genesis).ok
    j = b.to_json()
    assert j["leaf_index"] == b.leaf_index and len(j["path"]) == len(b.path)
    with pytest.raises(ProofError):
        ProofBundle.from_bytes(b.encode())  # magic is required


def test_wrong_genesis_is_a_certificate_failure(filled: Any) -> None:
    """Another genesis of the same chain id has other validators: their quorum did not
    certify the header (the bundle carries no unsigned genesis hash any more)."""
    store, txs = filled
    data = store.proof(txs[0].tx_id()).to_bytes()
    r = verify_bundle(data, h.make_world("elsewhere").genesis)
    assert not r.ok and r.failure_code == "certificate"


def test_semantic_failures_are_named(filled: Any) -> None:
    store, txs = filled
    b = store.proof(txs[5].tx_id())
    g = WORLD.genesis
    cases = {
        "inclusion": dataclasses.replace(b, leaf_index=(b.leaf_index + 1) % b.tree_size),
        "header": dataclasses.replace(b, header=dataclasses.replace(b.header, proposer=9)),
        "certificate": dataclasses.replace(b, cert_signatures=b.cert_signatures[:2]),
        "chain": dataclasses.replace(b, header=dataclasses.replace(b.header, chain_id="x")),
        "registry": dataclasses.replace(b, signer_path=b.signer_path[:-1]),
        "participant": dataclasses.replace(b, signer_record=b""),
    }
    for code, bad in cases.items():
        r = verify_bundle(bad, g)
        assert (r.ok, r.failure_code) == (False, code), code
    # a tx signed by a key the genesis does not know, in a well-formed bundle
    stx = SignedTx.decode(b.tx)
    forged = dataclasses.replace(stx, signature=bytes(64)).encode()
    r = verify_bundle(dataclasses.replace(b, tx=forged), g)
    assert not r.ok and r.failure_code in ("inclusion", "tx_signature")


def test_another_participants_leaf_is_participant_failure(filled: Any) -> None:
    """A true leaf of the registry, with its true path, but of another participant than the
    signer: refused (the record must name the signing key)."""
    store, txs = filled
    mine = store.proof(txs[0].tx_id(), height=store.height)
    other = next(t for t in txs if t.signer != txs[0].signer)
    theirs = store.proof(other.tx_id(), height=store.height)
    forged = dataclasses.replace(mine, signer_record=theirs.signer_record,
                                 signer_path=theirs.signer_path)
    r = verify_bundle(forged, WORLD.genesis)
    assert not r.ok and r.failure_code == "participant" and "signer's" in r.message


def _flip_all(data: bytes, mask: int) -> list[bytes]:
    return [data[:i] + bytes([data[i] ^ mask]) + data[i + 1:] for i in range(len(data))]


def test_every_single_byte_flip_is_rejected(filled: Any) -> None:
    store, txs = filled
    data = store.proof(txs[7].tx_id()).to_bytes()
    v = Verifier(WORLD.genesis)
    assert v.verify_bundle(data).ok
    seen: set[str] = set()
    for mask in (0x01, 0x80, 0xFF):
        for i, bad in enumerate(_flip_all(data, mask)):
            r = v.verify_bundle(bad)
            assert not r.ok, f"flip {mask:#x} at byte {i} accepted"
            assert r.failure_code in CODES, (i, r)
            seen.add(str(r.failure_code))
    assert {"decode", "chain", "inclusion", "certificate"} <= seen


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_tampering_never_raises(filled: Any, data: st.DataObject) -> None:
    store, txs = filled
    good = store.proof(txs[data.draw(st.integers(0, len(txs) - 1))].tx_id()).to_bytes()
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
    if kind == "flip":
        ba = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(ba) - 1))
            ba[i] ^= data.draw(st.integers(1, 255))
        bad = bytes(ba)
    elif kind == "truncate":
        bad = good[: data.draw(st.integers(0, len(good) - 1))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(good)))
        bad = good[:i] + data.draw(st.binary(min_size=1, max_size=8)) + good[i:]
    else:
        bad = good[: len(good) // 2] + data.draw(st.binary(max_size=64))
    if bad == good:
        return
    r = verify_bundle(bad, WORLD.genesis)
    assert not r.ok and r.failure_code in CODES


def test_garbage_inputs_never_raise() -> None:
    for junk in (b"", BUNDLE_MAGIC, BUNDLE_MAGIC + b"\xc1", b"\x00" * 10,
                 BUNDLE_MAGIC + b"\xff" * 100_000, "not bytes"):
        r = verify_bundle(junk, WORLD.genesis)  # type: ignore[arg-type]
        assert not r.ok and r.failure_code == "decode"


def test_checkpoint_and_consistency(filled: Any) -> None:
    store, _ = filled
    g = WORLD.genesis
    head = store.height
    for old in range(1, head + 1):
        for new in range(old, head + 1):
            p = store.consistency_proof(old, new)
            r = verify_consistency_proof(p.encode(), g)
            assert r.ok, (old, new, r)
    cp = store.checkpoint(3)
    assert verify_checkpoint(cp, g).ok
    assert verify_checkpoint(Checkpoint.decode(cp.encode()), g).ok
    bad_cp = dataclasses.replace(cp, certificate=h.certify(WORLD, store.header(2)))
    assert verify_checkpoint(bad_cp, g).failure_code == "certificate"

    p = store.consistency_proof(3, head)
    assert p.path
    # tampered path hash, truncated path, swapped checkpoints
    hashes = list(p.path)
    hashes[0] = bytes(32)
    assert verify_consistency_proof(dataclasses.replace(p, path=tuple(hashes)),
                                    g).failure_code == "consistency"
    assert verify_consistency_proof(dataclasses.replace(p, path=p.path[:-1]),
                                    g).failure_code == "consistency"
    assert not verify_consistency_proof(ConsistencyProof(p.new, p.old, p.path), g).ok
    # a forked "new" checkpoint (other tree root, properly certified by a quorum) fails
    forged_hd = dataclasses.replace(p.new.header, tree_root=bytes(32))
    forged = Checkpoint(forged_hd, h.certify(WORLD, forged_hd))
    r = verify_consistency_proof(dataclasses.replace(p, new=forged), g)
    assert r.failure_code == "consistency"
    # every single byte flip of the encoded proof is rejected
    enc = p.encode()
    for bad in _flip_all(enc, 0x01):
        assert not verify_consistency_proof(bad, g).ok


def test_bundle_size_is_reported(filled: Any) -> None:
    store, txs = filled
    b = store.proof(txs[-1].tx_id())
    assert len(b.to_bytes()) < 2048
    assert len(b.path) <= 5


def test_checkpoint_and_consistency_file_forms(filled: Any) -> None:
    store, _ = filled
    cp = store.checkpoint(2)
    assert Checkpoint.from_bytes(cp.to_bytes()) == cp
    assert verify_checkpoint(cp.to_bytes(), WORLD.genesis).ok
    p = store.consistency_proof(2)
    assert ConsistencyProof.from_bytes(p.to_bytes()) == p
    assert verify_consistency_proof(p.to_bytes(), WORLD.genesis).ok
    with pytest.raises(ProofError):
        Checkpoint.from_bytes(p.to_bytes())
    assert verify_checkpoint(p.to_bytes(), WORLD.genesis).failure_code == "decode"
