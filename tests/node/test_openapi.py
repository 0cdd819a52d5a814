"""The OpenAPI document (``node/openapi.py``): built from the API's own models
(``node/schemas.py``), it describes exactly the routes served, validates as OpenAPI 3.1, and a
real node's JSON answers validate against the schemas it gives."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from tests.node.inprocess import commit_claims, node_config, run_with_node
from tests.node.test_api import FakeNode, FakeSubmitter, _services
from tpledger.cli.client import NodeClient
from tpledger.ledger.keys import KeyFile
from tpledger.node import schemas
from tpledger.node.api import build_app
from tpledger.node.openapi import OPENAPI, ROUTES, build_openapi
from tpledger.node.runtime import Node


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD is implied by GET)."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD":
            out.add((route.method.lower(), str(path)))
    return out


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, ops in doc["paths"].items() for m in ops}


def test_the_routes_served_are_the_routes_documented() -> None:
    app = build_app(_services(FakeSubmitter(), FakeNode()))
    assert served(app) == documented(OPENAPI)
    assert len(served(app)) >= 19


def test_an_undocumented_route_is_caught() -> None:
    """The broken variant: a route added without its description."""
    app = build_app(_services(FakeSubmitter(), FakeNode()))

    async def extra(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/v1/secret", extra)
    assert served(app) - documented(OPENAPI) == {("get", "/v1/secret")}
    assert served(app) != documented(build_openapi(ROUTES))


def test_the_document_validates_and_has_real_schemas() -> None:
    validate(OPENAPI)  # openapi-spec-validator: OpenAPI 3.1 + JSON Schema 2020-12

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":  # no bare {"type": "object"}
                assert "properties" in node or "additionalProperties" in node, where
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(OPENAPI, "#")
    claims = OPENAPI["paths"]["/v1/claims"]["get"]
    assert [p["name"] for p in claims["parameters"]] == ["limit", "after", "awaiting"]
    forget = OPENAPI["paths"]["/v1/claims/{claim_id}/forget"]["post"]
    assert forget["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ForgetAnswer"}
    assert len(OPENAPI["components"]["schemas"]) >= 15


def test_a_model_with_an_unsupported_type_is_refused() -> None:
    with pytest.raises(TypeError):
        schemas.json_schema(bytes, {})


def _validator(model: type) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{model.__name__}",
            "components": OPENAPI["components"]}
    return jsonschema.Draft202012Validator(root)


def test_a_real_nodes_answers_match_the_documented_schemas(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    def calls(url: str, ids: list[bytes]) -> list[tuple[type, Any]]:
        key = KeyFile.load(root / "keys" / "optic-paris.key")
        with NodeClient(url, signer=key.signer, max_retries=0) as cl:
            page = cl.get_json("/v1/claims?limit=1", signed=True)
            return [
                (schemas.StatusAnswer, cl.status()),
                (schemas.Health, cl.get_json("/healthz")),
                (schemas.Readiness, cl.get_json("/readyz")),
                (schemas.ClaimsPage, page),
                (schemas.ClaimView, cl.claim(ids[0])),
                (schemas.TxStatus, cl.tx_status(ids[0])),
                (schemas.HeaderAnswer, cl.get_json("/v1/headers/1")),
                (schemas.ConsistencyAnswer, cl.consistency(1, 2)),
                (schemas.EvidencePage, cl.get_json("/v1/evidence")),
            ]

    async def scenario(node: Node) -> None:
        ids, items = await commit_claims(node, root, 2)
        url = f"http://127.0.0.1:{node.port}"
        answers = await asyncio.to_thread(calls, url, ids)
        resubmitted = await asyncio.to_thread(_resubmit, url, items)
        answers.append((schemas.SubmitAnswer, resubmitted))
        for model, body in answers:
            _validator(model).validate(body)
        # and the broken variant: an answer with an undocumented key is refused
        status = dict(answers[0][1], extra=1)
        with pytest.raises(jsonschema.ValidationError):
            _validator(schemas.StatusAnswer).validate(status)
        served_doc = await asyncio.to_thread(_get_doc, url)
        assert served_doc == json.loads(json.dumps(OPENAPI))

    run_with_node(cfg, scenario)


def _resubmit(url: str, items: list[Any]) -> dict[str, Any]:
    with NodeClient(url, max_retries=0) as cl:
        return {"results": cl.submit(items)}  # already committed: rejected, duplicate_tx


def _get_doc(url: str) -> Any:
    with NodeClient(url, max_retries=0) as cl:
        return cl.get_json("/openapi.json")
