"""The systemd unit and its health check: the units verify with systemd-analyze, and the
health-check script tells a healthy node (http and https with the consortium CA) from a dead one,
restarting the unit through systemctl when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpledger.cli.cluster import LocalCluster, free_ports, init_cluster

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHECK = DEPLOY / "tpledger-healthcheck"
UNITS = ("tpledger-node.service", "tpledger-node-health.service", "tpledger-node-health.timer")


def health(*args: str, url: str, ca: Path | None = None, path_dir: Path | None = None,
           ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TPLEDGER_HEALTH_URL=url, TPLEDGER_HEALTH_RETRY_S="0")
    env.pop("TPLEDGER_CA", None)
    if ca is not None:
        env["TPLEDGER_CA"] = str(ca)
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    return subprocess.run([str(CHECK), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def localize(tmp_path: Path, extra: str = "") -> list[Path]:
    """The units with this machine's paths (ExecStart* must exist for systemd-analyze)."""
    out = []
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/tpledger/bin/tpledger", str(Path(sys.executable).parent /
                                                              "tpledger"))
        text = text.replace("/usr/local/libexec/tpledger-healthcheck", str(CHECK))
        if name == UNITS[0]:
            text = text.replace("[Service]\n", f"[Service]\n{extra}")
        (tmp_path / name).write_text(text)
        out.append(tmp_path / name)
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("broken", [False, True])
def test_units_verify(tmp_path: Path, broken: bool) -> None:
    units = localize(tmp_path, "ExecStartPots=/bin/true\n" if broken else "")
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    complaints = [ln for ln in res.stderr.splitlines() if "tpledger" in ln]
    if broken:  # the check can fail: a misspelt key is reported
        assert any("Unknown key 'ExecStartPots'" in ln for ln in complaints)
    else:
        assert complaints == [], res.stderr


def test_unit_polls_status_after_start() -> None:
    text = (DEPLOY / "tpledger-node.service").read_text()
    assert "ExecStartPost=/usr/local/libexec/tpledger-healthcheck --wait" in text
    assert "TPLEDGER_HEALTH_URL=https://127.0.0.1:7443/healthz" in text
    assert "Restart=on-failure" in text and "KillSignal=SIGTERM" in text


def test_bad_usage() -> None:
    assert health(url="http://127.0.0.1:9/").returncode == 2
    assert health("--wait", "soon", url="http://127.0.0.1:9/").returncode == 2


def test_dead_node_fails_and_restarts_the_unit(tmp_path: Path) -> None:
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}/v1/status"
    t0 = time.monotonic()
    res = health("--wait", "1", url=url)
    assert res.returncode == 1 and "not healthy after 1 s" in res.stderr
    assert time.monotonic() - t0 < 10
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n')
    (fake / "systemctl").chmod(0o755)
    res = health("--once", "--restart", "tpledger-node.service", url=url, path_dir=fake)
    assert res.returncode == 1 and "restarting tpledger-node.service" in res.stderr
    assert (tmp_path / "calls").read_text().split() == ["restart", "tpledger-node.service"]


@pytest.mark.cluster
def test_healthy_node_over_tls(tmp_path: Path) -> None:
    init_cluster(tmp_path / "c", validators=1, base_port=0, tls=True)
    with LocalCluster(tmp_path / "c", startup_timeout_s=60) as lc:
        url = lc.urls[0] + "/healthz"
        assert url.startswith("https://")
        ca = lc.info.ca
        res = health("--wait", "20", url=url, ca=ca)
        assert res.returncode == 0 and "healthy" in res.stdout, res.stderr
        assert health("--once", url=url, ca=ca).returncode == 0
        # without the consortium CA the node's certificate is not trusted: the check fails
        assert health("--once", url=url).returncode == 1
