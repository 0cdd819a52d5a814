"""The openings service: what the node does with the sealed openings it keeps
(``node/openings.py`` is their store).

- serve a payer its opening, fetching it from a peer (with the payer's own signed request) when
  this node lacks it; a fetched opening is kept only if it matches the digest the optician
  signed;
- forget a claim's openings on the payer's signed request (``node/erasure.py``), here and, by
  relaying the request, on every peer;
- retention: forget the openings of claims older than ``retention_days``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from tpledger.ledger.errors import EncodingError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.store import Store
from tpledger.node.admission import TxRejected, check_sealed
from tpledger.node.clock import now_ms as clock_ms
from tpledger.node.config import Limits, PeerConfig
from tpledger.node.erasure import ForgetRefused, ForgetRequest, check_forget
from tpledger.node.metrics import Metrics
from tpledger.node.openings import MAX_SEALED_BYTES, OpeningStore, claim_location
from tpledger.node.peers import FRAME_FORGET

log = logging.getLogger("tpledger.node")

FETCH_TIMEOUT_S = 5


@dataclass(eq=False)
class OpeningsService:
    genesis: Genesis
    store: Store
    openings: OpeningStore
    metrics: Metrics
    peers: tuple[PeerConfig, ...]  # asked, in order, for an opening this node lacks
    limits: Limits
    broadcast: Callable[[int, bytes], None]  # to the peers (a no-op before the links are up)
    http: aiohttp.ClientSession | None = None  # set by the node once started

    def get(self, claim_id: bytes, org: str) -> bytes | None:
        """``org``'s sealed opening of a committed claim, if held here."""
        loc = claim_location(self.store, claim_id)
        return None if loc is None else self.openings.get(loc, org)

    def held(self, claim_id: bytes) -> list[str]:
        """The payers whose sealed openings of this claim this node holds."""
        loc = claim_location(self.store, claim_id)
        return [] if loc is None else self.openings.orgs(loc)

    async def fetch(self, claim_id: bytes, org: str, path_qs: str,
                    authorization: str) -> bytes | None:
        """Get ``org``'s sealed opening of a committed claim from a peer that holds it,
        forwarding the payer's signed request; keep it if it matches the signed digest."""
        loc = claim_location(self.store, claim_id)
        if self.http is None or loc is None or self.openings.is_forgotten(loc):
            return None
        stx = self.store.tx(claim_id)
        if stx is None:
            return None
        for peer in self.peers:
            try:
                async with self.http.get(
                    peer.url + path_qs, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S),
                    headers={"Authorization": authorization, "X-Tpledger-Relayed": "1"},
                ) as r:
                    if r.status != 200:
                        continue
                    blob = await r.content.read(MAX_SEALED_BYTES + 1)
            except (aiohttp.ClientError, OSError, TimeoutError):
                continue
            try:
                checked = check_sealed(stx, [(org, blob)])
            except (TxRejected, EncodingError):
                log.warning("peer %s served an opening that does not match its digest", peer.name)
                continue
            self.openings.put_many([(*loc, org, checked[0][1])])
            self.metrics.inc("openings_fetched_total")
            return checked[0][1]
        return None

    def forget(self, raw_request: bytes, origin: str) -> tuple[int, bool]:
        """Obey a payer's signed forget request (``node/erasure.py``): check it, delete this
        claim's sealed openings here, keep the request as the tombstone, and relay it to the
        peers. Returns (openings deleted, newly forgotten); raises ForgetRefused, unless the
        claim was forgotten here before (a replay: nothing changes, nothing is relayed)."""
        try:
            req = ForgetRequest.decode(raw_request)
        except EncodingError:
            raise ForgetRefused(400, "malformed_request", "not a forget request") from None
        state = self.store.claim(req.claim_id)
        check_forget(req, self.genesis.chain_id, self.store.registry(),
                     None if state is None else state.insurer, clock_ms(),
                     self.limits.forget_max_age_ms)
        loc = claim_location(self.store, req.claim_id)
        if loc is None:
            raise ForgetRefused(404, "unknown_claim", "no committed claim with this id")
        if self.openings.is_forgotten(loc):
            return 0, False
        n = self.openings.forget(loc, request=raw_request)
        self.broadcast(FRAME_FORGET, raw_request)
        self.metrics.inc("openings_forgotten_total", n)
        log.info("openings of a claim at %d/%d forgotten on a payer's request (%s)",
                 loc[0], loc[1], origin)
        return n, True

    def on_forget_frame(self, peer: int, payload: bytes) -> None:
        """A peer relayed a payer's forget request."""
        try:
            self.forget(payload, origin=f"relayed by validator {peer}")
        except ForgetRefused as exc:
            self.metrics.inc("forget_frames_refused_total")
            log.warning("validator %d relayed a forget frame that was refused: %s", peer, exc.code)

    def expire(self, now_ms: int, max_claims: int = 10_000) -> int:
        """Forget the openings of claims submitted more than ``retention_days`` ago.

        Runs on this node only (every node runs it on the same ledger times, so all converge).
        Returns how many openings were deleted. Openings are kept in log order, so this looks
        at the oldest ones only and stops at the first claim still within the period; at most
        ``max_claims`` claims per call.
        """
        days = self.limits.retention_days
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
            self.metrics.inc("openings_expired_total", deleted)
            log.info("retention: deleted %d sealed openings", deleted)
        return deleted
