"""The CLI surface of issue 14 against a real 4-validator cluster: piped and wide listings,
"pending decision", paging with a cursor, id prefixes, and the exit codes that need a node:
rejected by the ledger (4) and timed out waiting (5)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error
from tests.node.conftest import (
    cluster,  # noqa: F401  (the module's real cluster)
    level_nodes,
)
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.errors import Exit
from tpledger.cli.main import run
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)


def tp(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = run(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _jsonl(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps({
        "ref": f"INV-{seed}-{i}", "insurer": "mutuelle-a",
        "patient": {"nir": make_test_nir(rng), "birth_date": make_test_birth_date(rng)},
        "lines": [{"lpp": "2261874", "qty": 1, "amount": "12.04"}]}) + "\n" for i in range(n)))
    return path


@pytest.fixture(scope="module")
def claim_ids(cluster: LocalCluster,  # noqa: F811
              tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    f = _jsonl(tmp_path_factory.mktemp("surface") / "c.jsonl", 5, seed=1)
    key = str(cluster.info.client("optic-paris").key)
    capture = pytest.MonkeyPatch()
    try:
        import io
        import sys
        buf = io.StringIO()
        capture.setattr(sys, "stdout", buf)
        rc = run(["claim", "submit", "--node", cluster.urls[0], "--key", key, "--from-json",
                  str(f), "--json", "--wait"])
    finally:
        capture.undo()
    assert rc == 0
    rows = [json.loads(ln) for ln in buf.getvalue().splitlines()]
    assert [r["status"] for r in rows] == ["committed"] * 5
    level_nodes(cluster.urls)  # the tests read them on other nodes
    return sorted(r["claim_id"] for r in rows)


def test_listings_piped_wide_and_pending(cluster: LocalCluster, claim_ids: list[str],  # noqa: F811
                                         capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster.info.client("optic-paris").key)
    base = ["claim", "list", "--node", cluster.urls[1], "--key", key]
    rc, out, err = tp(capsys, *base)
    assert rc == 0 and "5 claims of optic-paris" in err
    lines = out.splitlines()
    assert lines[0].startswith("claim\toptician\t")
    assert sorted(ln.split("\t")[0] for ln in lines[1:]) == claim_ids  # full ids when piped
    assert all(ln.split("\t")[-1] == "pending decision" for ln in lines[1:])  # not "0.00"
    rc, wide, _ = tp(capsys, *base, "-o", "wide")
    assert rc == 0 and wide == out
    rc, out, _ = tp(capsys, *base, "-o", "json")
    body = json.loads(out)
    assert rc == 0 and body["next"] is None and len(body["claims"]) == 5
    assert tp(capsys, *base, "--json")[1] == out  # --json is -o json


def test_paging_with_a_cursor(cluster: LocalCluster, claim_ids: list[str],  # noqa: F811
                              capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster.info.client("optic-paris").key)
    seen: list[str] = []
    after: list[str] = []
    cursors: list[str] = []
    for _ in range(5):
        rc, out, err = tp(capsys, "claim", "list", "--node", cluster.urls[2], "--key", key,
                          "--limit", "2", *after, "--json")
        assert rc == 0, err
        body = json.loads(out)
        seen += [c["claim_id"] for c in body["claims"]]
        if body["next"] is None:
            break
        cursors.append(body["next"])
        after = ["--after", body["next"]]
    assert sorted(seen) == claim_ids and len(set(seen)) == 5  # every claim once (log order)
    assert len(cursors) == 2 and cursors[0] == seen[1]
    rc, _, err = tp(capsys, "claim", "list", "--node", cluster.urls[2], "--key", key,
                    "--limit", "2")
    assert rc == 0 and f"next page: --after {cursors[0]}" in err


def test_id_prefixes(cluster: LocalCluster, claim_ids: list[str],  # noqa: F811
                     capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster.info.client("mutuelle-a").key)
    cid = claim_ids[0]
    prefix = next(cid[:n] for n in range(4, 65)
                  if sum(c.startswith(cid[:n]) for c in claim_ids) == 1)
    rc, out, err = tp(capsys, "claim", "status", prefix, "--node", cluster.urls[0], "--key", key,
                      "--json")
    assert rc == 0, err
    assert json.loads(out)["claim_id"] == cid
    missing = next(p for p in ("0000", "1111", "2222", "3333")
                   if not any(c.startswith(p) for c in claim_ids))
    rc, _, err = tp(capsys, "claim", "status", missing, "--node", cluster.urls[0], "--key", key)
    assert rc == Exit.ERROR and "no claim id starts with" in err
    assert_one_line_error(err)


def test_rejected_then_timed_out(cluster: LocalCluster, claim_ids: list[str],  # noqa: F811
                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster.info.client("mutuelle-a").key)
    decide = ["claim", "decide", claim_ids[1][:12], "--node", cluster.urls[0], "--key", key,
              "--wait"]
    rc, _, err = tp(capsys, *decide, "--accept")
    assert rc == 0, err
    rc, _, err = tp(capsys, *decide, "--reject", "late")
    assert rc == Exit.REJECTED and "already_decided" in err
    assert_one_line_error(err)

    # Without a quorum (2 of 4 validators down) nothing commits: --wait times out, exit 5.
    for name in [n.name for n in cluster.info.nodes][2:]:
        cluster.stop_node(name)
    f = _jsonl(tmp_path / "late.jsonl", 1, seed=2)
    rc, _, err = tp(capsys, "claim", "submit", "--node", cluster.urls[0], "--key",
                    str(cluster.info.client("optic-paris").key), "--from-json", str(f),
                    "--wait", "--timeout", "2")
    assert rc == Exit.TIMED_OUT and "not committed after 2 s" in err
    rc, _, err = tp(capsys, "claim", "cancel", claim_ids[2], "--reason", "oops", "--node",
                    cluster.urls[0], "--key", str(cluster.info.client("optic-paris").key),
                    "--wait", "--timeout", "1")
    assert rc == Exit.TIMED_OUT and "not committed after 1 s" in err
