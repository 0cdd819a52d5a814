"""Size limits of the whole chain, in one place.

Genesis (``ledger.genesis.Params``), the consensus wire (``consensus.messages``), the node's
peer frames (``node.peers``) and its HTTP bodies (``node.config``) all derive their ceilings
from these constants, so a genesis that validates is one every node can run: a block of
``MAX_BLOCK_BYTES`` fits in a consensus proposal, which fits in a peer frame.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

MAX_BLOCK_BYTES = 8 * MIB - 64 * KIB  # largest ``max_block_bytes`` a genesis may set
MIN_BLOCK_BYTES = 1 * KIB
MAX_TX_BYTES = 1 * MIB  # largest ``max_tx_bytes`` a genesis may set
MIN_TX_BYTES = 256
BLOCK_HEADER_RESERVE_BYTES = 4 * KIB  # room kept in a block for its header (see node.runtime)
BLOCK_ENVELOPE_BYTES = 1 * KIB  # consensus payload = block bytes + this envelope
MAX_CONSENSUS_PAYLOAD_BYTES = MAX_BLOCK_BYTES + BLOCK_ENVELOPE_BYTES
PROPOSAL_OVERHEAD_BYTES = 2 * KIB  # signed proposal around its payload
MAX_CONSENSUS_MESSAGE_BYTES = MAX_CONSENSUS_PAYLOAD_BYTES + PROPOSAL_OVERHEAD_BYTES
DEFAULT_HTTP_BODY_BYTES = 8 * MIB  # default ``limits.max_body_bytes`` of a node
PEER_FRAME_OVERHEAD_BYTES = 64 * KIB
# A peer frame (``node.peers.MAX_FRAME_BYTES``, pinned to this by tests/consensus/test_limits.py)
# carries one consensus message or one gossiped batch of transactions (at most one HTTP body's
# worth), plus framing.
MAX_PEER_FRAME_BYTES = 32 * MIB
MAX_HTTP_BODY_BYTES = MAX_PEER_FRAME_BYTES - PEER_FRAME_OVERHEAD_BYTES  # largest max_body_bytes
if MAX_CONSENSUS_MESSAGE_BYTES + PEER_FRAME_OVERHEAD_BYTES > MAX_PEER_FRAME_BYTES:
    raise ImportError("ledger/limits.py: a largest consensus message must fit in a peer frame")


def block_limits_error(max_block_bytes: int, max_tx_bytes: int) -> str | None:
    """Why a node could not run a chain with these genesis limits, or None if it can."""
    if not MIN_BLOCK_BYTES <= max_block_bytes <= MAX_BLOCK_BYTES:
        return f"max_block_bytes must be in [{MIN_BLOCK_BYTES}, {MAX_BLOCK_BYTES}]"
    if not MIN_TX_BYTES <= max_tx_bytes <= MAX_TX_BYTES:
        return f"max_tx_bytes must be in [{MIN_TX_BYTES}, {MAX_TX_BYTES}]"
    if max_tx_bytes + BLOCK_HEADER_RESERVE_BYTES > max_block_bytes:
        return (f"max_tx_bytes + {BLOCK_HEADER_RESERVE_BYTES} (header reserve) must fit in "
                "max_block_bytes: a largest transaction could never be included")
    return None
