"""HTTP plumbing shared by the API's handlers (``node/api.py``, ``node/evidence.py``): JSON
errors with stable codes, the read-timeout and damaged-row middlewares, and strict parsing of
path and query arguments."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tpledger.ledger.errors import EncodingError, LedgerError, StoreCorruption
from tpledger.node.errors import ApiError, AuthError, NodeError

log = logging.getLogger("tpledger.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def hex32(value: str, what: str) -> bytes:
    try:
        b = bytes.fromhex(value)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise ApiError(400, "bad_id", f"{what} must be 64 hex characters")
    return b


def int_arg(request: web.Request, name: str, default: int | None = None) -> int:
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


def damage_middleware(report_damage: Callable[[StoreCorruption, str], None]) -> Any:
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
            report_damage(damage, "api")
            return error_response(503, "store_damaged", str(damage))

    return middleware


def height_arg(request: web.Request, top: int) -> int:
    raw = request.match_info["height"]
    if not raw.isdigit() or len(raw) > 20:
        raise ApiError(400, "bad_height", "height must be a whole number")
    h = int(raw)
    if not 1 <= h <= top:
        raise ApiError(404, "unknown_height", "no committed block at this height")
    return h
