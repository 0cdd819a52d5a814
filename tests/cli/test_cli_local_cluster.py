"""LocalCluster life cycle with stand-in node processes (the real node is tested end to end)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

import tpledger.cli.cluster as cluster_mod
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.errors import CliError

FAKE_NODE = r'''
import http.server, json, os, pathlib, signal, sys, tomllib
cfg = tomllib.loads(pathlib.Path(sys.argv[1]).read_text())
mode = os.environ.get("FAKE_NODE_MODE", "ok")
print("fake node", cfg["name"], "starting", flush=True)
if mode == "crash":
    print("cannot start: fake failure", flush=True)
    sys.exit(3)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
host, port = cfg["api"]["listen"].rsplit(":", 1)
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        data = json.dumps({"name": cfg["name"], "chain_id": "x", "height": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
http.server.HTTPServer((host, int(port)), H).serve_forever(0.05)
'''


@pytest.fixture()
def fake_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_node.py"
    script.write_text(FAKE_NODE)
    monkeypatch.setattr(cluster_mod, "node_command",
                        lambda config: [sys.executable, str(script), str(config)])
    return script


def test_inits_starts_and_stops(tmp_path: Path, fake_node: Path) -> None:
    lc = LocalCluster(tmp_path / "c", validators=3, base_port=0, startup_timeout_s=20)
    with lc:
        assert (tmp_path / "c" / "cluster.json").exists()
        assert len(lc.urls) == 3
        names = []
        for url in lc.urls:
            with NodeClient(url) as c:
                names.append(c.status()["name"])
        assert names == ["v0", "v1", "v2"]
        assert lc.dead_nodes() == []
        procs = dict(lc.processes())
    assert all(p.returncode == 0 for p in procs.values())
    log = (tmp_path / "c" / "nodes" / "v1" / "node.log").read_text()
    assert "fake node v1 starting" in log
    # a second LocalCluster reuses the existing directory (no re-init)
    genesis_before = (tmp_path / "c" / "genesis.json").read_text()
    with LocalCluster(tmp_path / "c", startup_timeout_s=20) as again:
        assert again.urls == lc.urls
    assert (tmp_path / "c" / "genesis.json").read_text() == genesis_before


def test_crashing_node_is_reported(tmp_path: Path, fake_node: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NODE_MODE", "crash")
    lc = LocalCluster(tmp_path / "c", validators=2, startup_timeout_s=20)
    with pytest.raises(CliError, match=r"exited with code 3: cannot start: fake failure"), lc:
        pass
    assert all(p.poll() is not None for _, p in lc.processes())


def test_stubborn_node_is_killed(tmp_path: Path, fake_node: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NODE_MODE", "stubborn")
    lc = LocalCluster(tmp_path / "c", validators=1, startup_timeout_s=20, stop_timeout_s=0.5)
    with lc:
        start = time.monotonic()  # the stop only: SIGTERM, 0.5 s of grace, then SIGKILL
    assert time.monotonic() - start < 15
    assert [p.returncode for _, p in lc.processes()] == [-signal.SIGKILL]


def test_restart_one_node(tmp_path: Path, fake_node: Path) -> None:
    with LocalCluster(tmp_path / "c", validators=2, startup_timeout_s=20) as lc:
        assert lc.stop_node("v1") == 0
        assert lc.dead_nodes() == ["v1"]
        lc.start_node("v1")
        lc.wait_ready()
        assert lc.dead_nodes() == []
        lc.kill_node("v0")
        assert lc.dead_nodes() == ["v0"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cluster_up_stops_all_on_signal(tmp_path: Path, fake_node: Path,
                                        sig: signal.Signals) -> None:
    import os
    import subprocess

    from tpledger.cli.cluster import ClusterInfo, init_cluster

    init_cluster(tmp_path / "c", validators=3, base_port=0)
    driver = (
        "import sys, tpledger.cli.cluster as c, tpledger.cli.main as m\n"
        f"c.node_command = lambda cfg: [sys.executable, {str(fake_node)!r}, str(cfg)]\n"
        f"sys.exit(m.run(['cluster', 'up', {str(tmp_path / 'c')!r}]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        info = ClusterInfo.load(tmp_path / "c")
        assert lines == [f"{n.name} {n.api}" for n in info.nodes]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "all nodes stopped" in err and "Traceback" not in err
    for n in info.nodes:  # every node's port is free again: the children are gone
        with pytest.raises(ClientError), NodeClient(n.api, timeout_s=1, max_retries=0) as c:
            c.status()
    assert os.path.exists(tmp_path / "c" / "nodes" / "v0" / "node.log")
