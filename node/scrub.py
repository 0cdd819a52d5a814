"""Background scrub: re-check the seal of every stored row, at a bounded rate, forever.

A damaged row is refused whenever a request or the consensus reads it (``ledger.rowcheck``);
the scrub finds damage in rows nobody reads, before a request or a block needs them. It walks
every table of the ledger store and the openings store in key order, ``rows_per_s`` rows per
second (``[scrub] rows_per_s`` in node.toml; 0 disables it), in chunks of at most a tenth of
a second's worth (one short LMDB read transaction each, then a sleep): the event loop, hence
the consensus, is never held for long. Each damaged row is reported (table and key, never the
value) to ``on_damage``; progress goes to the metrics:

- ``tpledger_scrub_rows_total``, ``tpledger_scrub_passes_total``, ``tpledger_scrub_errors_total``
  (damaged rows found, plus tables that could not be read);
- ``tpledger_scrub_pass_rows`` (rows checked in the current pass), ``tpledger_scrub_table``
  (index of the table being scrubbed in :data:`ledger.store.SCRUB_TABLES`, then openings),
  ``tpledger_scrub_height`` (height of the last block row checked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tpledger.ledger.errors import LedgerError, StoreCorruption
from tpledger.node.metrics import Metrics

log = logging.getLogger("tpledger.scrub")

MAX_CHUNK_ROWS = 1_000
CHUNKS_PER_S = 10
IDLE_PASS_SLEEP_S = 1.0  # after a pass over empty stores

Scan = Callable[[bytes | None, int], tuple[int, bytes | None, list[StoreCorruption]]]


@dataclass(frozen=True)
class ScrubSource:
    """One table to scrub: ``scan(after, limit)`` checks up to ``limit`` rows after a key."""

    table: str
    scan: Scan


class Scrubber:
    def __init__(self, sources: Sequence[ScrubSource], rows_per_s: int, metrics: Metrics,
                 on_damage: Callable[[StoreCorruption, str], None]) -> None:
        self.sources = list(sources)
        self.rows_per_s = rows_per_s
        self.chunk_rows = max(1, min(MAX_CHUNK_ROWS, rows_per_s // CHUNKS_PER_S))
        self.metrics = metrics
        self.on_damage = on_damage

    async def run(self) -> None:
        """Scrub pass after pass until cancelled (returns at once when disabled)."""
        if self.rows_per_s <= 0:
            return
        while True:
            rows = await self.one_pass()
            self.metrics.inc("scrub_passes_total")
            if rows == 0:
                await asyncio.sleep(IDLE_PASS_SLEEP_S)

    async def one_pass(self) -> int:
        """Check every row once; returns how many."""
        m = self.metrics
        pass_rows = 0
        m.set("scrub_pass_rows", 0)
        for index, source in enumerate(self.sources):
            m.set("scrub_table", index)
            after: bytes | None = None
            while True:
                try:
                    n, after, damaged = source.scan(after, self.chunk_rows)
                except LedgerError as exc:  # the table cannot be read: try again next pass
                    log.error("scrub of %s stopped: %s", source.table, exc)
                    m.inc("scrub_errors_total")
                    if isinstance(exc, StoreCorruption):  # LMDB's own pages are damaged
                        self.on_damage(exc, "scrub")
                    break
                for bad in damaged:
                    m.inc("scrub_errors_total")
                    self.on_damage(bad, "scrub")
                pass_rows += n
                m.inc("scrub_rows_total", n)
                m.set("scrub_pass_rows", pass_rows)
                if source.table == "blocks" and after is not None:
                    m.set("scrub_height", int.from_bytes(after[:8], "big"))
                await asyncio.sleep(n / self.rows_per_s)
                if after is None:
                    break
        return pass_rows


__all__ = ["ScrubSource", "Scrubber"]
