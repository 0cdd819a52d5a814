"""The node's listening HTTP(S) site and its TLS contexts (``[tls]`` in node.toml)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tpledger.node.config import NodeConfig, TlsConfig


def ssl_client_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """For dialling peers (and fetching from them): trust the consortium CA, present our
    certificate; None without a CA (plain http)."""
    if tls.ca is None:
        return None
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    if tls.cert and tls.key:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


def ssl_server_context(tls: TlsConfig) -> ssl.SSLContext | None:
    if tls.cert is None or tls.key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.ca is not None:
        # Peers present their consortium certificate; API clients (opticians' software)
        # may not have one, so it is optional here: peers are also authenticated by their
        # validator keys in the link handshake.
        ctx.load_verify_locations(cafile=str(tls.ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def start_site(app: web.Application, cfg: NodeConfig) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on the configured address; the runner and the port bound."""
    # keepalive_timeout also bounds the wait for a request's headers (aiohttp closes a
    # connection that has not delivered a whole request by then); bodies are bounded by
    # the API's read-timeout middleware.
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=cfg.limits.http_read_timeout_ms / 1000)
    await runner.setup()
    site = web.TCPSite(runner, cfg.listen_host, cfg.listen_port,
                       ssl_context=ssl_server_context(cfg.tls), reuse_address=True)
    return runner, await _start(runner, site, cfg.listen_port)


async def start_metrics_site(host: str, port: int,
                             render: Callable[[], str]) -> tuple[web.AppRunner, int]:
    """``[metrics] listen``: ``GET /metrics`` alone, plain http, on an address of its own
    (e.g. 127.0.0.1:9100 for a local Prometheus); the runner and the port bound."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=10)
    await runner.setup()
    return runner, await _start(runner, web.TCPSite(runner, host, port, reuse_address=True), port)


async def _start(runner: web.AppRunner, site: web.TCPSite, port: int) -> int:
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server: Any = site._server
    if server is not None and getattr(server, "sockets", None):
        port = int(server.sockets[0].getsockname()[1])
    return port
