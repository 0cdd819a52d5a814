"""The OpenAPI 3.1 description served at ``GET /openapi.json``, built from the API's models.

Each route is one :class:`Route`: its JSON bodies are the ``TypedDict`` models of
``node/schemas.py`` that the handlers build (binary bodies are canonical msgpack ``Record``
bytes). ``tests/node/test_openapi.py`` checks that the routes served and the routes described
are the same set, and validates the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tpledger.node import schemas as s

_HEX = "64 hex characters"
BINARY = "application/octet-stream"
MSGPACK = "application/msgpack"
JSON = "application/json"
TEXT = "text/plain"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    description: str
    kind: str = "integer"  # "integer" (at least 0) or "string"
    required: bool = False

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = ({"type": "integer", "minimum": 0} if self.kind == "integer"
                                  else {"type": "string"})
        return {"name": self.name, "in": self.where, "description": self.description,
                "required": self.required or self.where == "path", "schema": schema}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    answer: Any  # a TypedDict model, or a media type of an opaque body
    signed: bool = False
    params: tuple[Param, ...] = ()
    body: dict[str, Any] = field(default_factory=dict)  # media type -> model or "binary"
    errors: tuple[int, ...] = (400, 404)
    ok: str = "200"


def _claim(desc: str = _HEX) -> Param:
    return Param("claim_id", "path", desc, "string")


def _height() -> Param:
    return Param("height", "path", "block height")


def _tree_size() -> Param:
    return Param("tree_size", "query", "prove against this tree size")


ROUTES: tuple[Route, ...] = (
    Route("post", "/v1/txs", "Submit one or a batch of signed transactions (with sealed "
          "openings)", s.SubmitAnswer, body={MSGPACK: "binary", JSON: s.SubmitJson},
          errors=(400, 413, 415, 503)),
    Route("get", "/v1/txs/{tx_id}", "Status of a transaction", s.TxStatus, signed=True,
          params=(Param("tx_id", "path", _HEX, "string"),
                  Param("wait_ms", "query", "if pending, answer when a commit settles it, or "
                        "after this many ms (at most 30000)"))),
    Route("get", "/v1/participants", "Participants of the registry in force, in registration "
          "(slot) order, paged", s.ParticipantsPage, signed=True, errors=(400,), params=(
              Param("limit", "query", "at most this many (at most 1000, default 100)"),
              Param("after", "query", "the previous page's next cursor (a slot)"),
              Param("role", "query", "only this role", "string"))),
    Route("get", "/v1/participants/{org}", "A participant's record in the registry in force "
          "and its key history with heights", s.ParticipantView, signed=True,
          params=(Param("org", "path", "the participant's org id", "string"),)),
    Route("get", "/v1/claims", "Claims visible to the signer, oldest first, paged", s.ClaimsPage,
          signed=True, params=(
              Param("limit", "query", "at most this many (at most 1000, default 100)"),
              Param("after", "query", "the previous page's next cursor (a claim id)", "string"),
              Param("awaiting", "query", "amo or amc: only claims whose share is submitted "
                    "and undecided", "string"))),
    Route("get", "/v1/claims/{claim_id}", "State of a claim per payer", s.ClaimView,
          signed=True, params=(_claim(),)),
    Route("get", "/v1/claims/{claim_id}/proof", "Proof bundle of a claim (verify offline with "
          "the genesis file)", BINARY, signed=True, params=(_claim(), _tree_size())),
    Route("get", "/v1/claims/{claim_id}/opening", "The patient opening sealed to the signing "
          "payer", BINARY, signed=True, params=(_claim(),)),
    Route("post", "/v1/claims/{claim_id}/forget", "Delete the sealed openings of a claim on "
          "every node (a payer's signed ForgetRequest in the body)", s.ForgetAnswer,
          signed=True, params=(_claim(),), body={MSGPACK: "binary"}),
    Route("get", "/v1/blocks/{height}", "A committed block and its commit certificate "
          "(msgpack pair)", MSGPACK, signed=True, params=(_height(),)),
    Route("get", "/v1/headers/{height}", "A block header and certificate", s.HeaderAnswer,
          params=(_height(),)),
    Route("get", "/v1/checkpoint", "Latest (or given) signed checkpoint", BINARY,
          params=(Param("height", "query", "checkpoint at this height"),)),
    Route("get", "/v1/consistency", "RFC 9162 consistency proof between two tree sizes",
          s.ConsistencyAnswer, params=(Param("old", "query", "old tree size", required=True),
                                       Param("new", "query", "new tree size", required=True))),
    Route("get", "/v1/status", "Node status (height, peers, catching_up, version)",
          s.StatusAnswer, errors=()),
    Route("get", "/healthz", "Alive: the process answers", s.Health, errors=()),
    Route("get", "/readyz", "Ready: store verified, a quorum of validators reachable counting "
          "this node, not catching up; 503 with the reasons otherwise", s.Readiness,
          errors=(503,)),
    Route("get", "/metrics", "Prometheus metrics (text exposition)", TEXT, errors=()),
    Route("get", "/openapi.json", "This document", JSON, errors=()),
    Route("get", "/v1/peer", "Validator peer link (WebSocket upgrade, Noise XX inside)", BINARY,
          errors=(400, 403), ok="101"),
    Route("get", "/v1/evidence", "Equivocations recorded on the ledger, by (height, round, "
          "type, validator), paged", s.EvidencePage, errors=(400,), params=(
              Param("limit", "query", "at most this many (1 to 1000, default 100)"),
              Param("after", "query", "the previous page's next cursor (30 hex characters)",
                    "string"))),
    Route("get", "/v1/evidence/{tx_id}/proof", "Proof bundle of an evidence tx (verify offline "
          "with the genesis file)", BINARY, params=(Param("tx_id", "path", _HEX, "string"),
                                                     _tree_size())),
)

# -- governance (issue 13): node/gov_api.py, signed reads by active members
ROUTES += (
    Route("get", "/v1/gov/proposals", "Quorum proposals with their actions and ballots, by "
          "id, paged", s.ProposalsPage, signed=True, errors=(400,), params=(
              Param("limit", "query", "at most this many (1 to 1000, default 100)"),
              Param("after", "query", "the previous page's next cursor (a proposal id)",
                    "string"),
              Param("status", "query", "open, executed, expired or failed", "string"))),
    Route("get", "/v1/gov/proposals/{proposal_id}", "One proposal: actions, ballots, status",
          s.ProposalView, signed=True, params=(Param("proposal_id", "path", _HEX, "string"),)),
    Route("get", "/v1/lpp/versions", "LPP tariff versions; with at, the one in force on that "
          "date and its rows", s.LppVersionsAnswer, signed=True,
          params=(Param("at", "query", "a date YYYY-MM-DD (UTC)", "string"),)),
)


_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_DOCUMENT = {"type": "object", "description": "an OpenAPI 3.1 document",
             "required": ["openapi", "info", "paths"],
             "properties": {"openapi": {"type": "string"}, "info": _ANY_OBJECT,
                            "paths": _ANY_OBJECT, "components": _ANY_OBJECT}}


def _content(body: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, str):  # an opaque body of this media type
        schema = {TEXT: {"type": "string"}, JSON: _DOCUMENT
                  }.get(body, {"type": "string", "format": "binary"})
        return {body: {"schema": schema}}
    return {JSON: {"schema": s.json_schema(body, components)}}


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    error = {"description": "error", "content": {JSON: {"schema": s.json_schema(s.Error,
                                                                             components)}}}
    op: dict[str, Any] = {"summary": route.summary, "responses": {
        route.ok: {"description": "ok", "content": _content(route.answer, components)}}}
    for code in route.errors + ((401, 403) if route.signed else ()):
        op["responses"][str(code)] = error
    if route.path == "/readyz":  # the 503 answer names the reasons
        op["responses"]["503"] = {"description": "not ready",
                                  "content": _content(s.Readiness, components)}
    if route.signed:
        op["security"] = [{"tpledgerSignature": []}]
    if route.params:
        op["parameters"] = [p.openapi() for p in route.params]
    if route.body:
        op["requestBody"] = {"required": True, "content": {
            media: {"schema": {"type": "string", "format": "binary"} if model == "binary"
                    else s.json_schema(model, components)}
            for media, model in route.body.items()}}
    return op


def build_openapi(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "tpledger node API", "version": "1",
                 "description": "Client API of a tpledger validator node. See docs/api.md."},
        "components": {"schemas": components, "securitySchemes": {"tpledgerSignature": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "Tpledger <hex RequestAuth>: an Ed25519 signature of the request "
                           "by a participant key (node/auth.py)"}}},
        "paths": paths,
    }


OPENAPI: dict[str, Any] = build_openapi()
