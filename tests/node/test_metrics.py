"""The Prometheus exposition (``node/metrics.py``): one HELP/TYPE per family, labelled samples,
the commit-latency summary over a bounded window."""

from __future__ import annotations

from node.metrics import Metrics


def test_counters_gauges_and_labels_render_once_per_family() -> None:
    m = Metrics()
    m.inc('rejected_txs_total{code="bad_signature"}', 2, "refused txs")
    m.inc('rejected_txs_total{code="duplicate_tx"}')
    m.set("height", 7, "last committed height")
    text = m.render()
    assert text.count("# TYPE tpledger_rejected_txs_total counter") == 1
    assert 'tpledger_rejected_txs_total{code="bad_signature"} 2' in text
    assert 'tpledger_rejected_txs_total{code="duplicate_tx"} 1' in text
    assert "# HELP tpledger_height last committed height" in text
    assert "tpledger_height 7" in text


def test_latency_quantiles_over_a_bounded_window() -> None:
    m = Metrics()
    assert m.latency_quantiles() == {}
    m.observe_commit_latencies([float(i) for i in range(100)])
    assert m.latency_quantiles() == {0.5: 50.0, 0.9: 90.0, 0.99: 99.0}
    m.observe_commit_latencies([0.0] * 20_000)  # only the last 10,000 are kept
    assert "tpledger_commit_latency_seconds_count 10000" in m.render()
    assert m.latency_quantiles()[0.99] == 0.0
