"""Issue 11: one Byzantine validator must not be able to hide a proof-of-lock and halt the chain.

n = 4 (f = 1, Q = 3): three real machines (validators 0, 1, 2) and a scripted Byzantine
validator 3; n = 7 (f = 2, Q = 5): five real machines, validator 6 scripted, validator 5 silent.
In round 0 the Byzantine validator sends its prevote for the proposal to node 0 only, after
filling the slots of the others with two junk values; the last honest node is slow (prevotes
nil), so node 0 alone sees Q prevotes and locks. In round 1 it does the same for node 1, which
locks on another value. From then on the network is synchronous and the Byzantine validators
silent. Under the old rule (at most two values per slot, further ones dropped unread:
:class:`OldVoteSlots`) nobody can verify the other's proof-of-lock and nothing is ever
committed; under the rule of ``Consensus._slot_admits`` (a vote for a named value is always
admitted, and a POL is sent as one verified ProofOfLock) the chain commits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from tests.consensus.broken_variants import OldVoteSlots
from tpledger.consensus import Consensus, Ready, Timer
from tpledger.consensus import messages as cm
from tpledger.consensus.sim import SIM_CONFIG, make_payload, sim_validate, sim_value_of
from tpledger.ledger.keys import Signer
from tpledger.ledger.votes import PREVOTE, Vote, max_faulty, quorum

CHAIN = "tpledger-pol-attack"
CFG = replace(SIM_CONFIG, timeout_commit_ms=0)
SIGNERS = [Signer(bytes([i + 41]) * 32) for i in range(7)]


class Cluster:
    """Synchronous, in-order delivery between the honest machines, with a hold filter."""

    def __init__(self, cls: type[Consensus], n: int) -> None:
        self.n, self.q = n, quorum(n)
        self.honest = tuple(range(n - max_faulty(n)))
        self.byz_index = n - 1
        keys = [s.public for s in SIGNERS[:n]]
        self.ms = {i: cls(chain_id=CHAIN, validator_keys=keys, my_index=i, signer=SIGNERS[i],
                          config=CFG, validate=sim_validate, height=1) for i in self.honest}
        self.queue: deque[tuple[int, bytes]] = deque()
        self.held: list[tuple[int, bytes]] = []
        self.hold: Callable[[int, int, bytes], bool] = lambda src, dst, m: False
        self.timers: dict[int, list[Timer]] = {i: [] for i in self.honest}
        self.decided: dict[int, list[tuple[int, bytes]]] = {i: [] for i in self.honest}

    def handle(self, src: int, ready: Ready) -> None:
        self.decided[src].extend((c.round, c.value_id) for c in ready.commits)
        for m in ready.messages:
            for dst in self.honest:
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
        """The Byzantine validator signs a prevote and hands it to ``dsts`` only."""
        b = self.byz_index
        m = Vote(1, round, PREVOTE, value_id, b).sign(CHAIN, SIGNERS[b]).encode()
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
            self.fire(self.honest, kind)

    def run(self, rounds: int, heights: int = 3) -> None:
        for _ in range(rounds):  # synchronous from now on; the Byzantine validators are silent
            if all(len(d) >= heights for d in self.decided.values()):
                return
            self.tick()


def junk(round: int, k: int) -> bytes:
    return sim_value_of(b"junk|%d|%d" % (round, k))


def hide_vote_from(c: Cluster, round: int, value: bytes, target: int, resend: bool) -> None:
    """Two junk prevotes to every honest node but ``target``, then the real one to ``target``."""
    others = [i for i in c.honest if i != target]
    c.byz(others, round, junk(round, 1))
    c.byz(others, round, junk(round, 2))
    c.byz([target], round, value)  # target alone sees Q prevotes for value: it locks
    if resend:
        c.byz(others, round, value)  # the old rule drops this as a third value


def split_locks(c: Cluster, resend: bool) -> tuple[bytes, bytes]:
    """Rounds 0 and 1 of the attack; returns the values node 0 and node 1 lock on."""
    slow = c.honest[c.q - 1:]  # they miss the proposal: Q-1 honest prevotes for v
    c.hold = lambda src, dst, m: dst in slow and m[1] == cm.SignedProposal.TAG
    for i in c.honest:
        c.handle(i, c.ms[i].start())
    c.settle()
    v = sim_validate(1, make_payload(1, 0, 1, 0))
    assert v is not None
    c.fire(slow, cm.TIMEOUT_PROPOSE)  # the slow nodes prevote nil
    hide_vote_from(c, 0, v, 0, resend)
    c.release()
    c.fire(c.honest, cm.TIMEOUT_PREVOTE)
    c.fire(c.honest, cm.TIMEOUT_PRECOMMIT)
    if any(c.decided.values()):
        return v, v  # the new rule: the re-sent vote was admitted, v committed in round 0
    w = sim_validate(1, make_payload(1, 1, 2, 0))
    assert w is not None
    assert all(c.ms[i].round == 1 for i in c.honest)
    hide_vote_from(c, 1, w, 1, resend)  # node 0 is locked on v: Q-1 honest prevotes for w
    c.fire(c.honest, cm.TIMEOUT_PREVOTE)
    c.fire(c.honest, cm.TIMEOUT_PRECOMMIT)
    return v, w


@pytest.mark.parametrize("n", [4, 7])
def test_attack_is_survived_through_the_pol_bundle(n: int) -> None:
    c = Cluster(Consensus, n)
    v, w = split_locks(c, resend=False)
    # The locks are split exactly as under the old rule ...
    assert (c.ms[0].locked_value, c.ms[0].locked_round) == (v, 0)
    assert (c.ms[1].locked_value, c.ms[1].locked_round) == (w, 1)
    c.run(rounds=40)
    # ... but node 1 re-proposes w in round n (proposer (1 + n) mod n) with its ProofOfLock;
    # the others verify it and admit the hidden prevote: w is decided in round n.
    assert all(c.decided[i][0] == (n, w) for i in c.honest), c.decided
    assert all(c.ms[i].stats["accepted_pol"] > 0 for i in c.honest if i != 1)
    assert all(len(c.decided[i]) >= 3 for i in c.honest)
    assert len({tuple(c.decided[i][:3]) for i in c.honest}) == 1  # agreement


@pytest.mark.parametrize("n", [4, 7])
def test_attack_with_resent_votes_is_survived(n: int) -> None:
    c = Cluster(Consensus, n)
    split_locks(c, resend=True)
    c.run(rounds=40)
    assert all(len(c.decided[i]) >= 3 for i in c.honest)
    assert len({tuple(c.decided[i][:3]) for i in c.honest}) == 1


@pytest.mark.parametrize("n", [4, 7])
def test_attack_splits_locks_then_stalls_the_old_rule(n: int) -> None:
    c = Cluster(OldVoteSlots, n)
    v, w = split_locks(c, resend=True)
    assert v != w
    assert (c.ms[0].locked_value, c.ms[0].locked_round) == (v, 0)
    assert (c.ms[1].locked_value, c.ms[1].locked_round) == (w, 1)
    c.run(rounds=40)
    assert not any(c.decided.values())  # 40 synchronous rounds, nothing committed
    assert min(c.ms[i].round for i in c.honest) >= 30
    assert sum(c.ms[i].stats["dropped_unnamed_vote"] for i in c.honest) > 0  # the POL was dropped
