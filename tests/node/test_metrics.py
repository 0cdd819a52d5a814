"""The Prometheus metrics (``node/metrics.py``), read back with ``prometheus_client``'s own
parser: HELP on every family, counters named ``_total``, the commit latency a histogram that
counts every committed tx, refusals by code, evidence counted from the start, one registry per
node; and the same on a real node over HTTP."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.node.inprocess import commit_claims, node_config, run_with_node
from tpledger.node.metrics import COUNTERS, GAUGES, Metrics, node_version
from tpledger.node.runtime import Node


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample ``name{labels}`` in ``text``."""
    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def assert_well_formed(text: str) -> None:
    """Every family has a HELP text; every counter sample is named ``..._total``."""
    for fam in text_string_to_metric_families(text):
        assert fam.documentation.strip(), f"no HELP for {fam.name}"
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.name


def test_every_family_has_help_and_counters_end_in_total() -> None:
    m = Metrics()
    text = m.render()
    assert_well_formed(text)
    fams = families(text)
    for name, (_, label) in COUNTERS.items():
        base = f"tpledger_{name.removesuffix('_total')}"
        assert fams[base].type == "counter", name
        if not label:  # present from the start, at 0
            assert sample(text, f"tpledger_{name}") == 0.0
    for name in GAUGES:
        assert fams[f"tpledger_{name}"].type == "gauge"
    assert fams["tpledger_commit_latency_seconds"].type == "histogram"
    assert sample(text, "tpledger_evidence_total") == 0.0  # present before any evidence
    assert sample(text, "tpledger_build_info", version=node_version()) == 1.0


def test_the_checker_catches_a_family_without_help() -> None:
    """The broken variant: a counter declared without HELP text is caught."""
    registry = CollectorRegistry()
    Counter("tpledger_undocumented", "", registry=registry)
    with pytest.raises(AssertionError, match="no HELP for tpledger_undocumented"):
        assert_well_formed(generate_latest(registry).decode())


def test_rejected_txs_by_code_appear_after_a_refusal() -> None:
    m = Metrics()
    assert not [s for s in families(m.render())["tpledger_rejected_txs"].samples]
    m.inc("rejected_txs_total", 2, label="bad_signature")
    m.inc("rejected_txs_total", label="duplicate_tx")
    text = m.render()
    assert sample(text, "tpledger_rejected_txs_total", code="bad_signature") == 2.0
    assert sample(text, "tpledger_rejected_txs_total", code="duplicate_tx") == 1.0
    assert_well_formed(text)


def test_commit_latency_histogram_counts_past_ten_thousand() -> None:
    """The old summary kept a window of 10,000 and its _count stopped there."""
    m = Metrics()
    m.observe_commit_latencies([0.01] * 10_000)
    m.observe_commit_latencies([0.3] * 19)
    m.observe_commit_latencies([100.0])  # past the last bound: only in +Inf
    text = m.render()
    name = "tpledger_commit_latency_seconds"
    assert sample(text, f"{name}_count") == 10_020
    assert sample(text, f"{name}_sum") == pytest.approx(0.01 * 10_000 + 0.3 * 19 + 100.0)
    assert sample(text, f"{name}_bucket", le="0.01") == 10_000  # buckets are "less or equal"
    assert sample(text, f"{name}_bucket", le="0.25") == 10_000
    assert sample(text, f"{name}_bucket", le="0.5") == 10_019
    assert sample(text, f"{name}_bucket", le="60.0") == 10_019
    assert sample(text, f"{name}_bucket", le="+Inf") == 10_020


def test_each_node_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.inc("committed_txs_total", 5)
    assert sample(a.render(), "tpledger_committed_txs_total") == 5
    assert sample(b.render(), "tpledger_committed_txs_total") == 0


def test_an_undeclared_metric_is_our_bug() -> None:
    with pytest.raises(KeyError):
        Metrics().inc("not_declared_total")


def test_a_real_node_counts_every_committed_tx_and_refusals_over_http(tmp_path: Path) -> None:
    cfg, root = node_config(tmp_path, retention_days=0)

    async def scenario(node: Node) -> None:
        _, items = await commit_claims(node, root, 5)
        refused = node.admission.admit_batch(items[:2], gossip=False)  # already committed
        codes = {r["code"] for r in refused}
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{node.port}/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            text = await r.text()
        assert_well_formed(text)
        committed = sample(text, "tpledger_committed_txs_total")
        assert committed == 5  # the only txs of this one-node chain
        assert sample(text, "tpledger_commit_latency_seconds_count") == committed
        assert sample(text, "tpledger_height") == node.store.height
        for code in codes:
            assert sample(text, "tpledger_rejected_txs_total", code=code) >= 1
        peer_fams = [f for f in families(text) if f.startswith("tpledger_peer_")]
        assert "tpledger_peer_frames_sent" in peer_fams

    run_with_node(cfg, scenario)


def test_metrics_on_a_separate_listen_address(tmp_path: Path) -> None:
    """``[metrics] listen``: the same page on a second, plain-http address."""
    cfg, _ = node_config(tmp_path, retention_days=0)
    cfg = dataclasses.replace(cfg, metrics_listen=("127.0.0.1", 0))

    async def scenario(node: Node) -> None:
        assert node.metrics_port not in (0, node.port)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{node.metrics_port}/metrics") as r:
                assert r.status == 200
                text = await r.text()
            async with http.get(f"http://127.0.0.1:{node.metrics_port}/v1/status") as r:
                assert r.status == 404  # nothing but the metrics there
        assert_well_formed(text)
        assert sample(text, "tpledger_height") == node.store.height

    run_with_node(cfg, scenario)
