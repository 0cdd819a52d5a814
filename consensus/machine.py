"""The consensus state machine: Tendermint, sans-IO.

Algorithm: Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus" (arXiv:1807.04938),
Algorithm 1. Line numbers below are that algorithm's. n validators, f = (n-1)//3, quorum
Q = 2f+1 in vote count (``ledger.votes.quorum``); every validator has weight 1;
proposer(h, r) = (h + r) mod n.

RULES (evaluated after every input, repeatedly until nothing changes; ``self`` is p)
-------------------------------------------------------------------------------------
StartRound(r) [l.11-21]: round=r, step=propose. If we are proposer: re-propose validValue with
    pol_round=validRound if set (l.15), else ask the node for a payload (``need_payload``, l.17).
    Always schedule timeout_propose(r) (the proposer too: if the node never answers we still
    move on; l.57 only acts in step propose, so this is harmless).
R22 [l.22-27]: first proposal(h, r, v, -1) from proposer(h, r) while step=propose:
    prevote id(v) if valid(v) and (lockedRound=-1 or lockedValue=id(v)) else nil; step=prevote.
R28 [l.28-33]: proposal(h, r, v, vr), 0<=vr<r, and Q prevotes(h, vr, id(v)) while step=propose:
    prevote id(v) if valid(v) and (lockedRound<=vr or lockedValue=id(v)) else nil; step=prevote.
R34 [l.34-35]: Q prevotes(h, r, *) while step=prevote, first time: schedule timeout_prevote(r).
R36 [l.36-43]: a valid proposal(h, r, v) and Q prevotes(h, r, id(v)) while step>=prevote, first
    time: if step=prevote: lock (lockedValue, lockedRound = v, r), precommit id(v),
    step=precommit. In both cases validValue, validRound = v, r.
R44 [l.44-46]: Q prevotes(h, r, nil) while step=prevote: precommit nil, step=precommit.
R47 [l.47-48]: Q precommits(h, r, *), first time: schedule timeout_precommit(r).
R49 [l.49-54]: a valid proposal(h, r', v) and Q precommits(h, r', id(v)), any round r': decide
    v (emit a Commit with the certificate made of those precommits), height+1, reset lock,
    valid value and logs, step=new-height, wait timeout_commit, then StartRound(0).
    Q precommits for a value whose proposal we lack: report ``catch_up`` = h.
R55 [l.55-56]: f+1 validators sent messages for rounds > round (we use "the (f+1)-th highest
    round seen", a safe variant): StartRound(that round).
T57/T61/T65 [l.57-67]: timeout_propose -> prevote nil; timeout_prevote -> precommit nil;
    timeout_precommit -> StartRound(r+1); each only if (h, r, step) still match.

Additions, not in Algorithm 1 (gossip is assumed there):
* Rebroadcast timer (every ``rebroadcast_ms``): re-send our votes of this and the previous
  round (a peer still in the previous round may miss our precommit to time out), our
  proposal of the current round, the Q prevotes justifying validRound (the POL), and the
  certificate of the previous height. A proposal with pol_round is sent together with its POL,
  as one ProofOfLock record.
* Vote slots (issue 11, docs/consensus.md): a slot (round, type, validator) takes any value
  while it holds fewer than MAX_FREE_VOTES_PER_SLOT votes, and nil or a *named* value (a valid
  proposal of that round, or a value with a verified quorum in it: ProofOfLock, certificate)
  always; a verified ProofOfLock names its value, so all its votes are admitted. An equivocator
  can therefore never hide a POL that an honest node acted on.
* A received CommitCertificate for our height is read as Q precommits (R49 then applies);
  for a higher height it sets ``catch_up``.
* Messages for heights h+1 .. h+height_window and rounds <= round_window are deduplicated,
  verified and buffered (bounded per validator in messages and bytes), replayed on entering
  that height; rounds above round+round_window only count
  for R55. Everything else bad is dropped and counted in ``self.stats``.

CRASH SAFETY: every signature we make is preceded by ``Ready.persist`` holding a
:class:`PersistedState` with our votes of the current round, the lock, the valid value and the
round we proposed in. Rounds never go down, so after a restart we never sign two different
votes for one (h, r, type) nor two proposals for one (h, r). Signing a conflicting vote or a
second proposal raises :class:`ConsensusInvariantError` (a bug of ours: stop the process).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tpledger.consensus.messages import (
    REBROADCAST,
    STEP_NEW_HEIGHT,
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    STEP_PROPOSE,
    TIMEOUT_COMMIT,
    TIMEOUT_PRECOMMIT,
    TIMEOUT_PREVOTE,
    TIMEOUT_PROPOSE,
    AnyEvidence,
    Commit,
    ConsensusConfig,
    Evidence,
    PersistedState,
    ProofOfLock,
    Proposal,
    ProposalEvidence,
    Ready,
    SignedProposal,
    Timer,
)
from tpledger.ledger.encoding import Record, decode_any
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.keys import Signer
from tpledger.ledger.limits import PROPOSAL_OVERHEAD_BYTES
from tpledger.ledger.votes import (
    MAX_VALIDATORS,
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    SignedVote,
    Vote,
    max_faulty,
    quorum,
)

Validate = Callable[[int, bytes], "bytes | None"]
_MESSAGE_TYPES: tuple[type[Record], ...] = (SignedProposal, SignedVote, CommitCertificate,
                                            ProofOfLock)
MAX_PROPOSALS_PER_ROUND = 2  # the first one, and one conflicting (kept for R36/R49); more only
#   for a value with a verified quorum in that round
MAX_QUORUM_VALUES_PER_ROUND = 2  # values with a verified POL/certificate in one round (<= 1
#   within the fault model: two need 2f+2 honest prevotes of one round)
MAX_FREE_VOTES_PER_SLOT = 2  # per (round, type, validator), votes for values nobody named
# Hard bound on distinct values per slot: the free ones, nil, the values of the round's
# proposals and of its verified quorums (a broken bound is our bug: ConsensusInvariantError).
MAX_VOTES_PER_SLOT = (MAX_FREE_VOTES_PER_SLOT + 1 + MAX_PROPOSALS_PER_ROUND
                      + MAX_QUORUM_VALUES_PER_ROUND)


class ConsensusInvariantError(RuntimeError):
    """Our own invariant is broken (e.g. about to sign a conflicting vote): stop the process."""


@dataclass
class _ProposalEntry:
    signed: SignedProposal
    value_id: bytes | None  # None: payload invalid per the validate callback


class _RoundLog:
    """Votes and proposals received for one round of the current height."""

    __slots__ = ("named", "precommit_counts", "precommits", "prevote_counts", "prevotes",
                 "proposal_count", "proposals", "quorum_values")

    def __init__(self) -> None:
        # validator -> its votes of this round; several entries only for an equivocator
        # (at most MAX_VOTES_PER_SLOT, see _slot_admits), whose votes count for each value
        # they name (as in Algorithm 1, which counts messages).
        self.prevotes: dict[int, list[SignedVote]] = {}
        self.precommits: dict[int, list[SignedVote]] = {}
        self.prevote_counts: Counter[bytes | None] = Counter()
        self.precommit_counts: Counter[bytes | None] = Counter()
        self.proposals: list[_ProposalEntry] = []
        self.proposal_count = 0  # proposals ever accepted (``proposals`` of old rounds is cleared)
        # Values a vote of this round may name past its free slots: the round's valid proposals
        # and the values of verified quorums (POLs, certificates). Never shrinks in a height.
        self.named: set[bytes] = set()
        self.quorum_values: set[bytes] = set()


class Consensus:
    """One validator's (or observer's, ``my_index=None``) Tendermint state machine."""

    def __init__(
        self,
        *,
        chain_id: str,
        validator_keys: Sequence[bytes],
        my_index: int | None,
        signer: Signer | None,
        config: ConsensusConfig,
        validate: Validate,
        height: int,
        persisted: bytes | None = None,
        last_cert: CommitCertificate | None = None,
    ) -> None:
        n = len(validator_keys)
        if not 1 <= n <= MAX_VALIDATORS:
            raise ValueError(f"need 1..{MAX_VALIDATORS} validators")
        if height < 1:
            raise ValueError("height starts at 1 (0 is genesis)")
        if (my_index is None) != (signer is None):
            raise ValueError("my_index and signer go together")
        if my_index is not None and signer is not None:
            if not 0 <= my_index < n:
                raise ValueError("my_index out of range")
            if validator_keys[my_index] != signer.public:
                raise ValueError("signer does not hold validator_keys[my_index]")
        self.chain_id = chain_id
        self.validator_keys: tuple[bytes, ...] = tuple(validator_keys)
        self.n = n
        self.f = max_faulty(n)
        self.my_index = my_index
        self._signer = signer
        self.config = config
        self._validate_cb = validate
        self._max_message_bytes = max(config.max_payload_bytes + PROPOSAL_OVERHEAD_BYTES,
                                      ProofOfLock.MAX_BYTES)
        self.stats: Counter[str] = Counter()
        # Decision state (Algorithm 1: h_p, round_p, step_p, locked*, valid*).
        self.height = height
        self.round = 0
        self.step = STEP_NEW_HEIGHT
        self.locked_round: int | None = None
        self.locked_value: bytes | None = None
        self.valid_round: int | None = None
        self.valid_value: bytes | None = None
        self.valid_payload: bytes | None = None
        self._proposed_round: int | None = None
        self._own_votes: list[SignedVote] = []  # our votes of the current round
        self._prev_own_votes: list[SignedVote] = []  # of the round before (re-sent to laggards)
        self._my_proposal: SignedProposal | None = None
        # The certificate of height-1, re-sent to laggards; the node passes the one it stored
        # (it may be missing from ``persisted`` after a crash between commit and persist).
        self.last_cert: CommitCertificate | None = (
            last_cert if last_cert is not None and last_cert.height == height - 1 else None)
        self._reset_height_logs()
        # Future heights: height -> {message: size in bytes} (a dict: replays are deduplicated),
        # bounded per validator in messages and bytes, rounds <= round_window only.
        self._future: dict[int, dict[Record, int]] = {}
        self._future_count: Counter[int] = Counter()  # buffered messages per validator
        self._future_bytes: Counter[int] = Counter()  # buffered bytes per validator
        self._resumed = False
        self._started = False
        self._clear_out()
        if persisted is not None:
            self._restore(persisted)

    # ----------------------------------------------------------------------------------------
    # Public API

    def start(self) -> Ready:
        """Begin (or resume) at ``self.height``; call once, before anything else."""
        if self._started:
            raise ConsensusInvariantError("start() called twice")
        self._started = True
        self._persist_dirty = True
        self._timers.append(self._timer(REBROADCAST, 0))
        if self._resumed and self.step in (STEP_PREVOTE, STEP_PRECOMMIT):
            kind = TIMEOUT_PREVOTE if self.step == STEP_PREVOTE else TIMEOUT_PRECOMMIT
            self._timers.append(self._timer(kind, self.round))
            self._messages.extend(v.encode() for v in (*self._prev_own_votes, *self._own_votes))
        else:
            self._start_round(self.round if self._resumed else 0)
        self._replay_future()
        self._run_rules()
        return self._flush()

    def on_message(self, data: bytes) -> Ready:
        """Handle raw bytes from a peer. Bad input is dropped and counted; never raises."""
        self.stats["received"] += 1
        if not self._started:
            self.stats["dropped_not_started"] += 1
            return self._flush()
        try:
            msg = decode_any(data, _MESSAGE_TYPES, self._max_message_bytes)
        except LedgerError:
            self.stats["dropped_bad_encoding"] += 1
            return self._flush()
        self._dispatch(msg, False, len(data))
        self._run_rules()
        return self._flush()

    def on_timeout(self, timer: Timer) -> Ready:
        """A timer from ``Ready.timers`` fired. Stale timers are ignored."""
        h, r = timer.height, timer.round
        if h != self.height:
            self.stats["stale_timer"] += 1
        elif timer.kind == REBROADCAST:
            self._rebroadcast()
            self._timers.append(self._timer(REBROADCAST, 0))
        elif timer.kind == TIMEOUT_COMMIT:
            if self.step == STEP_NEW_HEIGHT:
                self._start_round(0)
        elif r != self.round:
            self.stats["stale_timer"] += 1
        elif timer.kind == TIMEOUT_PROPOSE:  # l.57
            if self.step == STEP_PROPOSE:
                self._vote(PREVOTE, None)
                self.step = STEP_PREVOTE
        elif timer.kind == TIMEOUT_PREVOTE:  # l.61
            if self.step == STEP_PREVOTE:
                self._vote(PRECOMMIT, None)
                self.step = STEP_PRECOMMIT
        elif timer.kind == TIMEOUT_PRECOMMIT:  # l.65
            if self.step != STEP_NEW_HEIGHT:
                self._start_round(self.round + 1)
        else:
            self.stats["unknown_timer"] += 1
        self._run_rules()
        return self._flush()

    def on_payload(self, height: int, round: int, payload: bytes) -> Ready:
        """The node's answer to ``Ready.need_payload``: the block we propose at (height, round)."""
        if (height, round) != (self.height, self.round) or self.step != STEP_PROPOSE \
                or self._proposed_round == round or not self._is_proposer(height, round):
            self.stats["stale_payload"] += 1
            return self._flush()
        value_id = None
        if len(payload) <= self.config.max_payload_bytes:
            value_id = self._validate(height, payload)
        if value_id is None:
            self.stats["own_payload_invalid"] += 1
            return self._flush()
        self._propose(payload, value_id, None)
        self._run_rules()
        return self._flush()

    def advance_to(self, height: int) -> Ready:
        """The node applied certified blocks below ``height`` (catch-up): jump there."""
        if height <= self.height:
            self.stats["stale_advance"] += 1
            return self._flush()
        self._enter_height(height, None)
        self._start_round(0)
        self._replay_future()
        self._run_rules()
        return self._flush()

    def proposer(self, height: int, round: int) -> int:
        return (height + round) % self.n

    # ----------------------------------------------------------------------------------------
    # Thresholds (methods, so that tests can build deliberately broken variants)

    def _quorum(self) -> int:
        return quorum(self.n)

    def _skip_threshold(self) -> int:
        return self.f + 1

    # ----------------------------------------------------------------------------------------
    # Output

    def _clear_out(self) -> None:
        self._messages: list[bytes] = []
        self._timers: list[Timer] = []
        self._commits: list[Commit] = []
        self._evidence: list[AnyEvidence] = []
        self._need_payload: tuple[int, int] | None = None
        self._catch_up: int | None = None
        self._persist_dirty = False

    def _flush(self) -> Ready:
        persist = self._persisted_state().encode() if self._persist_dirty else None
        ready = Ready(
            persist=persist,
            messages=tuple(self._messages),
            timers=tuple(self._timers),
            commits=tuple(self._commits),
            need_payload=self._need_payload,
            evidence=tuple(self._evidence),
            catch_up=self._catch_up,
        )
        self._clear_out()
        return ready

    def _timer(self, kind: str, round: int) -> Timer:
        return Timer(kind, self.height, round, self.config.timeout_ms(kind, round))

    def _report_catch_up(self, height: int) -> None:
        if self._catch_up is None or height > self._catch_up:
            self._catch_up = height

    # ----------------------------------------------------------------------------------------
    # Persistence

    def _persisted_state(self) -> PersistedState:
        return PersistedState(
            height=self.height,
            round=self.round,
            step=self.step,
            locked_round=self.locked_round,
            locked_value=self.locked_value,
            valid_round=self.valid_round,
            valid_value=self.valid_value,
            valid_payload=self.valid_payload if self.valid_value is not None else None,
            valid_pol=tuple(self._pol_votes(self.valid_round, self.valid_value))
            if self.valid_round is not None and self.valid_value is not None else (),
            proposed_round=self._proposed_round,
            votes=(*self._prev_own_votes, *self._own_votes),
            last_cert=self.last_cert,
        )

    def _restore(self, data: bytes) -> None:
        st = PersistedState.decode(data)  # our own disk: a decode error propagates
        if st.height > self.height:
            raise ValueError(
                f"persisted consensus state is at height {st.height} but the store is at "
                f"{self.height}: apply Ready.commits before storing Ready.persist"
            )
        if st.last_cert is not None and st.last_cert.height == self.height - 1:
            self.last_cert = st.last_cert
        if st.height < self.height:
            return
        me = self.my_index
        for sv in st.votes:
            v = sv.vote
            if v.validator != me or v.height != st.height or v.round > st.round:
                raise ValueError("persisted consensus state holds a foreign vote")
        self._resumed = True
        self.round, self.step = st.round, st.step
        self.locked_round, self.locked_value = st.locked_round, st.locked_value
        self.valid_round, self.valid_value = st.valid_round, st.valid_value
        self.valid_payload = st.valid_payload
        self._proposed_round = st.proposed_round
        self._own_votes = [sv for sv in st.votes if sv.vote.round == st.round]
        self._prev_own_votes = [sv for sv in st.votes if sv.vote.round != st.round]
        if st.valid_round is not None and st.valid_value is not None:
            self._name_quorum_value(self._rlog(st.valid_round), st.valid_value)
        for sv in (*st.valid_pol, *st.votes):
            self._store_vote(sv)

    # ----------------------------------------------------------------------------------------
    # Height and round transitions

    def _reset_height_logs(self) -> None:
        self._rounds: dict[int, _RoundLog] = {}
        self._seen_round: dict[int, int] = {}  # validator -> highest round seen above ours
        self._reported: set[tuple[int, int, int]] = set()  # (validator, round, type) evidence
        self._prevote_timer_done: set[int] = set()
        self._precommit_timer_done: set[int] = set()
        self._r36_done: set[int] = set()
        self._commit_candidates: list[tuple[int, bytes]] = []
        self._catch_up_reported = False

    def _enter_height(self, height: int, cert: CommitCertificate | None) -> None:
        self.height = height
        self.round = 0
        self.step = STEP_NEW_HEIGHT
        self.locked_round = self.locked_value = None
        self.valid_round = self.valid_value = self.valid_payload = None
        self._proposed_round = None
        self._own_votes = []
        self._prev_own_votes = []
        self._my_proposal = None
        if cert is not None:
            self.last_cert = cert
        elif self.last_cert is not None and self.last_cert.height != height - 1:
            self.last_cert = None
        self._reset_height_logs()
        self._persist_dirty = True
        self._timers.append(self._timer(REBROADCAST, 0))
        for h in [h for h in self._future if h < height]:
            self._drop_future(h)

    def _start_round(self, round: int) -> None:  # l.11-21
        if round != self.round:
            self._prev_own_votes, self._own_votes = self._own_votes, []
        self.round = round
        self.step = STEP_PROPOSE
        self._my_proposal = None
        for v in [v for v, r in self._seen_round.items() if r <= round]:
            del self._seen_round[v]
        keep = (self.valid_round, self.locked_round)
        for r, log in self._rounds.items():  # bound memory: old rounds keep votes, not payloads
            if r < round - self.config.round_window and r not in keep and log.proposals:
                log.proposals.clear()
        if self._is_proposer(self.height, round) and self._proposed_round != round:
            if self.valid_value is not None and self.valid_payload is not None:  # l.15
                self._propose(self.valid_payload, self.valid_value, self.valid_round)
            elif self.valid_value is not None:
                self.stats["cannot_repropose"] += 1  # payload lost in a crash: let others lead
            else:
                self._need_payload = (self.height, round)  # l.17
        self._timers.append(self._timer(TIMEOUT_PROPOSE, round))

    def _is_proposer(self, height: int, round: int) -> bool:
        return self.my_index is not None and self.proposer(height, round) == self.my_index

    # ----------------------------------------------------------------------------------------
    # Signing (the only places that sign)

    def _propose(self, payload: bytes, value_id: bytes, pol_round: int | None) -> None:
        if self._signer is None or self.my_index is None:
            raise ConsensusInvariantError("an observer cannot propose")
        if self._proposed_round == self.round:
            raise ConsensusInvariantError("about to sign a second proposal for one round")
        sp = Proposal(self.height, self.round, pol_round, payload, self.my_index).sign(
            self.chain_id, self._signer)
        self._proposed_round = self.round
        self._persist_dirty = True
        self._my_proposal = sp
        self._messages.append(sp.encode())
        if pol_round is not None:
            self._send_pol(pol_round, value_id)
        log = self._rlog(self.round)
        log.proposals.append(_ProposalEntry(sp, value_id))
        log.proposal_count += 1
        log.named.add(value_id)

    def _vote(self, vote_type: int, value_id: bytes | None) -> None:
        if self._signer is None or self.my_index is None:
            return  # observers follow, never vote
        for sv in self._own_votes:
            if sv.vote.vote_type == vote_type:
                if sv.vote.value_id == value_id:
                    return
                raise ConsensusInvariantError(
                    f"about to sign a conflicting vote at h={self.height} r={self.round}")
        sv = Vote(self.height, self.round, vote_type, value_id, self.my_index).sign(
            self.chain_id, self._signer)
        self._own_votes.append(sv)
        self._persist_dirty = True
        self._messages.append(sv.encode())
        self._store_vote(sv)

    # ----------------------------------------------------------------------------------------
    # Input handling

    def _validate(self, height: int, payload: bytes) -> bytes | None:
        try:
            value_id = self._validate_cb(height, payload)
        except LedgerError:
            return None
        if value_id is not None and not (isinstance(value_id, bytes) and len(value_id) == 32):
            raise ConsensusInvariantError("validate callback must return 32 bytes or None")
        return value_id

    def _dispatch(self, msg: Record, verified: bool, size: int) -> None:
        if isinstance(msg, SignedVote):
            self._on_vote(msg, verified, size)
        elif isinstance(msg, SignedProposal):
            self._on_proposal(msg, verified, size)
        elif isinstance(msg, CommitCertificate):
            self._on_certificate(msg)
        elif isinstance(msg, ProofOfLock):
            self._on_pol(msg)

    def _height_filter(self, height: int, round: int, sender: int, msg: Record,
                       verify: Callable[[], bool], verified: bool, size: int) -> bool:
        """True if the message is for our height; buffers (bounded, deduplicated) or drops
        others, counting why in ``stats``."""
        if height == self.height:
            return True
        if height < self.height:
            self.stats["dropped_old_height"] += 1
        elif height > self.height + self.config.height_window:
            self.stats["dropped_far_future"] += 1
        elif round > self.config.round_window:  # we enter that height at round 0
            self.stats["dropped_future_far_round"] += 1
        elif msg in self._future.get(height, {}):
            self.stats["dropped_future_duplicate"] += 1
        elif self._future_count[sender] >= self._future_quota_messages():
            self.stats["dropped_buffer_full"] += 1
        elif self._future_bytes[sender] + size > self._future_quota_bytes():
            self.stats["dropped_buffer_bytes"] += 1
        elif not verified and not verify():
            self.stats["dropped_bad_signature"] += 1
        else:
            self._future.setdefault(height, {})[msg] = size
            self._future_count[sender] += 1
            self._future_bytes[sender] += size
            self.stats["buffered_future"] += 1
        return False

    def _future_quota_messages(self) -> int:
        return max(1, self.config.max_buffered_messages // self.n)

    def _future_quota_bytes(self) -> int:
        return max(self.config.max_buffered_bytes // self.n, self._max_message_bytes)

    def _drop_future(self, height: int) -> None:
        for m, size in self._future.pop(height, {}).items():
            sender = self._sender(m)
            self._future_count[sender] -= 1
            self._future_bytes[sender] -= size

    @staticmethod
    def _sender(m: Record) -> int:
        if isinstance(m, SignedVote):
            return m.vote.validator
        if isinstance(m, SignedProposal):
            return m.proposal.proposer
        raise ConsensusInvariantError("only votes and proposals are buffered")

    def _replay_future(self) -> None:
        msgs = list(self._future.get(self.height, {}).items())
        self._drop_future(self.height)
        for m, size in msgs:
            self._dispatch(m, True, size)

    def _note_round(self, validator: int, round: int) -> None:
        if round > self.round and self._seen_round.get(validator, -1) < round:
            self._seen_round[validator] = round

    def _rlog(self, round: int) -> _RoundLog:
        log = self._rounds.get(round)
        if log is None:
            log = self._rounds[round] = _RoundLog()
        return log

    def _far_round(self, validator: int, round: int, verify: Callable[[], bool],
                   verified: bool) -> bool:
        """Rounds above round+round_window only count for R55 (one number per validator)."""
        if round <= self.round + self.config.round_window:
            return False
        if not verified and not verify():
            self.stats["dropped_bad_signature"] += 1
            return True
        self.stats["far_round"] += 1
        self._note_round(validator, round)
        return True

    def _slot_admits(self, log: _RoundLog, old: Sequence[SignedVote],
                     value_id: bytes | None) -> bool:
        """THE RULE (docs/consensus.md): a validator's slot takes any value while it has free
        room, and nil or a named value (a valid proposal of the round, or a value with a
        verified quorum in it) always. Tests override this to rebuild the old, broken rule."""
        return len(old) < MAX_FREE_VOTES_PER_SLOT or value_id is None or value_id in log.named

    def _slot(self, sv: SignedVote) -> list[SignedVote]:
        v = sv.vote
        log = self._rlog(v.round)
        return (log.prevotes if v.vote_type == PREVOTE else log.precommits).get(v.validator, [])

    def _on_vote(self, sv: SignedVote, verified: bool, size: int) -> None:
        v = sv.vote
        if v.validator >= self.n:
            self.stats["dropped_unknown_validator"] += 1
            return

        def check() -> bool:
            return sv.verify(self.chain_id, self.validator_keys)

        if not self._height_filter(v.height, v.round, v.validator, sv, check, verified, size) \
                or self._far_round(v.validator, v.round, check, verified):
            return
        old = self._slot(sv)
        if any(o.vote.value_id == v.value_id for o in old):
            self.stats["duplicate"] += 1
            return
        if not self._slot_admits(self._rlog(v.round), old, v.value_id):
            self.stats["dropped_unnamed_vote"] += 1
            return
        if not verified and not check():
            self.stats["dropped_bad_signature"] += 1
            return
        self._accept_vote(sv, old)

    def _accept_vote(self, sv: SignedVote, old: Sequence[SignedVote]) -> None:
        v = sv.vote
        if old:
            self.stats["equivocation"] += 1
            key = (v.validator, v.round, v.vote_type)
            if key not in self._reported:
                self._reported.add(key)
                self._evidence.append(Evidence(old[0], sv))
        self._store_vote(sv)
        self._note_round(v.validator, v.round)
        self.stats["accepted_vote"] += 1

    def _store_vote(self, sv: SignedVote) -> None:
        v = sv.vote
        log = self._rlog(v.round)
        slot, counts = ((log.prevotes, log.prevote_counts) if v.vote_type == PREVOTE
                        else (log.precommits, log.precommit_counts))
        old = slot.setdefault(v.validator, [])
        if any(o.vote.value_id == v.value_id for o in old):
            return
        if len(old) >= MAX_VOTES_PER_SLOT:
            raise ConsensusInvariantError(f"vote slot bound broken at r={v.round}")
        old.append(sv)
        counts[v.value_id] += 1
        if v.vote_type == PRECOMMIT and v.value_id is not None \
                and counts[v.value_id] == self._quorum():
            self._commit_candidates.append((v.round, v.value_id))

    def _name_quorum_value(self, log: _RoundLog, value_id: bytes) -> bool:
        """Record a value with a verified quorum in the round; False if the bound is full."""
        if value_id in log.quorum_values:
            return True
        if len(log.quorum_values) >= MAX_QUORUM_VALUES_PER_ROUND:
            self.stats["dropped_quorum_flood"] += 1  # only outside the fault model
            return False
        log.quorum_values.add(value_id)
        log.named.add(value_id)
        return True

    def _on_pol(self, pol: ProofOfLock) -> None:
        """A peer presents Q prevotes for one value: verify them, then admit every one."""
        if pol.height != self.height:
            self.stats["dropped_pol_height"] += 1
            return
        if pol.round > self.round + self.config.round_window:
            self.stats["far_round"] += 1
            return
        if pol.malformed(self.n) is not None or len(pol.votes) < self._quorum():
            self.stats["dropped_bad_pol"] += 1
            return
        fresh = [(sv, self._slot(sv)) for sv in pol.votes]
        fresh = [(sv, old) for sv, old in fresh
                 if not any(o.vote.value_id == pol.value_id for o in old)]
        if not fresh:
            self.stats["duplicate"] += 1
            return
        if not all(sv.verify(self.chain_id, self.validator_keys) for sv, _ in fresh):
            self.stats["dropped_bad_signature"] += 1
            return
        log = self._rlog(pol.round)
        if not self._name_quorum_value(log, pol.value_id):
            return
        self.stats["accepted_pol"] += 1
        for sv, old in fresh:
            if self._slot_admits(log, old, pol.value_id):
                self._accept_vote(sv, old)
            else:
                self.stats["dropped_unnamed_vote"] += 1

    def _on_proposal(self, sp: SignedProposal, verified: bool, size: int) -> None:
        p = sp.proposal
        if p.proposer >= self.n:
            self.stats["dropped_unknown_validator"] += 1
            return
        if p.proposer != self.proposer(p.height, p.round):
            self.stats["dropped_wrong_proposer"] += 1
            return
        if len(p.payload) > self.config.max_payload_bytes:
            self.stats["dropped_oversize"] += 1
            return
        if p.pol_round is not None and p.pol_round >= p.round:
            self.stats["dropped_bad_pol_round"] += 1
            return

        def check() -> bool:
            return sp.verify(self.chain_id, self.validator_keys)

        if not self._height_filter(p.height, p.round, p.proposer, sp, check, verified, size) \
                or self._far_round(p.proposer, p.round, check, verified):
            return
        log = self._rlog(p.round)
        if any(e.signed == sp for e in log.proposals):
            self.stats["duplicate"] += 1
            return
        extra = log.proposal_count >= MAX_PROPOSALS_PER_ROUND
        if extra and not log.quorum_values - {e.value_id for e in log.proposals}:
            self.stats["dropped_proposal_flood"] += 1
            return
        if not verified and not check():
            self.stats["dropped_bad_signature"] += 1
            return
        value_id = self._validate(p.height, p.payload)
        if extra and value_id not in log.quorum_values:
            self.stats["dropped_proposal_flood"] += 1
            return
        self._add_proposal(log, _ProposalEntry(sp, value_id))

    def _add_proposal(self, log: _RoundLog, entry: _ProposalEntry) -> None:
        if log.proposals:
            self.stats["proposal_equivocation"] += 1
            self._evidence.append(ProposalEvidence(log.proposals[0].signed, entry.signed))
        log.proposals.append(entry)
        log.proposal_count += 1
        if entry.value_id is not None:
            log.named.add(entry.value_id)
        p = entry.signed.proposal
        self._note_round(p.proposer, p.round)
        self.stats["accepted_proposal"] += 1

    def _on_certificate(self, cert: CommitCertificate) -> None:
        if cert.height < self.height:
            self.stats["dropped_old_height"] += 1
            return
        if cert.height == self.height and any(
            r == cert.round and v == cert.block_hash for r, v in self._commit_candidates
        ):
            self.stats["duplicate"] += 1
            self._report_catch_up(cert.height)  # still undecided: we lack the proposal
            return
        try:
            cert.check(self.chain_id, self.validator_keys)
        except LedgerError:
            self.stats["dropped_bad_certificate"] += 1
            return
        self.stats["accepted_certificate"] += 1
        if cert.height > self.height:
            self._report_catch_up(cert.height)
            return
        log = self._rlog(cert.round)
        if not self._name_quorum_value(log, cert.block_hash):
            return
        for s in cert.signatures:
            if any(o.vote.value_id == cert.block_hash for o in log.precommits.get(s.validator, ())):
                continue
            vote = Vote(cert.height, cert.round, PRECOMMIT, cert.block_hash, s.validator)
            self._store_vote(SignedVote(vote, s.signature))
        self._run_rules()
        if self.height == cert.height:
            self._report_catch_up(cert.height)  # decided, but we lack the proposal

    # ----------------------------------------------------------------------------------------
    # Rules

    def _run_rules(self) -> None:
        for _ in range(10_000):
            if not self._started or self.step == STEP_NEW_HEIGHT:
                return
            if not (self._r49_commit() or self._r55_skip() or self._r22_r28_prevote()
                    or self._r34_prevote_timer() or self._r36_lock() or self._r44_nil()
                    or self._r47_precommit_timer()):
                return
        raise ConsensusInvariantError("rules did not settle")

    def _r49_commit(self) -> bool:
        if not self._commit_candidates:
            return False
        for r, value_id in self._commit_candidates:
            log = self._rounds.get(r)
            if log is None:
                continue
            for e in log.proposals:
                if e.value_id == value_id:
                    self._decide(r, value_id, e.signed.proposal.payload, log)
                    return True
            if value_id == self.valid_value and self.valid_payload is not None:
                self._decide(r, value_id, self.valid_payload, log)  # proposal lost in a restart
                return True
        if not self._catch_up_reported:
            self._catch_up_reported = True
            self._report_catch_up(self.height)
        return False

    def _decide(self, r: int, value_id: bytes, payload: bytes, log: _RoundLog) -> None:
        votes = [sv for vs in log.precommits.values() for sv in vs if sv.vote.value_id == value_id]
        cert = CommitCertificate.from_votes(votes)
        self._commits.append(Commit(self.height, r, value_id, payload, cert))
        self.stats["committed"] += 1
        self._enter_height(self.height + 1, cert)
        if self.config.timeout_commit_ms > 0:
            self._timers.append(self._timer(TIMEOUT_COMMIT, 0))
        else:
            self._start_round(0)
        self._replay_future()

    def _r55_skip(self) -> bool:
        k = self._skip_threshold()
        if len(self._seen_round) < k:
            return False
        target = sorted(self._seen_round.values(), reverse=True)[k - 1]
        if target <= self.round:
            return False
        self._start_round(target)
        return True

    def _first_proposal(self, round: int) -> _ProposalEntry | None:
        log = self._rounds.get(round)
        return log.proposals[0] if log is not None and log.proposals else None

    def _r22_r28_prevote(self) -> bool:
        if self.step != STEP_PROPOSE:
            return False
        e = self._first_proposal(self.round)
        if e is None:
            return False
        vid, vr = e.value_id, e.signed.proposal.pol_round
        if vr is None:  # l.22
            ok = vid is not None and (self.locked_round is None or self.locked_value == vid)
        else:  # l.28
            pol = self._rounds.get(vr)
            if pol is None or vid is None or pol.prevote_counts[vid] < self._quorum():
                return False
            ok = (self.locked_round is None or self.locked_round <= vr
                  or self.locked_value == vid)
        self._vote(PREVOTE, vid if ok else None)
        self.step = STEP_PREVOTE
        return True

    def _r34_prevote_timer(self) -> bool:
        r = self.round
        if self.step != STEP_PREVOTE or r in self._prevote_timer_done:
            return False
        log = self._rounds.get(r)
        if log is None or len(log.prevotes) < self._quorum():
            return False
        self._prevote_timer_done.add(r)
        self._timers.append(self._timer(TIMEOUT_PREVOTE, r))
        return True

    def _r36_lock(self) -> bool:
        r = self.round
        if self.step < STEP_PREVOTE or r in self._r36_done:
            return False
        log = self._rounds.get(r)
        if log is None:
            return False
        for e in log.proposals:
            if e.value_id is not None and log.prevote_counts[e.value_id] >= self._quorum():
                self._r36_done.add(r)
                if self.step == STEP_PREVOTE:
                    self._lock(r, e.value_id)
                    self._vote(PRECOMMIT, e.value_id)
                    self.step = STEP_PRECOMMIT
                self.valid_value, self.valid_round = e.value_id, r
                self.valid_payload = e.signed.proposal.payload
                return True
        return False

    def _lock(self, round: int, value_id: bytes) -> None:
        self.locked_value, self.locked_round = value_id, round

    def _r44_nil(self) -> bool:
        if self.step != STEP_PREVOTE:
            return False
        log = self._rounds.get(self.round)
        if log is None or log.prevote_counts[None] < self._quorum():
            return False
        self._vote(PRECOMMIT, None)
        self.step = STEP_PRECOMMIT
        return True

    def _r47_precommit_timer(self) -> bool:
        r = self.round
        if r in self._precommit_timer_done:
            return False
        log = self._rounds.get(r)
        if log is None or len(log.precommits) < self._quorum():
            return False
        self._precommit_timer_done.add(r)
        self._timers.append(self._timer(TIMEOUT_PRECOMMIT, r))
        return True

    # ----------------------------------------------------------------------------------------
    # Gossip helpers

    def _pol_votes(self, round: int, value_id: bytes) -> list[SignedVote]:
        log = self._rounds.get(round)
        if log is None:
            return []
        return [sv for vs in log.prevotes.values() for sv in vs if sv.vote.value_id == value_id]

    def _send_pol(self, round: int, value_id: bytes) -> None:
        """Send the quorum of prevotes behind (round, value_id) as one ProofOfLock."""
        votes = self._pol_votes(round, value_id)
        if len(votes) < self._quorum():
            raise ConsensusInvariantError(f"no POL held for our valid value (round {round})")
        self._messages.append(ProofOfLock(self.height, round, value_id, tuple(votes)).encode())

    def _rebroadcast(self) -> None:
        out = self._messages
        if self.last_cert is not None:
            out.append(self.last_cert.encode())
        if self.step == STEP_NEW_HEIGHT:
            return
        if self._my_proposal is not None and self._my_proposal.proposal.round == self.round:
            out.append(self._my_proposal.encode())
        if self.valid_round is not None and self.valid_value is not None:
            self._send_pol(self.valid_round, self.valid_value)
        out.extend(sv.encode() for sv in (*self._prev_own_votes, *self._own_votes))
        self.stats["rebroadcast"] += 1


__all__ = ["Consensus", "ConsensusInvariantError", "Validate"]
