"""The node's listening site and TLS contexts (``node/site.py``): plain http without [tls]; with
it, the site speaks TLS with the node certificate, a client trusting the consortium CA gets in,
one that does not is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tpledger.cli.cluster import init_cluster
from tpledger.cli.tls import make_ca, make_node_cert
from tpledger.node.config import NodeConfig, TlsConfig
from tpledger.node.site import ssl_client_context, ssl_server_context, start_site


def _cfg(tmp_path: Path) -> NodeConfig:
    info = init_cluster(tmp_path / "c", validators=1, base_port=0)
    return NodeConfig.load(info.nodes[0].config)


def _app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def _get(url: str, ctx: ssl.SSLContext | bool) -> str:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=ctx) as r:
        return await r.text()


def test_without_tls_the_site_is_plain_http_on_the_port_bound(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert ssl_client_context(cfg.tls) is None and ssl_server_context(cfg.tls) is None

    async def scenario() -> None:
        runner, port = await start_site(_app(), cfg)
        try:
            assert port != 0
            assert await _get(f"http://127.0.0.1:{port}/", True) == "hello"
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_with_tls_only_clients_trusting_the_ca_get_in(tmp_path: Path) -> None:
    ca_crt, ca_key = make_ca(tmp_path / "tls")
    crt, key = make_node_cert(tmp_path / "tls", "v0", ["127.0.0.1"], ca_crt, ca_key)
    tls = TlsConfig(cert=crt, key=key, ca=ca_crt)
    cfg = dataclasses.replace(_cfg(tmp_path), tls=tls)
    client = ssl_client_context(tls)
    assert client is not None

    async def scenario() -> None:
        runner, port = await start_site(_app(), cfg)
        try:
            assert await _get(f"https://127.0.0.1:{port}/", client) == "hello"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await _get(f"https://127.0.0.1:{port}/", True)  # the system CAs only
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
