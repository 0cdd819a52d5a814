"""``tpledger audit``: wraps ledger.audit; exit 1 naming the first bad height."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import tpledger.cli.store_audit as store_audit
from tpledger.cli.main import run
from tpledger.ledger.audit import AuditReport
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.store import Store
from tpledger.node.config import NodeConfig


@pytest.fixture()
def node_dir(cluster_dir: Path, tmp_path: Path) -> Path:
    """A copy of the test cluster whose v0 holds an empty, initialised store."""
    root = tmp_path / "c"
    shutil.copytree(cluster_dir, root)
    cfg = NodeConfig.load(root / "nodes" / "v0" / "node.toml")
    Store.open(store_audit.store_path(cfg), Genesis.load(cfg.genesis), LppTable.default()).close()
    return root


def test_audit_empty_store_ok(node_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["audit", "--config", str(node_dir / "nodes/v0/node.toml"),
              "--genesis", str(node_dir / "genesis.json"), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    body = json.loads(out)
    assert body["ok"] is True and body["heights_checked"] == 0


def test_audit_names_first_bad_height(node_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(store_audit, "audit", lambda *a, **k: AuditReport(
        False, 6, 7, "tree_root does not match the replayed log", 40))
    rc = run(["audit", "--config", str(node_dir / "nodes/v0/node.toml"),
              "--genesis", str(node_dir / "genesis.json")])
    _, err = capsys.readouterr()
    assert rc == 1
    assert err == "error: first bad height 7: tree_root does not match the replayed log\n"


def test_audit_other_genesis_refused(node_dir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tpledger.cli.cluster import init_cluster

    other = init_cluster(tmp_path / "other", validators=1, base_port=0)
    rc = run(["audit", "--config", str(node_dir / "nodes/v0/node.toml"),
              "--genesis", str(other.genesis)])
    _, err = capsys.readouterr()
    assert rc == 1 and "not the genesis of the node" in err and err.count("\n") == 1


def test_audit_without_store(cluster_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["audit", "--config", str(cluster_dir / "nodes/v1/node.toml"),
              "--genesis", str(cluster_dir / "genesis.json")])
    _, err = capsys.readouterr()
    assert rc == 1 and "no store here" in err
