"""Issue 11: one Byzantine validator must not be able to hide a proof-of-lock and halt the chain.

Three real machines (validators 0, 1, 2) and a scripted Byzantine validator 3 (n = 4, f = 1,
Q = 3). In round 0 validator 3 sends its prevote for the proposal to node 0 only, after filling
the slots of nodes 1 and 2 with two junk values; node 0 locks. In round 1 it does the same for
node 1, which locks on another value. From then on the network is synchronous and validator 3
silent. Under the old rule (at most two values per slot, further ones dropped unread:
:class:`OldVoteSlots`) nobody can verify the other's proof-of-lock and no height is ever
committed; under the rule of ``Consensus._slot_admits`` (a vote for a named value is always
admitted, and a POL is sent as one verified bundle) the chain commits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

from consensus import Consensus, Ready, Timer
from consensus import messages as cm
from consensus.sim import SIM_CONFIG, make_payload, sim_validate, sim_value_of
from ledger.keys import Signer
from ledger.votes import PREVOTE, Vote
from tests.consensus.broken_variants import OldVoteSlots

CHAIN = "tpledger-pol-attack"
CFG = replace(SIM_CONFIG, timeout_commit_ms=0)
SIGNERS = [Signer(bytes([i + 41]) * 32) for i in range(4)]
KEYS = [s.public for s in SIGNERS]
BYZ = 3
HONEST = (0, 1, 2)


class Cluster:
    """Synchronous, in-order delivery between the honest machines, with a hold filter."""

    def __init__(self, cls: type[Consensus]) -> None:
        self.ms = {i: cls(chain_id=CHAIN, validator_keys=KEYS, my_index=i, signer=SIGNERS[i],
                          config=CFG, validate=sim_validate, height=1) for i in HONEST}
        self.queue: deque[tuple[int, bytes]] = deque()
        self.held: list[tuple[int, bytes]] = []
        self.hold: Callable[[int, int, bytes], bool] = lambda src, dst, m: False
        self.timers: dict[int, list[Timer]] = {i: [] for i in HONEST}
        self.decided: dict[int, list[tuple[int, bytes]]] = {i: [] for i in HONEST}

    def handle(self, src: int, ready: Ready) -> None:
        self.decided[src].extend((c.round, c.value_id) for c in ready.commits)
        for m in ready.messages:
            for dst in HONEST:
                if dst == src:
                    continue
                if self.hold(src, dst, m):
                    self.held.append((dst, m))
                else:
                    self.queue.append((dst, m))
        self.timers[src].extend(ready.timers)
        if ready.need_payload is not None:
            h, r = ready.need_payload
            self.handle(src, self.ms[src].on_payload(h, r, make_payload(h, r, src, 0)))

    def settle(self) -> None:
        while self.queue:
            dst, m = self.queue.popleft()
            self.handle(dst, self.ms[dst].on_message(m))

    def release(self) -> None:
        self.hold = lambda src, dst, m: False
        self.queue.extend(self.held)
        self.held = []
        self.settle()

    def byz(self, dsts: Sequence[int], round: int, value_id: bytes | None) -> None:
        """Validator 3 signs a prevote and hands it to ``dsts`` only."""
        m = Vote(1, round, PREVOTE, value_id, BYZ).sign(CHAIN, SIGNERS[BYZ]).encode()
        for dst in dsts:
            self.handle(dst, self.ms[dst].on_message(m))
        self.settle()

    def fire(self, nodes: Sequence[int], kind: str) -> None:
        """Fire the pending timers of ``kind`` that are current at each node."""
        for i in nodes:
            m = self.ms[i]
            due = [t for t in self.timers[i] if t.kind == kind]
            self.timers[i] = [t for t in self.timers[i] if t.kind != kind]
            for t in due:
                if t.height == m.height and (kind in (cm.REBROADCAST, cm.TIMEOUT_COMMIT)
                                             or t.round == m.round):
                    self.handle(i, m.on_timeout(t))
            self.settle()

    def tick(self) -> None:
        """One synchronous round: every current timer fires, everything is delivered."""
        for kind in (cm.REBROADCAST, cm.TIMEOUT_COMMIT, cm.TIMEOUT_PROPOSE, cm.TIMEOUT_PREVOTE,
                     cm.TIMEOUT_PRECOMMIT):
            self.fire(HONEST, kind)


def junk(round: int, k: int) -> bytes:
    return sim_value_of(b"junk|%d|%d" % (round, k))


def split_locks(cluster: Cluster, resend: bool) -> tuple[bytes, bytes]:
    """Rounds 0 and 1 of the attack; returns the values node 0 and node 1 lock on."""
    c = cluster
    c.hold = lambda src, dst, m: dst == 2 and m[1] == cm.SignedProposal.TAG  # node 2 is slow
    for i in HONEST:
        c.handle(i, c.ms[i].start())
    c.settle()
    v = sim_validate(1, make_payload(1, 0, 1, 0))
    assert v is not None
    c.fire([2], cm.TIMEOUT_PROPOSE)  # node 2 prevotes nil
    c.byz([1, 2], 0, junk(0, 1))
    c.byz([1, 2], 0, junk(0, 2))
    c.byz([0], 0, v)  # node 0 alone sees 2f+1 prevotes for v: it locks
    if resend:
        c.byz([1, 2], 0, v)  # the old rule drops this as a third value
    c.release()
    c.fire(HONEST, cm.TIMEOUT_PREVOTE)
    c.fire(HONEST, cm.TIMEOUT_PRECOMMIT)
    if any(c.decided.values()):
        return v, v  # the new rule: the re-sent vote was admitted, v committed in round 0
    w = sim_validate(1, make_payload(1, 1, 2, 0))
    assert w is not None
    assert all(c.ms[i].round == 1 for i in HONEST)
    c.byz([0, 2], 1, junk(1, 1))
    c.byz([0, 2], 1, junk(1, 2))
    c.settle()
    c.byz([1], 1, w)  # node 1 alone sees 2f+1 prevotes for w: it locks
    if resend:
        c.byz([0, 2], 1, w)
    c.fire(HONEST, cm.TIMEOUT_PREVOTE)
    c.fire(HONEST, cm.TIMEOUT_PRECOMMIT)
    return v, w


def run_attack(cls: type[Consensus], resend: bool, rounds: int) -> Cluster:
    c = Cluster(cls)
    split_locks(c, resend)
    for _ in range(rounds):  # synchronous from now on; validator 3 is silent
        if all(len(d) >= 3 for d in c.decided.values()):
            break
        c.tick()
    return c


def test_attack_is_survived_through_the_pol_bundle() -> None:
    c = Cluster(Consensus)
    v, w = split_locks(c, resend=False)
    # The locks are split exactly as under the old rule ...
    assert (c.ms[0].locked_value, c.ms[0].locked_round) == (v, 0)
    assert (c.ms[1].locked_value, c.ms[1].locked_round) == (w, 1)
    for _ in range(40):
        if all(len(d) >= 3 for d in c.decided.values()):
            break
        c.tick()
    # ... but node 1 re-proposes w in round 4 (proposer (1 + 4) mod 4) with its ProofOfLock,
    # nodes 0 and 2 verify it and admit validator 3's hidden prevote: w is decided in round 4.
    assert all(c.decided[i][0] == (4, w) for i in HONEST), c.decided
    assert all(c.ms[i].stats["accepted_pol"] > 0 for i in (0, 2))
    assert all(len(c.decided[i]) >= 3 for i in HONEST)
    assert len({tuple(c.decided[i][:3]) for i in HONEST}) == 1  # agreement


def test_attack_with_resent_votes_is_survived() -> None:
    c = run_attack(Consensus, resend=True, rounds=40)
    assert all(len(c.decided[i]) >= 3 for i in HONEST)
    assert len({tuple(c.decided[i][:3]) for i in HONEST}) == 1


def test_attack_splits_locks_then_stalls_the_old_rule() -> None:
    c = Cluster(OldVoteSlots)
    v, w = split_locks(c, resend=True)
    assert v != w
    assert (c.ms[0].locked_value, c.ms[0].locked_round) == (v, 0)
    assert (c.ms[1].locked_value, c.ms[1].locked_round) == (w, 1)
    for _ in range(40):
        c.tick()
    assert not any(c.decided.values())  # 40 synchronous rounds, nothing committed
    assert min(c.ms[i].round for i in HONEST) >= 30
    assert sum(c.ms[i].stats["dropped_unnamed_vote"] for i in HONEST) > 0  # the POL was dropped
