"""Shared test builders: a deterministic 4-validator test chain, signed txs, certified blocks.

Everything derives from a seed string, so two processes (e.g. the crash-test writer and the
test that audits after killing it) build the very same genesis and keys.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tpledger.ledger.blocks import Block, Header
from tpledger.ledger.genesis import DEFAULT_PARAMS, Genesis, Params, Participant, Validator
from tpledger.ledger.keys import BoxKey, KeyFile, Signer
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.store import Store
from tpledger.ledger.tx import (
    SHARE_AMC,
    SHARE_AMO,
    Claim,
    Decision,
    LppLine,
    Payment,
    SealedRef,
    SignedTx,
    sign_tx,
)
from tpledger.ledger.votes import PRECOMMIT, CommitCertificate, Vote

CHAIN_ID = "tpledger-test"
GENESIS_TIME_MS = 1_700_000_000_000
FRAME_CODE = "2210546"  # child frame, PLV 3049 cents
LENS_CODE = "2261874"  # child lens, PLV 1204 cents
N_VALIDATORS = 4

_LPP: LppTable | None = None


def lpp_table() -> LppTable:
    global _LPP
    if _LPP is None:
        _LPP = LppTable.default()
    return _LPP


def _seed(tag: str, seed: str) -> bytes:
    return hashlib.sha256(f"tpledger-test/{seed}/{tag}".encode()).digest()


@dataclass
class World:
    """A test chain: genesis, validator signers, participant key files, and a tx counter."""

    genesis: Genesis
    lpp: LppTable
    validators: list[Signer]
    opticians: list[KeyFile]
    insurers: list[KeyFile]
    cnam: KeyFile
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id


def make_world(seed: str = "default", params: Params = DEFAULT_PARAMS) -> World:
    """A deterministic chain with 4 validators, 2 opticians, 2 insurers and the CNAM."""
    validators = [Signer(_seed(f"validator-{i}", seed)) for i in range(N_VALIDATORS)]

    def kf(org: str, role: str) -> KeyFile:
        return KeyFile(org, role, Signer(_seed(org, seed)), BoxKey(_seed(org + "/box", seed)))

    opticians = [kf("optic-a", "optician"), kf("optic-b", "optician")]
    insurers = [kf("mutuelle-a", "insurer"), kf("mutuelle-b", "insurer")]
    cnam = kf("cnam", "cnam")
    lpp = lpp_table()
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=GENESIS_TIME_MS,
        validators=tuple(
            Validator(f"val-{i}", f"org-{i}", s.public) for i, s in enumerate(validators)
        ),
        participants=tuple(
            Participant(k.org, k.role, k.signer.public, k.box.public)
            for k in (*opticians, *insurers, cnam)
        ),
        lpp_table_digest=lpp.digest(),
        params=params,
    ).validated()
    return World(genesis, lpp, validators, opticians, insurers, cnam,
                 random.Random(_seed("rng", seed)))


def make_claim(world: World, optician: int = 0, insurer: int = 0) -> SignedTx:
    """A valid signed claim (frame + lens, both shares asked) with a fresh nonce."""
    rng = world.rng
    ins = world.insurers[insurer].org
    lines = (LppLine(FRAME_CODE, 1, 3000), LppLine(LENS_CODE, 2, 2400))
    claim = Claim(
        optician=world.opticians[optician].org,
        insurer=ins,
        lines=lines,
        amo_cents=3000,
        amc_cents=2400,
        patient_commitment=rng.randbytes(32),
        sealed=(SealedRef(ins, rng.randbytes(32)), SealedRef("cnam", rng.randbytes(32))),
        created_at_ms=GENESIS_TIME_MS + rng.randrange(10**9),
        nonce=rng.randbytes(16),
        client_ref=f"INV-{rng.randbytes(12).hex()}",
    )
    return sign_tx(world.chain_id, world.opticians[optician].signer, claim)


def make_decision(world: World, claim_id: bytes, share: int = SHARE_AMO,
                  approved_cents: int = 1000, insurer: int = 0) -> SignedTx:
    signer = world.cnam.signer if share == SHARE_AMO else world.insurers[insurer].signer
    return sign_tx(world.chain_id, signer, Decision(claim_id, share, True, approved_cents, ""))


def make_payment(world: World, claim_id: bytes, share: int = SHARE_AMC,
                 amount_cents: int = 500, insurer: int = 0) -> SignedTx:
    signer = world.cnam.signer if share == SHARE_AMO else world.insurers[insurer].signer
    return sign_tx(world.chain_id, signer,
                   Payment(claim_id, share, amount_cents, world.rng.randbytes(32)))


def certify(world: World, header: Header, signers: Sequence[int] = (0, 1, 2),
            round_: int = 0) -> CommitCertificate:
    """A commit certificate over ``header`` signed by the given validator indices."""
    votes = [
        Vote(header.height, round_, PRECOMMIT, header.hash(), i).sign(
            world.chain_id, world.validators[i]
        )
        for i in signers
    ]
    return CommitCertificate.from_votes(votes)


def next_time_ms(store: Store) -> int:
    return store.head().time_ms + 1000


def make_block(world: World, store: Store, txs: Sequence[SignedTx],
               proposer: int | None = None) -> tuple[Block, CommitCertificate]:
    """Build the next block from ``txs`` (all must be valid) and certify it."""
    h = store.height + 1
    checked, rejected = store.build_block(
        txs, proposer=h % N_VALIDATORS if proposer is None else proposer,
        time_ms=next_time_ms(store),
    )
    assert not rejected, rejected
    return checked.block, certify(world, checked.header)


def add_block(world: World, store: Store, txs: Sequence[SignedTx]) -> Block:
    block, cert = make_block(world, store, txs)
    store.apply_certified(block, cert)
    return block


def open_store(path: Path, world: World, map_size: int = 64 * 1024 * 1024) -> Store:
    return Store.open(path, world.genesis, world.lpp, map_size=map_size)


def fill_store(world: World, store: Store, blocks: int, txs_per_block: int,
               decisions: bool = True) -> list[SignedTx]:
    """Append ``blocks`` certified blocks of claims (plus decisions/payments on earlier claims
    when ``decisions``); returns every applied tx in log order."""
    applied: list[SignedTx] = []
    pending: list[bytes] = []
    for _ in range(blocks):
        txs = [make_claim(world, optician=i % 2, insurer=i % 2) for i in range(txs_per_block)]
        if decisions and pending:
            cid = pending.pop(0)
            txs.append(make_decision(world, cid, SHARE_AMC, 2000))
            txs.append(make_payment(world, cid, SHARE_AMC, 2000))
        add_block(world, store, txs)
        applied.extend(txs)
        pending.extend(t.tx_id() for t in txs[:1] if t.parse().__class__ is Claim)
    return applied
