"""Deliberately broken state machines used only by tests: each check must catch one of them."""

from __future__ import annotations

from collections.abc import Sequence

from tpledger.consensus.machine import Consensus, _RoundLog
from tpledger.consensus.messages import PersistedState
from tpledger.ledger.votes import SignedVote


class OldVoteSlots(Consensus):
    """The vote rule before issue 11: at most two values per (round, type, validator), any
    further value dropped unread, even inside a ProofOfLock. One Byzantine validator can then
    hide a proof-of-lock from the nodes that must verify it, and halt the chain."""

    def _slot_admits(self, log: _RoundLog, old: Sequence[SignedVote],
                     value_id: bytes | None) -> bool:
        return len(old) < 2


class ForgetsVotesOnDisk(Consensus):
    """Persists something before every send, but not the votes it signs: after a crash it may
    vote again differently. Only a check that the disk *covers* the vote catches it."""

    def _persisted_state(self) -> PersistedState:
        st = super()._persisted_state()
        return PersistedState(**{**st.__dict__, "votes": ()})


class LateRounds(Consensus):
    """Starts every height at round 30: safe, but slower than the stated round bound."""

    def _start_round(self, round: int) -> None:
        super()._start_round(max(round, 30))


class ForgetsProposalOnDisk(Consensus):
    """Persists before sending, but not the round it proposed in: after a crash it may sign a
    second proposal for that round."""

    def _persisted_state(self) -> PersistedState:
        st = super()._persisted_state()
        return PersistedState(**{**st.__dict__, "proposed_round": None})
