"""A small synchronous HTTP client for the node API (``docs/api.md``).

One keep-alive connection per :class:`NodeClient`. Errors come back as :class:`ClientError`
carrying the node's stable error code; ``503`` answers are retried (bounded), honouring
``Retry-After``. Signed reads use :func:`node.auth.sign_request` with the client's key.
"""

from __future__ import annotations

import http.client
import os
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import Signer
from tpledger.node.auth import sign_request
from tpledger.node.submission import encode_submission

MAX_ANSWER_JSON_DEPTH = 16  # a node's answers are at most a few levels deep
SealedItem = tuple[str, bytes]
TxItem = tuple[bytes, Sequence[SealedItem]]


# The CA the running command trusts (``--ca``, ``TPLEDGER_CA`` or the profile's ``ca``), set by
# the ``--ca`` option of cli.options; a client's own ``ca_file`` wins over it.
CA_FILE: ContextVar[str | None] = ContextVar("tpledger_ca_file", default=None)
TLS_HINT = "give the consortium CA with --ca FILE or TPLEDGER_CA (e.g. c/tls/ca.crt)"


class ClientError(Exception):
    """An error answer from a node (``code`` is the node's stable code) or a transport failure.

    ``status`` is the HTTP status, or 0 when the node could not be reached.
    """

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _hex_id(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return value.hex()
    s = value.strip().lower()
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ClientError("bad_id", "an id is 64 hex characters", 0)
    return s


class NodeClient:
    """Client of one node. ``signer`` is needed for signed reads; ``chain_id`` is fetched from
    ``/v1/status`` when not given."""

    def __init__(
        self,
        url: str,
        signer: Signer | None = None,
        chain_id: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 8,
        max_retry_wait_s: float = 5.0,
        ca_file: str | Path | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ClientError("bad_url", f"not an http(s) node URL: {url!r}", 0)
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self.signer = signer
        self._chain_id = chain_id
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self._conn: http.client.HTTPConnection | None = None
        self.ca_file = ca_file

    # -- plumbing ----------------------------------------------------------------------------
    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout_s, context=self._ssl_context()
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout_s
                )
        return self._conn

    def _ssl_context(self) -> ssl.SSLContext:
        """Trust the consortium CA named by ``ca_file`` or ``$TPLEDGER_CA`` (else the system's)."""
        ca = self.ca_file or CA_FILE.get() or os.environ.get("TPLEDGER_CA") or None
        try:
            return ssl.create_default_context(cafile=str(ca) if ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise ClientError("bad_ca", f"cannot load the CA file {ca}: {exc}", 0) from None

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            cid = self.status().get("chain_id")
            if not isinstance(cid, str):
                raise ClientError("bad_response", "status has no chain_id", 0)
            self._chain_id = cid
        return self._chain_id

    def _send_once(
        self, method: str, path_qs: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; reconnects once if a kept-alive connection was closed by the node."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path_qs, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return resp.status, hdrs, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 1:
                    msg = f"{self.url}: connection lost ({type(exc).__name__})"
                    raise ClientError("unreachable", msg) from None
            except ssl.SSLCertVerificationError as exc:
                self.close()
                why = exc.verify_message or "certificate verify failed"
                raise ClientError("tls", f"{self.url}: TLS verification failed ({why}); "
                                  f"{TLS_HINT}") from None
            except TimeoutError:
                self.close()
                msg = f"{self.url}: no answer in {self.timeout_s:g} s"
                raise ClientError("timeout", msg) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise ClientError("unreachable", f"{self.url}: {reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def request(
        self,
        method: str,
        path_qs: str,
        body: bytes = b"",
        content_type: str | None = None,
        signed: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """Send a request; return (headers, body) of a 2xx answer or raise ClientError."""
        attempt = 0
        while True:
            headers = {"Accept": "application/json, application/octet-stream"}
            if content_type:
                headers["Content-Type"] = content_type
            if signed:
                if self.signer is None:
                    raise ClientError("no_key", "this request must be signed: give --key", 0)
                headers["Authorization"] = sign_request(
                    self.chain_id, self.signer, method, self._prefix + path_qs, body,
                    int(time.time() * 1000),
                )
            status, hdrs, data = self._send_once(method, path_qs, body, headers)
            if 200 <= status < 300:
                return hdrs, data
            code, message = _error_of(status, data)
            if status == 503 and attempt < self.max_retries:
                attempt += 1
                time.sleep(_retry_after(hdrs.get("retry-after"), attempt, self.max_retry_wait_s))
                continue
            raise ClientError(code, message, status)

    def get_json(self, path_qs: str, signed: bool = False) -> Any:
        _, data = self.request("GET", path_qs, signed=signed)
        return _json_body(data)

    # -- API -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        body = self.get_json("/v1/status")
        if not isinstance(body, dict):
            raise ClientError("bad_response", "status is not a JSON object", 0)
        return body

    def submit(self, items: Sequence[TxItem]) -> list[dict[str, Any]]:
        """POST a batch of ``(signed_tx_bytes, [(payer_org, sealed_bytes), ...])``."""
        _, data = self.request("POST", "/v1/txs", encode_submission(items),
                               content_type="application/msgpack")
        body = _json_body(data)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise ClientError("bad_response", "the node's answer does not match the batch", 0)
        return results

    def tx_status(self, tx_id: bytes | str, wait_ms: int = 0) -> dict[str, Any]:
        """The tx's status; with ``wait_ms``, the node answers a pending tx when a commit
        settles it, or after ``wait_ms`` (kept under this client's own timeout)."""
        wait_ms = max(0, min(wait_ms, 30_000, int((self.timeout_s - 2.0) * 1000)))
        qs = f"?wait_ms={wait_ms}" if wait_ms else ""
        body = self.get_json(f"/v1/txs/{_hex_id(tx_id)}{qs}", signed=True)
        if not isinstance(body, dict):
            raise ClientError("bad_response", "tx status is not a JSON object", 0)
        return body

    def claim(self, claim_id: bytes | str) -> dict[str, Any]:
        body = self.get_json(f"/v1/claims/{_hex_id(claim_id)}", signed=True)
        if not isinstance(body, dict):
            raise ClientError("bad_response", "claim state is not a JSON object", 0)
        return body

    def proof(self, claim_id: bytes | str, tree_size: int | None = None) -> bytes:
        qs = f"?tree_size={tree_size}" if tree_size is not None else ""
        _, data = self.request("GET", f"/v1/claims/{_hex_id(claim_id)}/proof{qs}", signed=True)
        return data

    def opening(self, claim_id: bytes | str) -> bytes:
        _, data = self.request("GET", f"/v1/claims/{_hex_id(claim_id)}/opening", signed=True)
        return data

    def checkpoint(self, height: int | None = None) -> bytes:
        qs = f"?height={height}" if height is not None else ""
        _, data = self.request("GET", f"/v1/checkpoint{qs}")
        return data

    def consistency(self, old_size: int, new_size: int) -> dict[str, Any]:
        body = self.get_json(f"/v1/consistency?old={old_size}&new={new_size}")
        if not isinstance(body, dict):
            raise ClientError("bad_response", "consistency answer is not a JSON object", 0)
        return body

    def claims_page(
        self, limit: int = 100, after: bytes | str | None = None, awaiting: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``GET /v1/claims``: claims visible to the signer, in claim-id order,
        and the cursor of the next page (None at the end)."""
        qs = f"?limit={int(limit)}"
        if after is not None:
            qs += f"&after={_hex_id(after)}"
        if awaiting is not None:
            qs += f"&awaiting={awaiting}"
        body = self.get_json(f"/v1/claims{qs}", signed=True)
        claims = body.get("claims") if isinstance(body, dict) else None
        if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
            raise ClientError("bad_response", "claims answer is not a list of objects", 0)
        nxt = body.get("next")
        if nxt is not None and not isinstance(nxt, str):
            raise ClientError("bad_response", "claims answer has a bad next cursor", 0)
        return claims, nxt

    def forget(self, claim_id: bytes | str) -> dict[str, Any]:
        """Ask the node to delete the claim's sealed openings on every node (payers only).

        The body is a :class:`node.erasure.ForgetRequest` signed with this client's key: every
        node checks it before erasing, and relays it, not its own word, to its peers."""
        from tpledger.node.erasure import sign_forget

        if self.signer is None:
            raise ClientError("no_key", "forgetting openings must be signed: give --key", 0)
        cid = _hex_id(claim_id)
        req = sign_forget(self.chain_id, self.signer, bytes.fromhex(cid), time.time_ns() // 10**6)
        _, data = self.request("POST", f"/v1/claims/{cid}/forget", req.encode(),
                               content_type="application/msgpack", signed=True)
        body = _json_body(data)
        if not isinstance(body, dict):
            raise ClientError("bad_response", "forget answer is not a JSON object", 0)
        return body

    def block(self, height: int) -> tuple[bytes, bytes]:
        """``GET /v1/blocks/{h}`` (signed): the block's and its certificate's bytes."""
        from tpledger.ledger.encoding import unpack
        from tpledger.ledger.errors import EncodingError

        _, data = self.request("GET", f"/v1/blocks/{int(height)}", signed=True)
        try:
            pair = unpack(data, 64 * 1024 * 1024)
        except EncodingError:
            raise ClientError("bad_response", "block answer is not msgpack", 0) from None
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, bytes) for x in pair)):
            raise ClientError("bad_response", "block answer is not [block, certificate]", 0)
        return pair[0], pair[1]


def _json_body(data: bytes) -> Any:
    try:
        return loads_bounded(data, len(data), MAX_ANSWER_JSON_DEPTH)
    except ValueError:
        raise ClientError("bad_response", "the node's answer is not JSON", 0) from None


def _error_of(status: int, data: bytes) -> tuple[str, str]:
    """The node's ``{"error": {"code", "message"}}``, or a generic code for other bodies."""
    try:
        err = loads_bounded(data, len(data), MAX_ANSWER_JSON_DEPTH)["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        code = f"http_{status}"
        message = data[:200].decode("utf-8", "replace").strip() or http.client.responses.get(
            status, "error"
        )
    return code, " ".join(message.split())


def _retry_after(value: str | None, attempt: int, cap_s: float) -> float:
    try:
        wait = float(value) if value is not None else 0.2 * 2**attempt
    except ValueError:
        wait = 0.2 * 2**attempt
    return max(0.05, min(wait, cap_s))
