"""``tpledger demo`` end to end: a real 4-validator cluster as child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not (ROOT / "node" / "runtime.py").exists(),
        reason="node/runtime.py does not exist yet: no node to run the demo against",
    ),
]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="160", TMPDIR=str(tmp_path))
    proc = subprocess.run(  # the timeout guards against a hang; speed is the bench's business
        [sys.executable, "-m", "tpledger.cli.main", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert "demo OK" in out
    assert "6 claims committed, proof verified, cluster stopped" in out
    assert "verified offline" in out
    assert "optic-paris" in out and "optic-lyon" in out
    assert "mutuelle-a" in out and "mutuelle-b" in out
    assert "Traceback" not in proc.stderr
    # the cluster was stopped and the temporary directory removed
    assert not any(tmp_path.glob("tpledger-demo-*"))


class _LaggingNode:
    """A node client whose height grows by ``step`` per status call (a node catching up)."""

    def __init__(self, height: int, step: int = 1) -> None:
        self.height, self.step, self.calls = height, step, 0

    def __enter__(self) -> _LaggingNode:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def status(self) -> dict[str, int]:
        self.calls += 1
        self.height += self.step
        return {"height": self.height - self.step}


class _Cluster:
    def __init__(self, node: _LaggingNode) -> None:
        self.node = node

    def client(self, node: int) -> _LaggingNode:
        return self.node


def test_the_proof_is_read_only_once_the_reading_node_has_the_commit() -> None:
    """The demo read a claim from node 3 right after node 0 committed it, and node 3 had not
    applied that block yet (``unknown_claim`` in CI): it now waits for the height first."""
    from tpledger.cli import demo
    from tpledger.cli.errors import CliError

    lagging = _LaggingNode(height=3)
    demo._wait_height(_Cluster(lagging), 3, 7, timeout_s=5, poll_s=0)  # type: ignore[arg-type]
    assert lagging.calls == 5 and lagging.height - 1 == 7  # asked until it answered 7
    stuck = _LaggingNode(height=2, step=0)
    with pytest.raises(CliError, match=r"node 3 is at height 2 .* committed at height 9"):
        demo._wait_height(_Cluster(stuck), 3, 9, timeout_s=0.05, poll_s=0.01)  # type: ignore[arg-type]
