"""The client HTTP API (see docs/api.md and ``GET /openapi.json``).

Every error is JSON ``{"error": {"code", "message"}}`` with a stable code. Reads of claim data
need a request signed by a participant entitled to it (``node/auth.py``); checkpoints,
consistency proofs, headers and status are public.

The API is built from narrow collaborators (:class:`ApiServices`), not from the node: a reader
of the ledger, the admission of submitted txs, the openings service, the node's status and the
peers' WebSocket endpoint. It imports nothing of ``node.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from tpledger.ledger.blocks import Block, Header
from tpledger.ledger.encoding import pack
from tpledger.ledger.errors import EncodingError, LedgerError, StoreCorruption, StoreError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.proofs import Checkpoint
from tpledger.ledger.registry import OrgRecord, ParticipantRecord
from tpledger.ledger.store import TxLocation
from tpledger.ledger.tx import ClaimState, PayerState
from tpledger.ledger.votes import CommitCertificate
from tpledger.node.auth import RequestVerifier
from tpledger.node.clock import now_ms
from tpledger.node.config import Limits
from tpledger.node.erasure import MAX_SKEW_MS, ForgetRefused, ForgetRequest
from tpledger.node.errors import ApiError
from tpledger.node.evidence import EvidenceReader, add_evidence_routes
from tpledger.node.gov_api import GovReader, add_gov_routes
from tpledger.node.httputil import (
    damage_middleware,
    errors_middleware,
    height_arg,
    hex32,
    int_arg,
    read_timeout_middleware,
)
from tpledger.node.mempool import MempoolFull
from tpledger.node.openapi import OPENAPI
from tpledger.node.participants_api import ParticipantReader, add_participant_routes
from tpledger.node.policy import is_payer, may_read_blocks, may_read_claim, reader_of, refusal_of
from tpledger.node.schemas import (
    ClaimsPage,
    ClaimView,
    ConsistencyAnswer,
    ForgetAnswer,
    HeaderAnswer,
    Health,
    Readiness,
    Share,
    StatusAnswer,
)
from tpledger.node.submission import Item, SubmissionError, parse_json_submission, parse_submission

MSGPACK = "application/msgpack"
MAX_WAIT_MS = 30_000  # longest ``wait_ms`` of a tx status request
MAX_WAITERS = 1_000  # past this many waiting requests, status requests answer at once
CLAIMS_SCAN_WINDOW = 2000
RELAYED_HEADER = "X-Tpledger-Relayed"  # set on a request a node forwards to its peers


# -- the collaborators ---------------------------------------------------------------------------
class LedgerReader(EvidenceReader, GovReader, ParticipantReader, Protocol):
    """Committed data (``ledger.store.Store``)."""

    @property
    def height(self) -> int: ...
    def claim(self, claim_id: bytes) -> ClaimState | None: ...
    def claims_page(self, after: bytes | None = None, limit: int = 100
                    ) -> list[tuple[bytes, ClaimState]]: ...
    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...
    def block(self, height: int) -> Block: ...
    def certificate(self, height: int) -> CommitCertificate: ...
    def header(self, height: int) -> Header: ...
    def checkpoint(self, height: int | None = None) -> Checkpoint: ...
    def consistency_path(self, old_size: int, new_size: int | None = None) -> list[bytes]: ...


class Submitter(Protocol):
    """Admission of submitted txs (``node.admission.Admission``)."""

    def admit_batch(self, items: list[Item], gossip: bool, report: bool = True
                    ) -> list[dict[str, Any]]: ...
    def tx_status(self, tx_id: bytes) -> dict[str, Any]: ...
    def room(self) -> int: ...


class Openings(Protocol):
    """Sealed openings (``node.openings_service.OpeningsService``)."""

    def get(self, claim_id: bytes, org: str) -> bytes | None: ...
    def held(self, claim_id: bytes) -> list[str]: ...
    async def fetch(self, claim_id: bytes, org: str, path_qs: str,
                    authorization: str) -> bytes | None: ...
    def forget(self, raw_request: bytes, origin: str) -> tuple[int, bool]: ...


class NodeStatus(Protocol):
    """What the node says about itself (``node.runtime.Node``)."""

    commit_event: asyncio.Event  # set, and replaced by a fresh one, at each commit

    def status(self) -> StatusAnswer: ...
    def metrics_text(self) -> str: ...
    def readiness(self) -> list[str]: ...
    def peers_up(self) -> list[str]: ...
    def report_damage(self, exc: StoreCorruption, found_by: str) -> None: ...


@dataclass(frozen=True)
class ApiServices:
    genesis: Genesis
    limits: Limits
    ledger: LedgerReader
    submitter: Submitter
    openings: Openings
    node: NodeStatus
    peer_endpoint: Callable[[web.Request], Awaitable[web.StreamResponse]]


class Api:
    def __init__(self, services: ApiServices) -> None:
        self.genesis = services.genesis
        self.limits = services.limits
        self.ledger = services.ledger
        self.submitter = services.submitter
        self.openings = services.openings
        self.node = services.node
        self.peer_endpoint = services.peer_endpoint
        self.verifier = RequestVerifier(services.genesis.chain_id)
        self._waiters = 0  # tx status requests waiting for a commit (bounded: MAX_WAITERS)

    # -- auth helpers -------------------------------------------------------------------------
    async def _signer(self, request: web.Request) -> bytes:
        body = await request.read()  # cached: the read-timeout middleware read it first
        return self.verifier.verify(request.headers.get("Authorization"), request.method,
                                    request.path_qs, body, now_ms())

    async def _participant(self, request: web.Request) -> ParticipantRecord:
        """The signer: an active participant of the registry in force, else 403 (a revoked
        or suspended key: ``revoked_signer`` / ``suspended_signer``)."""
        key = await self._signer(request)
        registry = self.ledger.registry()
        p = registry.signer(key)
        if p is None:
            raise ApiError(403, *refusal_of(registry, key))
        return p

    async def _reader(self, request: web.Request) -> ParticipantRecord | OrgRecord:
        """The signer: an active participant or an active governing organisation's admin."""
        key = await self._signer(request)
        registry = self.ledger.registry()
        who = reader_of(registry, key)
        if who is None:
            raise ApiError(403, *refusal_of(registry, key))
        return who

    def _claim_for(self, p: ParticipantRecord, claim_id: bytes) -> Any:
        state = self.ledger.claim(claim_id)
        if state is None:
            raise ApiError(404, "unknown_claim", "no committed claim with this id")
        if not may_read_claim(p, state.optician, state.insurer):
            raise ApiError(403, "forbidden", "this participant may not read this claim")
        return state

    async def _payer_of_claim(self, request: web.Request) -> tuple[ParticipantRecord, bytes]:
        """The signer, who must be a payer of the committed claim in the path (its insurer,
        or the CNAM); and the claim id. Openings are served to, and forgotten by, them only."""
        p = await self._participant(request)
        claim_id = hex32(request.match_info["claim_id"], "claim id")
        state = self.ledger.claim(claim_id)
        if state is None:
            raise ApiError(404, "unknown_claim", "no committed claim with this id")
        if not is_payer(p, state.insurer):
            raise ApiError(403, "forbidden", "only the claim's payers may see or forget openings")
        return p, claim_id

    # -- handlers -----------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        body = await request.read()
        items = _parse_body(body, request.content_type, self.limits.max_batch_txs)
        if not items:
            raise ApiError(400, "empty_batch", "no transactions in the request")
        if self.submitter.room() <= 0:
            raise ApiError(503, "mempool_full", "mempool is full; retry later", retry_after_s=1)
        try:
            results = self.submitter.admit_batch(items, gossip=True)
        except MempoolFull:
            raise ApiError(503, "mempool_full", "mempool is full; retry later",
                           retry_after_s=1) from None
        if all(r.get("code") == "mempool_full" for r in results):
            raise ApiError(503, "mempool_full", "mempool is full; retry later", retry_after_s=1)
        return web.json_response({"results": results})

    async def tx_status(self, request: web.Request) -> web.Response:
        """Status of a tx; with ``wait_ms``, a pending tx is answered as soon as a commit
        settles it (or after ``wait_ms``), instead of the client polling."""
        await self._reader(request)  # a participant's or an admin's own txs
        tx_id = hex32(request.match_info["tx_id"], "tx id")
        wait_ms = int_arg(request, "wait_ms", 0)
        if wait_ms > MAX_WAIT_MS:
            raise ApiError(400, "bad_parameter", f"wait_ms is at most {MAX_WAIT_MS}")
        status = self.submitter.tx_status(tx_id)
        if wait_ms and status["status"] == "pending" and self._waiters < MAX_WAITERS:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_ms / 1000.0
            self._waiters += 1
            try:
                while status["status"] == "pending" and loop.time() < deadline:
                    event = self.node.commit_event  # replaced by a fresh one at each commit
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), deadline - loop.time())
                    status = self.submitter.tx_status(tx_id)
            finally:
                self._waiters -= 1
        return web.json_response(status)

    async def claim(self, request: web.Request) -> web.Response:
        p = await self._participant(request)
        claim_id = hex32(request.match_info["claim_id"], "claim id")
        state = self._claim_for(p, claim_id)
        return web.json_response(claim_json(claim_id, state, self.ledger, self.openings))

    async def claims(self, request: web.Request) -> web.Response:
        """Claims the signer may read, in log order (oldest first), paged.

        One call scans at most ``CLAIMS_SCAN_WINDOW`` claims (bounded work); ``next`` is the
        cursor to pass as ``after`` to continue, null when the end was reached. A page may be
        short, even empty, with a non-null ``next``: keep paging until ``next`` is null.
        ``awaiting=amo|amc`` keeps claims whose share is submitted and undecided.
        """
        p = await self._participant(request)
        limit = min(int_arg(request, "limit", 100), 1000)
        after_raw = request.query.get("after")
        after = hex32(after_raw, "after") if after_raw else None
        awaiting = request.query.get("awaiting")
        if awaiting not in (None, "amo", "amc"):
            raise ApiError(400, "bad_parameter", "awaiting must be amo or amc")
        out: list[ClaimView] = []
        try:
            scanned = self.ledger.claims_page(after, CLAIMS_SCAN_WINDOW)
        except StoreError as exc:
            raise ApiError(400, "bad_parameter", f"after: {exc}") from None
        # Without a break, a short scan reached the end; a full one may have more after it.
        next_cursor = scanned[-1][0] if len(scanned) == CLAIMS_SCAN_WINDOW else None
        for claim_id, state in scanned:
            if not may_read_claim(p, state.optician, state.insurer):
                continue
            if awaiting is not None:
                share = state.amo if awaiting == "amo" else state.amc
                if share.status_name() != "submitted" or state.cancelled:
                    continue
            out.append(claim_json(claim_id, state, self.ledger, self.openings))
            if len(out) >= limit:
                next_cursor = claim_id  # the page is full: continue right after this claim
                break
        page: ClaimsPage = {"claims": out,
                            "next": None if next_cursor is None else next_cursor.hex()}
        return web.json_response(page)

    async def proof(self, request: web.Request) -> web.Response:
        p = await self._participant(request)
        claim_id = hex32(request.match_info["claim_id"], "claim id")
        self._claim_for(p, claim_id)
        size = request.query.get("tree_size")
        tree_size = int_arg(request, "tree_size") if size is not None else None
        try:
            bundle = self.ledger.proof(claim_id, tree_size)
        except LedgerError as exc:
            raise ApiError(400, "no_proof", str(exc)) from None
        return web.Response(body=bundle.to_bytes(), content_type="application/octet-stream")

    async def opening(self, request: web.Request) -> web.Response:
        p, claim_id = await self._payer_of_claim(request)
        sealed = self.openings.get(claim_id, p.org)
        if sealed is None and RELAYED_HEADER not in request.headers:
            # This node may have been down when the claim's openings were gossiped: ask the
            # peers with the payer's own signed request (the box is sealed to the payer; we
            # keep a copy only if it matches the digest the optician signed).
            sealed = await self.openings.fetch(
                claim_id, p.org, request.path_qs, request.headers.get("Authorization", ""))
        if sealed is None:
            raise ApiError(404, "no_opening", "no sealed opening held for this payer")
        return web.Response(body=sealed, content_type="application/octet-stream")

    async def forget(self, request: web.Request) -> web.Response:
        """Erase the claim's sealed openings on every node, on the payer's signed request
        (``node/erasure.py``): the body is the :class:`ForgetRequest`, signed by the same key
        as the request."""
        p, claim_id = await self._payer_of_claim(request)
        raw = await request.read()
        try:
            req = ForgetRequest.decode(raw)
        except EncodingError:
            raise ApiError(400, "malformed_body",
                           "the body must be a signed forget request (application/msgpack)"
                           ) from None
        if req.claim_id != claim_id or req.signer != p.ed25519:
            raise ApiError(400, "bad_request",
                           "the forget request must name this claim and be signed by the caller")
        if abs(req.time_ms - now_ms()) > MAX_SKEW_MS:
            raise ApiError(400, "stale_request", "the forget request's time is too far from now")
        try:
            n, _ = self.openings.forget(raw, origin=f"asked by {p.org}")
        except ForgetRefused as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        relayed = self.node.peers_up()
        # Peers with a link down get the relay when it comes back (their queue keeps it), or
        # from another peer (each node relays a claim's erasure once); check ``openings_held``.
        answer: ForgetAnswer = {"claim_id": claim_id.hex(), "deleted": n, "relayed_to": relayed}
        return web.json_response(answer)

    async def block(self, request: web.Request) -> web.Response:
        key = await self._signer(request)
        if not may_read_blocks(self.genesis.validator_keys, self.ledger.registry(), key):
            raise ApiError(403, "forbidden", "whole blocks are served to validators, auditors "
                           "and the CNAM only (read your own claims and proofs instead)")
        h = height_arg(request, self.ledger.height)
        block = self.ledger.block(h)
        cert = self.ledger.certificate(h)
        return web.Response(body=pack([block.encode(), cert.encode()]), content_type=MSGPACK)

    async def header(self, request: web.Request) -> web.Response:
        h = height_arg(request, self.ledger.height)
        hdr = self.ledger.header(h)
        cert = self.ledger.certificate(h)
        answer: HeaderAnswer = {"height": h, "hash": hdr.hash().hex(),
                                "header": hdr.encode().hex(),
                                "certificate": cert.encode().hex()}
        return web.json_response(answer)

    async def checkpoint(self, request: web.Request) -> web.Response:
        store = self.ledger
        if store.height == 0:
            raise ApiError(404, "no_checkpoint", "no block committed yet")
        h = int_arg(request, "height", store.height)
        if not 1 <= h <= store.height:
            raise ApiError(404, "unknown_height", "no committed block at this height")
        return web.Response(body=store.checkpoint(h).to_bytes(),
                            content_type="application/octet-stream")

    async def consistency(self, request: web.Request) -> web.Response:
        old = int_arg(request, "old")
        new = int_arg(request, "new")
        try:
            path = self.ledger.consistency_path(old, new)
        except LedgerError as exc:
            raise ApiError(400, "bad_sizes", str(exc)) from None
        answer: ConsistencyAnswer = {"old_size": old, "new_size": new,
                                     "path": [h.hex() for h in path]}
        return web.json_response(answer)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.status())

    async def healthz(self, request: web.Request) -> web.Response:
        """Alive: the process answers (touches nothing else)."""
        alive: Health = {"status": "ok"}
        return web.json_response(alive)

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready to take traffic (``NodeStatus.readiness``): 200, or 503 with the reasons."""
        reasons = self.node.readiness()
        ready: Readiness = {"status": "not_ready" if reasons else "ready", "reasons": reasons}
        return web.json_response(ready, status=503 if reasons else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.node.metrics_text(),
                            content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def peer(self, request: web.Request) -> web.StreamResponse:
        return await self.peer_endpoint(request)



def _parse_body(body: bytes, content_type: str, max_items: int) -> list[Item]:
    try:
        if content_type == MSGPACK:
            return parse_submission(body, max_items)
        if content_type == "application/json":
            return parse_json_submission(body, max_items)
    except SubmissionError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    raise ApiError(415, "unsupported_media_type", "send application/msgpack or application/json")


def claim_json(claim_id: bytes, state: ClaimState, ledger: LedgerReader,
               openings: Openings) -> ClaimView:
    loc = ledger.tx_location(claim_id)

    def share(ps: PayerState) -> Share:
        return {"status": ps.status_name(), "asked_cents": ps.asked_cents,
                "approved_cents": ps.approved_cents, "paid_cents": ps.paid_cents,
                "reason_code": ps.reason_code}

    return {
        "claim_id": claim_id.hex(),
        "optician": state.optician,
        "insurer": state.insurer,
        "total_cents": state.total_cents,
        "status": state.status(),
        "owed_cents": state.owed_cents(),
        "amo": share(state.amo),
        "amc": share(state.amc),
        "cancelled": state.cancelled,
        "height": loc.height if loc is not None else None,
        "openings_held": openings.held(claim_id),
    }


def build_app(services: ApiServices) -> web.Application:
    api = Api(services)
    limits = services.limits
    timeout_s = limits.http_read_timeout_ms / 1000
    app = web.Application(middlewares=[errors_middleware, read_timeout_middleware(timeout_s)],
                          client_max_size=limits.max_body_bytes)
    # innermost: sees the handler's errors
    app.middlewares.append(damage_middleware(services.node.report_damage))
    r = app.router
    r.add_post("/v1/txs", api.submit)
    r.add_get("/v1/txs/{tx_id}", api.tx_status)
    r.add_get("/v1/claims", api.claims)
    r.add_get("/v1/claims/{claim_id}", api.claim)
    r.add_get("/v1/claims/{claim_id}/proof", api.proof)
    r.add_get("/v1/claims/{claim_id}/opening", api.opening)
    r.add_post("/v1/claims/{claim_id}/forget", api.forget)
    add_participant_routes(r, services.ledger, api._reader)  # the registry (issue 13)
    r.add_get("/v1/blocks/{height}", api.block)
    r.add_get("/v1/headers/{height}", api.header)
    r.add_get("/v1/checkpoint", api.checkpoint)
    r.add_get("/v1/consistency", api.consistency)
    r.add_get("/v1/status", api.status)
    r.add_get("/healthz", api.healthz)
    r.add_get("/readyz", api.readyz)
    r.add_get("/v1/peer", api.peer)
    r.add_get("/metrics", api.metrics)
    r.add_get("/openapi.json", api.openapi)
    add_evidence_routes(r, services.ledger, services.genesis)
    add_gov_routes(r, services.ledger, api._reader)  # governance (issue 13)
    return app
