"""``claim submit`` prices its lines by the tariff version in force on the claim's date (today,
UTC), read from the node, not by the genesis table (issue 13 follow-up), on a real 1-node
cluster:

1. Before any publication, a claim priced above the genesis PLV of CODE is refused locally
   (exit 2, nothing sent): the version in force is the genesis table.
2. ``lpp publish`` of a table RAISING the PLV and the AMO base of CODE, effective today: the
   same claim is submitted and committed (exit 0), its default AMO share computed from the new
   base.
3. Broken variant: the builder given the genesis table again (the code before the fix)
   refuses the same valid claim locally (exit 2).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import pytest

import tpledger.cli.governance as governance
from tests.e2e.test_governance_quorum import CODE, OLD_PLV, Env, cluster_env, write_table
from tests.e2e.test_lifecycle import tp, tp_json
from tpledger.cli.governance import DAY_MS, format_day
from tpledger.ledger.lpp import LppTable, default_shares
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.ledger.tx import LppLine

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)

RAISED_PLV_CENTS = RAISED_BASE_CENTS = 1500  # CODE: PLV and AMO base 12.04 in the seed table
PRICE, PRICE_CENTS = "14.00", 1400  # above the genesis PLV, within the raised one


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from cluster_env(tmp_path_factory, "tariff", 1)  # the cheapest real cluster


def _submit(capsys: pytest.CaptureFixture[str], e: Env, n: int) -> tuple[int, str, str]:
    """``claim submit`` of one claim of CODE at PRICE, default shares (a JSON-lines file)."""
    rng = random.Random(n)
    f = e.work / f"claim-{n}.jsonl"
    f.write_text(json.dumps({
        "ref": f"INV-TARIFF-{n}", "insurer": "mutuelle-a",
        "patient": {"nir": make_test_nir(rng), "birth_date": make_test_birth_date(rng)},
        "lines": [{"lpp": CODE, "qty": 1, "amount": PRICE}]}) + "\n")
    return tp(capsys, "claim", "submit", "--node", e.url(0), "--key", e.key("optic-paris"),
              "--from-json", str(f), "--json", "--wait")


def test_claim_submit_priced_by_the_version_in_force(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    limit = f"price limit {OLD_PLV} EUR of {CODE}"

    # 1. The genesis table is in force: refused locally, nothing sent.
    rc, out, err = _submit(capsys, e, 1)
    assert rc == 2 and limit in err and "nothing was sent" in err, err
    assert out == ""

    # 2. A version raising CODE's PLV and AMO base, effective today: the claim goes through.
    today = int(time.time() * 1000) // DAY_MS
    table = write_table(e.work / "lpp_raised.csv", CODE, RAISED_PLV_CENTS, RAISED_BASE_CENTS)
    sent = tp_json(capsys, "lpp", "publish", str(table), "--effective", format_day(today),
                   "--node", e.url(0), "--admin-key", e.admin("cnam"), "--wait")
    assert sent["status"] == "committed" and sent["version"] == 2, sent
    rc, out, err = _submit(capsys, e, 2)
    assert rc == 0, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["status"] == "committed", row
    with e.cluster.client("optic-paris") as client:
        state = client.claim(row["claim_id"])
    line = [LppLine(CODE, 1, PRICE_CENTS)]
    old_amo, _ = default_shares(line, LppTable.default())
    new_amo = (RAISED_BASE_CENTS * 60 + 50) // 100  # AMO pays 60 % of the base in force
    assert state["amo"]["asked_cents"] == new_amo != old_amo
    assert state["amc"]["asked_cents"] == PRICE_CENTS - new_amo

    # 3. Broken variant: the builder priced by the genesis table refuses the valid claim.
    monkeypatch.setattr(governance, "node_tariff",
                        lambda _client: lambda _day: LppTable.default())
    rc, out, err = _submit(capsys, e, 3)
    assert rc == 2 and limit in err and "nothing was sent" in err, err
