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
import functools
import logging
import time
from collections import OrderedDict
from typing import Any

import aiohttp
from aiohttp import web

from tpledger.consensus import Commit, Consensus, ConsensusConfig, Ready, Timer
from tpledger.ledger.blocks import Block
from tpledger.ledger.encoding import sha256, unpack
from tpledger.ledger.errors import EncodingError, LedgerError, RuleError, StoreCorruption
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.limits import BLOCK_ENVELOPE_BYTES
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.store import SCRUB_TABLES, CheckedBlock, Store
from tpledger.ledger.tx import SignedTx, tx_id_of
from tpledger.ledger.validity import check_link
from tpledger.ledger.votes import CommitCertificate
from tpledger.node.admission import Admission
from tpledger.node.api import ApiServices, build_app
from tpledger.node.auth import sign_request
from tpledger.node.clock import now_ms
from tpledger.node.config import NodeConfig
from tpledger.node.errors import ConfigError, NodeError
from tpledger.node.evidence import EvidenceSubmitter
from tpledger.node.mempool import Mempool
from tpledger.node.metrics import Metrics, node_version
from tpledger.node.openings import OpeningStore
from tpledger.node.openings_service import OpeningsService
from tpledger.node.peers import FRAME_CONSENSUS, FRAME_FORGET, FRAME_TXS, PeerManager
from tpledger.node.schemas import StatusAnswer
from tpledger.node.scrub import Scrubber, ScrubSource
from tpledger.node.site import ssl_client_context, start_metrics_site, start_site

log = logging.getLogger("tpledger.node")

CONSENSUS_META_KEY = b"consensus-state"
MAX_VALIDATED_REMEMBERED = 64
CATCH_UP_BATCH = 64
RETENTION_CHECK_S = 60.0
MAX_EVIDENCE_KEPT = 1000  # in memory for /metrics and operators; each is also logged
MAX_DAMAGED_REPORTED = 100  # damaged rows named in /v1/status (each is logged once)




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
        try:
            self.store.verify_head()  # never serve from a store whose head is damaged
        except LedgerError:
            self.store.close()
            raise
        self.openings = OpeningStore(cfg.data_dir / "openings")
        self.mempool = Mempool(cfg.limits.mempool_max_txs)
        self.metrics = Metrics()
        self.admission = Admission(self.chain_id, self.genesis.params, self.store, self.mempool,
                                   self.openings, self.metrics, self._broadcast,
                                   self._on_admitted, self.report_damage)
        self.openings_service = OpeningsService(self.genesis, self.store, self.openings,
                                                self.metrics, cfg.peers, cfg.limits,
                                                self._broadcast)
        # Payloads of the next height validated or built here, by payload hash: None if
        # invalid, else the store's CheckedBlock token, applied as is when it is committed.
        self.validated: OrderedDict[bytes, CheckedBlock | None] = OrderedDict()
        self.evidence: list[Any] = []
        self.evidence_submitter = EvidenceSubmitter(  # vote evidence -> ledger tx
            self.chain_id, self.key.signer, self.admission.admit_batch, self._is_stopping,
            self.metrics)
        self.consensus: Consensus | None = None
        self.peers: PeerManager | None = None
        self.runner: web.AppRunner | None = None
        self.metrics_runner: web.AppRunner | None = None  # [metrics] listen, if set
        self.metrics_port = 0
        self.port: int = cfg.listen_port
        self._timers: set[asyncio.TimerHandle] = set()
        self._payload_wanted: tuple[int, int] | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._catch_up_target = 0
        self._catch_up_goal = 0  # the best peer height seen by the running catch-up
        self._catch_up_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._fatal: BaseException | None = None
        self.stop_requested = asyncio.Event()  # set on SIGTERM/SIGINT, or by a fatal error
        self.damaged: OrderedDict[str, str] = OrderedDict()  # "table/key" -> who found it
        self._scrub_task: asyncio.Task[None] | None = None
        self.commit_event = asyncio.Event()
        self.started_ms = now_ms()

    # ------------------------------------------------------------------------------------------
    # lifecycle
    async def start(self) -> None:
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
        client_ssl = ssl_client_context(self.cfg.tls)
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
        self.openings_service.http = self._http
        self.metrics.watch_peer_stats(lambda: self.peers.stats if self.peers else {})
        app = build_app(ApiServices(
            genesis=self.genesis, limits=self.cfg.limits, ledger=self.store,
            submitter=self.admission, openings=self.openings_service, node=self,
            peer_endpoint=self.peers.handle_ws))
        self.runner, self.port = await start_site(app, self.cfg)
        if self.cfg.metrics_listen is not None:
            self.metrics_runner, self.metrics_port = await start_metrics_site(
                *self.cfg.metrics_listen, self.metrics_text)
        await self.peers.start()
        self._handle(self.consensus.start())
        self._request_catch_up(0)
        self._retention_task = asyncio.create_task(self._retention_loop())
        self._scrub_task = asyncio.create_task(self._scrubber().run())
        log.info("node %s (validator %d) up on %s:%d at height %d", self.cfg.name, self.index,
                 self.cfg.listen_host, self.port, self.store.height)

    async def stop(self) -> None:
        self._stopping = True
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        for task in (self._catch_up_task, self._retention_task, self._scrub_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.peers is not None:
            await self.peers.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
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
                self.metrics.inc("evidence_total")
                log.warning("evidence of equivocation by validator %d (%s)", ev.validator,
                            type(ev).__name__)
                self.evidence_submitter.on_evidence(ev)
            if ready.catch_up is not None:
                self._request_catch_up(ready.catch_up)
            if ready.need_payload is not None:
                self._payload_wanted = ready.need_payload
                self._maybe_propose(force=False)
        except BaseException as exc:  # a broken invariant or a disk failure: stop the process
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        """Stop the node on a fatal error (``serve`` then exits non-zero): it must not go on
        voting or serving on a state it cannot trust."""
        if self._fatal is None:
            self._fatal = exc
            if isinstance(exc, StoreCorruption):
                self.report_damage(exc, "consensus")
            log.critical("fatal error in consensus handling, stopping: %s",
                         exc if isinstance(exc, LedgerError) else repr(exc))
        self.stop_requested.set()

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
        try:
            payload = self._build_payload(h)
        except StoreCorruption as exc:
            self._fail(exc)
            return
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
            self.admission.on_gossip(payload)
        elif kind == FRAME_FORGET:
            self.openings_service.on_forget_frame(peer, payload)

    # ------------------------------------------------------------------------------------------
    # blocks
    def _verify_signatures(self, txs: list[SignedTx], ids: list[bytes]) -> bool:
        return self.admission.verify_signatures(txs, ids)  # the node's verified-ids cache

    def _validate(self, height: int, payload: bytes) -> bytes | None:
        """Consensus validity callback: the block id if ``payload`` is a valid next block."""
        key = sha256(payload)
        if key in self.validated:
            seen = self.validated[key]
            return None if seen is None else seen.header.hash()
        checked: CheckedBlock | None = None
        try:
            block = Block.decode(payload)
            hdr = block.header
            if height == self.store.height + 1 and hdr.height == height:
                # the header's link to our head first: cheap, before any signature
                check_link(hdr, self.store.head(), self.genesis, now_ms())
                txs = []
                ids = []
                for raw in block.txs:
                    tx_id = tx_id_of(raw)
                    pending = self.mempool.get(tx_id)
                    # Reuse the mempool's decoded tx when the bytes are the same.
                    if pending is not None and pending.raw == raw:
                        txs.append(pending.stx)
                    else:
                        txs.append(SignedTx.decode_with_id(raw, tx_id))
                    ids.append(tx_id)
                if self._verify_signatures(txs, ids):
                    checked = self.store.check_block(block, now_ms=now_ms(),
                                                     check_signatures=False, decoded=txs)
        except StoreCorruption:
            raise  # our store, not the block, is bad: fatal (see _handle)
        except (LedgerError, EncodingError) as exc:
            log.info("invalid block proposed at height %d: %s", height, exc)
            self.metrics.inc("invalid_proposals_total")
            checked = None
        if height == self.store.height + 1:
            self._remember_checked(key, checked)
        return None if checked is None else checked.header.hash()

    def _remember_checked(self, key: bytes, checked: CheckedBlock | None) -> None:
        """Keep the token of a checked payload (None: invalid) until the next commit."""
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
        checked, rejected = self.store.build_block(
            [p.stx for p in pending], self.index, time_ms,
            max_txs=params.max_block_txs, max_bytes=params.max_block_bytes - 4096,
            check_signatures=False,  # every mempool tx was verified at admission
        )
        for tx_id, err in rejected:
            self.admission.reject(tx_id, err)
        self.mempool.remove([tx_id for tx_id, _ in rejected])
        payload = checked.block.encode()
        # Valid by construction (signatures checked at admission, rules applied by the
        # builder): the validity callback need not replay it, and the commit applies it.
        self._remember_checked(sha256(payload), checked)
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
        checked = self.validated.get(sha256(c.payload))
        if checked is not None:  # the token of our own check of this payload
            self.store.apply_block(checked, c.certificate)
            self._after_apply(checked.block, checked.tx_ids())
        else:
            block = Block.decode(c.payload)
            self.store.apply_certified(block, c.certificate, check_signatures=False)
            self._after_apply(block)

    def _after_apply(self, block: Block, ids: list[bytes] | None = None) -> None:
        """After a block is applied: the mempool, openings, metrics, waiters; the keys the
        block retired (``Store.last_retired_keys``) leave the mempool."""
        if ids is None:
            ids = [tx_id_of(raw) for raw in block.txs]  # raw is canonical
        removed = self.mempool.remove(ids)
        now_ms_mono = time.monotonic() * 1000.0
        self.metrics.observe_commit_latencies(
            [max(0.0, (now_ms_mono - p.received_ms) / 1000.0) for p in removed])
        hdr = block.header
        if removed:  # openings stored at the claims' places in the log
            position = {tx_id: pos for pos, tx_id in enumerate(ids)}
            self.openings.put_many([(hdr.height, position[p.tx_id], org, sealed)
                                    for p in removed for org, sealed in p.sealed])
        self.metrics.set("height", hdr.height)
        self.metrics.set("tree_size", hdr.tree_size)
        self.metrics.inc("committed_txs_total", len(block.txs))
        self.metrics.inc("committed_blocks_total")
        retired = self.store.last_retired_keys()  # diffed by the store's apply
        if retired:  # only after a block that revoked, suspended or rotated out keys
            self._drop_retired(retired, hdr.height)
        self.validated.clear()
        self.commit_event.set()
        self.commit_event = asyncio.Event()

    def _drop_retired(self, keys: frozenset[bytes], height: int) -> None:
        """Drop the pending txs signed by keys that block ``height`` retired: from the next
        block on they would be refused (``revoked_signer`` / ``suspended_signer``), so they
        leave the mempool now, their status says why, and they are no longer gossiped."""
        dropped = self.mempool.drop_signers(keys)
        if not dropped:
            return
        registry = self.store.registry()
        for p in dropped:
            code = registry.refusal(p.stx.signer)
            self.admission.reject(p.tx_id, RuleError(
                code, f"its signing key was retired by the block at height {height}"))
        self.metrics.inc("mempool_dropped_revoked_total", len(dropped))
        log.info("dropped %d pending txs of %d keys retired at height %d", len(dropped),
                 len(keys), height)

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
                self._catch_up_goal = best_height
                applied = 0
                for h in range(self.store.height + 1,
                               min(best_height, self.store.height + CATCH_UP_BATCH) + 1):
                    block, cert = await self._fetch_block(best_url, h)
                    if self._stopping:
                        return
                    if h != self.store.height + 1:
                        continue  # consensus applied it meanwhile
                    self.store.apply_certified(block, cert, check_signatures=True)
                    self._after_apply(block)
                    applied += 1
                if applied and self.consensus is not None:
                    log.info("caught up to height %d", self.store.height)
                    self.metrics.inc("catch_up_blocks_total", applied)
                    self._handle(self.consensus.advance_to(self.store.height + 1))
                if self.store.height >= best_height:
                    return
        except StoreCorruption as exc:
            self._fail(exc)
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

    async def _retention_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RETENTION_CHECK_S)
            try:
                self.openings_service.expire(now_ms())
            except (LedgerError, NodeError) as exc:
                log.warning("retention pass failed: %s", exc)

    def _scrubber(self) -> Scrubber:
        sources = [ScrubSource(t, functools.partial(self.store.scrub, t)) for t in SCRUB_TABLES]
        sources.append(ScrubSource("openings", self.openings.scrub))
        sources.append(ScrubSource("forgotten_locations",
                                   functools.partial(self.openings.scrub, tombstones=True)))
        return Scrubber(sources, self.cfg.scrub.rows_per_s, self.metrics, self.report_damage)

    def report_damage(self, exc: StoreCorruption, found_by: str) -> None:
        """A damaged row was refused (found by a request, the consensus or the scrub): count
        it, log it once (table and key only), name it in /v1/status."""
        where = f"{exc.table}/{exc.key_hex}"
        self.metrics.inc("store_damaged_total")
        if where in self.damaged:
            return
        log.error("%s (found by the %s)", exc, found_by)
        if len(self.damaged) < MAX_DAMAGED_REPORTED:
            self.damaged[where] = found_by
        self.metrics.set("store_damaged_rows", len(self.damaged))

    def refresh_metrics(self) -> None:
        m = self.metrics
        m.set("height", self.store.height)
        m.set("mempool_txs", len(self.mempool))
        m.set("mempool_bytes", self.mempool.size_bytes)
        if self.consensus is not None:
            m.set("round", self.consensus.round)
        if self.peers is not None:
            names = self.peers.names()
            for i, up in self.peers.outbound_up.items():
                m.set("peer_up", 1 if up else 0, label=names[i])
        m.set("openings_held", self.openings.count())
        m.set("evidence_held", len(self.evidence))
        m.set("evidence_recorded", self.store.entries("evidence"))

    def status(self) -> StatusAnswer:
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
            "store_damaged": list(self.damaged),  # "table/key" rows to resync (operations.md)
            "catching_up": self.catching_up,
            "version": node_version(),
        }

    @property
    def catching_up(self) -> bool:
        """Fetching certified blocks from a peer that is ahead (not yet at its height)."""
        task = self._catch_up_task
        return (task is not None and not task.done()
                and self._catch_up_goal > self.store.height)

    def readiness(self) -> list[str]:
        """Why this node should not take traffic; empty when ready (``GET /readyz``).

        Ready: the store is open and its head was verified (at start: ``Node`` is not built
        otherwise), no damaged row is known, no fatal error, not stopping, not catching up, and
        outbound links are up to enough validators that, counting itself, they make a quorum
        (``2f+1`` of ``n``: the node can take part in commits)."""
        reasons = []
        if self._stopping or self._fatal is not None:
            reasons.append("stopping" if self._fatal is None else "stopped on a fatal error")
        if self.damaged:
            reasons.append(f"store damaged ({len(self.damaged)} rows): resync this node")
        up = 1 + len(self.peers_up())
        if up < self.genesis.quorum:
            reasons.append(f"{up} of {len(self.genesis.validators)} validators reachable "
                           f"counting itself, a quorum needs {self.genesis.quorum}")
        if self.catching_up:
            reasons.append(f"catching up: height {self.store.height} of {self._catch_up_goal}")
        return reasons

    def metrics_text(self) -> str:
        """``GET /metrics``: the metrics, refreshed."""
        self.refresh_metrics()
        return self.metrics.render()

    def peers_up(self) -> list[str]:
        """The names of the peers whose outbound link is up, sorted."""
        peers = self.peers
        return [] if peers is None else sorted(
            peers.names()[i] for i, up in peers.outbound_up.items() if up)

    @property
    def fatal_error(self) -> BaseException | None:
        """The error that stopped the node, if one did (``node/shell.py`` exits non-zero)."""
        return self._fatal

    # ------------------------------------------------------------------------------------------
    # callbacks of admission and the openings service
    def _broadcast(self, kind: int, payload: bytes) -> None:
        if self.peers is not None:
            self.peers.broadcast(kind, payload)

    def _on_admitted(self) -> None:
        if self._payload_wanted is not None:
            self._maybe_propose(force=False)

    def _is_stopping(self) -> bool:
        return self._stopping

