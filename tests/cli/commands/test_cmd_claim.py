"""``tpledger claim``: bad usage is refused before any node is contacted, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpledger.cli.main import run

CID = "ab" * 32


def test_bad_usage_is_one_line_without_traceback(cluster_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster_dir / "keys" / "mutuelle-a.key")
    node = "http://127.0.0.1:9"  # never contacted: refused before
    assert run(["claim", "decide", CID, "--node", node, "--key", key]) == 2
    assert run(["claim", "decide", CID, "--accept", "--reject", "x", "--node", node,
                "--key", key]) == 2
    assert run(["claim", "decide", CID, "--reject", "x", "--amount", "1", "--node", node,
                "--key", key]) == 2
    capsys.readouterr()
    rc = run(["claim", "pay", CID, "--amount", "-1", "--reference", "R", "--node", node,
              "--key", key])
    _, err = capsys.readouterr()
    # a malformed value is a usage error, exit 2 (was 1 before issue 14)
    assert rc == 2 and err.startswith("error: --amount") and err.count("\n") == 1
    rc = run(["claim", "cancel", CID, "--reason", "x", "--node", node, "--key", key])
    _, err = capsys.readouterr()
    assert rc == 1 and "only the claim's optician" in err
    rc = run(["claim", "inbox", "--node", node, "--key",
              str(cluster_dir / "keys" / "optic-paris.key")])
    _, err = capsys.readouterr()
    assert rc == 1 and "decides no share" in err
    rc = run(["claim", "open", CID, "--node", node, "--key",
              str(cluster_dir / "keys" / "optic-paris.key")])
    _, err = capsys.readouterr()
    assert rc == 1 and "only a payer" in err and "Traceback" not in err
