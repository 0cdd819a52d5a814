"""Peer links (``node/peers.py``): bounded outbound queues that drop (and count) the oldest
frame, and two real managers over real aiohttp servers moving frames both ways, including those
queued while the link was down. A manager of another chain never gets a link."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tpledger.ledger.keys import Signer
from tpledger.node.peers import FRAME_CONSENSUS, FRAME_TXS, PeerFrame, PeerManager

CHAIN = "tpledger-test"
GENESIS_HASH = b"\x11" * 32
SIGNERS = [Signer(bytes([i + 1]) * 32) for i in range(2)]
KEYS = [s.public for s in SIGNERS]

Received = list[tuple[int, int, bytes]]


def _manager(index: int, peer_url: str, received: Received, max_queue: int = 100,
             genesis_hash: bytes = GENESIS_HASH) -> PeerManager:
    other = 1 - index
    return PeerManager(chain_id=CHAIN, genesis_hash=genesis_hash, validator_keys=KEYS,
                       my_index=index, signer=SIGNERS[index],
                       peers=[(other, f"v{other}", peer_url)],
                       on_frame=lambda p, k, b: received.append((p, k, b)), max_queue=max_queue)


def test_a_full_queue_drops_the_oldest_frame_and_counts_it() -> None:
    pm = _manager(0, "http://127.0.0.1:9", [], max_queue=3)
    for i in range(5):
        pm.broadcast(FRAME_TXS, bytes([i]))
    assert [PeerFrame.decode(f).payload for f in pm.queues[1]] == [b"\x02", b"\x03", b"\x04"]
    assert pm.stats["frames_dropped_queue_full"] == 2


async def _serve(pm_box: list[PeerManager]) -> tuple[web.AppRunner, str]:
    async def peer(request: web.Request) -> web.StreamResponse:
        return await pm_box[0].handle_ws(request)

    app = web.Application()
    app.router.add_get("/v1/peer", peer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def _until(pred: object, timeout_s: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if pred():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


async def _pair(genesis_of_b: bytes) -> tuple[Received, Received, PeerManager, PeerManager]:
    got_a: Received = []
    got_b: Received = []
    box_a: list[PeerManager] = []
    box_b: list[PeerManager] = []
    runner_a, url_a = await _serve(box_a)
    runner_b, url_b = await _serve(box_b)
    a = _manager(0, url_b, got_a)
    b = _manager(1, url_a, got_b, genesis_hash=genesis_of_b)
    box_a.append(a)
    box_b.append(b)
    a.broadcast(FRAME_TXS, b"queued before the link")  # delivered once the link is up
    await a.start()
    await b.start()
    try:
        def linked() -> bool:
            return bool(a.outbound_up[1] and b.outbound_up[0])

        def refused() -> bool:
            return a.stats["handshakes_failed"] + b.stats["handshakes_failed"] > 0

        await _until(lambda: linked() or refused(), 20.0)  # generous: a busy machine
        b.broadcast(FRAME_CONSENSUS, b"vote")
        # linked: until both frames are in; refused: a while, to see that nothing gets through
        await _until(lambda: got_a and got_b, 20.0 if linked() else 1.0)
    finally:
        await a.stop()
        await b.stop()
        await runner_a.cleanup()
        await runner_b.cleanup()
    return got_a, got_b, a, b


def test_frames_flow_both_ways_over_authenticated_links() -> None:
    got_a, got_b, a, _ = asyncio.run(_pair(GENESIS_HASH))
    assert got_b == [(0, FRAME_TXS, b"queued before the link")]
    assert got_a == [(1, FRAME_CONSENSUS, b"vote")]
    assert a.stats["frames_sent"] == 1 and a.stats["handshakes_failed"] == 0


def test_a_peer_of_another_genesis_gets_no_link() -> None:
    got_a, got_b, a, b = asyncio.run(_pair(b"\x22" * 32))
    assert got_a == [] and got_b == []
    assert a.stats["handshakes_failed"] + b.stats["handshakes_failed"] > 0
