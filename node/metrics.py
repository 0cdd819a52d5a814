"""The node's Prometheus metrics, exposed through ``prometheus_client``.

Every family is declared once below with its HELP text (counters end in ``_total``, gauges are
levels, latencies are histograms), on a registry of its own per node: tests run several nodes
in one process. Families without labels are present from the start (at 0); a labelled family
(``rejected_txs_total{code}``, ``peer_up{peer}``) shows a series once it has a value.

Labels and values never carry personal data: only heights, counts, durations, peer names and
refusal codes.

Cost on the hot path: callers count per batch (``inc(name, n)``), never per transaction; the
commit latencies of a block go to the histogram in one call (``observe_commit_latencies``: the
batch sorted in C and cut at each bucket bound, no lock, no Python loop over the txs).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import cast

import prometheus_client as prom
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

PREFIX = "tpledger"
DISTRIBUTION = "tpledger"  # the installed distribution whose version the node reports
FALLBACK_VERSION = "0.1.0+unknown"  # when running from a tree that is not installed

# name -> (HELP, label name or "")
COUNTERS: dict[str, tuple[str, str]] = {
    "committed_txs_total": ("transactions committed", ""),
    "committed_blocks_total": ("blocks committed", ""),
    "admitted_txs_total": ("transactions admitted to the mempool", ""),
    "rejected_txs_total": ("transactions refused, by refusal code (client submissions "
                           "and txs dropped when building a block)", "code"),
    "gossip_rejected_total": ("malformed transaction frames received from peers", ""),
    "invalid_proposals_total": ("block proposals refused as invalid", ""),
    "catch_up_blocks_total": ("certified blocks fetched from peers and applied", ""),
    "evidence_total": ("conflicting votes (equivocations) seen by this node", ""),
    "evidence_submitted_total": ("evidence txs this node signed and admitted", ""),
    "store_damaged_total": ("reads refused on a damaged stored row", ""),
    "scrub_passes_total": ("complete scrub passes over the stores", ""),
    "scrub_rows_total": ("rows whose checksum the scrub verified", ""),
    "scrub_errors_total": ("damaged rows found by the scrub", ""),
    "openings_fetched_total": ("sealed openings fetched from peers", ""),
    "openings_forgotten_total": ("sealed openings deleted on a payer's request", ""),
    "openings_expired_total": ("sealed openings deleted after the retention period", ""),
    "mempool_dropped_revoked_total": ("pending txs dropped because a block revoked, suspended "
                                      "or rotated out their signing key", ""),
    "forget_frames_refused_total": ("forget frames from peers refused (no valid payer request)",
                                    ""),
}

GAUGES: dict[str, tuple[str, str]] = {
    "height": ("last committed height", ""),
    "tree_size": ("leaves in the Merkle log", ""),
    "round": ("current consensus round", ""),
    "mempool_txs": ("transactions waiting in the mempool", ""),
    "mempool_bytes": ("bytes of the transactions waiting in the mempool", ""),
    "peer_up": ("outbound peer link up (1) or down (0)", "peer"),
    "openings_held": ("sealed openings stored on this node", ""),
    "evidence_held": ("equivocations kept in memory by this node", ""),
    "evidence_recorded": ("equivocations recorded on the ledger", ""),
    "store_damaged_rows": ("damaged stored rows known", ""),
    "scrub_pass_rows": ("rows checked in the current scrub pass", ""),
    "scrub_table": ("index of the table being scrubbed", ""),
    "scrub_height": ("height of the last block row scrubbed", ""),
}

# Counts the peer links keep themselves (``node.peers.Peers.stats``), read at scrape time.
PEER_STATS: dict[str, str] = {
    "frames_sent": "frames sent to peers",
    "frames_received": "frames received from peers",
    "frames_dropped_queue_full": "frames dropped because a peer's send queue was full",
    "frames_rejected": "frames from peers refused as malformed",
    "frames_unauthentic": "frames from peers whose authentication failed",
    "handshakes_failed": "peer handshakes that failed",
}

COMMIT_LATENCY = "commit_latency_seconds"
COMMIT_LATENCY_HELP = "time from admission to commit of a transaction"
LATENCY_BUCKETS_S: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                        10.0, 30.0, 60.0)


def node_version() -> str:
    """The installed distribution's version (``/v1/status``, ``tpledger_build_info``)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return FALLBACK_VERSION


class BatchHistogram(Collector):
    """A histogram fed a batch at a time (one call per block)."""

    def __init__(self, name: str, help_text: str, bounds: Sequence[float]) -> None:
        self.name, self.help_text = name, help_text
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe_many(self, values: Sequence[float]) -> None:
        # Sort the batch (in C) and cut it at each bound: one bisect per bucket, no Python
        # loop over the values. bisect_right counts the values "less or equal" to the bound.
        ordered = sorted(values)
        counts, below = self.counts, 0
        for index, bound in enumerate(self.bounds):
            upto = bisect_right(ordered, bound)
            counts[index] += upto - below
            below = upto
        counts[-1] += len(ordered) - below
        self.sum += sum(ordered)
        self.count += len(values)

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, n in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        yield HistogramMetricFamily(self.name, self.help_text, buckets=buckets,
                                    sum_value=self.sum)

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.help_text)]


class CountsCollector(Collector):
    """Counters whose values another object keeps (a dict), read at each scrape."""

    def __init__(self, prefix: str, helps: dict[str, str],
                 read: Callable[[], dict[str, int]]) -> None:
        self.prefix, self.helps, self.read = prefix, helps, read

    def collect(self) -> Iterator[Metric]:
        values = self.read()
        for key, help_text in self.helps.items():
            yield CounterMetricFamily(f"{self.prefix}_{key}", help_text,
                                      value=values.get(key, 0))

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(f"{self.prefix}_{k}", h) for k, h in self.helps.items()]


_Family = prom.Counter | prom.Gauge


class Metrics:
    """The metrics of one node, on a registry of its own."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self._counters = {name: prom.Counter(f"{prefix}_{name}", help_text,
                                             [label] if label else [], registry=self.registry)
                          for name, (help_text, label) in COUNTERS.items()}
        self._gauges = {name: prom.Gauge(f"{prefix}_{name}", help_text,
                                         [label] if label else [], registry=self.registry)
                        for name, (help_text, label) in GAUGES.items()}
        self._labelled: dict[tuple[str, str], _Family] = {}
        self.commit_latency = BatchHistogram(f"{prefix}_{COMMIT_LATENCY}", COMMIT_LATENCY_HELP,
                                             LATENCY_BUCKETS_S)
        self.registry.register(self.commit_latency)
        prom.Info(f"{prefix}_build", "the node's software version",
                  registry=self.registry).info({"version": node_version()})

    def _child(self, family: _Family, name: str, label: str | None) -> _Family:
        if label is None:
            return family
        key = (name, label)
        child = self._labelled.get(key)
        if child is None:  # labels() takes a lock: keep each child once
            child = self._labelled[key] = family.labels(label)
        return child

    def inc(self, name: str, value: float = 1.0, label: str | None = None) -> None:
        """Add ``value`` to the counter ``name`` (declared in :data:`COUNTERS`)."""
        cast(prom.Counter, self._child(self._counters[name], name, label)).inc(value)

    def set(self, name: str, value: float, label: str | None = None) -> None:
        """Set the gauge ``name`` (declared in :data:`GAUGES`)."""
        cast(prom.Gauge, self._child(self._gauges[name], name, label)).set(value)

    def value(self, name: str, label: str | None = None) -> float:
        """The current value of a declared counter or gauge (0 if the series is absent)."""
        label_name = (COUNTERS.get(name) or GAUGES[name])[1]
        labels = {label_name: label} if label is not None else None
        found = self.registry.get_sample_value(f"{self.prefix}_{name}", labels)
        return 0.0 if found is None else found

    def observe_commit_latencies(self, seconds: Sequence[float]) -> None:
        self.commit_latency.observe_many(seconds)

    def watch_peer_stats(self, read: Callable[[], dict[str, int]]) -> None:
        """Expose the peer links' own counts as ``tpledger_peer_<stat>_total`` counters."""
        self.registry.register(CountsCollector(f"{self.prefix}_peer", PEER_STATS, read))

    def render(self) -> str:
        """The Prometheus text exposition."""
        return generate_latest(self.registry).decode()


__all__ = ["COUNTERS", "GAUGES", "PEER_STATS", "BatchHistogram", "Metrics", "node_version"]
