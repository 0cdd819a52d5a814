"""The governance read endpoints (``node/gov_api.py``) on a real aiohttp server, over a real
registry snapshot (``Registry.of_genesis``) and real proposal records: who may read, how an
expired proposal is shown, paging and filters, and the tariff version in force on a date.
The same endpoints on a real cluster, after real proposals and a publication:
tests/e2e/test_governance_quorum.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web

from tests.ledger.helpers import TEST_POLICY, World, make_world
from tests.node.test_api import FakeNode, FakeSubmitter, _no_peer
from tpledger.ledger.keys import Signer
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.registry import (
    EXECUTED,
    OPEN,
    GovAction,
    ProposalState,
    Registry,
)
from tpledger.node import api as api_module
from tpledger.node.api import ApiServices, LedgerReader, build_app
from tpledger.node.auth import sign_request
from tpledger.node.config import Limits

V1_DAY = 19723  # 2024-01-01
NOW_MS = int(time.time() * 1000)
PIDS = [bytes([i]) * 32 for i in (1, 2, 3)]


class GovLedger:
    """The governance getters of a Store over a real registry and real proposal records."""

    height = 3

    def __init__(self, world: World) -> None:
        self.lpp: LppTable = world.lpp
        self._registry = Registry.of_genesis(world.genesis)
        action = GovAction(2, "cnam-gov", None, (), None, None)
        self._proposals = {
            PIDS[0]: ProposalState("federation", (action,), 5, NOW_MS + 3_600_000,
                                   ("federation",), (), OPEN, "", 0),
            PIDS[1]: ProposalState("federation", (action,), 6, NOW_MS - 1000,
                                   ("federation",), ("insurers",), OPEN, "", 0),
            PIDS[2]: ProposalState("federation", (action,), 7, NOW_MS + 3_600_000,
                                   ("cnam-gov", "federation"), (), EXECUTED, "", 8),
        }

    def registry(self) -> Registry:
        return self._registry

    def proposal(self, pid: bytes) -> ProposalState | None:
        return self._proposals.get(pid)

    def proposals(self, status: int | None = None, after: bytes = b"", limit: int = 100
                  ) -> list[tuple[bytes, ProposalState]]:
        rows = sorted((k, v) for k, v in self._proposals.items()
                      if k > after and (status is None or v.status == status))
        return rows[:limit]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world("gov-api", policy=dataclasses.replace(TEST_POLICY,
                                                            lpp_v1_effective_day=V1_DAY))


Get = Callable[[str, Signer | None], Awaitable[tuple[int, Any]]]


def _run(world: World, scenario: Callable[[Get], Awaitable[None]]) -> None:
    services = ApiServices(genesis=world.genesis, limits=Limits(),
                           ledger=cast(LedgerReader, GovLedger(world)),
                           submitter=FakeSubmitter(), openings=cast(Any, None),
                           node=FakeNode(), peer_endpoint=_no_peer)

    async def main() -> None:
        runner = web.AppRunner(build_app(services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as http:
                async def get(path: str, signer: Signer | None) -> tuple[int, Any]:
                    headers = {} if signer is None else {"Authorization": sign_request(
                        world.genesis.chain_id, signer, "GET", path, b"",
                        int(time.time() * 1000))}
                    async with http.get(url + path, headers=headers) as r:
                        return r.status, await r.json()

                await scenario(get)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_only_active_members_read(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = Signer.generate()

    async def scenario(get: Get) -> None:
        assert (await get("/v1/gov/proposals", None))[0] == 401
        st, body = await get("/v1/gov/proposals", stranger)
        assert st == 403 and body["error"]["code"] == "forbidden"
        assert (await get("/v1/gov/proposals", world.opticians[0].signer))[0] == 200
        assert (await get("/v1/lpp/versions", world.admin("federation")))[0] == 200

    _run(world, scenario)

    # broken variant: without the registry check a stranger's signed request is answered
    monkeypatch.setattr(api_module, "reader_of", lambda reg, key: object())

    async def broken(get: Get) -> None:
        assert (await get("/v1/gov/proposals", stranger))[0] == 200

    _run(world, broken)


def test_proposals_paged_filtered_and_expiry_shown(world: World) -> None:
    reader = world.insurers[0].signer

    async def scenario(get: Get) -> None:
        st, body = await get("/v1/gov/proposals", reader)
        assert st == 200 and body["next"] is None
        assert [(p["proposal_id"], p["status"]) for p in body["proposals"]] == [
            (PIDS[0].hex(), "open"), (PIDS[1].hex(), "expired"), (PIDS[2].hex(), "executed")]
        first = body["proposals"][0]
        assert first["actions"] == [{"op": "remove-org", "org": "cnam-gov"}]
        assert first["yes"] == ["federation"] and first["no"] == []
        for name, want in (("open", [0]), ("expired", [1]), ("executed", [2]), ("failed", [])):
            _, page = await get(f"/v1/gov/proposals?status={name}", reader)
            assert [p["proposal_id"] for p in page["proposals"]] == [PIDS[i].hex() for i in want]
        _, page = await get("/v1/gov/proposals?limit=2", reader)
        assert len(page["proposals"]) == 2 and page["next"] == PIDS[1].hex()
        _, page = await get(f"/v1/gov/proposals?limit=2&after={page['next']}", reader)
        assert [p["proposal_id"] for p in page["proposals"]] == [PIDS[2].hex()]
        st, one = await get(f"/v1/gov/proposals/{PIDS[1].hex()}", reader)
        assert st == 200 and one["status"] == "expired" and one["no"] == ["insurers"]
        st, err = await get(f"/v1/gov/proposals/{'ab' * 32}", reader)
        assert st == 404 and err["error"]["code"] == "unknown_proposal"
        for bad in ("?limit=0", "?status=pending", "?after=xyz"):
            st, err = await get(f"/v1/gov/proposals{bad}", reader)
            assert st == 400, bad

    _run(world, scenario)


def test_tariff_version_in_force_on_a_date(world: World) -> None:
    reader = world.opticians[1].signer

    async def scenario(get: Get) -> None:
        st, body = await get("/v1/lpp/versions", reader)
        assert st == 200 and body == {"versions": [
            {"version": 1, "effective": "2024-01-01", "table_digest": world.lpp.digest().hex()}]}
        st, body = await get("/v1/lpp/versions?at=2024-06-30", reader)
        assert st == 200 and (body["version"], body["effective"]) == (1, "2024-01-01")
        assert len(body["rows"]) == len(world.lpp)
        row = next(r for r in body["rows"] if r["code"] == "2261874")
        entry = world.lpp.get("2261874")
        assert entry is not None and row["max_price_cents"] == entry.max_price_cents
        st, err = await get("/v1/lpp/versions?at=2023-12-31", reader)
        assert st == 404 and err["error"]["code"] == "tariff_not_in_force"
        for bad in ("2024-02-30", "2024-1-1", "yesterday"):
            st, err = await get(f"/v1/lpp/versions?at={bad}", reader)
            assert st == 400 and err["error"]["code"] == "bad_parameter", bad

    _run(world, scenario)
