"""The four organisations of configs/ as four hosts: one network namespace each, TLS between
them, the genesis from the keygen/assemble ceremony. One link cut: the other three keep
committing; restored: the node catches up. Everything torn down, even on failure."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import load_netns
from tests.node.conftest import wait_until

netns = load_netns()

pytestmark = [pytest.mark.cluster]


@functools.cache
def unavailable() -> str | None:
    return netns.unavailable_reason()  # type: ignore[no-any-return]


@pytest.fixture()
def deployment(tmp_path: Path) -> Iterator[Any]:
    if unavailable():
        pytest.skip(f"network namespaces unavailable: {unavailable()}")
    d = netns.up(tmp_path / "d", timeout_s=40)
    try:
        yield d
    finally:
        netns.down(d)
        left = set(netns.ip("netns", "list").stdout.split())
        assert not left & set(d.namespaces), "namespaces left behind"


def client(d: Any, *args: str, timeout_s: float = 60) -> dict[str, Any]:
    res = netns.in_client_ns(d, [sys.executable, "-m", "tests.deploy.netns_client", *args],
                             timeout_s=timeout_s)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def test_cut_one_host_others_commit_then_it_catches_up(deployment: Any) -> None:
    d = deployment
    st = netns.statuses(d)
    assert all(s["height"] >= 1 and s["link_up"] for s in st.values())
    for h in d.hosts:  # each host: its own address, TLS (https + the consortium CA), own data
        text = (d.root / "hosts" / h.org / "etc" / "node.toml").read_text()
        assert f'listen = "{h.addr}:7443"' in text and "https://" in text
        assert (d.root / "hosts" / h.org / "var" / "ledger").exists()
    root_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert f"{netns.SUBNET}." not in root_addrs  # our addresses live only in our namespaces

    netns.set_link(d, "v3", up=False)
    assert not netns.link_up(d, d.host("v3"))
    ids = client(d, "submit", str(d.root), "v0", "3", "14")["claim_ids"]  # committed by 3
    st = netns.statuses(d)
    assert st["v3"]["height"] == -1  # unreachable while cut
    down_height = st["v0"]["height"]

    netns.set_link(d, "v3", up=True)
    assert client(d, "has", str(d.root), "v3", ids[-1], "40")["has"]  # caught up
    # v0 kept committing (empty blocks) after its height was read: v3 reaches it a moment later
    wait_until(lambda: netns.statuses(d)["v3"]["height"] >= down_height, 60,
               f"v3 at height {down_height}")


def test_down_is_safe_twice_and_after_a_failed_up(tmp_path: Path) -> None:
    if unavailable():
        pytest.skip(f"network namespaces unavailable: {unavailable()}")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "junk").write_text("x")
    with pytest.raises(netns.DeployError, match="not empty"):
        netns.up(tmp_path / "d")
    d = netns.Deployment.new(tmp_path / "e")
    netns.down(d)  # nothing there: no error
    netns.down(d)


def test_unavailable_reason_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable_reason() == "needs root (ip netns add)"
