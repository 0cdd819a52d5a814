"""Consensus wire records (tags 0x70-0x7F) and the plain values the state machine hands out.

Wire messages between validators are canonical records decoded with
:func:`ledger.encoding.decode_any`; the record tag is the envelope:

* :class:`SignedProposal` (0x71) wrapping a :class:`Proposal` (0x70), signed with kind
  ``"proposal"``;
* :class:`ledger.votes.SignedVote` (0x31): prevotes and precommits, signed with kind ``"vote"``
  (so a quorum of precommits *is* a :class:`ledger.votes.CommitCertificate`);
* :class:`ledger.votes.CommitCertificate` (0x33): the certificate of a decided height, re-sent so
  that laggards can finish that height or ask their node to catch up;
* :class:`ProofOfLock` (0x75): a quorum of prevotes for one value in one round, sent with a
  re-proposal and on every rebroadcast, so that any honest node can verify the lock behind it.

:class:`PersistedState` (0x72) is the crash-safety record; :class:`Evidence` (0x73) proves that
one validator signed two different votes for one (height, round, type).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import tpledger.ledger.limits as limits
import tpledger.ledger.votes as ledger_votes
from tpledger.ledger.encoding import (
    HASH32,
    SIG,
    U32,
    U64,
    Int,
    ListOf,
    Nested,
    Optional,
    Record,
    VarBytes,
    spec,
)
from tpledger.ledger.keys import Signer, verify
from tpledger.ledger.tx import VoteEvidence
from tpledger.ledger.votes import MAX_VALIDATORS, CommitCertificate, SignedVote

PROPOSAL_KIND = "proposal"
MAX_PAYLOAD_BYTES_LIMIT = limits.MAX_CONSENSUS_PAYLOAD_BYTES  # wire ceiling; config: the real one

# Steps of one round (Algorithm 1's step_p, plus NEW_HEIGHT for the timeout_commit pause).
STEP_NEW_HEIGHT = 0
STEP_PROPOSE = 1
STEP_PREVOTE = 2
STEP_PRECOMMIT = 3
STEP_NAMES = {STEP_NEW_HEIGHT: "new-height", STEP_PROPOSE: "propose", STEP_PREVOTE: "prevote",
              STEP_PRECOMMIT: "precommit"}

# Timer kinds.
TIMEOUT_PROPOSE = "propose"
TIMEOUT_PREVOTE = "prevote"
TIMEOUT_PRECOMMIT = "precommit"
TIMEOUT_COMMIT = "commit"
REBROADCAST = "rebroadcast"
TIMER_KINDS = (TIMEOUT_PROPOSE, TIMEOUT_PREVOTE, TIMEOUT_PRECOMMIT, TIMEOUT_COMMIT, REBROADCAST)


@dataclass(frozen=True)
class Proposal(Record):
    """⟨PROPOSAL, h, r, v, vr⟩ of Algorithm 1; ``pol_round`` None is vr = -1."""

    TAG: ClassVar[int] = 0x70
    MAX_BYTES: ClassVar[int] = MAX_PAYLOAD_BYTES_LIMIT + 1024
    height: int = spec(U64)
    round: int = spec(U32)
    pol_round: int | None = spec(Optional(U32))
    payload: bytes = spec(VarBytes(MAX_PAYLOAD_BYTES_LIMIT))
    proposer: int = spec(Int(0, MAX_VALIDATORS - 1))

    def sign(self, chain_id: str, signer: Signer) -> SignedProposal:
        return SignedProposal(self, signer.sign(chain_id, PROPOSAL_KIND, self.encode()))


@dataclass(frozen=True)
class SignedProposal(Record):
    TAG: ClassVar[int] = 0x71
    MAX_BYTES: ClassVar[int] = MAX_PAYLOAD_BYTES_LIMIT + limits.PROPOSAL_OVERHEAD_BYTES
    proposal: Proposal = spec(Nested(Proposal))
    signature: bytes = spec(SIG)

    def verify(self, chain_id: str, validator_keys: Sequence[bytes]) -> bool:
        idx = self.proposal.proposer
        if idx >= len(validator_keys):
            return False
        return verify(validator_keys[idx], chain_id, PROPOSAL_KIND, self.proposal.encode(),
                      self.signature)


@dataclass(frozen=True)
class PersistedState(Record):
    """What must be on disk before a vote or proposal leaves (see docs/consensus.md).

    ``votes`` are our own signed votes of round ``round`` (at most one prevote and one
    precommit; rounds only grow, so earlier rounds can never be signed again), plus those of
    the round before, which a restarted validator re-sends to peers still in that round.
    ``valid_payload`` and ``valid_pol`` (the quorum of prevotes for it in ``valid_round``) are
    kept so that after a restart the valid value can still be re-proposed and justified.
    """

    TAG: ClassVar[int] = 0x72
    MAX_BYTES: ClassVar[int] = MAX_PAYLOAD_BYTES_LIMIT + 64 * 1024
    height: int = spec(U64)
    round: int = spec(U32)
    step: int = spec(Int(STEP_NEW_HEIGHT, STEP_PRECOMMIT))
    locked_round: int | None = spec(Optional(U32))
    locked_value: bytes | None = spec(Optional(HASH32))
    valid_round: int | None = spec(Optional(U32))
    valid_value: bytes | None = spec(Optional(HASH32))
    valid_payload: bytes | None = spec(Optional(VarBytes(MAX_PAYLOAD_BYTES_LIMIT)))
    valid_pol: tuple[SignedVote, ...] = spec(ListOf(Nested(SignedVote), 2 * MAX_VALIDATORS))
    proposed_round: int | None = spec(Optional(U32))
    votes: tuple[SignedVote, ...] = spec(ListOf(Nested(SignedVote), 4))
    last_cert: CommitCertificate | None = spec(Optional(Nested(CommitCertificate)))


@dataclass(frozen=True)
class Evidence(VoteEvidence):
    """Two votes signed by one validator for one (height, round, type) with different values
    (the fields of the ledger's :class:`ledger.tx.VoteEvidence`, which carries it on the
    ledger; this tag is consensus's own)."""

    TAG: ClassVar[int] = 0x73

    def check(self, chain_id: str, validator_keys: Sequence[bytes]) -> bool:
        """True iff this proves an equivocation: both signatures valid, one slot, two values."""
        a, b = self.first.vote, self.second.vote
        return (
            (a.height, a.round, a.vote_type, a.validator)
            == (b.height, b.round, b.vote_type, b.validator)
            and a.value_id != b.value_id
            and self.first.verify(chain_id, validator_keys)
            and self.second.verify(chain_id, validator_keys)
        )


@dataclass(frozen=True)
class ProposalEvidence(Record):
    """Two different proposals signed by one proposer for one (height, round)."""

    TAG: ClassVar[int] = 0x74
    MAX_BYTES: ClassVar[int] = 2 * SignedProposal.MAX_BYTES + 64
    first: SignedProposal = spec(Nested(SignedProposal))
    second: SignedProposal = spec(Nested(SignedProposal))

    @property
    def validator(self) -> int:
        return self.first.proposal.proposer

    def check(self, chain_id: str, validator_keys: Sequence[bytes]) -> bool:
        """True iff this proves an equivocating proposer: both signatures valid, one slot,
        two different proposals."""
        a, b = self.first.proposal, self.second.proposal
        return (
            (a.height, a.round, a.proposer) == (b.height, b.round, b.proposer)
            and a != b
            and self.first.verify(chain_id, validator_keys)
            and self.second.verify(chain_id, validator_keys)
        )


AnyEvidence = Evidence | ProposalEvidence


@dataclass(frozen=True)
class ProofOfLock(Record):
    """A quorum of prevotes for ``value_id`` in (``height``, ``round``): the POL behind a lock.

    Each vote is checked on receipt (type, height, round, value, signature, distinct
    validators); a node that verifies one always admits its votes (see docs/consensus.md).
    """

    TAG: ClassVar[int] = 0x75
    height: int = spec(U64)
    round: int = spec(U32)
    value_id: bytes = spec(HASH32)
    votes: tuple[SignedVote, ...] = spec(ListOf(Nested(SignedVote), MAX_VALIDATORS, 1))

    def malformed(self, n: int) -> str | None:
        """Why these votes are not a well-formed POL for n validators (signatures aside)."""
        seen: set[int] = set()
        for sv in self.votes:
            v = sv.vote
            if (v.height, v.round, v.vote_type, v.value_id) != (
                    self.height, self.round, ledger_votes.PREVOTE, self.value_id):
                return "vote_mismatch"
            if v.validator >= n or v.validator in seen:
                return "validator"
            seen.add(v.validator)
        return None


@dataclass(frozen=True)
class Timer:
    """A timeout to schedule: call ``on_timeout(timer)`` after ``delay_ms`` of local time."""

    kind: str
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True)
class Commit:
    """A decided block: apply ``payload`` at ``height``, store ``certificate`` with it."""

    height: int
    round: int
    value_id: bytes
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True)
class Ready:
    """Everything the node must do after one call, in this order:

    1. apply ``commits`` durably, in order;
    2. store ``persist`` durably (fsync) if not None — BEFORE sending any message;
    3. broadcast ``messages`` to all peers;
    4. schedule ``timers``;
    5. answer ``need_payload`` with ``on_payload``; fetch blocks up to ``catch_up``.
    """

    persist: bytes | None = None
    messages: tuple[bytes, ...] = ()
    timers: tuple[Timer, ...] = ()
    commits: tuple[Commit, ...] = ()
    need_payload: tuple[int, int] | None = None
    evidence: tuple[AnyEvidence, ...] = ()
    catch_up: int | None = None


@dataclass(frozen=True)
class ConsensusConfig:
    """Timeouts (ms) grow linearly with the round: ``base_ms + delta_ms * round``."""

    propose_base_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_base_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_base_ms: int = 1000
    precommit_delta_ms: int = 500
    timeout_commit_ms: int = 1000
    rebroadcast_ms: int = 2000
    max_payload_bytes: int = 1024 * 1024
    height_window: int = 4  # buffer messages for heights h+1 .. h+height_window
    round_window: int = 8  # store votes/proposals for rounds up to round+round_window
    max_buffered_messages: int = 1024  # future-height buffer, shared evenly between validators
    max_buffered_bytes: int = 32 * 1024 * 1024  # idem in bytes (at least one message each)

    def __post_init__(self) -> None:
        for name in ("propose_base_ms", "prevote_base_ms", "precommit_base_ms", "rebroadcast_ms",
                     "height_window", "max_buffered_messages", "max_buffered_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ConsensusConfig.{name} must be positive")
        for name in ("propose_delta_ms", "prevote_delta_ms", "precommit_delta_ms",
                     "timeout_commit_ms", "round_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"ConsensusConfig.{name} must not be negative")
        if not 0 < self.max_payload_bytes <= MAX_PAYLOAD_BYTES_LIMIT:
            raise ValueError(f"max_payload_bytes must be in (0, {MAX_PAYLOAD_BYTES_LIMIT}]")

    def timeout_ms(self, kind: str, round: int) -> int:
        if kind == TIMEOUT_PROPOSE:
            return self.propose_base_ms + self.propose_delta_ms * round
        if kind == TIMEOUT_PREVOTE:
            return self.prevote_base_ms + self.prevote_delta_ms * round
        if kind == TIMEOUT_PRECOMMIT:
            return self.precommit_base_ms + self.precommit_delta_ms * round
        if kind == TIMEOUT_COMMIT:
            return self.timeout_commit_ms
        if kind == REBROADCAST:
            return self.rebroadcast_ms
        raise ValueError(f"unknown timer kind {kind!r}")


__all__ = [
    "PROPOSAL_KIND",
    "STEP_NEW_HEIGHT",
    "STEP_PRECOMMIT",
    "STEP_PREVOTE",
    "STEP_PROPOSE",
    "Commit",
    "ConsensusConfig",
    "Evidence",
    "PersistedState",
    "ProofOfLock",
    "Proposal",
    "Ready",
    "SignedProposal",
    "Timer",
]
