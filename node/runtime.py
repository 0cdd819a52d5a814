"""The validator node: one asyncio loop around the store, the consensus machine and the peers.

Everything that touches consensus or the store runs on the loop thread, synchronously, one
event at a time, so there are no races between a commit, a catch-up apply and a proposal.
A ``Ready`` from consensus is handled in this order:

1. commits: each committed block is applied to the LMDB store (one write transaction);
2. persist: the consensus state is written to the store's meta area (fsync);
3. messages: only now are votes and proposals handed to the peer links;
4. timers, evidence, catch-up and payload requests.

So a vote never leaves before the state forbidding a conflicting vote is on disk, and the
consensus state on disk is never ahead of the blocks applied by more than the current height.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from consensus import Commit, Consensus, ConsensusConfig, Ready, Timer
from ledger.blocks import Block
from ledger.encoding import pack, sha256, tagged_hash, unpack
from ledger.errors import EncodingError, LedgerError
from ledger.genesis import Genesis
from ledger.keys import KeyFile
from ledger.limits import BLOCK_ENVELOPE_BYTES
from ledger.lpp import LppTable
from ledger.patient import sealed_digest
from ledger.store import Store
from ledger.tx import Claim, SignedTx
from ledger.votes import CommitCertificate
from node.auth import sign_request
from node.config import NodeConfig
from node.errors import ConfigError, NodeError
from node.mempool import Mempool, MempoolFull, PendingTx
from node.metrics import Metrics
from node.openings import MAX_SEALED_BYTES, OpeningStore
from node.peers import FRAME_CONSENSUS, FRAME_FORGET, FRAME_TXS, PeerManager

log = logging.getLogger("tpledger.node")

CONSENSUS_META_KEY = b"consensus-state"
MAX_REJECTED_REMEMBERED = 100_000
MAX_VERIFIED_REMEMBERED = 500_000
MAX_VALIDATED_REMEMBERED = 64
MAX_GOSSIP_ITEMS = 5_000
CATCH_UP_BATCH = 64
RETENTION_CHECK_S = 60.0
MAX_EVIDENCE_KEPT = 1000  # in memory for /metrics and operators; each is also logged


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TxRejected(NodeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Checked(NamedTuple):
    """What this node knows of one payload of the next height."""

    block_id: bytes | None  # None: not a valid next block
    block: Block | None  # decoded, when valid
    tx_ids: list[bytes]  # of block.txs, when valid


_INVALID = _Checked(None, None, [])


class Node:
    """A validator: store + consensus + mempool + peers + API."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.genesis = Genesis.load(cfg.genesis)
        self.chain_id = self.genesis.chain_id
        self.genesis_hash = self.genesis.hash()
        self.key = KeyFile.load(cfg.validator_key)
        keys = self.genesis.validator_keys
        if self.key.signer.public not in keys:
            raise ConfigError(f"{cfg.validator_key}: this key is not a validator in genesis")
        self.index = keys.index(self.key.signer.public)
        if self.genesis.validators[self.index].name != cfg.name:
            raise ConfigError(
                f"{cfg.path}: name {cfg.name!r} does not match genesis validator "
                f"{self.genesis.validators[self.index].name!r} for this key"
            )
        self.lpp = LppTable.load(cfg.lpp_table) if cfg.lpp_table else LppTable.default()
        if self.lpp.digest() != self.genesis.lpp_table_digest:
            raise ConfigError("the LPP table does not match the digest in genesis")
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store.open(cfg.data_dir / "ledger", self.genesis, self.lpp,
                                map_size=cfg.limits.store_map_size_mb * 1024 * 1024)
        self.openings = OpeningStore(cfg.data_dir / "openings")
        self.mempool = Mempool(cfg.limits.mempool_max_txs)
        self.metrics = Metrics()
        self.rejected: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self.verified: OrderedDict[bytes, None] = OrderedDict()
        # Payloads of the next height validated or built here, by payload hash: the verdict,
        # and for a valid one its decoded block, reused when it is committed.
        self.validated: OrderedDict[bytes, _Checked] = OrderedDict()
        self.evidence: list[Any] = []
        self.consensus: Consensus | None = None
        self.peers: PeerManager | None = None
        self.runner: web.AppRunner | None = None
        self.port: int = cfg.listen_port
        self._timers: set[asyncio.TimerHandle] = set()
        self._payload_wanted: tuple[int, int] | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._catch_up_target = 0
        self._catch_up_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._fatal: BaseException | None = None
        self.commit_event = asyncio.Event()
        self.started_ms = now_ms()

    # ------------------------------------------------------------------------------------------
    # lifecycle
    def _ssl_client(self) -> ssl.SSLContext | None:
        tls = self.cfg.tls
        if tls.ca is None:
            return None
        ctx = ssl.create_default_context(cafile=str(tls.ca))
        if tls.cert and tls.key:
            ctx.load_cert_chain(str(tls.cert), str(tls.key))
        return ctx

    def _ssl_server(self) -> ssl.SSLContext | None:
        tls = self.cfg.tls
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

    async def start(self) -> None:
        from node.api import build_app

        cc = self.cfg.consensus
        config = ConsensusConfig(
            propose_base_ms=cc.timeout_propose_ms,
            propose_delta_ms=cc.timeout_delta_ms,
            prevote_base_ms=cc.timeout_prevote_ms,
            prevote_delta_ms=cc.timeout_delta_ms,
            precommit_base_ms=cc.timeout_precommit_ms,
            precommit_delta_ms=cc.timeout_delta_ms,
            timeout_commit_ms=cc.timeout_commit_ms,
            max_payload_bytes=self.genesis.params.max_block_bytes + BLOCK_ENVELOPE_BYTES,
        )
        self.consensus = Consensus(
            chain_id=self.chain_id,
            validator_keys=self.genesis.validator_keys,
            my_index=self.index,
            signer=self.key.signer,
            config=config,
            validate=self._validate,
            height=self.store.height + 1,
            persisted=self.store.meta_get(CONSENSUS_META_KEY),
            last_cert=self.store.certificate(self.store.height) if self.store.height else None,
        )
        client_ssl = self._ssl_client()
        by_name = {v.name: i for i, v in enumerate(self.genesis.validators)}
        peers = []
        for p in self.cfg.peers:
            if p.name not in by_name:
                raise ConfigError(f"{self.cfg.path}: peer {p.name!r} is not a genesis validator")
            peers.append((by_name[p.name], p.name, p.url))
        self.peers = PeerManager(
            chain_id=self.chain_id, genesis_hash=self.genesis_hash,
            validator_keys=self.genesis.validator_keys, my_index=self.index,
            signer=self.key.signer, peers=peers, on_frame=self._on_frame,
            max_queue=self.cfg.limits.max_peer_queue, ssl_context=client_ssl,
        )
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(ssl=client_ssl if client_ssl is not None else True),
        )
        app = build_app(self)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.cfg.listen_host, self.cfg.listen_port,
                           ssl_context=self._ssl_server(), reuse_address=True)
        await site.start()
        server: Any = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = int(server.sockets[0].getsockname()[1])
        await self.peers.start()
        self._handle(self.consensus.start())
        self._request_catch_up(0)
        self._retention_task = asyncio.create_task(self._retention_loop())
        log.info("node %s (validator %d) up on %s:%d at height %d", self.cfg.name, self.index,
                 self.cfg.listen_host, self.port, self.store.height)

    async def stop(self) -> None:
        self._stopping = True
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        for task in (self._catch_up_task, self._retention_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.peers is not None:
            await self.peers.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self._http is not None:
            await self._http.close()
        height = self.store.height
        self.store.close()
        self.openings.close()
        log.info("node %s stopped at height %d", self.cfg.name, height)

    # ------------------------------------------------------------------------------------------
    # consensus plumbing
    def _handle(self, ready: Ready) -> None:
        """Carry out one Ready batch: commits, persist, send, timers, requests."""
        if self._stopping:
            return
        try:
            for c in ready.commits:
                self._apply_commit(c)
            if ready.persist is not None:
                self.store.meta_put(CONSENSUS_META_KEY, ready.persist)
            assert self.peers is not None
            for msg in ready.messages:
                self.peers.broadcast(FRAME_CONSENSUS, msg)
            for t in ready.timers:
                self._set_timer(t)
            for ev in ready.evidence:
                if len(self.evidence) < MAX_EVIDENCE_KEPT:
                    self.evidence.append(ev)
                self.metrics.inc("evidence_total", help_text="conflicting votes seen")
                log.warning("evidence of equivocation by validator %d (%s)", ev.validator,
                            type(ev).__name__)
            if ready.catch_up is not None:
                self._request_catch_up(ready.catch_up)
            if ready.need_payload is not None:
                self._payload_wanted = ready.need_payload
                self._maybe_propose(force=False)
        except BaseException as exc:  # a broken invariant or a disk failure: stop the process
            self._fatal = exc
            log.critical("fatal error in consensus handling: %r", exc)
            raise

    def _maybe_propose(self, force: bool) -> None:
        """Answer a pending payload request: at once when txs wait, else after the idle
        interval (empty blocks keep heights and checkpoints moving, but not 10 times a second).
        """
        if self._payload_wanted is None or self.consensus is None or self._stopping:
            return
        h, r = self._payload_wanted
        if (h, r) != (self.consensus.height, self.consensus.round):
            self._payload_wanted = None
            return
        if not force and len(self.mempool) == 0:
            if self._idle_handle is None:
                delay_s = self.cfg.consensus.empty_block_interval_ms / 1000.0
                self._idle_handle = asyncio.get_running_loop().call_later(
                    delay_s, self._idle_fire)
            return
        self._payload_wanted = None
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        payload = self._build_payload(h)
        if payload is not None:
            self._handle(self.consensus.on_payload(h, r, payload))

    def _idle_fire(self) -> None:
        self._idle_handle = None
        self._maybe_propose(force=True)

    def _set_timer(self, t: Timer) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            if self.consensus is not None and not self._stopping:
                self._handle(self.consensus.on_timeout(t))

        handle = loop.call_later(t.delay_ms / 1000.0, fire)
        self._timers.add(handle)

    def _on_frame(self, peer: int, kind: int, payload: bytes) -> None:
        if self.consensus is None or self._stopping:
            return
        if kind == FRAME_CONSENSUS:
            self._handle(self.consensus.on_message(payload))
        elif kind == FRAME_TXS:
            self._on_gossip(payload)
        elif kind == FRAME_FORGET and len(payload) == 32:
            self.forget_openings(payload, broadcast=False)

    # ------------------------------------------------------------------------------------------
    # blocks
    def _verify_signatures(self, txs: list[SignedTx], ids: list[bytes]) -> bool:
        for stx, tx_id in zip(txs, ids, strict=True):
            if tx_id in self.verified:
                continue
            if not stx.verify(self.chain_id):
                return False
            self._remember_verified([tx_id])
        return True

    def _remember_verified(self, tx_ids: list[bytes]) -> None:
        self.verified.update(dict.fromkeys(tx_ids))
        while len(self.verified) > MAX_VERIFIED_REMEMBERED:
            self.verified.popitem(last=False)

    def _validate(self, height: int, payload: bytes) -> bytes | None:
        """Consensus validity callback: the block id if ``payload`` is a valid next block."""
        key = sha256(payload)
        seen = self.validated.get(key)
        if seen is not None:
            return seen.block_id
        result: bytes | None = None
        block: Block | None = None
        ids: list[bytes] = []
        try:
            block = Block.decode(payload)
            hdr = block.header
            too_new = hdr.time_ms > now_ms() + self.genesis.params.max_clock_drift_ms
            if height != self.store.height + 1 or hdr.height != height or too_new:
                result = None
            else:
                txs = []
                for raw in block.txs:
                    tx_id = tagged_hash("tpledger/tx", raw)
                    pending = self.mempool.get(tx_id)
                    # Reuse the mempool's decoded tx when the bytes are the same.
                    if pending is not None and pending.raw == raw:
                        txs.append(pending.stx)
                    else:
                        stx = SignedTx.decode(raw)
                        stx.__dict__["_tx_id"] = tx_id  # raw is canonical: its id is tx_id
                        txs.append(stx)
                    ids.append(tx_id)
                if self._verify_signatures(txs, ids):
                    self.store.check_block(block, check_signatures=False, decoded=txs)
                    result = hdr.hash()
        except (LedgerError, EncodingError) as exc:
            log.info("invalid block proposed at height %d: %s", height, exc)
            self.metrics.inc("invalid_proposals_total")
            result = None
        if height == self.store.height + 1:
            self._remember_checked(key, _Checked(result, block, ids) if result else _INVALID)
        return result

    def _remember_checked(self, key: bytes, checked: _Checked) -> None:
        self.validated[key] = checked
        while len(self.validated) > MAX_VALIDATED_REMEMBERED:
            self.validated.popitem(last=False)

    def _build_payload(self, height: int) -> bytes | None:
        if height != self.store.height + 1:
            return None
        params = self.genesis.params
        pending = self.mempool.take(params.max_block_txs, params.max_block_bytes - 4096)
        prev_time = self.store.header(self.store.height).time_ms if self.store.height else 0
        time_ms = max(now_ms(), prev_time + 1)
        block, rejected = self.store.build_block(
            [p.stx for p in pending], self.index, time_ms,
            max_txs=params.max_block_txs, max_bytes=params.max_block_bytes - 4096,
            check_signatures=False,  # every mempool tx was verified at admission
        )
        for tx_id, err in rejected:
            self._reject(tx_id, err.code, err.message)
        self.mempool.remove([tx_id for tx_id, _ in rejected])
        payload = block.encode()
        # Valid by construction (signatures checked at admission, rules applied by the
        # builder): the validity callback need not replay it, and apply_block reuses the
        # builder's dry run.
        id_of = {p.raw: p.tx_id for p in pending}
        self._remember_checked(sha256(payload), _Checked(
            block.header.hash(), block, [id_of[raw] for raw in block.txs]))
        return payload

    def _apply_commit(self, c: Commit) -> None:
        if c.height <= self.store.height:
            have = self.store.header(c.height).hash()
            if have != c.value_id:
                raise RuntimeError(f"FORK: height {c.height} committed twice with different blocks")
            return
        if c.height != self.store.height + 1:
            # We are behind (our consensus saw a quorum for a height we lack): catch up.
            self._request_catch_up(c.height)
            return
        known = self.validated.get(sha256(c.payload))
        if known is not None and known.block is not None:
            block, ids = known.block, known.tx_ids
        else:
            block, ids = Block.decode(c.payload), None
        self.store.apply_block(block, c.certificate, check_signatures=False)
        self._after_apply(block, ids)

    def _after_apply(self, block: Block, ids: list[bytes] | None = None) -> None:
        if ids is None:
            ids = [tagged_hash("tpledger/tx", raw) for raw in block.txs]  # raw is canonical
        removed = self.mempool.remove(ids)
        now_ms_mono = time.monotonic() * 1000.0
        self.metrics.observe_commit_latencies(
            [max(0.0, (now_ms_mono - p.received_ms) / 1000.0) for p in removed])
        hdr = block.header
        if removed:  # openings stored at the claims' places in the log
            position = {tx_id: pos for pos, tx_id in enumerate(ids)}
            self.openings.put_many([(hdr.height, position[p.tx_id], org, sealed)
                                    for p in removed for org, sealed in p.sealed])
        self.metrics.set("height", hdr.height, "last committed height")
        self.metrics.set("tree_size", hdr.tree_size, "leaves in the Merkle log")
        self.metrics.inc("committed_txs_total", len(block.txs), "transactions committed")
        self.metrics.inc("committed_blocks_total", 1, "blocks committed")
        self.validated.clear()
        self.commit_event.set()
        self.commit_event = asyncio.Event()

    # ------------------------------------------------------------------------------------------
    # catch-up
    def _request_catch_up(self, height: int) -> None:
        self._catch_up_target = max(self._catch_up_target, height)
        if self._catch_up_task is None or self._catch_up_task.done():
            self._catch_up_task = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Fetch certified blocks we lack from peers, verify and apply them, then rejoin."""
        assert self._http is not None
        try:
            for _ in range(1000):
                best_url, best_height = None, self.store.height
                for p in self.cfg.peers:
                    try:
                        async with self._http.get(p.url + "/v1/status",
                                                  timeout=aiohttp.ClientTimeout(total=3)) as r:
                            if r.status == 200:
                                h = int((await r.json())["height"])
                                if h > best_height:
                                    best_url, best_height = p.url, h
                    except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
                        continue
                if best_url is None:
                    return
                applied = 0
                for h in range(self.store.height + 1,
                               min(best_height, self.store.height + CATCH_UP_BATCH) + 1):
                    block, cert = await self._fetch_block(best_url, h)
                    if self._stopping:
                        return
                    if h != self.store.height + 1:
                        continue  # consensus applied it meanwhile
                    self.store.apply_block(block, cert, check_signatures=True)
                    self._after_apply(block)
                    applied += 1
                if applied and self.consensus is not None:
                    log.info("caught up to height %d", self.store.height)
                    self.metrics.inc("catch_up_blocks_total", applied)
                    self._handle(self.consensus.advance_to(self.store.height + 1))
                if self.store.height >= best_height:
                    return
        except (aiohttp.ClientError, OSError, TimeoutError, LedgerError, NodeError) as exc:
            log.warning("catch-up stopped: %s", exc)

    async def _fetch_block(self, url: str, height: int) -> tuple[Block, CommitCertificate]:
        assert self._http is not None
        path = f"/v1/blocks/{height}"
        auth = sign_request(self.chain_id, self.key.signer, "GET", path, b"", now_ms())
        async with self._http.get(url + path, headers={"Authorization": auth}) as r:
            if r.status != 200:
                raise NodeError(f"peer answered {r.status} for block {height}")
            body = await r.read()
        pair = unpack(body, self.genesis.params.max_block_bytes + 64 * 1024)
        if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(x, bytes) for x in pair)):
            raise NodeError("malformed block answer")
        return Block.decode(pair[0]), CommitCertificate.decode(pair[1])

    # ------------------------------------------------------------------------------------------
    # transactions
    def _reject(self, tx_id: bytes, code: str, message: str) -> None:
        self.rejected[tx_id] = (code, message)
        while len(self.rejected) > MAX_REJECTED_REMEMBERED:
            self.rejected.popitem(last=False)
        self.metrics.inc(f'rejected_txs_total{{code="{code}"}}')

    def _store_late_openings(
        self, stx: SignedTx, tx_id: bytes, sealed: list[tuple[str, bytes]]
    ) -> None:
        try:
            checked = self._check_sealed(stx, sealed)
        except (TxRejected, EncodingError):
            return
        loc = self.claim_location(tx_id)
        if loc is None:
            return
        held = set(self.openings.orgs(loc))
        self.openings.put_many([(*loc, org, blob) for org, blob in checked if org not in held])

    def _check_sealed(
        self, stx: SignedTx, sealed: list[tuple[str, bytes]]
    ) -> tuple[tuple[str, bytes], ...]:
        if not sealed:
            return ()
        body = stx.parse()
        if not isinstance(body, Claim):
            raise TxRejected("unexpected_sealed", "only claims carry sealed openings")
        refs = body.sealed  # at most MAX_SEALED: a scan beats building a dict per claim
        for org, blob in sealed:
            digest = sealed_digest(blob)
            for r in refs:
                if r.sealed_digest == digest and r.payer == org:
                    break
            else:
                raise TxRejected("sealed_mismatch",
                                 "a sealed opening does not match the claim's digest for its payer")
        return tuple(sealed)

    def admit_batch(
        self, items: list[tuple[bytes, list[tuple[str, bytes]]]], gossip: bool,
        report: bool = True,
    ) -> list[dict[str, Any]]:
        """Check submitted txs and add the good ones to the mempool; one result per item
        (none at all when not ``report``: txs gossiped by a peer answer nobody).

        Per tx: strict decoding and size, no duplicate (mempool or ledger), a valid signature
        (verified once per node: cached by tx id), the rules against the current state (the
        whole batch in one read transaction), sealed openings matching the signed digests,
        room in the mempool. Accepted txs are gossiped to the peers when ``gossip``.
        """
        results: list[dict[str, Any] | None] = [None] * len(items)
        staged: list[tuple[int, SignedTx, bytes]] = []

        def reject(i: int, tx_id: bytes | None, code: str, message: str) -> None:
            results[i] = {"tx_id": tx_id.hex() if tx_id else None, "status": "rejected",
                          "code": code, "message": message}

        for i, (raw, _) in enumerate(items):
            try:
                stx = SignedTx.decode(raw)
            except EncodingError as exc:
                reject(i, None, "malformed_tx", str(exc))
                continue
            tx_id = tagged_hash("tpledger/tx", raw)  # == stx.tx_id(): raw is canonical
            stx.__dict__["_tx_id"] = tx_id  # so the rules do not hash it again
            if len(raw) > self.genesis.params.max_tx_bytes:
                reject(i, tx_id, "tx_too_large", "transaction exceeds max_tx_bytes")
            elif tx_id in self.mempool:
                results[i] = {"tx_id": tx_id.hex(), "status": "pending"}
            elif tx_id not in self.verified and not stx.verify(self.chain_id):
                reject(i, tx_id, "bad_signature", "transaction signature does not verify")
            else:
                staged.append((i, stx, tx_id))
        self._remember_verified([tx_id for _, _, tx_id in staged])
        verdicts = self.store.check_txs([stx for _, stx, _ in staged], check_signatures=False)
        accepted = 0
        gossip_items: list[list[Any]] = []
        now_ms_mono = int(time.monotonic() * 1000)
        for (i, stx, tx_id), err in zip(staged, verdicts, strict=True):
            raw, sealed = items[i]
            if err is not None:
                if err.code == "duplicate_tx" and sealed:
                    # The block may have reached us before the gossip carrying its openings:
                    # keep the openings (checked against the signed digests) we lack.
                    self._store_late_openings(stx, tx_id, sealed)
                reject(i, tx_id, err.code, err.message)
                continue
            try:
                sealed_t = self._check_sealed(stx, sealed)
                if tx_id not in self.mempool:
                    self.mempool.add(PendingTx(tx_id, raw, stx, sealed_t, now_ms_mono))
            except TxRejected as exc:
                reject(i, tx_id, exc.code, exc.message)
                continue
            except MempoolFull:
                reject(i, tx_id, "mempool_full", "mempool is full; retry later")
                continue
            self.rejected.pop(tx_id, None)
            if report:
                results[i] = {"tx_id": tx_id.hex(), "status": "pending"}
            accepted += 1
            if gossip:
                gossip_items.append([raw, [[o, b] for o, b in sealed]])
        if accepted:
            self.metrics.inc("admitted_txs_total", accepted,
                             "transactions admitted to the mempool")
        if accepted and self._payload_wanted is not None:
            self._maybe_propose(force=False)
        if gossip_items and self.peers is not None:
            for j in range(0, len(gossip_items), MAX_GOSSIP_ITEMS):
                self.peers.broadcast(FRAME_TXS, pack(gossip_items[j:j + MAX_GOSSIP_ITEMS]))
        self.metrics.set("mempool_txs", len(self.mempool), "transactions waiting in the mempool")
        if not report:
            return []
        out = [r for r in results if r is not None]
        assert len(out) == len(items), "every submitted item gets exactly one result"
        return out

    def _on_gossip(self, payload: bytes) -> None:
        try:
            items = parse_submission(payload, MAX_GOSSIP_ITEMS)
        except (EncodingError, NodeError):
            self.metrics.inc("gossip_rejected_total")
            return
        self.admit_batch(items, gossip=False, report=False)

    def tx_status(self, tx_id: bytes) -> dict[str, Any]:
        loc = self.store.tx_location(tx_id)
        if loc is not None:
            return {"tx_id": tx_id.hex(), "status": "committed", "height": loc.height,
                    "leaf_index": loc.leaf_index}
        if tx_id in self.mempool:
            return {"tx_id": tx_id.hex(), "status": "pending"}
        if tx_id in self.rejected:
            code, msg = self.rejected[tx_id]
            return {"tx_id": tx_id.hex(), "status": "rejected", "code": code, "message": msg}
        return {"tx_id": tx_id.hex(), "status": "unknown"}

    async def fetch_opening(self, claim_id: bytes, org: str, path_qs: str,
                            authorization: str) -> bytes | None:
        """Get ``org``'s sealed opening of a committed claim from a peer that holds it,
        forwarding the payer's signed request; keep it if it matches the signed digest."""
        loc = self.claim_location(claim_id)
        if self._http is None or loc is None or self.openings.is_forgotten(loc):
            return None
        stx = self.store.tx(claim_id)
        if stx is None:
            return None
        for peer in self.cfg.peers:
            try:
                async with self._http.get(
                    peer.url + path_qs, timeout=aiohttp.ClientTimeout(total=5),
                    headers={"Authorization": authorization, "X-Tpledger-Relayed": "1"},
                ) as r:
                    if r.status != 200:
                        continue
                    blob = await r.content.read(MAX_SEALED_BYTES + 1)
            except (aiohttp.ClientError, OSError, TimeoutError):
                continue
            try:
                checked = self._check_sealed(stx, [(org, blob)])
            except (TxRejected, EncodingError):
                log.warning("peer %s served an opening that does not match its digest", peer.name)
                continue
            self.openings.put_many([(*loc, org, checked[0][1])])
            self.metrics.inc("openings_fetched_total", 1, "sealed openings fetched from peers")
            return checked[0][1]
        return None

    def forget_openings(self, claim_id: bytes, broadcast: bool) -> int:
        """Delete this claim's sealed openings here (and ask the peers to do the same)."""
        loc = self.claim_location(claim_id)
        n = self.openings.forget(loc) if loc is not None else 0
        if broadcast and self.peers is not None:
            self.peers.broadcast(FRAME_FORGET, claim_id)
        self.metrics.inc("openings_forgotten_total", n)
        return n

    def claim_location(self, claim_id: bytes) -> tuple[int, int] | None:
        """(height, position) of a committed claim: where its openings are kept."""
        loc = self.store.tx_location(claim_id)
        return None if loc is None else (loc.height, loc.position)

    def openings_held(self, claim_id: bytes) -> list[str]:
        """The payers whose sealed openings of this claim this node holds."""
        loc = self.claim_location(claim_id)
        return [] if loc is None else self.openings.orgs(loc)

    def expire_openings(self, now_ms: int, max_claims: int = 10_000) -> int:
        """Forget the openings of claims submitted more than ``retention_days`` ago.

        Runs on this node only (every node runs it on the same ledger times, so all converge).
        Returns how many openings were deleted. Openings are kept in log order, so this looks
        at the oldest ones only and stops at the first claim still within the period; at most
        ``max_claims`` claims per call.
        """
        days = self.cfg.limits.retention_days
        if days <= 0:
            return 0
        cutoff_ms = now_ms - days * 86_400_000
        deleted = 0
        time_of: dict[int, int] = {}
        for loc in self.openings.oldest(max_claims):
            height = loc[0]
            if height not in time_of:
                time_of[height] = self.store.header(height).time_ms
            if time_of[height] >= cutoff_ms:
                break  # this claim and every later one are within the retention period
            deleted += self.openings.forget(loc)
        if deleted:
            self.metrics.inc("openings_expired_total", deleted,
                             "sealed openings deleted after the retention period")
            log.info("retention: deleted %d sealed openings", deleted)
        return deleted

    async def _retention_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RETENTION_CHECK_S)
            try:
                self.expire_openings(now_ms())
            except (LedgerError, NodeError) as exc:
                log.warning("retention pass failed: %s", exc)

    def refresh_metrics(self) -> None:
        m = self.metrics
        m.set("height", self.store.height, "last committed height")
        m.set("mempool_txs", len(self.mempool), "transactions waiting in the mempool")
        m.set("mempool_bytes", self.mempool.size_bytes)
        if self.consensus is not None:
            m.set("round", self.consensus.round, "current consensus round")
        if self.peers is not None:
            names = self.peers.names()
            for i, up in self.peers.outbound_up.items():
                m.set(f'peer_up{{peer="{names[i]}"}}', 1 if up else 0, "outbound peer link up")
            for k, v in self.peers.stats.items():
                m.set(f"peer_{k}", v)
        m.set("openings_held", self.openings.count(), "sealed openings stored on this node")
        m.set("evidence_held", len(self.evidence))

    def status(self) -> dict[str, Any]:
        hdr = self.store.header(self.store.height) if self.store.height else None
        assert self.peers is not None and self.consensus is not None
        names = self.peers.names()
        return {
            "name": self.cfg.name,
            "chain_id": self.chain_id,
            "validator": self.index,
            "height": self.store.height,
            "head": self.store.head_hash.hex(),
            "tree_size": hdr.tree_size if hdr else 0,
            "tree_root": (hdr.tree_root if hdr else self.store.tree_root()).hex(),
            "round": self.consensus.round,
            "mempool": len(self.mempool),
            "peers": {names[i]: up for i, up in self.peers.outbound_up.items()},
        }


def parse_submission(body: bytes, max_items: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Strictly parse a msgpack submission: ``[[tx_bytes, [[org, sealed], ...]], ...]``.

    The envelope is neither hashed nor signed, so its encoding need not be canonical, and the
    loop below checks the type of everything it keeps (no separate walk); each tx is then
    decoded strictly (canonical bytes, every field checked) on admission.
    """
    obj = unpack(body, 64 * 1024 * 1024, check_types=False, canonical=False)
    if not isinstance(obj, list):
        raise NodeError("submission must be an array of [tx, sealed] items")
    if len(obj) > max_items:
        raise NodeError(f"too many transactions in one batch (max {max_items})")
    items: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    for item in obj:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and isinstance(item[1], list) and len(item[1]) <= 4):
            raise NodeError("each item must be [tx_bytes, [[payer_org, sealed_bytes], ...]]")
        sealed = []
        for pair in item[1]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], bytes) and len(pair[0]) <= 64
                    and len(pair[1]) <= 4096):
                raise NodeError("each sealed opening must be [payer_org, sealed_bytes]")
            sealed.append((pair[0], pair[1]))
        items.append((item[0], sealed))
    return items


GC_GEN0_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Make the cyclic GC cheap for a node's allocation pattern.

    A loaded node allocates millions of short-lived containers (decoded lists, records) and
    keeps few cycles. With CPython's default thresholds the young collections alone cost ~20%
    of the cluster throughput (measured, docs/benchmarks.md). Objects alive after start-up
    (modules, genesis, tables) are frozen out of every collection; collections still run.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 1000)


async def serve(cfg: NodeConfig) -> None:
    """Run a node until SIGTERM/SIGINT."""
    node = Node(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except BaseException:
        await node.stop()  # release what was opened (store, sessions) before reporting
        raise
    tune_gc()
    try:
        await stop.wait()
    finally:
        await node.stop()


def run_node(config_path: str | Path) -> None:
    """Foreground entry point for ``tpledger node run CONFIG``."""
    cfg = NodeConfig.load(config_path)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {cfg.name} %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(cfg))
