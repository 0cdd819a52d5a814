"""A real 4-node cluster for attack tests, with an attacker's tools around it.

* ``v3`` dials ``v0`` through :class:`WsRelay`, a websocket relay the test controls (the
  position of a man in the middle on that link): it forwards every message both ways, records
  them, and can inject its own.
* ``v0`` reads request headers and bodies with a short timeout (2 s) for the slow-client tests.
* A few claims from two opticians to two insurers are committed, with their sealed openings.
"""

from __future__ import annotations

import asyncio
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from aiohttp import web

from tests.node.conftest import wait_until
from tpledger.cli.claims import ClaimBuilder, ClaimInput, wait_committed
from tpledger.cli.client import NodeClient
from tpledger.cli.cluster import LocalCluster, free_ports, init_cluster
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

READ_TIMEOUT_MS = 2000


class WsRelay:
    """A websocket relay on 127.0.0.1 (own thread and loop): client <-> ``target``/v1/peer."""

    def __init__(self, port: int, target: str) -> None:
        self.port = port
        self.target = target
        self.sessions = 0
        self.to_target: list[bytes] = []  # messages forwarded client -> target, this session
        self._upstream: aiohttp.ClientWebSocketResponse | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "relay did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/v1/peer", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        down = web.WebSocketResponse(max_msg_size=0)
        await down.prepare(request)
        async with aiohttp.ClientSession() as http, http.ws_connect(
                self.target + "/v1/peer", max_msg_size=0) as up:
            self._upstream = up
            self.to_target = []
            self.sessions += 1

            async def pump_up() -> None:
                async for msg in down:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        self.to_target.append(bytes(msg.data))
                        await up.send_bytes(msg.data)
                await up.close()

            async def pump_down() -> None:
                async for msg in up:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        await down.send_bytes(msg.data)
                await down.close()

            await asyncio.gather(pump_up(), pump_down(), return_exceptions=True)
        return down

    def inject(self, data: bytes, wait_s: float = 30.0) -> None:
        """Send ``data`` to the target on the live upstream link, as if from the client
        (waiting up to ``wait_s`` for a live link: the real dialler may be redialling)."""
        deadline = time.monotonic() + wait_s
        while True:
            up = self._upstream
            if up is not None and not up.closed:
                break
            assert time.monotonic() < deadline, "no live relayed link"
            time.sleep(0.1)
        asyncio.run_coroutine_threadsafe(up.send_bytes(data), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class Sec:
    cluster: LocalCluster
    relay: WsRelay
    root: Path
    claims: dict[str, list[str]] = field(default_factory=dict)  # optician -> claim ids
    patients: list[tuple[str, str]] = field(default_factory=list)

    def url(self, i: int = 0) -> str:
        return self.cluster.urls[i]

    def key(self, org: str) -> KeyFile:
        return self.cluster.key(org)

    def validator_key(self, i: int) -> KeyFile:
        return KeyFile.load(self.root / "nodes" / f"v{i}" / "validator.key")

    def client(self, org: str, node: int = 0) -> NodeClient:
        return self.cluster.client(org, node)

    def openings_held(self, claim_id: str, node: int, payer: str = "mutuelle-a") -> list[str]:
        with self.client(payer, node) as cl:
            held = cl.claim(claim_id)["openings_held"]
        return list(held)


def _edit_toml(path: Path, edit: Any) -> None:
    doc = tomllib.loads(path.read_text())
    edit(doc)
    path.write_text(tomli_w.dumps(doc))


def _submit(c: LocalCluster, optician: str, insurer: str, n: int, seed: int,
            patients: list[tuple[str, str]]) -> list[str]:
    import random

    rng = random.Random(seed)
    builder = ClaimBuilder(c.key(optician), c.genesis())
    prepared = []
    for i in range(n):
        nir, bd = make_test_nir(rng), make_test_birth_date(rng)
        patients.append((nir, bd))
        prepared.append(builder.build(ClaimInput(f"claim {i}", insurer, nir, bd, "",
                                                 (("2210546", 1, 3049),))))
    with c.client(optician) as cl:
        cl.submit([p.item for p in prepared])
        rows = [{"claim_id": p.claim_id.hex(), "status": "pending"} for p in prepared]
        wait_committed(cl, rows, 60)  # a fresh cluster on a busy machine: links coming up
    assert [r["status"] for r in rows] == ["committed"] * n, rows
    return [p.claim_id.hex() for p in prepared]


@pytest.fixture(scope="module")
def sec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sec]:
    root = tmp_path_factory.mktemp("security") / "c"
    info = init_cluster(root, validators=4)
    relay_port = free_ports(1)[0]

    def via_relay(doc: dict[str, Any]) -> None:
        for p in doc["peers"]:
            if p["name"] == "v0":
                p["url"] = f"http://127.0.0.1:{relay_port}"

    def short_reads(doc: dict[str, Any]) -> None:
        doc.setdefault("limits", {})["http_read_timeout_ms"] = READ_TIMEOUT_MS

    _edit_toml(root / "nodes" / "v3" / "node.toml", via_relay)
    _edit_toml(root / "nodes" / "v0" / "node.toml", short_reads)
    relay = WsRelay(relay_port, info.nodes[0].api)
    relay.start()
    try:
        with LocalCluster(root, startup_timeout_s=60) as c:
            s = Sec(c, relay, root)
            s.claims["optic-paris"] = _submit(c, "optic-paris", "mutuelle-a", 4, 1, s.patients)
            s.claims["optic-lyon"] = _submit(c, "optic-lyon", "mutuelle-b", 2, 2, s.patients)
            # the tests read them on every node: each must hold the block and the openings
            # (gossiped apart from the block: either may come first)
            wait_until(lambda: all(
                len(s.openings_held(cid, node, payer)) == 2
                for optician, payer in (("optic-paris", "mutuelle-a"), ("optic-lyon", "mutuelle-b"))
                for cid in s.claims[optician] for node in range(4)),
                60, "every node to hold every claim and its openings")
            yield s
    finally:
        relay.stop()
