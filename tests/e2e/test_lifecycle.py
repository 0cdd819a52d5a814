"""The whole claim lifecycle through the real CLI, over a real 4-validator cluster.

Two opticians submit; both payers list their inbox, open and verify the patient opening,
decide and pay; one claim is rejected, one cancelled, one forgotten (its openings gone from
every node). Role and replay refusals come back with the ledger's codes. Auditors fetch and
verify checkpoints, a consistency proof, run the witness and the CNAM's statistics. Last, the
privacy scan: no NIR or birth date in any byte of any node's data, log or metrics.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.privacy_scan import identity_needles, scan_paths, scan_texts
from tests.node.conftest import level_nodes, wait_until
from tpledger.cli import render
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.lifecycle import submit_signed
from tpledger.cli.main import run
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.ledger.tx import SHARE_AMC, Decision, Payment, sign_tx

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)


@dataclass
class Env:
    cluster: LocalCluster
    work: Path  # outside every node's data dir: claims files, checkpoints, witness state
    patients: list[tuple[str, str]] = field(default_factory=list)
    claims: dict[str, list[str]] = field(default_factory=dict)  # optician -> claim ids
    cancels: int = 0
    amc_rejections: dict[str, int] = field(default_factory=dict)  # insurer -> rejections

    def key(self, org: str) -> str:
        return str(self.cluster.info.client(org).key)

    @property
    def genesis(self) -> str:
        return str(self.cluster.info.genesis)

    def url(self, i: int = 0) -> str:
        return self.cluster.urls[i]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("e2e")
    with LocalCluster(root / "c", validators=4, startup_timeout_s=60) as c, levelled(c):
        yield Env(c, root / "work")


# The nodes of the module's cluster, brought level before each command (set by the e2e
# fixtures): a command after a ``--wait`` on node 0 may read on node 3, which must first have
# applied the block (these reads raced under load).
LEVEL_URLS: list[str] = []


@contextlib.contextmanager
def levelled(cluster: LocalCluster) -> Iterator[None]:
    """While the block runs, ``tp`` brings the cluster's nodes level before each command."""
    LEVEL_URLS[:] = cluster.urls
    try:
        yield
    finally:
        LEVEL_URLS.clear()


def tp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``tpledger ARGS`` in-process through the CLI's single exit-code mapping."""
    level_nodes(LEVEL_URLS)
    capsys.readouterr()
    rc = run(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def tp_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    rc, out, err = tp(capsys, *args, "--json")
    assert rc == 0, err
    return json.loads(out.strip().splitlines()[-1])


def submit_claims(capsys: pytest.CaptureFixture[str], e: Env, optician: str, insurer: str,
                  n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    e.work.mkdir(exist_ok=True)
    f = e.work / f"{optician}-{seed}.jsonl"
    lines = []
    for _ in range(n):
        nir, bd = make_test_nir(rng), make_test_birth_date(rng)
        e.patients.append((nir, bd))
        lines.append(json.dumps({
            "ref": f"INV-{optician}-{seed}-{len(lines)}",
            "insurer": insurer,
            "patient": {"nir": nir, "birth_date": bd, "member_number": f"M{rng.randrange(10**6)}"},
            "lines": [{"lpp": "2210546", "qty": 1, "amount": "30.49"},
                      {"lpp": "2261874", "qty": 2, "amount": "24.08"}],
        }))
    f.write_text("\n".join(lines) + "\n")
    rc, out, err = tp(capsys, "claim", "submit", "--node", e.url(0), "--key", e.key(optician),
                      "--from-json", str(f), "--json", "--wait")
    assert rc == 0, err
    rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert [r["status"] for r in rows] == ["committed"] * n, rows
    ids = [str(r["claim_id"]) for r in rows]
    e.claims.setdefault(optician, []).extend(ids)
    return ids


def claim_state(e: Env, org: str, claim_id: str, node: int = 0) -> dict[str, Any]:
    level_nodes(e.cluster.urls)  # the last change may have been committed through another node
    with e.cluster.client(org, node=node) as cl:
        return cl.claim(claim_id)


# ---------------------------------------------------------------------------------------------
def test_lifecycle_through_the_cli(env: Env, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    e = env
    paris = submit_claims(capsys, e, "optic-paris", "mutuelle-a", 4, seed=11)
    lyon = submit_claims(capsys, e, "optic-lyon", "mutuelle-b", 2, seed=12)
    paid_a, rejected, cancelled, forgotten = paris
    paid_b, partial = lyon

    # Inboxes: each insurer sees only its own claims, the CNAM sees all six.
    inbox_a = tp_json(capsys, "claim", "inbox", "--node", e.url(1), "--key", e.key("mutuelle-a"))
    assert inbox_a["share"] == "amc"
    assert {c["claim_id"] for c in inbox_a["claims"]} == set(paris)
    inbox_b = tp_json(capsys, "claim", "inbox", "--node", e.url(2), "--key", e.key("mutuelle-b"))
    assert {c["claim_id"] for c in inbox_b["claims"]} == set(lyon)
    inbox_c = tp_json(capsys, "claim", "inbox", "--node", e.url(3), "--key", e.key("cnam"))
    assert inbox_c["share"] == "amo" and {c["claim_id"] for c in inbox_c["claims"]} >= set(
        paris + lyon)

    # Both payers open and verify the opening; by default no identity is printed.
    for org, cid in (("mutuelle-a", paid_a), ("cnam", paid_a), ("mutuelle-b", paid_b),
                     ("cnam", paid_b), ("mutuelle-b", partial)):
        rc, out, err = tp(capsys, "claim", "open", cid, "--node", e.url(0), "--key", e.key(org))
        assert rc == 0, err
        assert "opening verified against the commitment" in out
        assert "member number" not in out  # identity data only with --show-identity
        for nir, bd in e.patients:
            assert nir not in out + err and bd not in out + err
    # --show-identity prints to a terminal only (issue 14): refused on a pipe, even as JSON...
    rc, out, err = tp(capsys, "claim", "open", paid_a, "--node", e.url(0), "--key",
                      e.key("mutuelle-a"), "--show-identity", "--json")
    assert rc == 2 and out == "" and "terminal" in err
    # ...and shown when stdout is one (pytest's capture is not: pretend).
    monkeypatch.setattr(render, "stdout_is_terminal", lambda: True)
    body = tp_json(capsys, "claim", "open", paid_a, "--node", e.url(0), "--key",
                   e.key("mutuelle-a"), "--show-identity")
    monkeypatch.undo()
    assert body["verified"] is True and (body["nir"], body["birth_date"]) == e.patients[0]
    assert body["member_number"].startswith("M")

    # Decide and pay both shares of paid_a, paid_b; partial: AMC accepted below the asked amount.
    for cid, ins in ((paid_a, "mutuelle-a"), (paid_b, "mutuelle-b"), (partial, "mutuelle-b")):
        for org in (ins, "cnam"):
            extra = ["--amount", "20.00"] if (cid, org) == (partial, ins) else []
            row = tp_json(capsys, "claim", "decide", cid, "--accept", *extra, "--node",
                          e.url(1), "--key", e.key(org), "--wait")
            assert row["status"] == "committed", row
    st = claim_state(e, "optic-lyon", partial)
    assert st["amc"]["approved_cents"] == 2000 and st["status"] == "accepted"
    for cid, ins in ((paid_a, "mutuelle-a"), (paid_b, "mutuelle-b")):
        st = claim_state(e, "optic-paris" if cid == paid_a else "optic-lyon", cid)
        for org, share in ((ins, "amc"), ("cnam", "amo")):
            amount = f"{st[share]['approved_cents'] / 100:.2f}"
            row = tp_json(capsys, "claim", "pay", cid, "--amount", amount, "--reference",
                          f"VIR-{cid[:8]}-{share}", "--node", e.url(2), "--key", e.key(org),
                          "--wait")
            assert row["status"] == "committed", row
    # the partial claim: AMC pays 12.00 of 20.00 approved, then owes 8.00
    row = tp_json(capsys, "claim", "pay", partial, "--amount", "12.00", "--reference", "VIR-P1",
                  "--node", e.url(3), "--key", e.key("mutuelle-b"), "--wait")
    assert row["status"] == "committed"

    # Rejection by both payers, and a cancel by the optician.
    for org in ("mutuelle-a", "cnam"):
        row = tp_json(capsys, "claim", "decide", rejected, "--reject", "not_covered", "--node",
                      e.url(0), "--key", e.key(org), "--wait")
        assert row["status"] == "committed"
    e.amc_rejections["mutuelle-a"] = e.amc_rejections.get("mutuelle-a", 0) + 1
    row = tp_json(capsys, "claim", "cancel", cancelled, "--reason", "wrong_lens", "--node",
                  e.url(0), "--key", e.key("optic-paris"), "--wait")
    assert row["status"] == "committed"
    e.cancels += 1

    # What the opticians see.
    mine = tp_json(capsys, "claim", "list", "--mine", "--node", e.url(1), "--key",
                   e.key("optic-paris"))
    by_id = {c["claim_id"]: c for c in mine["claims"]}
    assert set(by_id) == set(paris)
    assert by_id[paid_a]["status"] == "paid" and by_id[paid_a]["owed_cents"] == 0
    assert by_id[paid_a]["amo"]["status"] == "paid" and by_id[paid_a]["amc"]["status"] == "paid"
    assert by_id[rejected]["status"] == "rejected"
    assert by_id[rejected]["amc"]["reason_code"] == "not_covered"
    assert by_id[cancelled]["status"] == "cancelled"
    assert by_id[forgotten]["status"] == "submitted"
    mine_l = tp_json(capsys, "claim", "list", "--mine", "--node", e.url(2), "--key",
                     e.key("optic-lyon"))
    by_id = {c["claim_id"]: c for c in mine_l["claims"]}
    assert by_id[paid_b]["status"] == "paid" and by_id[paid_b]["owed_cents"] == 0
    assert by_id[partial]["owed_cents"] == 800 + by_id[partial]["amo"]["approved_cents"]
    assert mine_l["owed_cents"] == by_id[partial]["owed_cents"]
    rc, out, err = tp(capsys, "claim", "list", "--mine", "--node", e.url(2), "--key",
                      e.key("optic-lyon"))
    # piped: the rows on stdout (tab-separated), the summary on stderr (issue 14)
    assert rc == 0 and "still owed" in err and "\t" in out
    inbox_a = tp_json(capsys, "claim", "inbox", "--node", e.url(1), "--key", e.key("mutuelle-a"))
    assert [c["claim_id"] for c in inbox_a["claims"]] == [forgotten]

    # Forget: the openings are gone from every node.
    for i in range(4):
        assert claim_state(e, "cnam", forgotten, node=i)["openings_held"] == ["cnam",
                                                                              "mutuelle-a"]
    body = tp_json(capsys, "claim", "forget", forgotten, "--node", e.url(0), "--key",
                   e.key("mutuelle-a"))
    assert body["deleted"] == 2

    def gone_everywhere() -> bool:
        return all(claim_state(e, "cnam", forgotten, node=i)["openings_held"] == []
                   for i in range(4))

    wait_until(gone_everywhere, 60, "openings forgotten on every node")
    for i in range(4):
        for org in ("mutuelle-a", "cnam"):
            with e.cluster.client(org, node=i) as cl, pytest.raises(ClientError) as ei:
                cl.opening(forgotten)
            assert (ei.value.status, ei.value.code) == (404, "no_opening")
    rc, _, err = tp(capsys, "claim", "open", forgotten, "--node", e.url(2), "--key",
                    e.key("mutuelle-a"))
    assert rc == 1 and "no_opening" in err and err.count("\n") == 1


def test_roles_and_replays_are_refused(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    [cid] = submit_claims(capsys, e, "optic-paris", "mutuelle-a", 1, seed=21)
    args = ["--node", e.url(0), "--wait"]

    # An optician decides nothing: refused before signing (no share for its role)...
    rc, _, err = tp(capsys, "claim", "decide", cid, "--accept", "--key", e.key("optic-paris"),
                    *args)
    assert rc == 1 and "decides no share" in err
    # ...and the ledger refuses such a tx if it is signed anyway.
    gen = e.cluster.genesis()
    k = e.cluster.key("optic-paris")
    with e.cluster.client("optic-paris") as cl:
        row = submit_signed(cl, sign_tx(gen.chain_id, k.signer, Decision(
            bytes.fromhex(cid), SHARE_AMC, True, 100, "")), wait=True, timeout_s=60)
    assert (row["status"], row["code"]) == ("rejected", "wrong_role")

    # Another insurer can neither decide this claim nor read its opening.
    rc, _, err = tp(capsys, "claim", "decide", cid, "--accept", "--amount", "1.00", "--key",
                    e.key("mutuelle-b"), *args)
    assert rc == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "forbidden" in err  # the node does not even show it the claim
    kb = e.cluster.key("mutuelle-b")
    with e.cluster.client("mutuelle-b") as cl:
        row = submit_signed(cl, sign_tx(gen.chain_id, kb.signer, Decision(
            bytes.fromhex(cid), SHARE_AMC, True, 100, "")), wait=True, timeout_s=60)
        assert (row["status"], row["code"]) == ("rejected", "wrong_org")
        with pytest.raises(ClientError) as ei:
            cl.opening(cid)
        assert (ei.value.status, ei.value.code) == (403, "forbidden")
    rc, _, err = tp(capsys, "claim", "open", cid, "--key", e.key("mutuelle-b"), "--node",
                    e.url(0))
    assert rc == 1 and "forbidden" in err

    # A payment above the approved amount is refused with the ledger's code.
    rc, _, err = tp(capsys, "claim", "decide", cid, "--accept", "--amount", "10.00", "--key",
                    e.key("mutuelle-a"), *args)
    assert rc == 0, err
    rc, _, err = tp(capsys, "claim", "pay", cid, "--amount", "10.01", "--reference", "R1",
                    "--key", e.key("mutuelle-a"), *args)
    # Exit.REJECTED (was 1: issue 14 tells a refusal of the ledger apart)
    assert rc == 4 and "payment_exceeds_approved" in err and "Traceback" not in err
    # A second decision on one share is refused too.
    rc, _, err = tp(capsys, "claim", "decide", cid, "--reject", "late", "--key",
                    e.key("mutuelle-a"), *args)
    assert rc == 4 and "already_decided" in err
    # The optician may not cancel once a share is decided.
    rc, _, err = tp(capsys, "claim", "cancel", cid, "--reason", "oops", "--key",
                    e.key("optic-paris"), *args)
    assert rc == 4 and "cancel_after_decision" in err

    # A replayed payment (same signed bytes) is refused once committed.
    ka = e.cluster.key("mutuelle-a")
    stx = sign_tx(gen.chain_id, ka.signer, Payment(bytes.fromhex(cid), SHARE_AMC, 400,
                                                   b"\x01" * 32))
    with e.cluster.client("mutuelle-a", node=1) as cl:
        first = submit_signed(cl, stx, wait=True, timeout_s=60)
        assert first["status"] == "committed", first
    level_nodes(e.cluster.urls)  # else a node that has not applied it yet answers "pending"
    for node in range(4):
        with e.cluster.client("mutuelle-a", node=node) as cl:
            again = submit_signed(cl, stx, wait=True, timeout_s=60)
        assert (again["status"], again["code"]) == ("rejected", "duplicate_tx")
    assert claim_state(e, "mutuelle-a", cid)["amc"]["paid_cents"] == 400


def test_checkpoints_consistency_witness(env: Env, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    e = env
    cp1, cp2 = tmp_path / "cp1.ckp", tmp_path / "cp2.ckp"
    # Independent of the other tests' order: a checkpoint needs one committed block.
    wait_until(lambda: int(NodeClient(e.url(0)).status()["height"]) >= 1, 60, "a first block")
    rc, _, err = tp(capsys, "checkpoint", "get", "--node", e.url(0), "-o", str(cp1))
    assert rc == 0, err
    body = tp_json(capsys, "checkpoint", "verify", str(cp1), "--genesis", e.genesis)
    assert body["ok"] is True
    h1 = body["height"]

    state = tmp_path / "witness.json"
    rc, out, err = tp(capsys, "witness", "--node", e.url(0), "--node", e.url(1), "--genesis",
                      e.genesis, "--state", str(state), "--once")
    assert rc == 0, err
    assert json.loads(state.read_text())["checkpoint"]

    submit_claims(capsys, e, "optic-lyon", "mutuelle-a", 2, seed=31)
    wait_until(lambda: int(NodeClient(e.url(3)).status()["height"]) > h1, 60, "a new block")
    rc, _, err = tp(capsys, "checkpoint", "get", "--node", e.url(3), "-o", str(cp2))
    assert rc == 0, err
    proof = tmp_path / "c12.cns"
    body = tp_json(capsys, "checkpoint", "consistency", str(cp1), str(cp2), "--genesis",
                   e.genesis, "--node", e.url(2), "-o", str(proof))
    assert body["ok"] is True and body["new_size"] > body["old_size"]
    # offline, from the saved proof
    rc, out, err = tp(capsys, "checkpoint", "consistency", str(cp1), str(cp2), "--genesis",
                      e.genesis, "--proof", str(proof))
    assert rc == 0 and "consistent" in out, err
    # reversed: NEW does not extend OLD
    rc, _, err = tp(capsys, "checkpoint", "consistency", str(cp2), str(cp1), "--genesis",
                    e.genesis, "--node", e.url(2))
    assert rc == 1 and err.startswith("error: ")  # the node refuses a path from NEW to OLD

    # A flipped byte in a checkpoint file fails verification (exit 1, one line).
    data = bytearray(cp2.read_bytes())
    data[-10] ^= 0x01
    bad = tmp_path / "bad.ckp"
    bad.write_bytes(bytes(data))
    rc, _, err = tp(capsys, "checkpoint", "verify", str(bad), "--genesis", e.genesis)
    assert rc == 7 and err.count("\n") == 1

    # The witness advances from its state over every node.
    rc, out, err = tp(capsys, "witness", *[a for u in e.cluster.urls for a in ("--node", u)],
                      "--genesis", e.genesis, "--state", str(state), "--max-polls", "2",
                      "--interval", "0.1", "--json")
    assert rc == 0, err
    events = [json.loads(ln) for ln in out.splitlines()]
    assert {ev["status"] for ev in events} <= {"advanced", "same", "behind"}


def test_stats_from_blocks(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    if not e.claims:  # run alone
        submit_claims(capsys, e, "optic-paris", "mutuelle-a", 1, seed=51)
    body = tp_json(capsys, "stats", "--node", e.url(1), "--key", e.key("cnam"))
    n_claims = sum(len(v) for v in e.claims.values())
    assert body["claims"] == n_claims
    assert body["by_lpp"]["2210546"] == {"count": n_claims, "qty": n_claims,
                                         "cents": 3049 * n_claims}
    assert body["by_lpp"]["2261874"]["qty"] == 2 * n_claims
    assert body["cancels"] == e.cancels
    assert body["by_payer"]["cnam"]["claims"] == n_claims
    for org, n in e.amc_rejections.items():
        assert body["by_payer"][org]["rejected"] == n
    assert sum(m["count"] for m in body["by_month"].values()) == n_claims
    text = json.dumps(body)
    assert "optic-" not in text  # anonymous: no shop
    for nir, bd in e.patients:
        assert nir not in text and bd not in text
    rc, out, _ = tp(capsys, "stats", "--node", e.url(1), "--key", e.key("cnam"),
                    "--from-height", "1", "--to-height", "1")
    assert rc == 0 and "heights 1..1" in out


def test_privacy_scan_of_every_node(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Last test of the module: stop the cluster and scan every byte it wrote."""
    e = env
    if not e.patients:  # run alone: put some identities on the cluster first
        submit_claims(capsys, e, "optic-lyon", "mutuelle-b", 2, seed=41)
    needles = identity_needles(e.patients)
    metrics = []
    for url in e.cluster.urls:
        with NodeClient(url) as cl:
            _, data = cl.request("GET", "/metrics")
        metrics.append((f"{url}/metrics", data))
    codes = e.cluster.stop()
    assert all(c is not None for c in codes.values())
    node_dirs = [e.cluster.info.root / "nodes" / n.name for n in e.cluster.info.nodes]
    hits = scan_paths([e.cluster.info.root], needles) + scan_texts(metrics, needles)
    assert hits == [], hits[:5]
    # the scanner can fail: the optician's own input files hold every identity used
    found = {p for p, _ in scan_paths([e.work], needles)}
    assert len(found) == len(list(e.work.glob("*.jsonl")))
    # the scan covered data stores and logs of every node
    scanned = [p for d in node_dirs for p in d.rglob("*") if p.is_file()]
    assert any(p.name == "node.log" for p in scanned)
    assert sum(1 for p in scanned if p.suffix == ".mdb" or "data" in p.parts) >= 4
