"""`tpledger cluster up` over real nodes: one node stopped (SIGTERM), the other three keep
committing; `tpledger cluster restart` brings it back and it catches up; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.deploy.helpers import commit
from tests.node.conftest import make_claims, status, wait_until
from tpledger.cli.client import ClientError
from tpledger.cli.cluster import NODE_PID_FILE, ClusterInfo, LocalCluster, init_cluster
from tpledger.cli.main import run

pytestmark = [pytest.mark.cluster]


class Up:
    """A `tpledger cluster up DIR` subprocess with its stderr collected by a thread."""

    def __init__(self, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tpledger.cli.main", "cluster", "up", str(directory)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        assert self.proc.stderr is not None
        self._t = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._t.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.err.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.err)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._t.join(5)


def height(url: str) -> int:
    try:
        return int(str(status(url)["height"]))
    except ClientError:
        return -1


def test_one_node_stopped_the_others_keep_committing(tmp_path: Path) -> None:
    root = tmp_path / "c"
    info: ClusterInfo = init_cluster(root, validators=4, base_port=0)
    urls = [n.api for n in info.nodes]
    up = Up(root)
    try:
        wait_until(lambda: up.saw("4 nodes up"), 60, "cluster up to start 4 nodes")
        wait_until(lambda: min(height(u) for u in urls) >= 1, 30, "a first block everywhere")
        pid = int((root / "nodes" / "v3" / NODE_PID_FILE).read_text())
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: up.saw("node v3 stopped (exit code"), 20, "the stop reported")
        assert up.proc.poll() is None, "cluster up must keep running"
        line = next(ln for ln in up.err if "node v3 stopped" in ln)
        assert "last log line:" in line and "cluster restart" in line
        assert height(urls[3]) == -1  # really down

        # the three others keep committing: claims submitted now commit
        lc = LocalCluster(root)
        claims, _ = make_claims(lc, "optic-paris", "mutuelle-a", 3, seed=14)
        commit(lc.client("optic-paris", node=0), claims)
        h_down = height(urls[0])

        assert run(["cluster", "restart", str(root), "v3"]) == 0
        wait_until(lambda: up.saw("node v3 restarted on request"), 5, "the restart reported")
        wait_until(lambda: height(urls[3]) >= h_down, 30, "the restarted node to catch up")
        with lc.client("optic-paris", node=3) as c:  # it holds the claims made while down
            assert c.claim(claims[0].claim_id.hex())
    finally:
        rc = up.stop()
    assert rc == 0, "\n".join(up.err)
    assert up.saw("all nodes stopped") and not up.saw("Traceback")
    for url in urls:
        assert height(url) == -1  # Ctrl-C stopped every node


def test_restart_needs_a_running_cluster_up(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    init_cluster(tmp_path / "c", validators=1, base_port=0)
    assert run(["cluster", "restart", str(tmp_path / "c"), "v0"]) == 1
    assert "no `tpledger cluster up" in capsys.readouterr().err
    assert run(["cluster", "restart", str(tmp_path / "c"), "v9"]) == 1
    assert "no node 'v9'" in capsys.readouterr().err


def test_supervisor_requests_and_exits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's bookkeeping, with sleeping stand-ins for nodes."""
    import tpledger.cli.cluster as cluster_mod

    monkeypatch.setattr(cluster_mod, "node_command",
                        lambda cfg: [sys.executable, "-c", "import time; time.sleep(60)"])
    init_cluster(tmp_path / "c", validators=2, base_port=0)
    lc = LocalCluster(tmp_path / "c", stop_timeout_s=5)
    sup = cluster_mod.Supervisor(lc)
    control = tmp_path / "c" / "nodes" / "v1" / cluster_mod.CONTROL_FILE
    try:
        lc.start()
        assert sup.poll() == []
        lc.kill_node("v0")
        [ev] = sup.poll()
        assert (ev.name, ev.kind, ev.code) == ("v0", "exited", -signal.SIGKILL)
        assert sup.poll() == []  # reported once
        control.write_text("stop\n")
        assert [(e.name, e.kind) for e in sup.poll()] == [("v1", "stopped")]
        assert not control.exists() and sorted(lc.dead_nodes()) == ["v0", "v1"]
        assert sup.poll() == []  # a node stopped on request is not reported again as exited
        control.write_text("restart\n")
        assert [(e.name, e.kind) for e in sup.poll()] == [("v1", "restarted")]
        assert lc.dead_nodes() == ["v0"]
        control.write_text("rm -rf /\n")
        assert [(e.kind, e.detail) for e in sup.poll()] == [("ignored", "rm -rf /")]
        assert lc.dead_nodes() == ["v0"]
    finally:
        lc.stop()


def test_second_cluster_up_refused(tmp_path: Path) -> None:
    import tpledger.cli.cluster as cluster_mod

    with cluster_mod.up_pid_file(tmp_path):
        (tmp_path / cluster_mod.UP_PID_FILE).write_text(f"{os.getppid()}\n")  # another live up
        with pytest.raises(cluster_mod.CliError, match="already runs it"), \
                cluster_mod.up_pid_file(tmp_path):
            pass
    assert not (tmp_path / cluster_mod.UP_PID_FILE).exists()
