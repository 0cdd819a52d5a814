"""``tpledger demo`` end to end: a real 4-validator cluster as child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def test_demo_runs_under_a_minute(tmp_path: Path) -> None:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="160", TMPDIR=str(tmp_path))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tpledger.cli.main", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert "demo OK" in out
    assert "6 claims committed, proof verified, cluster stopped" in out
    assert "verified offline" in out
    assert "optic-paris" in out and "optic-lyon" in out
    assert "mutuelle-a" in out and "mutuelle-b" in out
    assert "Traceback" not in proc.stderr
    assert elapsed < 60, f"demo took {elapsed:.1f} s"
    # the cluster was stopped and the temporary directory removed
    assert not any(tmp_path.glob("tpledger-demo-*"))
