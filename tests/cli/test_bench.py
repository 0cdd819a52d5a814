"""``tpledger bench`` end to end on a small load: a real local cluster, client processes, and
figures that add up (the speed itself is measured by the benchmark, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster


def test_bench_commits_every_claim_and_reports_consistent_figures(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    env = dict(os.environ, NO_COLOR="1", TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "tpledger.cli.main", "bench", "--claims", "400", "--clients", "2",
         "--batch", "100", "--window", "2", "--timeout-commit-ms", "20",
         "--registry", "300", "--json", str(out_json)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    r = json.loads(out_json.read_text())
    assert r["committed"] == 400 and r["errors"] == 0 and r["dead_nodes"] == []
    assert r["validators"] == 4 and r["clients"] == 2 and r["timeout_commit_ms"] == 20
    cores = os.cpu_count() or 1
    # the bound's rate is the mean of the rates measured before and after the run
    assert abs(r["ed25519_verify_per_s"] - (r["ed25519_verify_per_s_before"]
                                            + r["ed25519_verify_per_s_after"]) / 2) <= 1
    # both figures are rounded in the report (the rate to 1/s: x cores/4 in the bound)
    assert abs(r["bound_claims_per_s"] - cores * r["ed25519_verify_per_s"] / 4) <= 0.5 + cores / 8
    # claims/s (to 0.1/s) x elapsed_s (to 10 ms) is 400 within both roundings, however slow
    rate, elapsed_s = r["committed_per_s"], r["elapsed_s"]
    assert abs(rate * elapsed_s - 400) <= 0.05 * elapsed_s + 0.005 * rate + 0.001
    assert r["fraction_of_bound"] == pytest.approx(
        r["committed_per_s"] / r["bound_claims_per_s"], abs=0.002)
    assert 0 < r["latency_p50_s"] <= r["latency_p99_s"] <= r["elapsed_s"] + 0.01
    assert r["blocks"] >= 1
    vps = r["ed25519_verify_per_s"]  # rounded to 1/s: 1e6/vps moves by up to 0.5e6/vps^2
    assert r["verify_us"] == pytest.approx(1e6 / vps, abs=0.06 + 0.5e6 / vps**2)
    if sys.platform == "linux":  # read from /proc: the validators did work for the claims
        assert r["node_cpu_us_per_claim"] > 0
        assert "validator CPU per committed claim" in proc.stdout
    # the registry warm-up: 300 shops registered by the federation's admin before the timed run
    assert r["registry"] == 300 and r["registry_errors"] == 0 and r["registry_warmup_s"] > 0
    assert 0 < r["store_bytes_after_registry"] <= r["store_bytes"]
    assert "registry: 300 shops registered" in proc.stdout
    assert "pre-signed 400 claims" in proc.stdout
    assert "committed 400 claims" in proc.stdout and "of the bound" in proc.stdout
    # the cluster lived in TMPDIR and is gone
    assert not list(tmp_path.glob("tpledger-bench-*"))
