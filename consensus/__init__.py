"""Sans-IO BFT consensus (Tendermint, arXiv:1807.04938 Algorithm 1) for tpledger validators.

The node feeds bytes, timer expiries and payloads into :class:`Consensus` and carries out the
:class:`Ready` it gets back (see ``consensus/machine.py`` and ``docs/consensus.md``). This package
imports no asyncio, no clock, no randomness and no storage; ``consensus.sim`` (the deterministic
simulator, which does use ``random``) is not imported here.
"""

from __future__ import annotations

from tpledger.consensus.machine import Consensus, ConsensusInvariantError, Validate
from tpledger.consensus.messages import (
    Commit,
    ConsensusConfig,
    Evidence,
    PersistedState,
    Proposal,
    ProposalEvidence,
    Ready,
    SignedProposal,
    Timer,
)

__all__ = [
    "Commit",
    "Consensus",
    "ConsensusConfig",
    "ConsensusInvariantError",
    "Evidence",
    "PersistedState",
    "Proposal",
    "ProposalEvidence",
    "Ready",
    "SignedProposal",
    "Timer",
    "Validate",
]

# one name per module, never a second copy as a top-level package
if __name__ != "tpledger.consensus":
    raise ImportError(f"import tpledger.consensus, not {__name__} (see tpledger/__init__.py)")
