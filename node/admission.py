"""Admission of transactions to the mempool: from a client batch, a peer's gossip or the node
itself (evidence txs).

Per tx: strict decoding and size, no duplicate (mempool or ledger), a valid signature (verified
once per node: cached by tx id, bounded), the rules against the current state (the whole batch
in one read transaction), sealed openings matching the digests the optician signed, room in
the mempool. Refused txs are remembered (bounded) for ``GET /v1/txs/{id}``; admitted ones are
gossiped to the peers in envelopes of at most ``MAX_GOSSIP_ITEMS``.

Runs on the loop thread, like everything that touches the store (``node/runtime.py``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as CodeCounter
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tpledger.ledger.errors import DuplicateReference, EncodingError, RuleError, StoreCorruption
from tpledger.ledger.genesis import Params
from tpledger.ledger.patient import sealed_digest
from tpledger.ledger.store import Store
from tpledger.ledger.tx import Claim, SignedTx
from tpledger.node.errors import NodeError
from tpledger.node.mempool import Mempool, MempoolFull, PendingTx
from tpledger.node.metrics import Metrics
from tpledger.node.openings import OpeningStore, claim_location
from tpledger.node.peers import FRAME_TXS
from tpledger.node.submission import Item, SubmissionError, encode_submission, parse_submission

log = logging.getLogger("tpledger.node")

MAX_REJECTED_REMEMBERED = 100_000
MAX_VERIFIED_REMEMBERED = 500_000
MAX_GOSSIP_ITEMS = 5_000

Result = dict[str, Any]


class TxRejected(NodeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def check_sealed(stx: SignedTx, sealed: list[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    """``sealed`` if each opening matches a digest the claim carries for its payer; raises
    :class:`TxRejected` (or EncodingError for a body that does not decode)."""
    if not sealed:
        return ()
    body = stx.parse()
    if not isinstance(body, Claim):
        raise TxRejected("unexpected_sealed", "only claims carry sealed openings")
    refs = body.sealed  # at most MAX_SEALED: a scan beats building a dict per claim
    for org, blob in sealed:
        digest = sealed_digest(blob)
        for r in refs:
            if r.sealed_digest == digest and r.payer == org:
                break
        else:
            raise TxRejected("sealed_mismatch",
                             "a sealed opening does not match the claim's digest for its payer")
    return tuple(sealed)


class Admission:
    """The mempool's gate, with its caches of verified and rejected tx ids."""

    def __init__(self, chain_id: str, params: Params, store: Store, mempool: Mempool,
                 openings: OpeningStore, metrics: Metrics,
                 broadcast: Callable[[int, bytes], None], on_admitted: Callable[[], None],
                 on_damage: Callable[[StoreCorruption, str], None]) -> None:
        self.chain_id, self.params, self.store = chain_id, params, store
        self.mempool, self.openings, self.metrics = mempool, openings, metrics
        self._broadcast = broadcast  # to the peers (a no-op before the links are up)
        self._on_admitted = on_admitted  # txs were added to the mempool
        self._on_damage = on_damage  # a damaged stored row was read (named in /v1/status)
        self.rejected: OrderedDict[bytes, Result] = OrderedDict()
        self.verified: OrderedDict[bytes, None] = OrderedDict()

    # -- caches ---------------------------------------------------------------------------------
    def verify_signatures(self, txs: list[SignedTx], ids: list[bytes]) -> bool:
        """True iff every tx's signature verifies (each verified once per node)."""
        for stx, tx_id in zip(txs, ids, strict=True):
            if tx_id in self.verified:
                continue
            if not stx.verify(self.chain_id):
                return False
            self.remember_verified([tx_id])
        return True

    def remember_verified(self, tx_ids: list[bytes]) -> None:
        self.verified.update(dict.fromkeys(tx_ids))
        while len(self.verified) > MAX_VERIFIED_REMEMBERED:
            self.verified.popitem(last=False)

    def reject(self, tx_id: bytes, err: RuleError) -> None:
        """Remember a tx the block builder refused (its status answers with the reason)."""
        code = err.code
        self.rejected[tx_id] = _refused(tx_id, err)
        while len(self.rejected) > MAX_REJECTED_REMEMBERED:
            self.rejected.popitem(last=False)
        self.metrics.inc("rejected_txs_total", label=code)

    def tx_status(self, tx_id: bytes) -> Result:
        loc = self.store.tx_location(tx_id)
        if loc is not None:
            return {"tx_id": tx_id.hex(), "status": "committed", "height": loc.height,
                    "leaf_index": loc.leaf_index}
        if tx_id in self.mempool:
            return {"tx_id": tx_id.hex(), "status": "pending"}
        if tx_id in self.rejected:
            return dict(self.rejected[tx_id])
        return {"tx_id": tx_id.hex(), "status": "unknown"}

    def room(self) -> int:
        return self.mempool.room()

    # -- admission ------------------------------------------------------------------------------
    def admit_batch(self, items: list[Item], gossip: bool, report: bool = True) -> list[Result]:
        """Check submitted txs and add the good ones to the mempool; one result per item
        (none at all when not ``report``: txs gossiped by a peer answer nobody). Accepted txs
        are gossiped to the peers when ``gossip``."""
        results: list[Result | None] = [None] * len(items)
        staged = self._decode_and_verify(items, results)
        verdicts = self.store.check_txs([stx for _, stx, _ in staged], check_signatures=False)
        accepted: list[Item] = []
        now_ms_mono = int(time.monotonic() * 1000)
        for (i, stx, tx_id), err in zip(staged, verdicts, strict=True):
            raw, sealed = items[i]
            if err is not None:
                if err.code == "duplicate_tx" and sealed:
                    # The block may have reached us before the gossip carrying its openings:
                    # keep the openings (checked against the signed digests) we lack.
                    self._store_late_openings(stx, tx_id, sealed)
                results[i] = _refused(tx_id, err)
                continue
            try:
                sealed_t = check_sealed(stx, sealed)
                if tx_id not in self.mempool:
                    self.mempool.add(PendingTx(tx_id, raw, stx, sealed_t, now_ms_mono))
            except TxRejected as exc:
                results[i] = _rejected(tx_id, exc.code, exc.message)
                continue
            except MempoolFull:
                results[i] = _rejected(tx_id, "mempool_full", "mempool is full; retry later")
                continue
            self.rejected.pop(tx_id, None)
            results[i] = {"tx_id": tx_id.hex(), "status": "pending"} if report else None
            accepted.append(items[i])
        self._after_admission(accepted, gossip)
        if not report:
            return []
        out = [r for r in results if r is not None]
        assert len(out) == len(items), "every submitted item gets exactly one result"
        if len(accepted) < len(out):  # only then: nothing more per tx on the common path
            self._count_refusals(out)
        return out

    def _count_refusals(self, results: list[Result]) -> None:
        """``tpledger_rejected_txs_total{code}``: one increment per code and batch."""
        codes = CodeCounter(r["code"] for r in results if r["status"] == "rejected")
        for code, n in codes.items():
            self.metrics.inc("rejected_txs_total", n, label=code)

    def _decode_and_verify(self, items: list[Item], results: list[Result | None]
                           ) -> list[tuple[int, SignedTx, bytes]]:
        """The txs that decode, fit, are new and carry a valid signature, by item index; the
        results of the others are set."""
        staged: list[tuple[int, SignedTx, bytes]] = []
        max_tx_bytes = self.params.max_tx_bytes
        for i, (raw, _) in enumerate(items):
            try:
                stx = SignedTx.decode(raw)
            except EncodingError as exc:
                results[i] = _rejected(None, "malformed_tx", str(exc))
                continue
            tx_id = stx.tx_id()  # cached on stx: the rules do not hash it again
            if len(raw) > max_tx_bytes:
                results[i] = _rejected(tx_id, "tx_too_large", "transaction exceeds max_tx_bytes")
            elif tx_id in self.mempool:
                results[i] = {"tx_id": tx_id.hex(), "status": "pending"}
            elif tx_id not in self.verified and not stx.verify(self.chain_id):
                results[i] = _rejected(tx_id, "bad_signature",
                                       "transaction signature does not verify")
            else:
                staged.append((i, stx, tx_id))
        self.remember_verified([tx_id for _, _, tx_id in staged])
        return staged

    def _after_admission(self, accepted: list[Item], gossip: bool) -> None:
        if accepted:
            self.metrics.inc("admitted_txs_total", len(accepted))
            self._on_admitted()
            if gossip:
                for j in range(0, len(accepted), MAX_GOSSIP_ITEMS):
                    self._broadcast(FRAME_TXS,
                                    encode_submission(accepted[j:j + MAX_GOSSIP_ITEMS]))
        self.metrics.set("mempool_txs", len(self.mempool))

    def _store_late_openings(
        self, stx: SignedTx, tx_id: bytes, sealed: list[tuple[str, bytes]]
    ) -> None:
        try:
            checked = check_sealed(stx, sealed)
        except (TxRejected, EncodingError):
            return
        loc = claim_location(self.store, tx_id)
        if loc is None:
            return
        held = set(self.openings.orgs(loc))
        self.openings.put_many([(*loc, org, blob) for org, blob in checked if org not in held])

    def on_gossip(self, payload: bytes) -> None:
        """A peer's FRAME_TXS: admit what is good, answer nobody, never gossip it again."""
        try:
            items = parse_submission(payload, MAX_GOSSIP_ITEMS)
        except SubmissionError:
            self.metrics.inc("gossip_rejected_total")
            return
        try:
            self.admit_batch(items, gossip=False, report=False)
        except StoreCorruption as exc:  # admission read a damaged row: nothing admitted
            self._on_damage(exc, "gossip")


def _rejected(tx_id: bytes | None, code: str, message: str) -> Result:
    return {"tx_id": tx_id.hex() if tx_id else None, "status": "rejected", "code": code,
            "message": message}


def _refused(tx_id: bytes, err: RuleError) -> Result:
    """A rule's refusal; a ``duplicate_reference`` (a shop's retry) also names the first claim
    with that reference in ``existing_claim_id``."""
    row = _rejected(tx_id, err.code, err.message)
    if isinstance(err, DuplicateReference):
        row["existing_claim_id"] = err.existing_claim_id.hex()
    return row
