"""Validator-to-validator links: websockets carrying msgpack frames, authenticated and
encrypted with the Noise XX handshake of :mod:`node.handshake`.

Every node dials every peer (``GET /v1/peer``, websocket) and sends only on its outbound links;
it receives on the links the others dial in. The first three websocket messages are the Noise
handshake (the dialer names the validator it expects; the listener learns who dialled from the
signed identity); every later message is one :class:`PeerFrame`, encrypted with the link's
Noise transport key. A message that fails authentication drops the link. Frames are bounded in
size; each outbound queue is bounded (oldest dropped and counted when full), and a lost link is
redialled with capped exponential backoff. Consensus tolerates the loss (it re-sends its votes
on timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
from aiohttp import web

from tpledger.ledger.encoding import Int, Record, VarBytes, spec
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.keys import Signer
from tpledger.ledger.limits import MAX_PEER_FRAME_BYTES
from tpledger.node.errors import PeerAuthError
from tpledger.node.handshake import (
    MAX_NOISE_MESSAGE_BYTES,
    Handshake,
    NoiseLink,
    StaticIdentity,
)

log = logging.getLogger("tpledger.peers")

MAX_FRAME_BYTES = MAX_PEER_FRAME_BYTES  # ledger/limits.py: one source for every size limit
FRAME_CONSENSUS = 1
FRAME_TXS = 2
FRAME_FORGET = 3
HANDSHAKE_TIMEOUT_S = 5.0
# an encrypted frame: the PeerFrame record plus one AEAD tag per Noise message of it
MAX_WIRE_FRAME_BYTES = (MAX_FRAME_BYTES + 1024) * MAX_NOISE_MESSAGE_BYTES // (
    MAX_NOISE_MESSAGE_BYTES - 16) + MAX_NOISE_MESSAGE_BYTES


@dataclass(frozen=True)
class PeerFrame(Record):
    TAG: ClassVar[int] = 0x81
    MAX_BYTES: ClassVar[int] = MAX_FRAME_BYTES + 64
    kind: int = spec(Int(FRAME_CONSENSUS, FRAME_FORGET))
    payload: bytes = spec(VarBytes(MAX_FRAME_BYTES))


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
        self.identity = StaticIdentity(chain_id, my_index, signer)
        self.stats = {"frames_sent": 0, "frames_received": 0, "frames_dropped_queue_full": 0,
                      "frames_rejected": 0, "frames_unauthentic": 0, "handshakes_failed": 0}
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
                    url + "/v1/peer", heartbeat=10.0, max_msg_size=MAX_WIRE_FRAME_BYTES,
                    ssl=self.ssl_context if self.ssl_context is not None else True,
                ) as ws:
                    link = await asyncio.wait_for(self._dial_handshake(ws, index),
                                                  HANDSHAKE_TIMEOUT_S)
                    self.outbound_up[index] = True
                    backoff_s = 0.05
                    log.info("peer %s: outbound link up", name)
                    await self._send_loop(ws, link)
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

    def _handshake(self, expected_peer: int | None) -> Handshake:
        return Handshake(initiator=expected_peer is not None, chain_id=self.chain_id,
                         genesis_hash=self.genesis_hash, validator_keys=self.keys,
                         identity=self.identity, expected_peer=expected_peer)

    async def _dial_handshake(self, ws: aiohttp.ClientWebSocketResponse, index: int) -> NoiseLink:
        hs = self._handshake(expected_peer=index)
        await ws.send_bytes(hs.message1())
        try:
            hs.read_message2(await _receive_binary(ws))
        except PeerAuthError:
            self.stats["handshakes_failed"] += 1
            raise
        await ws.send_bytes(hs.message3())
        return hs.link()

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse, link: NoiseLink) -> None:
        q = self.queues[link.peer_index]
        ev = self.wakeups[link.peer_index]
        while not ws.closed:
            while q:
                frame = q[0]
                await ws.send_bytes(link.seal(frame))
                q.popleft()
                self.stats["frames_sent"] += 1
            ev.clear()
            if q:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), 5.0)

    # -- inbound -------------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_WIRE_FRAME_BYTES)
        await ws.prepare(request)
        try:
            link = await asyncio.wait_for(self._accept_handshake(ws), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, EncodingError, PeerAuthError, ConnectionError) as exc:
            self.stats["handshakes_failed"] += 1
            log.warning("inbound peer link refused: %s", exc if isinstance(
                exc, PeerAuthError) else type(exc).__name__)
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION)
            return ws
        peer = link.peer_index
        old = self._inbound.get(peer)
        if old is not None:
            await old.close()
        self._inbound[peer] = ws
        self.inbound_up[peer] = True
        try:
            await self._receive_loop(ws, link)
        finally:
            if self._inbound.get(peer) is ws:
                del self._inbound[peer]
                self.inbound_up[peer] = False
        return ws

    async def _receive_loop(self, ws: web.WebSocketResponse, link: NoiseLink) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                self.stats["frames_rejected"] += 1
                continue
            try:
                plain = link.open(msg.data)
            except PeerAuthError:
                # not from the peer that authenticated (injected, or out of step): drop the link
                self.stats["frames_unauthentic"] += 1
                log.warning("peer %d: a frame failed authentication; link dropped",
                            link.peer_index)
                await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION)
                return
            try:
                frame = PeerFrame.decode(plain)
            except EncodingError:
                self.stats["frames_rejected"] += 1
                continue
            self.stats["frames_received"] += 1
            self.on_frame(link.peer_index, frame.kind, frame.payload)

    async def _accept_handshake(self, ws: web.WebSocketResponse) -> NoiseLink:
        hs = self._handshake(expected_peer=None)
        hs.read_message1(await _receive_binary(ws))
        await ws.send_bytes(hs.message2())
        hs.read_message3(await _receive_binary(ws))
        return hs.link()


async def _receive_binary(ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> bytes:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise PeerAuthError("handshake: expected a binary message")
    return bytes(msg.data)
