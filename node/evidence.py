"""Vote evidence at the node: from the consensus machine to the ledger, and out at the API.

When the consensus machine sees one validator sign two different votes for one (height, round,
type) it hands out an :class:`consensus.messages.Evidence` (``Ready.evidence``). The node turns
it into a :class:`ledger.tx.VoteEvidence` transaction signed with its own validator key and
admits it to its mempool (gossiped to the peers like any tx), once per (offender, slot); the
rules verify it when a block carries it (``ledger/rules.py``), and once committed the record is
ledger state on every node: it survives restarts and is listed at ``GET /v1/evidence``.

Two different *proposals* (:class:`consensus.messages.ProposalEvidence`) are not put on the
ledger: a proposal's signature covers its whole payload (up to ``max_block_bytes``), which
does not fit in a transaction (``max_tx_bytes``). They stay logged and counted.

Evidence holds no patient data (validator indices, heights, rounds, block hashes), so the
endpoints are public, like headers and checkpoints; pages are bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from tpledger.consensus.messages import AnyEvidence, Evidence
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import Signer
from tpledger.ledger.proofs import ProofBundle
from tpledger.ledger.tx import VOTE_TYPE_NAMES, EvidenceRecord, SignedTx, VoteEvidence, sign_tx
from tpledger.node.errors import ApiError
from tpledger.node.httputil import hex32, int_arg
from tpledger.node.metrics import Metrics
from tpledger.node.schemas import EvidenceView
from tpledger.node.submission import Item

log = logging.getLogger("tpledger.evidence")

MAX_SUBMITTED_REMEMBERED = 10_000  # slots this node already turned into a tx
MAX_EVIDENCE_PAGE = 1000
DEFAULT_EVIDENCE_PAGE = 100
SLOT_KEY_BYTES = 15


class EvidenceSubmitter:
    """Turns the consensus machine's vote evidence into evidence txs signed with this node's
    validator key, once per slot (the set of slots already sent is bounded)."""

    def __init__(self, chain_id: str, signer: Signer,
                 admit: Callable[[list[Item], bool], list[dict[str, Any]]],
                 stopping: Callable[[], bool], metrics: Metrics) -> None:
        self.chain_id = chain_id
        self.signer = signer
        self._admit = admit  # admission with gossip (``Admission.admit_batch``)
        self._stopping = stopping
        self.metrics = metrics
        self._sent: OrderedDict[bytes, None] = OrderedDict()

    def on_evidence(self, ev: AnyEvidence) -> None:
        """Called from ``Node._handle``: the tx is admitted right after the current ``Ready``
        batch is carried out (admission may propose a block, which must not interleave)."""
        if not isinstance(ev, Evidence):
            return  # proposal evidence: too large for a tx (see the module docstring)
        body = VoteEvidence(ev.first, ev.second)
        slot = body.slot_key()
        if slot in self._sent:
            return
        self._sent[slot] = None
        while len(self._sent) > MAX_SUBMITTED_REMEMBERED:
            self._sent.popitem(last=False)
        asyncio.get_running_loop().call_soon(self.submit, body)

    def submit(self, body: VoteEvidence) -> dict[str, Any] | None:
        """Sign ``body`` with this validator's key and admit it (gossiped); the result."""
        if self._stopping():
            return None
        stx = sign_tx(self.chain_id, self.signer, body)
        result = self._admit([(stx.encode(), [])], True)[0]
        v = body.first.vote
        if result["status"] == "pending":
            self.metrics.inc("evidence_submitted_total")
            log.warning("evidence tx %s submitted: validator %d at height %d round %d",
                        result["tx_id"][:16], v.validator, v.height, v.round)
        else:  # e.g. duplicate_evidence: another validator's tx recorded it first
            log.info("evidence tx not admitted (%s): validator %d at height %d round %d",
                     result.get("code"), v.validator, v.height, v.round)
        return result


def evidence_json(genesis: Genesis, rec: EvidenceRecord) -> EvidenceView:
    """A JSON view of one recorded equivocation."""
    validators = genesis.validators
    known = rec.validator < len(validators)  # the rules checked it; a corrupt row says "?"
    return {
        "validator": rec.validator,
        "name": validators[rec.validator].name if known else "?",
        "org": validators[rec.validator].org if known else "?",
        "height": rec.height,
        "round": rec.round,
        "type": VOTE_TYPE_NAMES.get(rec.vote_type, "?"),
        "first_value": None if rec.first_value is None else rec.first_value.hex(),
        "second_value": None if rec.second_value is None else rec.second_value.hex(),
        "recorded_height": rec.recorded_height,
        "tx_id": rec.tx_id.hex(),
    }


class EvidenceReader(Protocol):
    """What the evidence endpoints read of the ledger (``ledger.store.Store``)."""

    def evidence_page(self, after: bytes | None = None, limit: int = 100
                      ) -> list[tuple[bytes, EvidenceRecord]]: ...
    def tx(self, tx_id: bytes) -> SignedTx | None: ...
    def proof(self, tx_id: bytes, tree_size: int | None = None) -> ProofBundle: ...


class EvidenceApi:
    """``GET /v1/evidence`` and ``GET /v1/evidence/{tx_id}/proof`` (public)."""

    def __init__(self, ledger: EvidenceReader, genesis: Genesis) -> None:
        self.ledger = ledger
        self.genesis = genesis

    async def list(self, request: web.Request) -> web.Response:
        """Recorded equivocations by (height, round, type, validator), paged: ``next`` is the
        cursor to pass as ``after``, null at the end."""
        limit = int_arg(request, "limit", DEFAULT_EVIDENCE_PAGE)
        if not 1 <= limit <= MAX_EVIDENCE_PAGE:
            raise ApiError(400, "bad_parameter", f"limit is 1 to {MAX_EVIDENCE_PAGE}")
        after_raw = request.query.get("after")
        after = None
        if after_raw is not None:
            try:
                after = bytes.fromhex(after_raw)
            except ValueError:
                after = b""
            if len(after) != SLOT_KEY_BYTES:
                raise ApiError(400, "bad_parameter",
                               f"after must be {2 * SLOT_KEY_BYTES} hex characters")
        page = self.ledger.evidence_page(after, limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return web.json_response({
            "evidence": [evidence_json(self.genesis, rec) for _, rec in page],
            "next": page[-1][0].hex() if more else None,
        })

    async def proof(self, request: web.Request) -> web.Response:
        """The proof bundle of an evidence tx (only of evidence: claims keep their read
        policy, and any other tx id answers the same 404)."""
        tx_id = hex32(request.match_info["tx_id"], "tx id")
        store = self.ledger
        stx = store.tx(tx_id)
        if stx is None or not isinstance(stx.parse(), VoteEvidence):
            raise ApiError(404, "unknown_evidence", "no committed evidence tx with this id")
        size = request.query.get("tree_size")
        tree_size = int_arg(request, "tree_size") if size is not None else None
        try:
            bundle = store.proof(tx_id, tree_size)
        except LedgerError as exc:
            raise ApiError(400, "no_proof", str(exc)) from None
        return web.Response(body=bundle.to_bytes(), content_type="application/octet-stream")


def add_evidence_routes(router: web.UrlDispatcher, ledger: EvidenceReader,
                        genesis: Genesis) -> None:
    api = EvidenceApi(ledger, genesis)
    router.add_get("/v1/evidence", api.list)
    router.add_get("/v1/evidence/{tx_id}/proof", api.proof)


__all__ = ["EvidenceApi", "EvidenceReader", "EvidenceSubmitter", "add_evidence_routes",
           "evidence_json"]
