"""The API (``node/api.py``) built from narrow collaborators, without a node: what it hands to
the submitter, what it answers from the status provider, and a damaged stored row answered 503
and reported. The whole API on real nodes is in test_api_bad_input.py and tests/security."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
from aiohttp import web

from tests.ledger.helpers import make_world
from tpledger.ledger.errors import StoreCorruption
from tpledger.node.api import ApiServices, LedgerReader, build_app
from tpledger.node.config import Limits
from tpledger.node.errors import ApiError
from tpledger.node.submission import Item, encode_submission

ITEMS: list[Item] = [(b"tx-1", [("mutuelle-a", b"box")]), (b"tx-2", [])]


class FakeSubmitter:
    def __init__(self, room: int = 10) -> None:
        self.batches: list[tuple[list[Item], bool]] = []
        self._room = room

    def admit_batch(self, items: list[Item], gossip: bool, report: bool = True
                    ) -> list[dict[str, Any]]:
        self.batches.append((items, gossip))
        return [{"tx_id": tx.hex(), "status": "pending"} for tx, _ in items]

    def tx_status(self, tx_id: bytes) -> dict[str, Any]:
        return {"tx_id": tx_id.hex(), "status": "unknown"}

    def room(self) -> int:
        return self._room


class FakeLedger:
    height = 3

    def header(self, height: int) -> Any:
        raise StoreCorruption("headers", height.to_bytes(8, "big"))


class FakeNode:
    def __init__(self) -> None:
        self.commit_event = asyncio.Event()
        self.damaged: list[tuple[str, str]] = []
        self.not_ready: list[str] = []

    def status(self) -> dict[str, Any]:
        return {"name": "fake", "height": 3}

    def metrics_text(self) -> str:
        return "tpledger_height 3\n"

    def peers_up(self) -> list[str]:
        return []

    def readiness(self) -> list[str]:
        return self.not_ready

    def report_damage(self, exc: StoreCorruption, found_by: str) -> None:
        self.damaged.append((exc.table, found_by))


async def _no_peer(request: web.Request) -> web.StreamResponse:
    raise ApiError(404, "not_found", "no peer endpoint here")


Scenario = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


def _run(services: ApiServices, scenario: Scenario) -> None:
    async def main() -> None:
        runner = web.AppRunner(build_app(services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with aiohttp.ClientSession() as http:
                await scenario(http, f"http://127.0.0.1:{runner.addresses[0][1]}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


def _services(submitter: FakeSubmitter, node: FakeNode) -> ApiServices:
    return ApiServices(genesis=make_world("api").genesis, limits=Limits(max_batch_txs=2),
                       ledger=cast(LedgerReader, FakeLedger()), submitter=submitter,
                       openings=cast(Any, None), node=node, peer_endpoint=_no_peer)


def test_a_submission_reaches_the_submitter_parsed() -> None:
    sub = FakeSubmitter()

    async def scenario(http: aiohttp.ClientSession, url: str) -> None:
        async with http.post(url + "/v1/txs", data=encode_submission(ITEMS),
                             headers={"Content-Type": "application/msgpack"}) as r:
            assert r.status == 200
            assert [x["status"] for x in (await r.json())["results"]] == ["pending"] * 2
        doc = {"txs": [{"tx": "aa", "sealed": {"cnam": "bb"}}]}
        async with http.post(url + "/v1/txs", data=json.dumps(doc),
                             headers={"Content-Type": "application/json"}) as r:
            assert r.status == 200
        async with http.post(url + "/v1/txs", data=encode_submission(ITEMS * 2),
                             headers={"Content-Type": "application/msgpack"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_body"
        async with http.post(url + "/v1/txs", data=b"x",
                             headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415

    _run(_services(sub, FakeNode()), scenario)
    assert sub.batches == [(ITEMS, True), ([(b"\xaa", [("cnam", b"\xbb")])], True)]


def test_a_full_mempool_answers_503_before_admission() -> None:
    sub = FakeSubmitter(room=0)

    async def scenario(http: aiohttp.ClientSession, url: str) -> None:
        async with http.post(url + "/v1/txs", data=encode_submission(ITEMS),
                             headers={"Content-Type": "application/msgpack"}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"

    _run(_services(sub, FakeNode()), scenario)
    assert sub.batches == []


def test_status_and_metrics_come_from_the_status_provider() -> None:
    async def scenario(http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url + "/v1/status") as r:
            assert await r.json() == {"name": "fake", "height": 3}
        async with http.get(url + "/metrics") as r:
            assert await r.text() == "tpledger_height 3\n"

    _run(_services(FakeSubmitter(), FakeNode()), scenario)


def test_a_damaged_row_is_answered_503_and_reported() -> None:
    node = FakeNode()

    async def scenario(http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url + "/v1/headers/2") as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "store_damaged"

    _run(_services(FakeSubmitter(), node), scenario)
    assert node.damaged == [("headers", "api")]


def test_healthz_answers_while_readyz_says_why_not_ready() -> None:
    node = FakeNode()

    async def scenario(http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url + "/readyz") as r:
            assert r.status == 200 and await r.json() == {"status": "ready", "reasons": []}
        node.not_ready = ["catching up: height 3 of 9"]
        async with http.get(url + "/readyz") as r:
            assert r.status == 503
            assert await r.json() == {"status": "not_ready",
                                      "reasons": ["catching up: height 3 of 9"]}
        async with http.get(url + "/healthz") as r:  # alive all the same
            assert r.status == 200 and await r.json() == {"status": "ok"}

    _run(_services(FakeSubmitter(), node), scenario)
