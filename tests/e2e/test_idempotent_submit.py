"""Idempotent submission over a real 4-validator cluster (issue 14): a shop's software times
out, then submits the same JSON-lines file again; the ledger refuses every claim whose
(optician, reference) it holds, the CLI reports them as already submitted with the first
claim's id and exits 0, and no claim is duplicated."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import levelled, tp
from tests.node.conftest import wait_until
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.errors import Exit
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)

N_CLAIMS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("idem")
    with LocalCluster(root / "c", validators=4, startup_timeout_s=60) as c, levelled(c):
        yield c  # ``tp`` brings every node level before each command


def _claims_file(path: Path) -> Path:
    rng = random.Random(14)
    path.write_text("".join(json.dumps({
        "ref": f"FAC-2026-{i:04d}", "insurer": "mutuelle-a",
        "patient": {"nir": make_test_nir(rng), "birth_date": make_test_birth_date(rng)},
        "lines": [{"lpp": "2261874", "qty": 1, "amount": "12.04"}]}) + "\n"
        for i in range(N_CLAIMS)))
    return path


def _ledger_ids(capsys: pytest.CaptureFixture[str], cluster: LocalCluster, key: str
                ) -> list[str]:
    rc, out, err = tp(capsys, "claim", "list", "--mine", "--node", cluster.urls[2], "--key",
                      key, "--json")
    assert rc == 0, err
    return [str(c["claim_id"]) for c in json.loads(out.strip().splitlines()[-1])["claims"]]


def test_a_retry_after_a_timeout_creates_no_duplicate(
        cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _claims_file(tmp_path / "claims.jsonl")
    key = str(cluster.info.client("optic-paris").key)
    submit = ("claim", "submit", "--key", key, "--from-json", str(f), "--wait")
    # 1. the shop's software gives up waiting (a simulated timeout): exit 5, not 4
    rc, out, err = tp(capsys, *submit, "--node", cluster.urls[0], "--timeout", "0.1",
                      "--json")
    assert rc in (Exit.TIMED_OUT, Exit.OK), err
    first_run = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert len(first_run) == N_CLAIMS
    # 2. it retries at once, through another node, while the first claims may still be
    # pending: each claim is committed once, whichever copy wins (the other is refused)
    rc, out, err = tp(capsys, *submit, "--node", cluster.urls[1], "--timeout", "30", "--json")
    assert rc == Exit.OK, err
    retry = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert {r["status"] for r in retry} <= {"already_submitted", "committed"}, retry
    wait_until(lambda: len(_ledger_ids(capsys, cluster, key)) >= N_CLAIMS, timeout_s=60,
               what="the claims committed")
    on_ledger = _ledger_ids(capsys, cluster, key)
    assert len(on_ledger) == N_CLAIMS  # no duplicate
    assert {r["claim_id"] for r in retry} == set(on_ledger)
    # 3. once more, later (the claims committed): every line is "already submitted: <id>"
    # with the id of the claim on the ledger, exit 0, and still no duplicate
    rc, out, err = tp(capsys, *submit, "--node", cluster.urls[3], "--timeout", "30")
    assert rc == Exit.OK, err
    for claim_id in on_ledger:
        assert f"already submitted: {claim_id}" in out, out
    assert f"{N_CLAIMS} already_submitted" in err + out
    assert len(_ledger_ids(capsys, cluster, key)) == N_CLAIMS
    # the API's answer itself names the first claim
    rc, out, err = tp(capsys, *submit, "--node", cluster.urls[0], "--json")
    rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert rc == Exit.OK and sorted(r["existing_claim_id"] for r in rows) == sorted(on_ledger)
    assert all(r["code"] == "duplicate_reference" for r in rows)


def test_two_lines_with_one_reference_are_refused_before_sending(
        cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _claims_file(tmp_path / "claims.jsonl")
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[0].replace('"FAC-2026-0000"', '"FAC-X"'), lines[0]])
                 + "\n")
    rc, _out, err = tp(capsys, "claim", "submit", "--node", cluster.urls[0], "--key",
                       str(cluster.info.client("optic-lyon").key), "--from-json", str(f))
    assert rc == Exit.USAGE and "line 3: ref already used by line 1" in err
    assert "nothing was sent" in err
