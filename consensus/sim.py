"""Deterministic simulator: n validators, a simulated network and clock, faults, and checks.

One seeded ``random.Random`` drives everything (keys, delays, losses, faults), so a seed is a
complete reproduction recipe: ``python -m consensus.sim --seed S --n 4 --runs 1 --trace``.

Faults: message loss, delay (reordering), duplication, partitions into 2 or 3 groups that heal,
crashes with restart from the persisted bytes only (a crash may also hit *inside* one ``Ready``:
before its commits are applied, between apply and persist, between persist and send, or in the
middle of sending), per-node clock rates (skew), several timing configurations, and up to f
Byzantine validators (see ``BEHAVIOURS``): ``silent``, ``equivocate`` (conflicting proposals
and votes to different peers), ``invalid`` (proposes and votes for blocks the validity rule
rejects), ``replay`` (re-sends old messages), ``garbage`` (random, truncated, flipped, oversize,
far-future bytes), ``twins`` (a second honest instance holding the same key), ``kvalues`` (k > 2
junk values per vote slot to different subsets first, the real vote to one peer only: the
POL-hiding attack of issue 11), ``multipropose`` (3 or more proposals per round),
``withhold`` (never sends to a chosen subset), ``victim_replay`` (replays an honest validator's
messages many times to fill its buffers), ``future_flood`` (signed messages for future heights
and far-future rounds, with maximal payloads) and ``amnesia`` (forgets its persisted state and
signs again). ``collude`` (f+1 validators splitting the honest ones) is outside the fault model:
it is only allowed with ``SimConfig.beyond_fault_model`` and the checks must then fail.

Checks, after every event: Agreement (no two honest validators commit different values at one
height), Validity (every committed payload passes the honest validity rule and carries a valid
commit certificate for its value), no honest double-signing (two different votes for one
(validator, height, round, type), persisted state included), persist-before-send (the state on
disk when a vote leaves covers that vote: see :func:`persisted_covers`), evidence names only
faulty validators, and Liveness: after GST (partitions healed, loss stopped, crashed nodes
restarted) every honest validator commits ``liveness_heights`` new heights within
``liveness_bound_ms`` of simulated time, and every height started after GST is decided at a
round <= :func:`round_bound_after_gst` (the decision round of every height is reported).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tpledger.consensus.machine import Consensus
from tpledger.consensus.messages import (
    ConsensusConfig,
    PersistedState,
    ProofOfLock,
    Proposal,
    Ready,
    SignedProposal,
)
from tpledger.ledger.encoding import decode_any, tagged_hash
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.keys import Signer
from tpledger.ledger.votes import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    SignedVote,
    Vote,
    max_faulty,
)

CHAIN_ID = "tpledger-sim"
BEHAVIOURS = ("silent", "equivocate", "invalid", "replay", "garbage", "twins", "kvalues",
              "multipropose", "withhold", "victim_replay", "future_flood", "amnesia")
TICKING = ("replay", "garbage", "victim_replay", "future_flood", "amnesia")  # act on byz_tick
CRASH_POINTS = ("before_apply", "after_apply", "after_persist", "mid_send")
_WIRE = (SignedProposal, SignedVote, CommitCertificate, ProofOfLock)
SIM_CONFIG = ConsensusConfig(
    propose_base_ms=400, propose_delta_ms=100, prevote_base_ms=200, prevote_delta_ms=100,
    precommit_base_ms=200, precommit_delta_ms=100, timeout_commit_ms=20, rebroadcast_ms=600,
    max_payload_bytes=4096, height_window=4, round_window=8, max_buffered_messages=256,
    max_buffered_bytes=64 * 1024,
)

Factory = Callable[..., Consensus]


def sim_validate(height: int, payload: bytes) -> bytes | None:
    """The honest validity rule: not starting with b"BAD" and naming the right height."""
    if payload.startswith(b"BAD") or not payload.startswith(b"blk|%d|" % height):
        return None
    return tagged_hash("tpledger/sim-value", payload)


def make_payload(height: int, round: int, proposer: int, nonce: int) -> bytes:
    return b"blk|%d|%d|%d|%d|" % (height, round, proposer, nonce) + b"x" * (nonce % 64)


class SimViolation(AssertionError):
    """A checked property failed; carries the seed and a readable trace."""

    def __init__(self, seed: int, kind: str, detail: str, trace: list[str]) -> None:
        self.seed, self.kind, self.detail, self.trace = seed, kind, detail, trace
        lines = "\n".join(trace)
        super().__init__(
            f"{kind} violated (seed={seed}): {detail}\n"
            f"reproduce: python -m consensus.sim --runs 1 --seed {seed} --trace\n"
            f"last {len(trace)} events:\n{lines}"
        )


@dataclass
class SimConfig:
    """One run's network, fault schedule and checks (see :func:`random_scenario`)."""

    seed: int = 0
    n: int = 4
    heights: int = 4  # run until every honest validator has committed this many heights
    delay_ms: tuple[int, int] = (2, 60)
    loss: float = 0.0  # before GST
    precommit_loss: float = 0.0  # extra loss of precommits and certificates, before GST
    dup: float = 0.0
    partitions: int = 0  # partitions (each healing) before GST
    partition_groups: int = 2  # 2 or 3 groups per partition
    crashes: int = 0  # crash/restart episodes before GST
    mid_ready_crash: float = 0.0  # chance a crash hits inside a Ready (at one of CRASH_POINTS)
    skew: float = 0.0  # clock rate in [1-skew, 1+skew]
    byzantine: dict[int, str] = field(default_factory=dict)  # validator -> behaviour
    gst_ms: int = 0  # faults (loss, partitions, crashes) only before this time
    liveness_heights: int = 2
    liveness_bound_ms: int = 40_000
    max_events: int = 400_000
    consensus: ConsensusConfig = SIM_CONFIG
    verify_certificates: bool = True
    trace_len: int = 60
    beyond_fault_model: bool = False  # allow f+1 Byzantine validators (the checks must fire)
    check_round_bound: bool = True


@dataclass
class SimResult:
    seed: int
    heights: int  # min committed height over honest validators
    events: int
    messages: int
    sim_time_ms: int
    commits: int  # honest commits (all validators)
    evidence: int
    fingerprint: str  # digest of the whole event sequence (for reproducibility)
    stats: Counter[str]  # sim counters plus the honest machines' counters (final incarnation)
    decision_rounds: dict[int, int] = field(default_factory=dict)  # height -> decision round
    max_round_after_gst: int = -1  # highest decision round of a height started after GST


class _Node:
    def __init__(self, node_id: int, validator: int, signer: Signer, behaviour: str,
                 rate: float) -> None:
        self.node_id, self.validator, self.signer = node_id, validator, signer
        self.behaviour = behaviour  # "honest", a Byzantine behaviour, or "twin"
        self.rate = rate
        self.machine: Consensus | None = None
        self.disk: bytes | None = None
        self.chain: list[tuple[bytes, bytes, CommitCertificate]] = []
        self.incarnation = 0
        self.seen: deque[bytes] = deque(maxlen=64)  # for replay attacks
        self.withheld: set[int] = set()  # ``withhold``: node ids it never sends to

    @property
    def honest(self) -> bool:
        return self.behaviour == "honest"


class Simulation:
    """A single run. ``factory`` builds honest state machines (tests pass broken variants)."""

    def __init__(self, cfg: SimConfig, factory: Factory = Consensus) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.factory = factory
        n = cfg.n
        self.f = max_faulty(n)
        if len(cfg.byzantine) > self.f + int(cfg.beyond_fault_model):
            raise ValueError("more Byzantine validators than f")
        if "collude" in cfg.byzantine.values() and not cfg.beyond_fault_model:
            raise ValueError("collude is outside the fault model")
        self.signers = [Signer(self.rng.randbytes(32)) for _ in range(n)]
        self.keys = [s.public for s in self.signers]
        self.nodes: list[_Node] = []
        for i in range(n):
            b = cfg.byzantine.get(i, "honest")
            self.nodes.append(_Node(i, i, self.signers[i], "twin" if b == "twins" else b,
                                    self._rate()))
        for i, b in sorted(cfg.byzantine.items()):
            if b == "twins":
                self.nodes.append(_Node(len(self.nodes), i, self.signers[i], "twin", self._rate()))
        self.now_ms = 0
        self._seq = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.groups: dict[int, int] | None = None  # node -> partition group
        self.after_gst = False
        self.decided: dict[int, bytes] = {}
        self.honest_votes: dict[tuple[int, int, int, int], bytes | None] = {}
        self.trace: deque[str] = deque(maxlen=cfg.trace_len)
        self.events = 0
        self.messages = 0
        self.commits = 0
        self.evidence = 0
        self.stats: Counter[str] = Counter()
        self._fp = hashlib.blake2b(digest_size=12)
        self.gst_height = 0
        self.decision_rounds: dict[int, int] = {}
        self._disk_cache: tuple[bytes, PersistedState] | None = None
        for nd in self.nodes:
            if nd.behaviour == "withhold":
                others = [o.node_id for o in self.nodes if o is not nd]
                nd.withheld = set(self.rng.sample(others, max(1, len(others) // 2)))

    # ---------------------------------------------------------------------------------------
    def _rate(self) -> float:
        return 1.0 + self.rng.uniform(-self.cfg.skew, self.cfg.skew)

    def _push(self, at_ms: int, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (at_ms, self._seq, kind, data))

    def _log(self, text: str) -> None:
        line = f"t={self.now_ms:>7}ms {text}"
        self.trace.append(line)
        self._fp.update(line.encode())

    def _fail(self, kind: str, detail: str) -> None:
        self._log(f"VIOLATION {kind}: {detail}")
        raise SimViolation(self.cfg.seed, kind, detail, list(self.trace))

    def honest_nodes(self) -> list[_Node]:
        return [nd for nd in self.nodes if nd.honest]

    # ---------------------------------------------------------------------------------------
    def _new_machine(self, nd: _Node) -> Consensus:
        factory = self.factory if nd.honest else Consensus
        # As the node does, pass the certificate of the last stored block: a crash between
        # applying a commit and persisting (CRASH_POINTS) leaves it only in the block store.
        return factory(chain_id=CHAIN_ID, validator_keys=self.keys, my_index=nd.validator,
                       signer=nd.signer, config=self.cfg.consensus, validate=sim_validate,
                       height=len(nd.chain) + 1, persisted=nd.disk,
                       last_cert=nd.chain[-1][2] if nd.chain else None)

    def _schedule_faults(self) -> None:
        cfg, rng = self.cfg, self.rng
        gst = cfg.gst_ms
        for _ in range(cfg.partitions):
            start = rng.randrange(0, max(1, gst))
            self._push(start, "partition", None)
            self._push(min(gst, start + rng.randrange(200, 4000)), "heal", None)
        crashable = [nd.node_id for nd in self.nodes if nd.behaviour in ("honest", "twin")]
        for _ in range(cfg.crashes):
            start = rng.randrange(0, max(1, gst))
            nid = rng.choice(crashable)
            self._push(start, "crash", nid)
            self._push(min(gst, start + rng.randrange(50, 3000)), "restart", nid)
        for nd in self.nodes:
            if nd.behaviour in TICKING:
                self._push(rng.randrange(0, 300), "byz_tick", nd.node_id)
        self._push(gst, "gst", None)

    def run(self) -> SimResult:
        for nd in self.nodes:
            nd.machine = self._new_machine(nd)
        self._schedule_faults()
        for nd in self.nodes:
            assert nd.machine is not None
            self._handle(nd, nd.machine.start())
        cfg = self.cfg
        while True:
            if self._done():
                break
            if not self.queue:
                self._fail("liveness", "no events left")
            at_ms, _, kind, data = heapq.heappop(self.queue)
            self.now_ms = at_ms
            self.events += 1
            if self.events > cfg.max_events:
                self._fail("liveness", f"event budget {cfg.max_events} exhausted")
            if self.after_gst and self.now_ms > cfg.gst_ms + cfg.liveness_bound_ms:
                lag = {nd.node_id: len(nd.chain) for nd in self.honest_nodes()}
                self._fail("liveness", f"after GST+{cfg.liveness_bound_ms}ms heights are {lag}, "
                           f"needed {self._target()}")
            self._event(kind, data)
        heights = min(len(nd.chain) for nd in self.honest_nodes())
        for nd in self.honest_nodes():
            if nd.machine is not None:
                self.stats.update(nd.machine.stats)
        after = [r for h, r in self.decision_rounds.items() if h >= self.gst_height + 2]
        return SimResult(cfg.seed, heights, self.events, self.messages, self.now_ms,
                         self.commits, self.evidence, self._fp.hexdigest(), self.stats,
                         dict(self.decision_rounds), max(after, default=-1))

    def _target(self) -> int:
        return max(self.cfg.heights, self.gst_height + self.cfg.liveness_heights)

    def _done(self) -> bool:
        return self.after_gst and all(
            len(nd.chain) >= self._target() for nd in self.honest_nodes())

    # ---------------------------------------------------------------------------------------
    def _event(self, kind: str, data: Any) -> None:
        if kind == "deliver":
            to, msg = data
            nd = self.nodes[to]
            if nd.machine is None:
                return
            if not nd.honest:
                nd.seen.append(msg)
            self._handle(nd, nd.machine.on_message(msg))
        elif kind == "timer":
            nid, inc, timer = data
            nd = self.nodes[nid]
            if nd.machine is None or nd.incarnation != inc:
                return
            self._log(f"n{nid} timeout {timer.kind} h={timer.height} r={timer.round}")
            self._handle(nd, nd.machine.on_timeout(timer))
        elif kind == "payload":
            nid, inc, h, r = data
            nd = self.nodes[nid]
            if nd.machine is None or nd.incarnation != inc:
                return
            self._handle(nd, nd.machine.on_payload(h, r, self._payload_for(nd, h, r)))
        elif kind == "fetch":
            self._fetch(data)
        elif kind == "partition":
            self._partition()
        elif kind == "heal":
            self.groups = None
            self._log("partition healed")
        elif kind == "crash":
            self._crash(self.nodes[data])
        elif kind == "restart":
            self._restart(self.nodes[data])
        elif kind == "gst":
            self._gst()
        elif kind == "byz_tick":
            self._byz_tick(self.nodes[data])

    def _partition(self) -> None:
        ids = [nd.node_id for nd in self.nodes]
        self.rng.shuffle(ids)
        k = min(self.cfg.partition_groups, len(ids))
        cuts = sorted(self.rng.sample(range(1, len(ids)), k - 1))
        self.groups = {nid: sum(1 for c in cuts if i >= c) for i, nid in enumerate(ids)}
        parts = [sorted(n for n, g in self.groups.items() if g == j) for j in range(k)]
        self._log("partition " + " | ".join(str(p) for p in parts))

    def _gst(self) -> None:
        self.after_gst = True
        self.groups = None
        for nd in self.nodes:
            if nd.machine is None:
                self._restart(nd)
        self.gst_height = max((len(nd.chain) for nd in self.honest_nodes()), default=0)
        self._log(f"GST: healed, no loss, all up; max honest height {self.gst_height}")

    def _crash(self, nd: _Node) -> None:
        if nd.machine is None or self.after_gst:
            return
        nd.machine = None
        nd.incarnation += 1
        self.stats["crashes"] += 1
        self._log(f"n{nd.node_id} CRASH (disk keeps {len(nd.chain)} blocks + persisted state)")

    def _restart(self, nd: _Node) -> None:
        if nd.machine is not None:
            return
        nd.machine = self._new_machine(nd)
        self._log(f"n{nd.node_id} restart at h={len(nd.chain) + 1}")
        self._handle(nd, nd.machine.start())

    def _payload_for(self, nd: _Node, h: int, r: int) -> bytes:
        if nd.behaviour == "invalid":
            return b"BAD" + make_payload(h, r, nd.validator, self.rng.randrange(1000))
        return make_payload(h, r, nd.validator, self.rng.randrange(1000))

    # ---------------------------------------------------------------------------------------
    # Handling a Ready: commits, then persist, then send; a crash may hit at any CRASH_POINTS.

    def _crash_point(self, nd: _Node, ready: Ready) -> str | None:
        if not self.cfg.mid_ready_crash or self.after_gst or nd.machine is None \
                or nd.behaviour not in ("honest", "twin") \
                or not (ready.messages or ready.commits or ready.persist):
            return None
        if self.rng.random() >= self.cfg.mid_ready_crash:
            return None
        return self.rng.choice(CRASH_POINTS)

    def _crash_in_ready(self, nd: _Node, point: str) -> None:
        self._log(f"n{nd.node_id} crash inside a Ready: {point}")
        self.stats[f"crash_{point}"] += 1
        self._crash(nd)
        self._push(self.now_ms + self.rng.randrange(50, 1500), "restart", nd.node_id)

    def _handle(self, nd: _Node, ready: Ready) -> None:
        point = self._crash_point(nd, ready)
        if point == "before_apply":
            return self._crash_in_ready(nd, point)
        for c in ready.commits:
            self._apply_commit(nd, c.height, c.value_id, c.payload, c.certificate, "commit")
        if point == "after_apply":
            return self._crash_in_ready(nd, point)
        if ready.persist is not None:
            nd.disk = ready.persist
        if point == "after_persist":
            return self._crash_in_ready(nd, point)
        self._check_evidence(nd, ready)
        msgs = list(ready.messages)
        if nd.honest:
            self._check_own_votes(nd, msgs)
        else:
            msgs = self._byzantine_out(nd, msgs, ready)
        if point == "mid_send":
            msgs = msgs[: self.rng.randrange(len(msgs) + 1)]
        for m in msgs:
            self._broadcast(nd, m)
        if point == "mid_send":
            return self._crash_in_ready(nd, point)
        self._schedule(nd, ready)

    def _check_evidence(self, nd: _Node, ready: Ready) -> None:
        for ev in ready.evidence:
            self.evidence += 1
            culprit = ev.validator
            if not ev.check(CHAIN_ID, self.keys):
                self._fail("evidence", f"n{nd.node_id} produced unverifiable evidence")
            if self.nodes[culprit].honest:
                self._fail("evidence", f"honest validator {culprit} accused by n{nd.node_id}")
            self._log(f"n{nd.node_id} evidence against validator {culprit}")

    def _schedule(self, nd: _Node, ready: Ready) -> None:
        inc = nd.incarnation
        for t in ready.timers:
            delay = max(1, int(t.delay_ms * nd.rate))
            self._push(self.now_ms + delay, "timer", (nd.node_id, inc, t))
        if ready.need_payload is not None:
            h, r = ready.need_payload
            self._push(self.now_ms + self.rng.randrange(0, 30), "payload", (nd.node_id, inc, h, r))
        if ready.catch_up is not None:
            self._push(self.now_ms + self.rng.randrange(20, 200), "fetch",
                       (nd.node_id, ready.catch_up))

    def _disk_state(self, nd: _Node) -> PersistedState | None:
        if nd.disk is None:
            return None
        if self._disk_cache is None or self._disk_cache[0] is not nd.disk:
            self._disk_cache = (nd.disk, PersistedState.decode(nd.disk))
        return self._disk_cache[1]

    def _check_own_votes(self, nd: _Node, msgs: list[bytes]) -> None:
        for m in msgs:
            if len(m) > 1 and m[1] == SignedProposal.TAG:
                self._check_own_proposal(nd, m)
            if len(m) < 2 or m[1] != SignedVote.TAG:
                continue
            try:
                sv = SignedVote.decode(m)
            except LedgerError:
                continue
            v = sv.vote
            if v.validator != nd.validator:
                continue  # forwarded (POL) vote
            key = (v.validator, v.height, v.round, v.vote_type)
            prev = self.honest_votes.setdefault(key, v.value_id)
            if prev != v.value_id:
                self._fail("double-sign", f"honest n{nd.node_id} signed two votes for {key}")
            if not persisted_covers(self._disk_state(nd), sv):
                self._fail("persist-before-send", f"n{nd.node_id} sent its vote {key} "
                           f"value={_short(v.value_id)} but its disk does not cover it")

    def _check_own_proposal(self, nd: _Node, m: bytes) -> None:
        """A proposal leaving an honest validator: its disk must record that it proposed in
        that round (or be past it), else a restart could sign a second proposal."""
        try:
            p = SignedProposal.decode(m).proposal
        except LedgerError:
            return
        st = self._disk_state(nd)
        if p.proposer != nd.validator:
            return
        if st is None or (st.height, st.round) < (p.height, p.round) or (
                (st.height, st.round) == (p.height, p.round) and st.proposed_round != p.round):
            self._fail("persist-before-send", f"n{nd.node_id} sent its proposal "
                       f"h={p.height} r={p.round} but its disk does not cover it")

    def _broadcast(self, src: _Node, msg: bytes) -> None:
        cfg, rng = self.cfg, self.rng
        lo, hi = cfg.delay_ms
        for dst in self.nodes:
            if dst is src or dst.node_id in src.withheld:
                continue
            if not self.after_gst:
                if self.groups is not None and \
                        self.groups.get(src.node_id) != self.groups.get(dst.node_id):
                    continue
                if cfg.loss and rng.random() < cfg.loss:
                    continue
                if cfg.precommit_loss and _is_precommit_or_cert(msg) \
                        and rng.random() < cfg.precommit_loss:
                    continue
            self.messages += 1
            self._push(self.now_ms + rng.randint(lo, hi), "deliver", (dst.node_id, msg))
            if cfg.dup and rng.random() < cfg.dup:
                self._push(self.now_ms + rng.randint(lo, hi * 3), "deliver", (dst.node_id, msg))

    # ---------------------------------------------------------------------------------------
    def _apply_commit(self, nd: _Node, height: int, value_id: bytes, payload: bytes,
                      cert: CommitCertificate, how: str) -> None:
        if height != len(nd.chain) + 1:
            self._fail("order", f"n{nd.node_id} committed h={height} on a chain of "
                       f"{len(nd.chain)}")
        self._log(f"n{nd.node_id} {how} h={height} r={cert.round} v={value_id.hex()[:8]}")
        if nd.honest:
            first = self.decided.setdefault(height, value_id)
            if first != value_id:
                self._fail("agreement", f"n{nd.node_id} committed {value_id.hex()[:8]} at "
                           f"h={height}, another honest node committed {first.hex()[:8]}")
            if sim_validate(height, payload) != value_id:
                self._fail("validity", f"n{nd.node_id} committed an invalid payload at "
                           f"h={height}: {payload[:20]!r}")
            if self.cfg.verify_certificates:
                try:
                    cert.check(CHAIN_ID, self.keys)
                except LedgerError as exc:
                    self._fail("validity", f"n{nd.node_id} bad certificate at h={height}: {exc}")
                if (cert.height, cert.block_hash) != (height, value_id):
                    self._fail("validity", f"n{nd.node_id} certificate is for another block")
            self.commits += 1
            self._check_decision_round(height, cert.round)
        nd.chain.append((value_id, payload, cert))

    def _check_decision_round(self, height: int, round: int) -> None:
        if height in self.decision_rounds:
            return
        self.decision_rounds[height] = round
        bound = round_bound_after_gst(self.cfg)
        if self.cfg.check_round_bound and self.after_gst and height >= self.gst_height + 2 \
                and round > bound:
            self._fail("liveness", f"h={height} started after GST was decided in round {round} "
                       f"> bound {bound}")

    def _fetch(self, data: tuple[int, int]) -> None:
        """Catch-up: copy certified blocks from peers, as the node's block sync would."""
        nid, upto = data
        nd = self.nodes[nid]
        if nd.machine is None:
            return
        added = 0
        while len(nd.chain) < upto:
            h = len(nd.chain) + 1
            src = next((o for o in self.nodes if o is not nd and len(o.chain) >= h
                        and (o.honest or self.rng.random() < 0.5)), None)
            if src is None:
                break
            value_id, payload, cert = src.chain[h - 1]
            try:
                cert.check(CHAIN_ID, self.keys)
            except LedgerError:
                break
            if cert.block_hash != value_id or sim_validate(h, payload) != value_id:
                break
            self._apply_commit(nd, h, value_id, payload, cert, f"fetched from n{src.node_id}")
            added += 1
        if added:
            self.stats["catch_up_blocks"] += added
            self._handle(nd, nd.machine.advance_to(len(nd.chain) + 1))

    # ---------------------------------------------------------------------------------------
    # Byzantine behaviours (transform what the inner honest machine would send)

    def _byzantine_out(self, nd: _Node, msgs: list[bytes], ready: Ready) -> list[bytes]:
        b = nd.behaviour
        if b == "silent":
            return []
        if b not in ("equivocate", "invalid", "kvalues", "multipropose", "collude"):
            return msgs  # these act in _broadcast (withhold) or on byz_tick
        out: list[bytes] = []
        for m in msgs:
            try:
                obj = decode_any(m, _WIRE, 1 << 20)
            except LedgerError:
                continue
            out.extend(self._transform(nd, obj, m))
        if b == "invalid" and ready.need_payload is not None:
            h, r = ready.need_payload
            payload = b"BAD" + make_payload(h, r, nd.validator, self.rng.randrange(1000))
            out.append(Proposal(h, r, None, payload, nd.validator)
                       .sign(CHAIN_ID, nd.signer).encode())
            vid = sim_value_of(payload)
            for t in (PREVOTE, PRECOMMIT):
                out.append(Vote(h, r, t, vid, nd.validator).sign(CHAIN_ID, nd.signer).encode())
        return out

    def _transform(self, nd: _Node, obj: Any, raw: bytes) -> list[bytes]:
        b = nd.behaviour
        own_vote = isinstance(obj, SignedVote) and obj.vote.validator == nd.validator
        if b == "equivocate":
            return self._equivocate(nd, obj, raw)
        if b == "invalid" and own_vote and obj.vote.value_id is None:
            bad = sim_value_of(b"BAD" + make_payload(obj.vote.height, obj.vote.round,
                                                     nd.validator, 7))
            return [replace(obj.vote, value_id=bad).sign(CHAIN_ID, nd.signer).encode()]
        if b == "kvalues" and own_vote:
            self._kvalues(nd, obj.vote, raw)
            return []
        if b == "multipropose" and isinstance(obj, SignedProposal):
            self._multipropose(nd, obj.proposal, raw)
            return []
        if b == "collude" and (own_vote or isinstance(obj, SignedProposal)):
            self._collude(nd, obj)
            return []
        return [raw]

    def _send(self, dst: int, msg: bytes, delay_ms: int) -> None:
        self.messages += 1
        self._push(self.now_ms + delay_ms, "deliver", (dst, msg))

    def _peers(self, nd: _Node) -> list[int]:
        return [o.node_id for o in self.nodes if o is not nd]

    def _equivocate(self, nd: _Node, obj: Any, raw: bytes) -> list[bytes]:
        """Send ``raw`` to a random half of the peers and a conflicting twin to the other."""
        if isinstance(obj, SignedProposal):
            p = obj.proposal
            alt = replace(p, payload=make_payload(p.height, p.round, nd.validator,
                                                  1000 + self.rng.randrange(1000)), pol_round=None)
            other = alt.sign(CHAIN_ID, nd.signer).encode()
        elif isinstance(obj, SignedVote) and obj.vote.validator == nd.validator:
            v = obj.vote
            alt_value = None if v.value_id is not None else sim_value_of(
                make_payload(v.height, v.round, nd.validator, 5))
            other = replace(v, value_id=alt_value).sign(CHAIN_ID, nd.signer).encode()
        else:
            return [raw]
        peers = self._peers(nd)
        self.rng.shuffle(peers)
        half = len(peers) // 2
        for i, dst in enumerate(peers):
            self._send(dst, raw if i < half else other, self.rng.randint(*self.cfg.delay_ms))
        return []

    def _kvalues(self, nd: _Node, v: Vote, raw: bytes) -> None:
        """k > 2 junk values for this slot to random subsets first; the real vote later, to one
        peer only (the POL-hiding attack of issue 11)."""
        peers, rng = self._peers(nd), self.rng
        lo, hi = self.cfg.delay_ms
        for j in range(3 + rng.randrange(2)):
            junk = sim_value_of(b"junk|%d|%d|%d" % (v.height, v.round, j))
            m = replace(v, value_id=junk).sign(CHAIN_ID, nd.signer).encode()
            for dst in rng.sample(peers, rng.randrange(1, len(peers) + 1)):
                self._send(dst, m, lo)
        self._send(rng.choice(peers), raw, hi + 1)

    def _multipropose(self, nd: _Node, p: Proposal, raw: bytes) -> None:
        """Three or more different proposals for one round, each to a random subset."""
        rng = self.rng
        props = [raw] + [
            replace(p, payload=make_payload(p.height, p.round, nd.validator, 2000 + j),
                    pol_round=None).sign(CHAIN_ID, nd.signer).encode()
            for j in range(2 + rng.randrange(2))]
        for dst in self._peers(nd):
            for m in rng.sample(props, rng.randrange(1, len(props) + 1)):
                self._send(dst, m, rng.randint(*self.cfg.delay_ms))

    def _collude(self, nd: _Node, obj: Any) -> None:
        """Outside the fault model: f+1 colluders show value A to one half of the honest
        validators and value B to the other, in every round one of them proposes."""
        honest = [o.node_id for o in self.honest_nodes()]
        for side in (0, 1):
            dsts = honest[side::2]
            if isinstance(obj, SignedProposal):
                p = obj.proposal
                m = replace(p, pol_round=None, payload=_collude_payload(p.height, p.round,
                                                                        p.proposer, side))
                raw = m.sign(CHAIN_ID, nd.signer).encode()
            else:
                v = obj.vote
                proposer = (v.height + v.round) % self.cfg.n
                value = sim_value_of(_collude_payload(v.height, v.round, proposer, side))
                raw = replace(v, value_id=value).sign(CHAIN_ID, nd.signer).encode()
            for dst in dsts:
                self._send(dst, raw, self.cfg.delay_ms[0])

    def _byz_tick(self, nd: _Node) -> None:
        rng = self.rng
        if nd.behaviour == "replay" and nd.seen:
            for _ in range(3):
                self._broadcast(nd, rng.choice(nd.seen))
        elif nd.behaviour == "garbage":
            self._broadcast(nd, self._garbage(nd))
        elif nd.behaviour == "victim_replay":
            victim = self.honest_nodes()[0].validator
            for m in [m for m in nd.seen if _sender_of(m) == victim]:
                for _ in range(5):
                    self._broadcast(nd, m)
        elif nd.behaviour == "future_flood":
            self._future_flood(nd)
        elif nd.behaviour == "amnesia" and nd.machine is not None and rng.random() < 0.3:
            self._log(f"n{nd.node_id} AMNESIA: forgets its persisted state")
            nd.machine, nd.disk = None, None
            nd.incarnation += 1
            self._restart(nd)
        if not self.after_gst or rng.random() < 0.5:
            self._push(self.now_ms + rng.randrange(50, 400), "byz_tick", nd.node_id)

    def _garbage(self, nd: _Node) -> bytes:
        rng = self.rng
        base = rng.choice(nd.seen) if nd.seen else b""
        if len(base) < 2:
            base = b"\x93\x31\x01"
        choice = rng.randrange(6)
        if choice == 0:
            return rng.randbytes(rng.randrange(1, 200))
        if choice == 1:
            return base[: rng.randrange(len(base))]
        if choice == 2:
            i = rng.randrange(len(base))
            return base[:i] + bytes([base[i] ^ (1 << rng.randrange(8))]) + base[i + 1:]
        if choice == 3:
            return b"\xc6" + (1 << 24).to_bytes(4, "big") + b"\x00" * 64
        if choice == 4:  # validly signed, but far in the future / absurd round
            return Vote(10**6 + rng.randrange(10), 2**31, PREVOTE, None, nd.validator) \
                .sign(CHAIN_ID, nd.signer).encode()
        other = (nd.validator + 1) % self.cfg.n  # a signed vote claiming another's index
        return Vote(1, 0, PRECOMMIT, None, other).sign(CHAIN_ID, nd.signer).encode()

    def _future_flood(self, nd: _Node) -> None:
        """Signed proposals with maximal payloads at future heights (rounds it leads) and
        votes at far-future rounds: the buffers must stay bounded."""
        rng, c = self.rng, self.cfg.consensus
        h = max((len(o.chain) for o in self.honest_nodes()), default=0) + 1
        for _ in range(4):
            fh = h + rng.randrange(1, c.height_window + 1)
            r = (nd.validator - fh) % self.cfg.n + self.cfg.n * rng.randrange(4)
            payload = make_payload(fh, r, nd.validator, rng.randrange(1000))
            payload += b"f" * max(0, c.max_payload_bytes - len(payload))
            self._broadcast(nd, Proposal(fh, r, None, payload, nd.validator)
                            .sign(CHAIN_ID, nd.signer).encode())
        for far in (rng.randrange(c.round_window + 1, 10**6), rng.randrange(2**31)):
            self._broadcast(nd, Vote(h + rng.randrange(2), far, PREVOTE, None, nd.validator)
                            .sign(CHAIN_ID, nd.signer).encode())


def _collude_payload(height: int, round: int, proposer: int, side: int) -> bytes:
    return make_payload(height, round, proposer, 7000 + side)


def _sender_of(msg: bytes) -> int | None:
    try:
        obj = decode_any(msg, (SignedProposal, SignedVote), 1 << 20)
    except LedgerError:
        return None
    if isinstance(obj, SignedVote):
        return obj.vote.validator
    return obj.proposal.proposer if isinstance(obj, SignedProposal) else None


def _is_precommit_or_cert(msg: bytes) -> bool:
    # [0x31, 1, [0x30, 1, height, round, vote_type, ...], sig]: peek without decoding
    if len(msg) > 1 and msg[1] == CommitCertificate.TAG:
        return True
    if len(msg) < 2 or msg[1] != SignedVote.TAG:
        return False
    try:
        sv = SignedVote.decode(msg)
    except LedgerError:
        return False
    return sv.vote.vote_type == PRECOMMIT


def persisted_covers(st: PersistedState | None, sv: SignedVote) -> bool:
    """True if a node restarted from ``st`` could never sign a vote conflicting with ``sv``:
    ``st`` is at a later height, or a later round of that height (rounds never go down), or
    holds ``sv`` itself among its own votes."""
    if st is None:
        return False
    v = sv.vote
    if st.height != v.height:
        return st.height > v.height
    return st.round > v.round or sv in st.votes


def round_bound_after_gst(cfg: SimConfig) -> int:
    """Highest round at which a height started after GST may be decided (docs/consensus.md).

    r_sync is the first round whose shortest timeout, on the fastest-running clock, exceeds
    four network delays (a proposal, prevotes, precommits and a round-skip message all arrive
    before anyone times out). From r_sync on, a round with an honest proposer whose value every
    honest node may accept is decided in that round, and a lock can only be created by a
    Byzantine proposer, held by >= f+1 honest nodes; any n consecutive rounds contain a run of
    more than f consecutive honest proposers (f <= 2), one of whom holds the newest lock and
    re-proposes it with its ProofOfLock. Hence decided by r_sync + 3n (argument in
    docs/consensus.md)."""
    c = cfg.consensus
    base = min(c.propose_base_ms, c.prevote_base_ms, c.precommit_base_ms)
    delta = min(c.propose_delta_ms, c.prevote_delta_ms, c.precommit_delta_ms)
    slow = 1.0 - cfg.skew
    need = 4 * cfg.delay_ms[1]
    r_sync = 0
    while (base + delta * r_sync) * slow < need:
        if delta == 0:
            return 10**9  # timeouts never grow: no bound can be stated
        r_sync += 1
    return r_sync + 3 * cfg.n


def _short(value_id: bytes | None) -> str:
    return "nil" if value_id is None else value_id.hex()[:8]


def sim_value_of(payload: bytes) -> bytes:
    return tagged_hash("tpledger/sim-value", payload)


# -------------------------------------------------------------------------------------------
# Scenarios and batch runs


# Timing configurations the mixes draw from: the default, no timeout_commit, a small round
# window, and both with a one-height future buffer.
TIMINGS: dict[str, ConsensusConfig] = {
    "default": SIM_CONFIG,
    "commit0": replace(SIM_CONFIG, timeout_commit_ms=0),
    "window1": replace(SIM_CONFIG, round_window=1),
    "tight": replace(SIM_CONFIG, timeout_commit_ms=0, round_window=2, height_window=1,
                     max_buffered_messages=64),
}


def random_scenario(seed: int, n: int, heights: int = 4) -> SimConfig:
    """A mixed-fault configuration derived from ``seed`` alone."""
    rng = random.Random(seed * 7919 + n)
    f = max_faulty(n)
    byz_count = rng.randint(0, f)
    byz_ids = rng.sample(range(n), byz_count)
    byzantine = {i: rng.choice(BEHAVIOURS) for i in byz_ids}
    gst_ms = rng.choice((0, 1000, 3000, 6000))
    faulty_net = gst_ms > 0
    timing = rng.choice(sorted(TIMINGS))
    return SimConfig(
        seed=seed,
        n=n,
        heights=heights,
        delay_ms=(rng.randint(1, 10), rng.randint(20, 150)),
        loss=rng.choice((0.0, 0.05, 0.2, 0.4)) if faulty_net else 0.0,
        precommit_loss=rng.choice((0.0, 0.0, 0.5, 0.8)) if faulty_net else 0.0,
        dup=rng.choice((0.0, 0.0, 0.1)),
        partitions=rng.randint(0, 2) if faulty_net else 0,
        crashes=rng.randint(0, 3) if faulty_net else 0,
        mid_ready_crash=rng.choice((0.0, 0.02)) if faulty_net else 0.0,
        skew=rng.choice((0.0, 0.2, 0.4)),
        byzantine=byzantine,
        gst_ms=gst_ms,
        partition_groups=rng.choice((2, 3)),
        consensus=TIMINGS[timing],
    )


def run_one(cfg: SimConfig, factory: Factory = Consensus) -> SimResult:
    return Simulation(cfg, factory).run()


@dataclass
class BatchReport:
    runs: int = 0
    heights: int = 0
    events: int = 0
    messages: int = 0
    violations: list[SimViolation] = field(default_factory=list)
    decided: int = 0  # heights decided (over all runs)
    rounds: int = 0  # sum over decided heights of (decision round + 1)
    max_round: int = 0  # highest decision round seen
    max_round_after_gst: int = -1  # highest decision round of a height started after GST

    def add(self, res: SimResult) -> None:
        self.heights += res.heights
        self.events += res.events
        self.messages += res.messages
        self.decided += len(res.decision_rounds)
        self.rounds += sum(r + 1 for r in res.decision_rounds.values())
        self.max_round = max([self.max_round, *res.decision_rounds.values()])
        self.max_round_after_gst = max(self.max_round_after_gst, res.max_round_after_gst)

    def summary(self) -> str:
        per = max(1, self.decided)
        return (f"runs={self.runs} decided_heights={self.decided} "
                f"rounds_per_height={self.rounds / per:.2f} max_round={self.max_round} "
                f"max_round_after_gst={self.max_round_after_gst} "
                f"messages_per_block={self.messages / per:.1f} events={self.events} "
                f"violations={len(self.violations)}")


def run_batch(seeds: range | list[int], n: int, heights: int = 4,
              factory: Factory = Consensus, stop_on_violation: bool = False) -> BatchReport:
    rep = BatchReport()
    for seed in seeds:
        rep.runs += 1
        try:
            res = run_one(random_scenario(seed, n, heights), factory)
        except SimViolation as exc:
            rep.violations.append(exc)
            if stop_on_violation:
                break
            continue
        rep.add(res)
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m consensus.sim", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="first seed; runs use seed..seed+runs-1")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--heights", type=int, default=4)
    ap.add_argument("--trace", action="store_true", help="print each failing run's trace")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rep = run_batch(range(args.seed, args.seed + args.runs), args.n, args.heights)
    dt = time.perf_counter() - t0
    print(f"n={args.n} {rep.summary()} wall={dt:.1f}s")
    for v in rep.violations:
        print(str(v) if args.trace else f"  seed={v.seed} {v.kind}: {v.detail}")
    return 1 if rep.violations else 0


if __name__ == "__main__":
    sys.exit(main())
