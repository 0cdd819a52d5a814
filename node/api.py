"""The client HTTP API (see docs/api.md and ``GET /openapi.json``).

Every error is JSON ``{"error": {"code", "message"}}`` with a stable code. Reads of claim data
need a request signed by a participant entitled to it (``node/auth.py``); checkpoints,
consistency proofs, headers and status are public.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ledger.encoding import pack
from ledger.errors import EncodingError, LedgerError, StoreCorruption, StoreError
from ledger.genesis import Participant
from ledger.jsonsafe import loads_bounded
from node.auth import RequestVerifier
from node.clock import now_ms
from node.erasure import MAX_SKEW_MS, ForgetRefused, ForgetRequest
from node.errors import ApiError, AuthError, NodeError
from node.openapi import OPENAPI
from node.policy import is_payer, may_read_blocks, may_read_claim

if TYPE_CHECKING:
    from node.runtime import Node

log = logging.getLogger("tpledger.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MSGPACK = "application/msgpack"
MAX_WAIT_MS = 30_000  # longest ``wait_ms`` of a tx status request
MAX_WAITERS = 1_000  # past this many waiting requests, status requests answer at once
CLAIMS_SCAN_WINDOW = 2000
MAX_JSON_DEPTH = 8  # {"txs": [{"tx": ..., "sealed": {...}}]} is 3 deep
RELAYED_HEADER = "X-Tpledger-Relayed"  # set on a request a node forwards to its peers


def error_response(status: int, code: str, message: str,
                   retry_after_s: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.retry_after_s)
    except AuthError as exc:
        return error_response(401, "unauthorized", str(exc))
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body_too_large", "request body exceeds max_body_bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            return error_response(exc.status, code, exc.reason)
        raise
    except (EncodingError, NodeError, LedgerError) as exc:
        return error_response(400, "bad_request", str(exc))
    except Exception as exc:  # never a traceback to a client; the node keeps running
        log.error("internal error on %s %s: %s", request.method, request.path, type(exc).__name__)
        return error_response(500, "internal", "internal error")


def read_timeout_middleware(timeout_s: float) -> Any:
    """Read a request's whole body within ``timeout_s`` before its handler runs (handlers
    then get it from aiohttp's cache): a client dribbling its body gets 408, not a slot."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.can_read_body:
            try:
                await asyncio.wait_for(request.read(), timeout_s)
            except TimeoutError:
                return error_response(408, "request_timeout",
                                      f"the request body did not arrive within {timeout_s:g} s")
        return await handler(request)

    return middleware


def _hex32(value: str, what: str) -> bytes:
    try:
        b = bytes.fromhex(value)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise ApiError(400, "bad_id", f"{what} must be 64 hex characters")
    return b


def _int_arg(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise ApiError(400, "missing_parameter", f"query parameter {name} is required")
        return default
    if not raw.isdigit() or len(raw) > 20:
        raise ApiError(400, "bad_parameter", f"query parameter {name} must be a whole number")
    return int(raw)


def _damage_in(exc: BaseException) -> StoreCorruption | None:
    """The StoreCorruption behind ``exc``: itself, or what a handler turned it into."""
    cur: BaseException | None = exc
    for _ in range(8):
        if cur is None or isinstance(cur, StoreCorruption):
            return cur
        cur = cur.__context__
    return None


def damage_middleware(node: Node) -> Any:
    """Inside ``errors_middleware``: a request that hit a damaged stored row (whatever error
    its handler made of it) answers 503 ``store_damaged``; the row is never served."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            damage = _damage_in(exc)
            if damage is None:
                raise
            node.report_damage(damage, "api")
            return error_response(503, "store_damaged", str(damage))

    return middleware


class Api:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.verifier = RequestVerifier(node.chain_id)
        self._waiters = 0  # tx status requests waiting for a commit (bounded: MAX_WAITERS)

    # -- auth helpers -------------------------------------------------------------------------
    async def _signer(self, request: web.Request) -> bytes:
        body = await request.read()  # cached: the read-timeout middleware read it first
        return self.verifier.verify(request.headers.get("Authorization"), request.method,
                                    request.path_qs, body, now_ms())

    async def _participant(self, request: web.Request) -> Participant:
        key = await self._signer(request)
        p = self.node.genesis.participant_by_key(key)
        if p is None:
            raise ApiError(403, "forbidden", "the signer is not a registered participant")
        return p

    def _claim_for(self, p: Participant, claim_id: bytes) -> Any:
        state = self.node.store.claim(claim_id)
        if state is None:
            raise ApiError(404, "unknown_claim", "no committed claim with this id")
        if not may_read_claim(p, state.optician, state.insurer):
            raise ApiError(403, "forbidden", "this participant may not read this claim")
        return state

    async def _payer_of_claim(self, request: web.Request) -> tuple[Participant, bytes]:
        """The signer, who must be a payer of the committed claim in the path (its insurer,
        or the CNAM); and the claim id. Openings are served to, and forgotten by, them only."""
        p = await self._participant(request)
        claim_id = _hex32(request.match_info["claim_id"], "claim id")
        state = self.node.store.claim(claim_id)
        if state is None:
            raise ApiError(404, "unknown_claim", "no committed claim with this id")
        if not is_payer(p, state.insurer):
            raise ApiError(403, "forbidden", "only the claim's payers may see or forget openings")
        return p, claim_id

    # -- handlers -----------------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        from node.mempool import MempoolFull
        from node.runtime import parse_submission

        body = await request.read()
        limit = self.node.cfg.limits.max_batch_txs
        ctype = request.content_type
        if ctype == MSGPACK:
            try:
                items = parse_submission(body, limit)
            except EncodingError as exc:
                raise ApiError(400, "malformed_body", str(exc)) from None
            except NodeError as exc:
                raise ApiError(400, "malformed_body", str(exc)) from None
        elif ctype == "application/json":
            items = _parse_json_submission(body, limit)
        else:
            raise ApiError(415, "unsupported_media_type",
                           "send application/msgpack or application/json")
        if not items:
            raise ApiError(400, "empty_batch", "no transactions in the request")
        if self.node.mempool.room() <= 0:
            raise ApiError(503, "mempool_full", "mempool is full; retry later", retry_after_s=1)
        try:
            results = self.node.admit_batch(items, gossip=True)
        except MempoolFull:
            raise ApiError(503, "mempool_full", "mempool is full; retry later",
                           retry_after_s=1) from None
        if all(r.get("code") == "mempool_full" for r in results):
            raise ApiError(503, "mempool_full", "mempool is full; retry later", retry_after_s=1)
        return web.json_response({"results": results})

    async def tx_status(self, request: web.Request) -> web.Response:
        """Status of a tx; with ``wait_ms``, a pending tx is answered as soon as a commit
        settles it (or after ``wait_ms``), instead of the client polling."""
        await self._participant(request)
        tx_id = _hex32(request.match_info["tx_id"], "tx id")
        wait_ms = _int_arg(request, "wait_ms", 0)
        if wait_ms > MAX_WAIT_MS:
            raise ApiError(400, "bad_parameter", f"wait_ms is at most {MAX_WAIT_MS}")
        status = self.node.tx_status(tx_id)
        if wait_ms and status["status"] == "pending" and self._waiters < MAX_WAITERS:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_ms / 1000.0
            self._waiters += 1
            try:
                while status["status"] == "pending" and loop.time() < deadline:
                    event = self.node.commit_event  # replaced by a fresh one at each commit
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), deadline - loop.time())
                    status = self.node.tx_status(tx_id)
            finally:
                self._waiters -= 1
        return web.json_response(status)

    async def claim(self, request: web.Request) -> web.Response:
        p = await self._participant(request)
        claim_id = _hex32(request.match_info["claim_id"], "claim id")
        state = self._claim_for(p, claim_id)
        return web.json_response(claim_json(claim_id, state, self.node))

    async def claims(self, request: web.Request) -> web.Response:
        """Claims the signer may read, in log order (oldest first), paged.

        One call scans at most ``CLAIMS_SCAN_WINDOW`` claims (bounded work); ``next`` is the
        cursor to pass as ``after`` to continue, null when the end was reached. A page may be
        short, even empty, with a non-null ``next``: keep paging until ``next`` is null.
        ``awaiting=amo|amc`` keeps claims whose share is submitted and undecided.
        """
        p = await self._participant(request)
        limit = min(_int_arg(request, "limit", 100), 1000)
        after_raw = request.query.get("after")
        after = _hex32(after_raw, "after") if after_raw else None
        awaiting = request.query.get("awaiting")
        if awaiting not in (None, "amo", "amc"):
            raise ApiError(400, "bad_parameter", "awaiting must be amo or amc")
        out: list[dict[str, Any]] = []
        try:
            scanned = self.node.store.claims_page(after, CLAIMS_SCAN_WINDOW)
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
            out.append(claim_json(claim_id, state, self.node))
            if len(out) >= limit:
                next_cursor = claim_id  # the page is full: continue right after this claim
                break
        return web.json_response({"claims": out,
                                  "next": None if next_cursor is None else next_cursor.hex()})

    async def proof(self, request: web.Request) -> web.Response:
        p = await self._participant(request)
        claim_id = _hex32(request.match_info["claim_id"], "claim id")
        self._claim_for(p, claim_id)
        size = request.query.get("tree_size")
        tree_size = _int_arg(request, "tree_size") if size is not None else None
        try:
            bundle = self.node.store.proof(claim_id, tree_size)
        except LedgerError as exc:
            raise ApiError(400, "no_proof", str(exc)) from None
        return web.Response(body=bundle.to_bytes(), content_type="application/octet-stream")

    async def opening(self, request: web.Request) -> web.Response:
        p, claim_id = await self._payer_of_claim(request)
        loc = self.node.claim_location(claim_id)
        sealed = None if loc is None else self.node.openings.get(loc, p.org)
        if sealed is None and RELAYED_HEADER not in request.headers:
            # This node may have been down when the claim's openings were gossiped: ask the
            # peers with the payer's own signed request (the box is sealed to the payer; we
            # keep a copy only if it matches the digest the optician signed).
            sealed = await self.node.fetch_opening(
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
        if req.claim_id != claim_id or self.node.genesis.participant_by_key(req.signer) != p:
            raise ApiError(400, "bad_request",
                           "the forget request must name this claim and be signed by the caller")
        if abs(req.time_ms - now_ms()) > MAX_SKEW_MS:
            raise ApiError(400, "stale_request", "the forget request's time is too far from now")
        try:
            n, _ = self.node.forget_openings(raw, origin=f"asked by {p.org}")
        except ForgetRefused as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        peers = self.node.peers
        relayed = [] if peers is None else sorted(
            peers.names()[i] for i, up in peers.outbound_up.items() if up)
        # Peers with a link down get the relay when it comes back (their queue keeps it), or
        # from another peer (each node relays a claim's erasure once); check ``openings_held``.
        return web.json_response({"claim_id": claim_id.hex(), "deleted": n,
                                  "relayed_to": relayed})

    async def block(self, request: web.Request) -> web.Response:
        key = await self._signer(request)
        if not may_read_blocks(self.node.genesis, key):
            raise ApiError(403, "forbidden", "whole blocks are served to validators, auditors "
                           "and the CNAM only (read your own claims and proofs instead)")
        h = _height(request, self.node.store.height)
        block = self.node.store.block(h)
        cert = self.node.store.certificate(h)
        return web.Response(body=pack([block.encode(), cert.encode()]), content_type=MSGPACK)

    async def header(self, request: web.Request) -> web.Response:
        h = _height(request, self.node.store.height)
        hdr = self.node.store.header(h)
        cert = self.node.store.certificate(h)
        return web.json_response({"height": h, "hash": hdr.hash().hex(),
                                  "header": hdr.encode().hex(), "certificate": cert.encode().hex()})

    async def checkpoint(self, request: web.Request) -> web.Response:
        store = self.node.store
        if store.height == 0:
            raise ApiError(404, "no_checkpoint", "no block committed yet")
        h = _int_arg(request, "height", store.height)
        if not 1 <= h <= store.height:
            raise ApiError(404, "unknown_height", "no committed block at this height")
        return web.Response(body=store.checkpoint(h).to_bytes(),
                            content_type="application/octet-stream")

    async def consistency(self, request: web.Request) -> web.Response:
        old = _int_arg(request, "old")
        new = _int_arg(request, "new")
        try:
            path = self.node.store.consistency_path(old, new)
        except LedgerError as exc:
            raise ApiError(400, "bad_sizes", str(exc)) from None
        return web.json_response({"old_size": old, "new_size": new,
                                  "path": [h.hex() for h in path]})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.status())

    async def metrics(self, request: web.Request) -> web.Response:
        self.node.refresh_metrics()
        return web.Response(text=self.node.metrics.render(),
                            content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def peer(self, request: web.Request) -> web.StreamResponse:
        assert self.node.peers is not None
        return await self.node.peers.handle_ws(request)


def _height(request: web.Request, top: int) -> int:
    raw = request.match_info["height"]
    if not raw.isdigit() or len(raw) > 20:
        raise ApiError(400, "bad_height", "height must be a whole number")
    h = int(raw)
    if not 1 <= h <= top:
        raise ApiError(404, "unknown_height", "no committed block at this height")
    return h


def _parse_json_submission(body: bytes, limit: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    try:
        doc = loads_bounded(body, len(body), MAX_JSON_DEPTH)
    except ValueError as exc:
        raise ApiError(400, "malformed_body", f"body is not accepted JSON: {exc}") from None
    txs = doc.get("txs") if isinstance(doc, dict) else None
    if not isinstance(txs, list):
        raise ApiError(400, "malformed_body", 'expected {"txs": [...]}')
    if len(txs) > limit:
        raise ApiError(400, "batch_too_large", f"at most {limit} transactions per request")
    items = []
    for t in txs:
        if not isinstance(t, dict) or not isinstance(t.get("tx"), str):
            raise ApiError(400, "malformed_body", 'each item needs "tx" as hex')
        sealed_raw = t.get("sealed", {})
        if not isinstance(sealed_raw, dict) or len(sealed_raw) > 4:
            raise ApiError(400, "malformed_body", '"sealed" must map payer org to hex')
        try:
            raw = bytes.fromhex(t["tx"])
            sealed = [(str(o), bytes.fromhex(v)) for o, v in sealed_raw.items()
                      if isinstance(v, str)]
        except ValueError:
            raise ApiError(400, "malformed_body", "bad hex in submission") from None
        if len(sealed) != len(sealed_raw):
            raise ApiError(400, "malformed_body", "sealed openings must be hex strings")
        items.append((raw, sealed))
    return items


def claim_json(claim_id: bytes, state: Any, node: Node) -> dict[str, Any]:
    loc = node.store.tx_location(claim_id)

    def share(ps: Any) -> dict[str, Any]:
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
        "openings_held": node.openings_held(claim_id),
    }


def build_app(node: Node) -> web.Application:
    api = Api(node)
    timeout_s = node.cfg.limits.http_read_timeout_ms / 1000
    app = web.Application(middlewares=[errors_middleware, read_timeout_middleware(timeout_s)],
                          client_max_size=node.cfg.limits.max_body_bytes)
    app.middlewares.append(damage_middleware(node))  # innermost: sees the handler's errors
    r = app.router
    r.add_post("/v1/txs", api.submit)
    r.add_get("/v1/txs/{tx_id}", api.tx_status)
    r.add_get("/v1/claims", api.claims)
    r.add_get("/v1/claims/{claim_id}", api.claim)
    r.add_get("/v1/claims/{claim_id}/proof", api.proof)
    r.add_get("/v1/claims/{claim_id}/opening", api.opening)
    r.add_post("/v1/claims/{claim_id}/forget", api.forget)
    r.add_get("/v1/blocks/{height}", api.block)
    r.add_get("/v1/headers/{height}", api.header)
    r.add_get("/v1/checkpoint", api.checkpoint)
    r.add_get("/v1/consistency", api.consistency)
    r.add_get("/v1/status", api.status)
    r.add_get("/v1/peer", api.peer)
    r.add_get("/metrics", api.metrics)
    r.add_get("/openapi.json", api.openapi)
    from node.evidence import add_evidence_routes

    add_evidence_routes(r, node)
    return app
