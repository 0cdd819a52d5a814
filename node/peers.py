"""Validator-to-validator links: authenticated websockets carrying msgpack frames.

Every node dials every peer (``GET /v1/peer``, websocket) and sends only on its outbound links;
it receives on the links the others dial in. Both ends authenticate with their validator keys:

1. dialer → listener: ``Hello(chain_id, genesis_hash, dialer_index, dialer_nonce)``
2. listener → dialer: ``HelloAck(listener_index, listener_nonce, sig_listener(dialer_nonce))``
3. dialer → listener: ``HelloAuth(sig_dialer(listener_nonce))``

Signatures are of kind ``"peer-auth"`` over ``[genesis_hash, signer, other, nonce]``. Frames are
bounded in size; each outbound queue is bounded (oldest dropped and counted when full), and a lost
link is redialled with capped exponential backoff. Consensus tolerates the loss (it re-sends its
votes on timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
from aiohttp import web

from ledger.encoding import HASH32, SIG, U8, Bytes, Int, Record, Str, VarBytes, pack, spec
from ledger.errors import EncodingError
from ledger.keys import Signer, verify
from node.errors import PeerAuthError

log = logging.getLogger("tpledger.peers")

PEER_AUTH_KIND = "peer-auth"
MAX_FRAME_BYTES = 32 * 1024 * 1024
FRAME_CONSENSUS = 1
FRAME_TXS = 2
FRAME_FORGET = 3
HANDSHAKE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PeerFrame(Record):
    TAG: ClassVar[int] = 0x81
    MAX_BYTES: ClassVar[int] = MAX_FRAME_BYTES + 64
    kind: int = spec(Int(FRAME_CONSENSUS, FRAME_FORGET))
    payload: bytes = spec(VarBytes(MAX_FRAME_BYTES))


@dataclass(frozen=True)
class Hello(Record):
    TAG: ClassVar[int] = 0x82
    MAX_BYTES: ClassVar[int] = 512
    chain_id: str = spec(Str(64, 1))
    genesis_hash: bytes = spec(HASH32)
    index: int = spec(U8)
    nonce: bytes = spec(Bytes(32))


@dataclass(frozen=True)
class HelloAck(Record):
    TAG: ClassVar[int] = 0x83
    MAX_BYTES: ClassVar[int] = 512
    index: int = spec(U8)
    nonce: bytes = spec(Bytes(32))
    signature: bytes = spec(SIG)


@dataclass(frozen=True)
class HelloAuth(Record):
    TAG: ClassVar[int] = 0x84
    MAX_BYTES: ClassVar[int] = 512
    signature: bytes = spec(SIG)


def _auth_payload(genesis_hash: bytes, signer: int, other: int, nonce: bytes) -> bytes:
    return pack([genesis_hash, signer, other, nonce])


FrameHandler = Callable[[int, int, bytes], None]  # (peer_index, kind, payload)


class PeerManager:
    """Dials every peer, accepts their links, and moves frames both ways."""

    def __init__(
        self,
        *,
        chain_id: str,
        genesis_hash: bytes,
        validator_keys: Sequence[bytes],
        my_index: int,
        signer: Signer,
        peers: Sequence[tuple[int, str, str]],  # (index, name, url)
        on_frame: FrameHandler,
        max_queue: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.keys = tuple(validator_keys)
        self.my_index = my_index
        self.signer = signer
        self.peers = tuple(peers)
        self.on_frame = on_frame
        self.max_queue = max_queue
        self.ssl_context = ssl_context
        self.queues: dict[int, deque[bytes]] = {i: deque() for i, _, _ in self.peers}
        self.wakeups: dict[int, asyncio.Event] = {}
        self.outbound_up: dict[int, bool] = {i: False for i, _, _ in self.peers}
        self.inbound_up: dict[int, bool] = {i: False for i, _, _ in self.peers}
        self.stats = {"frames_sent": 0, "frames_received": 0, "frames_dropped_queue_full": 0,
                      "frames_rejected": 0, "handshakes_failed": 0}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._inbound: dict[int, web.WebSocketResponse] = {}
        self._closing = False

    def names(self) -> dict[int, str]:
        return {i: n for i, n, _ in self.peers}

    # -- sending -------------------------------------------------------------------------------
    def broadcast(self, kind: int, payload: bytes) -> None:
        frame = PeerFrame(kind, payload).encode()
        for i in self.queues:
            self._enqueue(i, frame)

    def send(self, index: int, kind: int, payload: bytes) -> None:
        if index in self.queues:
            self._enqueue(index, PeerFrame(kind, payload).encode())

    def _enqueue(self, index: int, frame: bytes) -> None:
        q = self.queues[index]
        if len(q) >= self.max_queue:
            q.popleft()
            self.stats["frames_dropped_queue_full"] += 1
        q.append(frame)
        ev = self.wakeups.get(index)
        if ev is not None:
            ev.set()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, connect=3.0, sock_connect=3.0)
        self._session = aiohttp.ClientSession(timeout=timeout)
        for index, name, url in self.peers:
            self.wakeups[index] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._dial_loop(index, name, url)))

    async def stop(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for ws in list(self._inbound.values()):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._session is not None:
            await self._session.close()

    # -- outbound ------------------------------------------------------------------------------
    async def _dial_loop(self, index: int, name: str, url: str) -> None:
        assert self._session is not None
        backoff_s = 0.05
        while not self._closing:
            try:
                async with self._session.ws_connect(
                    url + "/v1/peer", heartbeat=10.0, max_msg_size=MAX_FRAME_BYTES + 1024,
                    ssl=self.ssl_context if self.ssl_context is not None else True,
                ) as ws:
                    await asyncio.wait_for(self._dial_handshake(ws, index),
                                           HANDSHAKE_TIMEOUT_S)
                    self.outbound_up[index] = True
                    backoff_s = 0.05
                    log.info("peer %s: outbound link up", name)
                    await self._send_loop(ws, index)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, EncodingError, PeerAuthError,
                    ConnectionError) as exc:
                if self.outbound_up.get(index):
                    log.info("peer %s: outbound link down (%s)", name, type(exc).__name__)
            finally:
                self.outbound_up[index] = False
            await asyncio.sleep(backoff_s * (0.5 + random.random()))
            backoff_s = min(backoff_s * 2, 2.0)

    async def _dial_handshake(self, ws: aiohttp.ClientWebSocketResponse, index: int) -> None:
        nonce = os.urandom(32)
        await ws.send_bytes(Hello(self.chain_id, self.genesis_hash, self.my_index, nonce).encode())
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise PeerAuthError("handshake: no answer")
        ack = HelloAck.decode(msg.data)
        if ack.index != index or not verify(
            self.keys[index], self.chain_id, PEER_AUTH_KIND,
            _auth_payload(self.genesis_hash, index, self.my_index, nonce), ack.signature,
        ):
            self.stats["handshakes_failed"] += 1
            raise PeerAuthError("handshake: peer failed to prove its validator key")
        sig = self.signer.sign(
            self.chain_id, PEER_AUTH_KIND,
            _auth_payload(self.genesis_hash, self.my_index, index, ack.nonce),
        )
        await ws.send_bytes(HelloAuth(sig).encode())

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse, index: int) -> None:
        q = self.queues[index]
        ev = self.wakeups[index]
        while not ws.closed:
            while q:
                frame = q[0]
                await ws.send_bytes(frame)
                q.popleft()
                self.stats["frames_sent"] += 1
            ev.clear()
            if q:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), 5.0)

    # -- inbound -------------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_FRAME_BYTES + 1024)
        await ws.prepare(request)
        try:
            peer = await asyncio.wait_for(self._accept_handshake(ws), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, EncodingError, PeerAuthError, ConnectionError) as exc:
            self.stats["handshakes_failed"] += 1
            log.warning("inbound peer link refused: %s", exc if isinstance(
                exc, PeerAuthError) else type(exc).__name__)
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION)
            return ws
        old = self._inbound.get(peer)
        if old is not None:
            await old.close()
        self._inbound[peer] = ws
        self.inbound_up[peer] = True
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    self.stats["frames_rejected"] += 1
                    continue
                try:
                    frame = PeerFrame.decode(msg.data)
                except EncodingError:
                    self.stats["frames_rejected"] += 1
                    continue
                self.stats["frames_received"] += 1
                self.on_frame(peer, frame.kind, frame.payload)
        finally:
            if self._inbound.get(peer) is ws:
                del self._inbound[peer]
                self.inbound_up[peer] = False
        return ws

    async def _accept_handshake(self, ws: web.WebSocketResponse) -> int:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise PeerAuthError("handshake: expected a binary hello")
        hello = Hello.decode(msg.data)
        if hello.chain_id != self.chain_id or hello.genesis_hash != self.genesis_hash:
            raise PeerAuthError("handshake: peer is on another chain")
        if hello.index >= len(self.keys) or hello.index == self.my_index:
            raise PeerAuthError("handshake: unknown validator index")
        nonce = os.urandom(32)
        sig = self.signer.sign(
            self.chain_id, PEER_AUTH_KIND,
            _auth_payload(self.genesis_hash, self.my_index, hello.index, hello.nonce),
        )
        await ws.send_bytes(HelloAck(self.my_index, nonce, sig).encode())
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise PeerAuthError("handshake: expected a binary auth")
        auth = HelloAuth.decode(msg.data)
        if not verify(
            self.keys[hello.index], self.chain_id, PEER_AUTH_KIND,
            _auth_payload(self.genesis_hash, hello.index, self.my_index, nonce), auth.signature,
        ):
            raise PeerAuthError("handshake: peer failed to prove its validator key")
        return hello.index

