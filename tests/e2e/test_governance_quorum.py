"""Governance part B on a real 4-node cluster, from the CLI: an insurer added by a quorum
proposal, and an LPP price change judged by the claims' dispensing dates.

The cluster's genesis has three governing organisations (federation, cnam, insurer-a) and a
threshold of 2. Steps:

1. The federation proposes ``add-org:insurer-b``: its own yes is 1 of 2, so nothing changes
   (the proposal is open, insurer-b's admin cannot register anyone: ``not_authorised``).
2. A second proposal that expires before anyone votes cannot be executed: the vote exits 4
   with ``proposal_expired`` and the proposal stays unexecuted.
3. The CNAM's yes reaches the quorum: the proposal is executed in that block, insurer-b's admin
   registers its operational key, an optician's claim names insurer-b and insurer-b decides it.
4. ``lpp publish`` of a table with a lower price limit, effective today (day D): a claim
   dispensed two days before D at the old limit is accepted (old table), the same claim
   dispensed today is refused ``price_above_limit`` (new table), and at the new limit accepted.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_lifecycle import Env as LifecycleEnv
from tests.e2e.test_lifecycle import levelled, tp, tp_json
from tpledger.cli.claims import ClaimBuilder, ClaimInput
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.governance import DAY_MS, format_day
from tpledger.cli.lifecycle import submit_signed
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)

SEED_CSV = Path(__file__).resolve().parents[2] / "seeds" / "lpp_optique_v1.csv"
CODE = "2261874"  # PLV 12.04 in the seed table; 10.00 in the published version
OLD_PLV, NEW_PLV = "12.04", "10.00"  # euros, as the CLI prints them
OLD_PLV_CENTS, NEW_PLV_CENTS = 1204, 1000


class Env(LifecycleEnv):
    """The lifecycle test's cluster handle, with the governing organisations' admin keys."""

    def admin(self, org: str) -> str:
        return str(self.cluster.admin_key(org))


def cluster_env(tmp_path_factory: pytest.TempPathFactory, name: str,
                validators: int) -> Iterator[Env]:
    """A running local cluster of ``validators`` nodes and a work directory beside it."""
    root = tmp_path_factory.mktemp(name)
    (root / "work").mkdir()
    with LocalCluster(root / "c", validators=validators, startup_timeout_s=60) as c, levelled(c):
        yield Env(c, root / "work")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from cluster_env(tmp_path_factory, "gov", 4)


def _show(capsys: pytest.CaptureFixture[str], e: Env, pid: str) -> dict[str, Any]:
    return dict(tp_json(capsys, "gov", "show", pid, "--node", e.url(2), "--key",
                        e.key("optic-paris")))


# ---------------------------------------------------------------------------------------------
def test_insurer_added_by_quorum_proposal(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    admin_dir, ops_dir = e.work / "insurer-b-admin", e.work / "insurer-b-ops"
    rc, _, err = tp(capsys, "keygen", "insurer-b", "--admin", "--roles", "insurer", "-o",
                    str(admin_dir))
    assert rc == 0, err
    admin_b, admin_pub = admin_dir / "insurer-b.admin.json", admin_dir / "insurer-b.admin.pub.json"
    rc, _, err = tp(capsys, "keygen", "insurer-b", "--role", "insurer", "--gov-org",
                    "insurer-b", "--amc", "12345678", "-o", str(ops_dir))
    assert rc == 0, err
    ops_key, ops_pub = ops_dir / "insurer-b.key", ops_dir / "insurer-b.pub.json"

    # 1. One yes of two: the proposal is open and changes nothing.
    sent = tp_json(capsys, "gov", "propose", "--action",
                   f"add-org:insurer-b:{admin_pub}:insurer", "--expires", "1d",
                   "--node", e.url(0), "--admin-key", e.admin("federation"), "--wait")
    assert sent["status"] == "committed", sent
    pid = sent["proposal_id"]
    shown = _show(capsys, e, pid)
    assert shown["status"] == "open" and shown["yes"] == ["federation"] and shown["no"] == []
    listed = tp_json(capsys, "gov", "list", "--status", "open", "--node", e.url(1), "--key",
                     e.key("mutuelle-a"))
    assert pid in [p["proposal_id"] for p in listed["proposals"]]
    add_b = ("participant", "add", "insurer-b", "--role", "insurer", "--gov-org", "insurer-b",
             "--pub", str(ops_pub), "--amc", "12345678", "--node", e.url(0),
             "--admin-key", str(admin_b), "--genesis", e.genesis, "--wait")
    rc, _, err = tp(capsys, *add_b)
    assert rc == 4 and "unknown_signer" in err, err  # insurer-b's admin governs nothing yet

    # 2. An expired proposal cannot be executed.
    other = Signer.generate().public.hex()
    late = tp_json(capsys, "gov", "propose", "--action", f"add-org:insurer-c:{other}:insurer",
                   "--expires", "8s", "--node", e.url(1), "--admin-key",
                   e.admin("federation"), "--wait")
    assert late["status"] == "committed", late
    expires_ms = _show(capsys, e, late["proposal_id"])["expires_at_ms"]
    time.sleep(max(0.0, expires_ms / 1000 - time.time()) + 0.5)
    rc, _, err = tp(capsys, "gov", "vote", late["proposal_id"], "--yes", "--node", e.url(2),
                    "--admin-key", e.admin("cnam"), "--wait")
    assert rc == 4 and "proposal_expired" in err, err
    assert _show(capsys, e, late["proposal_id"])["status"] == "expired"

    # 3. The second yes reaches the quorum: executed in its block.
    voted = tp_json(capsys, "gov", "vote", pid, "--yes", "--node", e.url(3), "--admin-key",
                    e.admin("cnam"), "--wait")
    assert voted["status"] == "committed", voted
    shown = _show(capsys, e, pid)
    assert shown["status"] == "executed" and shown["yes"] == ["cnam", "federation"]
    rc, _, err = tp(capsys, "gov", "vote", pid, "--no", "--node", e.url(0), "--admin-key",
                    e.admin("insurer-a"), "--wait")
    assert rc == 4 and "proposal_closed" in err, err

    # insurer-b, now a governing org, registers its operational key; a claim names it and
    # insurer-b decides it.
    rc, _, err = tp(capsys, *add_b)
    assert rc == 0, err
    claim_id = _submit_claim(capsys, e, "insurer-b", OLD_PLV)
    rc, _, err = tp(capsys, "claim", "decide", claim_id, "--accept", "--node", e.url(2),
                    "--key", str(ops_key), "--genesis", e.genesis, "--wait")
    assert rc == 0, err


def _submit_claim(capsys: pytest.CaptureFixture[str], e: Env, insurer: str,
                  euros: str) -> str:
    f = e.work / f"claim-{insurer}-{time.monotonic_ns()}.jsonl"
    import random

    rng = random.Random(7)
    f.write_text(json.dumps({
        "ref": f"INV-GOV-{time.monotonic_ns()}", "insurer": insurer,
        "patient": {"nir": make_test_nir(rng), "birth_date": make_test_birth_date(rng)},
        "lines": [{"lpp": CODE, "qty": 1, "amount": euros}]}) + "\n")
    rc, out, err = tp(capsys, "claim", "submit", "--node", e.url(1), "--key",
                      e.key("optic-paris"), "--from-json", str(f), "--json", "--wait")
    assert rc == 0, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["status"] == "committed", row
    return str(row["claim_id"])


# ---------------------------------------------------------------------------------------------
def _dated_claim(e: Env, euros_cents: int, dispensed_ms: int, n: int) -> dict[str, Any]:
    """A claim of optic-paris dispensed at ``dispensed_ms`` (built as the CLI builds it, with
    that date), submitted and waited for."""
    import random

    key = KeyFile.load(e.key("optic-paris"))
    builder = ClaimBuilder(key, e.cluster.genesis())
    rng = random.Random(100 + n)
    inp = ClaimInput(f"claim {n}", "mutuelle-a", make_test_nir(rng), make_test_birth_date(rng),
                     "", ((CODE, 1, euros_cents),), None, None, f"INV-LPP-{n}")
    pc = builder.build(inp, now_ms=dispensed_ms)
    with e.cluster.client("optic-paris", node=n % 4) as client:
        return submit_signed(client, pc.stx, True, 30.0)


def _publish_table(e: Env) -> Path:
    """The seed table with the price limit of CODE lowered."""
    return write_table(e.work / "lpp_v2.csv", CODE, NEW_PLV_CENTS)


def write_table(path: Path, code: str, plv_cents: int, base_cents: int | None = None) -> Path:
    """The seed table with the price limit (and the AMO base) of ``code`` changed (prices in
    cents in the CSV), written to ``path``."""
    lines = SEED_CSV.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#") or ln.startswith("code,")]
    rows = list(csv.reader(ln for ln in lines if ln and ln not in head))
    [row] = [r for r in rows if r[0] == code]
    assert code != CODE or row[5] == str(OLD_PLV_CENTS)
    row[5] = str(plv_cents)
    if base_cents is not None:
        row[6] = str(base_cents)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text("\n".join(head) + "\n" + out.getvalue())
    return path


def test_lpp_price_change_judged_by_dispensing_date(env: Env,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    now_ms = int(time.time() * 1000)
    day_d = now_ms // DAY_MS
    table = _publish_table(e)
    sent = tp_json(capsys, "lpp", "publish", str(table), "--effective", format_day(day_d),
                   "--node", e.url(0), "--admin-key", e.admin("cnam"), "--wait")
    assert sent["status"] == "committed" and sent["version"] == 2, sent

    # The version in force on each date, from the node.
    before = tp_json(capsys, "lpp", "list", "--at", format_day(day_d - 2), "--node", e.url(1),
                     "--key", e.key("optic-paris"))
    after = tp_json(capsys, "lpp", "list", "--at", format_day(day_d), "--node", e.url(1),
                    "--key", e.key("optic-paris"))
    plv = {v["version"]: {r["code"]: r["max_price"] for r in v["codes"]}
           for v in (before, after)}
    assert plv == {1: plv[1], 2: plv[2]} and plv[1][CODE] == OLD_PLV
    assert plv[2][CODE] == NEW_PLV and after["effective"] == format_day(day_d)

    old = _dated_claim(e, OLD_PLV_CENTS, now_ms - 2 * DAY_MS, 1)
    assert old["status"] == "committed", old  # judged by v1: 12.04 <= PLV 12.04
    new = _dated_claim(e, OLD_PLV_CENTS, now_ms, 2)
    assert new["status"] == "rejected" and new["code"] == "price_above_limit", new
    ok = _dated_claim(e, NEW_PLV_CENTS, now_ms, 3)
    assert ok["status"] == "committed", ok  # judged by v2 at its limit

    # A second publication must come later than the first: refused with its code (exit 4).
    rc, _, err = tp(capsys, "lpp", "publish", str(table), "--effective", format_day(day_d),
                    "--node", e.url(2), "--admin-key", e.admin("cnam"), "--wait")
    assert rc == 4 and "bad_tariff_version" in err, err
