"""Block validity, written once: every reader of blocks (the store, the audit, the offline
verifier, ``tpledger stats``, the node) asks this module, and every failure is one typed error,
:class:`BlockInvalid` (a :class:`StoreError`, with the ``step`` that failed).

The steps, in the order a block is checked (sigstore-python's ``verifier.py`` style: each step
a small function, reused by everyone):

1. ``check_chain``        the header is for this chain
2. ``check_height``       the header is at the expected height
3. ``check_link``         1 and 2 against a :class:`Head`, then the previous hash, a time after
                          the head's, not too far in the future (``max_clock_drift_ms``, when
                          the caller gives its clock) and a proposer of the genesis
4. ``check_shape``        size limits (txs, block bytes, tx bytes) and ``txs_root``; decodes
                          the txs and returns their Merkle leaf hashes
5. ``check_certificate``  the certificate covers this header: same height and block hash, a
                          quorum of valid precommit signatures of the genesis validators
6. ``execute``            ``check_registry`` (the header commits to the registry in force:
                          the state view's snapshot), the rules replayed on a state view, the
                          leaves appended to the tree, and the header's ``tree_size``,
                          ``tree_root`` and ``state_digest`` equal to the replay's; returns
                          the registry after the block (``Registry.updated``)

Pure: no LMDB, no clock, no network (the caller passes ``now_ms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tpledger.ledger.blocks import Block, Header, encoded_size, genesis_state_digest
from tpledger.ledger.errors import EncodingError, LedgerError, RuleError, StoreError
from tpledger.ledger.genesis import Genesis, Params
from tpledger.ledger.merkle import leaf_hash, root_from_leaf_hashes
from tpledger.ledger.merkle_tree import NodeStore, PersistentTree
from tpledger.ledger.registry import Registry, RegistryTree, memory_tree
from tpledger.ledger.rules import OverlayState, RulesContext, StateView, apply_block_txs
from tpledger.ledger.tx import GOV_BODY_TYPES, SignedTx
from tpledger.ledger.votes import CommitCertificate


class BlockInvalid(StoreError):
    """A block (or header, or certificate) that is not valid; ``step`` names the failed check
    (``chain``, ``height``, ``prev_hash``, ``time``, ``clock``, ``proposer``, ``size``,
    ``txs_root``, ``certificate``, ``registry``, ``tree_size``, ``tree_root``,
    ``state_digest``)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class Head:
    """What a new block builds on: the last header (or the genesis at height 0)."""

    height: int
    hash: bytes
    time_ms: int
    tree_size: int
    state_digest: bytes

    @classmethod
    def of_genesis(cls, genesis: Genesis) -> Head:
        return cls(0, genesis.hash(), genesis.genesis_time_ms, 0, genesis_state_digest(genesis))

    @classmethod
    def of_header(cls, header: Header) -> Head:
        return cls(header.height, header.hash(), header.time_ms, header.tree_size,
                   header.state_digest)


# -- 1-3: the header against the chain and the head -----------------------------------------
def check_chain(header: Header, chain_id: str) -> None:
    if header.chain_id != chain_id:
        raise BlockInvalid("chain", f"block {header.height} is for another chain id")


def check_height(header: Header, height: int) -> None:
    if header.height != height:
        raise BlockInvalid("height", f"block height {header.height}, expected {height}")


def check_proposer(header: Header, n_validators: int) -> None:
    if header.proposer >= n_validators:
        raise BlockInvalid("proposer", f"block {header.height}: unknown proposer "
                                       f"{header.proposer}")


def check_link(header: Header, head: Head, genesis: Genesis, now_ms: int | None = None) -> None:
    """The header is a valid successor of ``head``; with ``now_ms``, also not more than the
    genesis ``max_clock_drift_ms`` ahead of the caller's clock."""
    check_chain(header, genesis.chain_id)
    check_height(header, head.height + 1)
    if header.prev_hash != head.hash:
        raise BlockInvalid("prev_hash", f"block {header.height}: prev_hash is not the hash of "
                                        f"block {head.height}")
    if header.time_ms <= head.time_ms:
        raise BlockInvalid("time", f"block {header.height}: time_ms not after the previous "
                                   "block's")
    if now_ms is not None and header.time_ms > now_ms + genesis.params.max_clock_drift_ms:
        raise BlockInvalid("clock", f"block {header.height}: time_ms is too far in the future")
    check_proposer(header, len(genesis.validator_keys))


# -- 4: what needs no state --------------------------------------------------------------------
def check_txs_root(header: Header, leaves: Sequence[bytes]) -> None:
    """``leaves``: the RFC 9162 leaf hashes of the block's transactions."""
    if root_from_leaf_hashes(list(leaves)) != header.txs_root:
        raise BlockInvalid("txs_root", f"block {header.height}: txs_root does not match the "
                                       "transactions")


def check_shape(block: Block, params: Params,
                decoded: Sequence[SignedTx | None] | None = None
                ) -> tuple[list[SignedTx], list[bytes]]:
    """Size limits and ``txs_root``; returns the decoded txs and their Merkle leaf hashes.
    ``decoded`` may give already-decoded txs (each used only if it encodes to the very bytes
    of the block). An undecodable tx raises ``RuleError("bad_encoding")``."""
    h = block.header
    if decoded is not None and len(decoded) != len(block.txs):
        raise BlockInvalid("size", "decoded transactions do not match the block")
    if len(block.txs) > params.max_block_txs:
        raise BlockInvalid("size", f"block {h.height}: {len(block.txs)} txs exceeds "
                                   "max_block_txs")
    if encoded_size(block) > params.max_block_bytes:
        raise BlockInvalid("size", f"block {h.height}: exceeds max_block_bytes")
    leaves = [leaf_hash(raw) for raw in block.txs]  # shared with execute
    check_txs_root(h, leaves)
    stxs: list[SignedTx] = []
    for i, raw in enumerate(block.txs):
        if len(raw) > params.max_tx_bytes:
            raise BlockInvalid("size", f"block {h.height}: tx {i} exceeds max_tx_bytes")
        known = None if decoded is None else decoded[i]
        if known is not None and known.encode() == raw:
            stxs.append(known)  # the caller decoded these very bytes already
            continue
        try:
            stxs.append(SignedTx.decode(raw))
        except EncodingError as exc:
            raise RuleError("bad_encoding", f"tx {i}: {exc}") from None
    return stxs, leaves


# -- 5: the certificate over the header --------------------------------------------------------
def check_certificate(header: Header, cert: CommitCertificate, chain_id: str,
                      validator_keys: Sequence[bytes]) -> None:
    """``cert`` covers ``header``: its height, its block hash, a quorum of valid signatures."""
    if cert.height != header.height:
        raise BlockInvalid("certificate", f"block {header.height}: certificate is for another "
                                          f"block (at height {cert.height})")
    if cert.block_hash != header.hash():
        raise BlockInvalid("certificate", f"block {header.height}: certificate is for another "
                                          "block")
    try:
        cert.check(chain_id, validator_keys)
    except LedgerError as exc:
        raise BlockInvalid("certificate", f"block {header.height}: bad certificate: {exc}"
                           ) from None


# -- 6: execution on a state view --------------------------------------------------------------
def check_registry(header: Header, registry: Registry) -> None:
    """The header commits to the registry in force during its block (the one after the
    previous block): its root and size, which every signer proof of the block is checked
    against."""
    if header.registry_root != registry.root or header.registry_size != registry.size:
        raise BlockInvalid("registry", f"block {header.height}: registry_root/size is not the "
                                       "registry in force")


@dataclass(frozen=True, eq=False)
class Executed:
    """What ``execute`` returns: the state digest, the registry after the block (the same
    object when the block changed none of it) and the block's governance writes."""

    state_digest: bytes
    registry_after: Registry
    gov_writes: tuple[tuple[bytes, bytes], ...]


def execute(header: Header, head: Head, ctx: RulesContext, view: StateView, nodes: NodeStore,
            stxs: Sequence[SignedTx], leaves: list[bytes], check_signatures: bool = True,
            regnodes: NodeStore | None = None) -> Executed:
    """Replay the rules on ``view`` and append ``leaves`` to the tree over ``nodes``; raise
    unless the header's registry, tree size, tree root and state digest are the replay's.
    ``view``/``nodes`` receive the writes (give overlays for a dry run); ``regnodes`` holds
    the registry tree of ``view.registry()`` and receives its changes (only in blocks that
    change the registry; None: a tree in memory, rebuilt then)."""
    registry = view.registry()
    check_registry(header, registry)
    digest, gov_writes = _apply_txs(header, head, ctx, view, stxs, check_signatures)
    tree = PersistentTree(nodes)
    if tree.size != head.tree_size:
        raise StoreError("corrupt store: Merkle tree size differs from the head header")
    size = tree.append_leaf_hashes(leaves)
    if size != header.tree_size:
        raise BlockInvalid("tree_size", f"block {header.height}: tree_size {header.tree_size}, "
                                        f"replay gives {size}")
    if tree.root() != header.tree_root:
        raise BlockInvalid("tree_root", f"block {header.height}: tree_root does not match the "
                                        "replayed log")
    if digest != header.state_digest:
        raise BlockInvalid("state_digest", f"block {header.height}: state_digest does not match "
                                           "the replayed state")
    return Executed(digest, registry_after(registry, gov_writes, regnodes),
                    gov_writes)


def _apply_txs(header: Header, head: Head, ctx: RulesContext, view: StateView,
               stxs: Sequence[SignedTx], check_signatures: bool
               ) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """``apply_block_txs`` and the block's governance writes. A dry run's fresh overlay
    (no governance rows yet) shows them itself, and a block without governance txs has
    none: both at no cost; any other view gets an overlay of its own for the block."""
    if isinstance(view, OverlayState) and not view.gov_writes():
        digest = apply_block_txs(view, ctx, stxs, header.height, header.time_ms,
                                 head.state_digest, check_signatures)
        return digest, view.gov_writes()
    if not _has_gov_txs(stxs):
        return apply_block_txs(view, ctx, stxs, header.height, header.time_ms,
                               head.state_digest, check_signatures), ()
    block_view = OverlayState(view)
    digest = apply_block_txs(block_view, ctx, stxs, header.height, header.time_ms,
                             head.state_digest, check_signatures)
    gov_writes = block_view.gov_writes()
    block_view.commit_to(view)
    return digest, gov_writes


def _has_gov_txs(stxs: Sequence[SignedTx]) -> bool:
    """Whether a tx of the block may write governance rows (an undecodable one: maybe; the
    rules refuse it). The bodies are decoded once per tx object: the rules reuse them."""
    for stx in stxs:
        try:
            if isinstance(stx.parse(), GOV_BODY_TYPES):
                return True
        except EncodingError:
            return True
    return False


def registry_after(registry: Registry, gov_writes: Sequence[tuple[bytes, bytes]],
                   regnodes: NodeStore | None) -> Registry:
    """The registry after a block with these governance writes (``registry`` itself, at no
    cost, when there are none)."""
    if not gov_writes:
        return registry
    if regnodes is None:  # no stored tree: rebuild this registry's in memory
        tree = memory_tree()
        tree.set_many((rec.slot, rec.encode()) for rec in registry.leaves())
    else:
        tree = RegistryTree(regnodes)
    return registry.updated(gov_writes, tree)


__all__ = ["BlockInvalid", "Executed", "Head", "check_certificate", "check_chain",
           "check_height", "check_link", "check_proposer", "check_registry", "check_shape",
           "check_txs_root", "execute", "registry_after"]
