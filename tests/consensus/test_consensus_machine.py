"""Unit tests of the consensus state machine, driven by hand (no simulator)."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterable

import pytest

from tpledger.consensus import (
    Consensus,
    ConsensusConfig,
    ConsensusInvariantError,
    Evidence,
    PersistedState,
    Proposal,
    ProposalEvidence,
    Ready,
    SignedProposal,
    Timer,
)
from tpledger.consensus.messages import STEP_PRECOMMIT, STEP_PREVOTE, STEP_PROPOSE
from tpledger.consensus.sim import make_payload, sim_validate
from tpledger.ledger.encoding import decode_any
from tpledger.ledger.keys import Signer
from tpledger.ledger.votes import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    SignedVote,
    Vote,
    classify_conflict,
)

CHAIN = "tpledger-test"
CFG = ConsensusConfig(propose_base_ms=300, propose_delta_ms=100, prevote_base_ms=200,
                      prevote_delta_ms=50, precommit_base_ms=200, precommit_delta_ms=50,
                      timeout_commit_ms=0, rebroadcast_ms=1000, max_payload_bytes=4096)
SIGNERS = [Signer(bytes([i + 1]) * 32) for i in range(4)]
KEYS = [s.public for s in SIGNERS]


def machine(i: int, height: int = 1, persisted: bytes | None = None,
            cfg: ConsensusConfig = CFG, cls: type[Consensus] = Consensus) -> Consensus:
    return cls(chain_id=CHAIN, validator_keys=KEYS, my_index=i, signer=SIGNERS[i], config=cfg,
               validate=sim_validate, height=height, persisted=persisted)


def decode(msgs: Iterable[bytes]) -> list[object]:
    return [decode_any(m, (SignedProposal, SignedVote, CommitCertificate), 1 << 20) for m in msgs]


def votes_in(ready: Ready) -> list[Vote]:
    return [m.vote for m in decode(ready.messages) if isinstance(m, SignedVote)]


def vote(i: int, h: int, r: int, t: int, value: bytes | None) -> bytes:
    return Vote(h, r, t, value, i).sign(CHAIN, SIGNERS[i]).encode()


def proposal(h: int, r: int, payload: bytes, pol: int | None = None) -> bytes:
    p = (h + r) % 4
    return Proposal(h, r, pol, payload, p).sign(CHAIN, SIGNERS[p]).encode()


def value(payload: bytes) -> bytes:
    v = sim_validate(1, payload)
    assert v is not None
    return v


class Net:
    """Deliver every message to every other machine until quiet (no loss, no timers)."""

    def __init__(self, n: int = 4, max_height: int = 1) -> None:
        self.ms = [machine(i) for i in range(n)]
        self.max_height = max_height
        self.commits: list[list[int]] = [[] for _ in range(n)]
        self.readies: list[Ready] = []

    def settle(self, first: list[tuple[int, Ready]]) -> None:
        queue = list(first)
        while queue:
            src, ready = queue.pop(0)
            self.readies.append(ready)
            for c in ready.commits:
                self.commits[src].append(c.height)
            if ready.need_payload is not None and ready.need_payload[0] <= self.max_height:
                h, r = ready.need_payload
                queue.append((src, self.ms[src].on_payload(h, r, make_payload(h, r, src, 1))))
            for m in ready.messages:
                for j, other in enumerate(self.ms):
                    if j != src:
                        queue.append((j, other.on_message(m)))


def test_happy_path_n4_commits_with_a_valid_certificate() -> None:
    net = Net()
    net.settle([(i, m.start()) for i, m in enumerate(net.ms)])
    assert net.commits == [[1], [1], [1], [1]]
    commits = [c for r in net.readies for c in r.commits]
    assert len({c.value_id for c in commits}) == 1
    for c in commits:
        c.certificate.check(CHAIN, KEYS)  # a ledger CommitCertificate made of our precommits
        assert c.certificate.block_hash == c.value_id == sim_validate(1, c.payload)
    # timeout_commit_ms=0: the next height starts at once; the proposer of h=2 r=0 is 2.
    assert all(m.height == 2 for m in net.ms)


def test_proposer_asks_for_a_payload_and_others_schedule_timeout_propose() -> None:
    r1 = machine(1).start()  # proposer(1, 0) = 1
    assert r1.need_payload == (1, 0)
    r0 = machine(0).start()
    assert r0.need_payload is None
    assert Timer("propose", 1, 0, 300) in r0.timers
    assert any(t.kind == "rebroadcast" for t in r0.timers)


def test_timeouts_walk_through_the_round_and_grow() -> None:
    m = machine(0)
    m.start()
    r = m.on_timeout(Timer("propose", 1, 0, 300))
    assert [(v.vote_type, v.value_id) for v in votes_in(r)] == [(PREVOTE, None)]
    assert r.persist is not None
    assert m.step == STEP_PREVOTE
    for i in (1, 2):
        m.on_message(vote(i, 1, 0, PREVOTE, None))
    assert m.step == STEP_PRECOMMIT  # Q nil prevotes (l.44)
    for i in (1, 2):
        r = m.on_message(vote(i, 1, 0, PRECOMMIT, None))
    assert Timer("precommit", 1, 0, 200) in r.timers  # l.47
    r = m.on_timeout(Timer("precommit", 1, 0, 200))
    assert m.round == 1 and m.step == STEP_PROPOSE
    assert Timer("propose", 1, 1, 400) in r.timers  # base + delta * round
    # a stale timer does nothing
    r = m.on_timeout(Timer("propose", 1, 0, 300))
    assert r.messages == () and m.step == STEP_PROPOSE


def test_locking_prevents_voting_for_another_value() -> None:
    m = machine(3)
    m.start()
    v_pay = make_payload(1, 0, 1, 1)
    m.on_message(proposal(1, 0, v_pay))
    for i in (0, 1):
        m.on_message(vote(i, 1, 0, PREVOTE, value(v_pay)))
    assert (m.locked_round, m.locked_value) == (0, value(v_pay))
    for i in (0, 1):
        m.on_message(vote(i, 1, 0, PRECOMMIT, None))
    m.on_timeout(Timer("precommit", 1, 0, 200))
    assert m.round == 1
    # round 1: a new value without proof-of-lock: a locked validator prevotes nil (l.23-25)
    w_pay = make_payload(1, 1, 2, 2)
    r = m.on_message(proposal(1, 1, w_pay))
    assert [(v.vote_type, v.value_id) for v in votes_in(r)] == [(PREVOTE, None)]


def test_unlock_by_newer_proof_of_lock() -> None:
    m = machine(3)
    m.start()
    v_pay, w_pay = make_payload(1, 0, 1, 1), make_payload(1, 1, 2, 2)
    m.on_message(proposal(1, 0, v_pay))
    for i in (0, 1):
        m.on_message(vote(i, 1, 0, PREVOTE, value(v_pay)))
    for i in (0, 1):
        m.on_message(vote(i, 1, 0, PRECOMMIT, None))
    m.on_timeout(Timer("precommit", 1, 0, 200))
    # round 1: others prevoted w (we missed the proposal; timed out)
    m.on_timeout(Timer("propose", 1, 1, 400))
    for i in (0, 1, 2):
        m.on_message(vote(i, 1, 1, PREVOTE, value(w_pay)))
    m.on_message(vote(0, 1, 1, PRECOMMIT, None))
    m.on_message(vote(1, 1, 1, PRECOMMIT, None))
    m.on_timeout(Timer("precommit", 1, 1, 250))
    assert m.round == 2
    # round 2: proposer 3 is us... use round 3 (proposer 0) re-proposing w with pol_round=1
    m.on_timeout(Timer("propose", 1, 2, 500))
    for i in (0, 1):
        m.on_message(vote(i, 1, 2, PRECOMMIT, None))
    m.on_message(vote(2, 1, 2, PRECOMMIT, None))
    m.on_timeout(Timer("precommit", 1, 2, 300))
    assert m.round == 3
    r = m.on_message(proposal(1, 3, w_pay, pol=1))
    assert [(v.vote_type, v.value_id) for v in votes_in(r)] == [(PREVOTE, value(w_pay))]


def test_bad_messages_are_dropped_and_counted_never_raise() -> None:
    m = machine(0)
    m.start()
    outsider = Signer(b"\x99" * 32)
    good = vote(1, 1, 0, PREVOTE, None)
    cases = {
        "dropped_bad_encoding": [b"", b"\xff\x00", good + b"\x00", good[:-3], b"\x93\x31\x01"],
        "dropped_bad_signature": [
            Vote(1, 0, PREVOTE, None, 2).sign(CHAIN, outsider).encode(),  # non-validator key
            Vote(1, 0, PREVOTE, None, 2).sign("other-chain", SIGNERS[2]).encode(),
        ],
        "dropped_unknown_validator": [Vote(1, 0, PREVOTE, None, 9).sign(CHAIN, outsider).encode()],
        "dropped_far_future": [vote(1, 99, 0, PREVOTE, None)],
        "dropped_wrong_proposer": [Proposal(1, 0, None, b"blk|1|", 3).sign(CHAIN, SIGNERS[3])
                                   .encode()],
        "dropped_oversize": [Proposal(1, 0, None, b"blk|1|" + b"x" * 5000, 1)
                             .sign(CHAIN, SIGNERS[1]).encode()],
        "dropped_bad_pol_round": [Proposal(1, 0, 0, b"blk|1|", 1).sign(CHAIN, SIGNERS[1])
                                  .encode()],
    }
    flipped = bytearray(good)
    flipped[-1] ^= 1
    cases["dropped_bad_signature"].append(bytes(flipped))
    for counter, msgs in cases.items():
        before = m.stats[counter]
        for raw in msgs:
            r = m.on_message(raw)
            assert r.messages == () and r.commits == ()
        assert m.stats[counter] == before + len(msgs), counter
    m2 = machine(0, height=5)
    m2.start()
    m2.on_message(good)
    assert m2.stats["dropped_old_height"] == 1
    # nothing bad was stored
    assert all(not log.prevotes for log in m._rounds.values())


def test_future_height_buffer_is_bounded_and_replayed() -> None:
    cfg = ConsensusConfig(**{**CFG.__dict__, "max_buffered_messages": 8})
    m = machine(0, cfg=cfg)
    m.start()
    for rnd in range(10):  # validator 1 floods height 2: only 8 // 4 = 2 are kept
        m.on_message(vote(1, 2, rnd, PREVOTE, None))
    assert m.stats["buffered_future"] == 2
    assert m.stats["dropped_buffer_full"] == 7
    assert m.stats["dropped_future_far_round"] == 1  # round 9 > round_window 8
    r = m.advance_to(2)
    assert m.height == 2 and r.persist is not None
    assert len(m._rounds[0].prevotes) == 1  # the buffered round-0 prevote was replayed


def test_equivocation_yields_evidence_once() -> None:
    m = machine(0)
    m.start()
    a = make_payload(1, 0, 1, 1)
    m.on_message(vote(2, 1, 0, PREVOTE, value(a)))
    r = m.on_message(vote(2, 1, 0, PREVOTE, None))
    assert len(r.evidence) == 1
    ev = r.evidence[0]
    assert isinstance(ev, Evidence) and ev.validator == 2 and ev.check(CHAIN, KEYS)
    assert Evidence.decode(ev.encode()) == ev
    r = m.on_message(vote(2, 1, 0, PREVOTE, value(make_payload(1, 0, 1, 2))))
    assert r.evidence == () and m.stats["dropped_unnamed_vote"] == 1


def test_proposer_equivocation_yields_proposal_evidence() -> None:
    m = machine(0)  # height 1, round 0: the proposer is validator 1
    m.start()
    r = m.on_message(proposal(1, 0, make_payload(1, 0, 1, 1)))
    assert r.evidence == ()
    r = m.on_message(proposal(1, 0, make_payload(1, 0, 1, 2)))  # same slot, another block
    assert len(r.evidence) == 1
    ev = r.evidence[0]
    assert isinstance(ev, ProposalEvidence) and ev.validator == 1 and ev.check(CHAIN, KEYS)
    assert ProposalEvidence.decode(ev.encode()) == ev
    assert m.stats["proposal_equivocation"] == 1
    # The same proposal again is a duplicate, not evidence; a forged pair does not check.
    assert m.on_message(proposal(1, 0, make_payload(1, 0, 1, 2))).evidence == ()
    forged = ProposalEvidence(ev.first, SignedProposal(ev.second.proposal, ev.first.signature))
    assert not forged.check(CHAIN, KEYS)
    assert not ProposalEvidence(ev.first, ev.first).check(CHAIN, KEYS)


def test_last_certificate_from_the_store_is_rebroadcast_after_restart() -> None:
    payload = make_payload(1, 0, 1, 1)
    cert = CommitCertificate.from_votes(
        [Vote(1, 0, PRECOMMIT, value(payload), i).sign(CHAIN, SIGNERS[i]) for i in range(3)])
    m = Consensus(chain_id=CHAIN, validator_keys=KEYS, my_index=0, signer=SIGNERS[0],
                  config=CFG, validate=sim_validate, height=2, last_cert=cert)
    r = m.start()
    rebroadcast = [t for t in r.timers if t.kind == "rebroadcast"]
    assert rebroadcast
    r = m.on_timeout(rebroadcast[0])
    assert cert.encode() in r.messages  # laggards at height 1 can catch up from it
    # A certificate for another height than height-1 is ignored.
    m2 = Consensus(chain_id=CHAIN, validator_keys=KEYS, my_index=0, signer=SIGNERS[0],
                   config=CFG, validate=sim_validate, height=3, last_cert=cert)
    assert m2.last_cert is None


def test_every_new_vote_or_proposal_is_persisted_before_it_leaves() -> None:
    net = Net()
    net.settle([(i, m.start()) for i, m in enumerate(net.ms)])
    signed = 0
    for r in net.readies:
        for obj in decode(r.messages):
            if isinstance(obj, SignedVote | SignedProposal):
                signed += 1
                assert r.persist is not None
                st = PersistedState.decode(r.persist)
                if isinstance(obj, SignedVote) and st.height == obj.vote.height:
                    assert st.round >= obj.vote.round
                    if st.round == obj.vote.round:
                        assert obj in st.votes
    assert signed >= 4 * 2 + 1


def test_restart_never_double_signs() -> None:
    m = machine(0)
    m.start()
    pay = make_payload(1, 0, 1, 1)
    r = m.on_message(proposal(1, 0, pay))
    assert [v.value_id for v in votes_in(r)] == [value(pay)]
    assert r.persist is not None
    # crash: everything but r.persist is lost. The restarted machine re-sends the same vote
    m2 = machine(0, persisted=r.persist)
    r2 = m2.start()
    assert [v.value_id for v in votes_in(r2)] == [value(pay)]
    assert m2.step == STEP_PREVOTE
    # the propose timeout of the old incarnation must not produce a nil prevote now
    r3 = m2.on_timeout(Timer("propose", 1, 0, 300))
    assert votes_in(r3) == []
    # a second, different proposal for round 0 does not make it vote again
    r4 = m2.on_message(proposal(1, 0, make_payload(1, 0, 1, 7)))
    assert votes_in(r4) == []
    # and forcing a conflicting vote is an internal error, not a silent double-sign
    with pytest.raises(ConsensusInvariantError):
        m2._vote(PREVOTE, None)


def test_restarted_proposer_does_not_propose_twice() -> None:
    m = machine(1)
    r = m.start()
    assert r.need_payload == (1, 0)
    r = m.on_payload(1, 0, make_payload(1, 0, 1, 1))
    assert r.persist is not None and PersistedState.decode(r.persist).proposed_round == 0
    m2 = machine(1, persisted=r.persist)
    r2 = m2.start()
    assert r2.need_payload is None
    assert m2.on_payload(1, 0, make_payload(1, 0, 1, 2)).messages == ()
    assert m2.stats["stale_payload"] == 1


def test_persisted_state_ahead_of_store_is_refused() -> None:
    m = machine(0, height=3)
    r = m.start()
    assert r.persist is not None
    with pytest.raises(ValueError):
        machine(0, height=2, persisted=r.persist)
    machine(0, height=4, persisted=r.persist).start()  # behind: fresh start is fine


def test_certificate_for_our_height_commits_and_higher_one_asks_to_catch_up() -> None:
    net = Net()
    net.settle([(i, m.start()) for i, m in enumerate(net.ms[:3])] +
               [(3, Ready())])  # machine 3 never started: it missed everything
    c = next(c for r in net.readies for c in r.commits)
    late = machine(3)
    late.start()
    pay = c.payload
    late.on_message(proposal(1, c.round, pay))
    r = late.on_message(c.certificate.encode())
    assert [x.height for x in r.commits] == [1]
    other = machine(3)
    other.start()
    r = other.on_message(c.certificate.encode())  # no proposal: ask the node to fetch h=1
    assert r.catch_up == 1 and r.commits == ()
    bumped = CommitCertificate(5, 0, c.value_id, c.certificate.signatures)
    assert other.on_message(bumped.encode()).catch_up is None  # forged: bad signatures
    assert other.stats["dropped_bad_certificate"] == 1


def test_classify_conflict_splits_proven_and_suspects() -> None:
    def cert(r: int, val: bytes, who: list[int]) -> CommitCertificate:
        return CommitCertificate.from_votes(
            [SignedVote.decode(vote(i, 1, r, PRECOMMIT, val)) for i in who])
    a, b = value(make_payload(1, 0, 1, 1)), value(make_payload(1, 0, 1, 2))
    same = classify_conflict(cert(0, a, [0, 1, 2]), cert(0, b, [1, 2, 3]))
    assert same.proven == (1, 2) and same.suspects == ()
    diff = classify_conflict(cert(0, a, [0, 1, 2]), cert(3, b, [1, 2, 3]))
    assert diff.proven == () and diff.suspects == (1, 2)
    assert classify_conflict(cert(0, a, [0, 1, 2]), cert(1, a, [1, 2, 3])).suspects == ()


def test_observer_follows_without_signing() -> None:
    net = Net()
    obs = Consensus(chain_id=CHAIN, validator_keys=KEYS, my_index=None, signer=None, config=CFG,
                    validate=sim_validate, height=1)
    obs.start()
    net.settle([(i, m.start()) for i, m in enumerate(net.ms)])
    out: list[Ready] = [obs.on_message(m) for r in list(net.readies) for m in r.messages]
    assert [c.height for r in out for c in r.commits] == [1]
    assert all(not votes_in(r) for r in out)


def test_sans_io_imports() -> None:
    forbidden = {"asyncio", "aiohttp", "lmdb", "time", "random", "os", "socket", "threading"}
    root = pathlib.Path(__file__).resolve().parents[2] / "consensus"
    for path in root.glob("*.py"):
        if path.name == "sim.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not forbidden.intersection(names), f"{path.name} imports {names}"
