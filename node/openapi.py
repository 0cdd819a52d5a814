"""The OpenAPI 3.1 description served at ``GET /openapi.json`` (kept beside docs/api.md)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_SIGNED: list[dict[str, list[str]]] = [{"tpledgerSignature": []}]


def _op(summary: str, ok: dict[str, Any], *, signed: bool = False,
        params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (400, 404)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok}}
    for code in errors + ((401, 403) if signed else ()):
        op["responses"][str(code)] = {"description": "error",
                                      "content": {"application/json": {"schema": _ERROR}}}
    if signed:
        op["security"] = _SIGNED
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _path_param(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": "string"}}


def _query(name: str, desc: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": desc,
            "schema": {"type": "integer", "minimum": 0}}


_JSON_OBJ = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
_BYTES = {"description": "ok",
          "content": {"application/octet-stream": {"schema": {"type": "string",
                                                               "format": "binary"}}}}
_HEX = "64 hex characters"

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tpledger node API", "version": "1",
             "description": "Client API of a tpledger validator node. See docs/api.md."},
    "components": {
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}},
            "SubmitResult": {"type": "object", "properties": {
                "tx_id": {"type": ["string", "null"]},
                "status": {"enum": ["pending", "rejected"]},
                "code": {"type": "string"}, "message": {"type": "string"}}},
        },
        "securitySchemes": {"tpledgerSignature": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "Tpledger <hex RequestAuth>: an Ed25519 signature of the request "
                           "by a participant key (node/auth.py)"}},
    },
    "paths": {
        "/v1/txs": {"post": _op(
            "Submit one or a batch of signed transactions (with sealed openings)",
            {"description": "per-transaction results", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"results": {
                    "type": "array", "items": {"$ref": "#/components/schemas/SubmitResult"}}}}}}},
            body={"required": True, "content": {
                "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object", "properties": {"txs": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "tx": {"type": "string"}, "sealed": {"type": "object"}}}}}}}}},
            errors=(400, 413, 415, 503))},
        "/v1/txs/{tx_id}": {"get": _op(
            "Status of a transaction", _JSON_OBJ, signed=True,
            params=[_path_param("tx_id", _HEX),
                    _query("wait_ms", "if pending, answer when a commit settles it, or after "
                                      "this many ms (at most 30000)")])},
        "/v1/claims": {"get": _op("Claims visible to the signer", _JSON_OBJ, signed=True,
                                  params=[_query("limit", "at most this many")])},
        "/v1/claims/{claim_id}": {"get": _op("State of a claim per payer", _JSON_OBJ, signed=True,
                                             params=[_path_param("claim_id", _HEX)])},
        "/v1/claims/{claim_id}/proof": {"get": _op(
            "Proof bundle of a claim (verify offline with the genesis file)", _BYTES,
            signed=True, params=[_path_param("claim_id", _HEX),
                                 _query("tree_size", "prove against this tree size")])},
        "/v1/claims/{claim_id}/opening": {"get": _op(
            "The patient opening sealed to the signing payer", _BYTES, signed=True,
            params=[_path_param("claim_id", _HEX)])},
        "/v1/claims/{claim_id}/forget": {"post": _op(
            "Delete the sealed openings of a claim on every node", _JSON_OBJ, signed=True,
            params=[_path_param("claim_id", _HEX)])},
        "/v1/blocks/{height}": {"get": _op(
            "A committed block and its commit certificate (msgpack pair)",
            {"description": "ok", "content": {"application/msgpack": {
                "schema": {"type": "string", "format": "binary"}}}},
            signed=True, params=[_path_param("height", "block height")])},
        "/v1/headers/{height}": {"get": _op("A block header and certificate", _JSON_OBJ,
                                            params=[_path_param("height", "block height")])},
        "/v1/checkpoint": {"get": _op("Latest (or given) signed checkpoint", _BYTES,
                                      params=[_query("height", "checkpoint at this height")])},
        "/v1/consistency": {"get": _op(
            "RFC 9162 consistency proof between two tree sizes", _JSON_OBJ,
            params=[_query("old", "old tree size", True), _query("new", "new tree size", True)])},
        "/v1/status": {"get": _op("Node status", _JSON_OBJ, errors=())},
        "/metrics": {"get": _op("Prometheus metrics", {"description": "ok", "content": {
            "text/plain": {"schema": {"type": "string"}}}}, errors=())},
    },
}

# Vote evidence (node/evidence.py): public, like headers and checkpoints.
OPENAPI["paths"].update({
    "/v1/evidence": {"get": _op(
        "Equivocations recorded on the ledger, by (height, round, type, validator), paged",
        {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "evidence": {"type": "array", "items": {"type": "object", "properties": {
                    "validator": {"type": "integer"}, "name": {"type": "string"},
                    "org": {"type": "string"}, "height": {"type": "integer"},
                    "round": {"type": "integer"}, "type": {"enum": ["prevote", "precommit"]},
                    "first_value": {"type": ["string", "null"]},
                    "second_value": {"type": ["string", "null"]},
                    "recorded_height": {"type": "integer"}, "tx_id": {"type": "string"}}}},
                "next": {"type": ["string", "null"]}}}}}},
        params=[_query("limit", "at most this many (1 to 1000, default 100)"),
                {"name": "after", "in": "query", "required": False,
                 "description": "the previous page's next cursor (30 hex characters)",
                 "schema": {"type": "string"}}],
        errors=(400,))},
    "/v1/evidence/{tx_id}/proof": {"get": _op(
        "Proof bundle of an evidence tx (verify offline with the genesis file)", _BYTES,
        params=[_path_param("tx_id", _HEX),
                _query("tree_size", "prove against this tree size")])},
})
