"""Governance, part A, through the real CLI over a real 4-validator cluster (issue 13).

1. The federation's admin registers a new shop (its keys generated on its own host); the shop
   submits a claim that the insurer decides; its proof verifies offline from genesis.json.
2. The insurer rotates its keys: it decides with the new key, the old one is refused (exit 4,
   ``revoked_signer``); a claim sealed before the rotation still opens (key history), one
   sealed after it opens with the new key.
3. A shop's phished key is revoked: a burst of its claims sent to another node while the
   revocation is in flight ends either committed in a block <= the revocation's or refused
   ``revoked_signer`` (none after); its next claim is refused; the proofs of its earlier claims,
   fetched after the revocation, still verify offline from genesis.json alone.
4. The privacy scan over every node's files.

(Part B, quorum proposals and tariff versions, is tests/e2e/test_governance_quorum.py.)
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.privacy_scan import identity_needles, scan_paths
from tests.e2e.test_lifecycle import levelled, tp, tp_json
from tpledger.cli.claims import ClaimBuilder, ClaimInput, wait_committed
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.errors import Exit
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)

NEW_SHOP = ("optic-nantes", "44300100800012", "10001234565")  # org, SIRET, RPPS (Luhn-valid)


@dataclass
class Env:
    cluster: LocalCluster
    work: Path
    rng: random.Random = field(default_factory=lambda: random.Random(13))
    patients: list[tuple[str, str]] = field(default_factory=list)

    @property
    def genesis(self) -> str:
        return str(self.cluster.info.genesis)

    def key(self, org: str) -> str:
        return str(self.cluster.info.client(org).key)

    def admin(self, org: str) -> str:
        return str(self.cluster.admin_key(org))

    def url(self, i: int = 0) -> str:
        return self.cluster.urls[i]

    def patient(self) -> tuple[str, str]:
        p = make_test_nir(self.rng), make_test_birth_date(self.rng)
        self.patients.append(p)
        return p


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("gov")
    with LocalCluster(root / "c", validators=4, startup_timeout_s=60) as c, levelled(c):
        yield Env(c, root / "work")


def submit(capsys: pytest.CaptureFixture[str], e: Env, key: str, insurer: str, ref: str,
           node: int = 0) -> tuple[int, dict[str, Any], str]:
    nir, bd = e.patient()
    rc, out, err = tp(capsys, "claim", "submit", "--node", e.url(node), "--key", key,
                      "--genesis", e.genesis, "--insurer", insurer, "--nir", nir,
                      "--birth-date", bd, "--line", "2261874:1:12.04", "--ref", ref,
                      "--json", "--wait")
    rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    return rc, rows[0] if rows else {}, err


def verify_offline(capsys: pytest.CaptureFixture[str], e: Env, claim_id: str, reader: str,
                   name: str) -> dict[str, Any]:
    proof = e.work / f"{name}.proof"
    rc, _, err = tp(capsys, "proof", "get", claim_id, "--node", e.url(3), "--key", reader,
                    "-o", str(proof))
    assert rc == 0, err
    body = tp_json(capsys, "proof", "verify", str(proof), "--genesis", e.genesis)
    assert body["ok"] is True and body["claim_id"] == claim_id, body
    return dict(body)


# ---------------------------------------------------------------------------------------------
def test_a_federation_admin_registers_a_shop_that_claims(
        env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    org, siret, rpps = NEW_SHOP
    shop_dir = e.work / org  # the shop's own host: its secret never leaves it
    rc, _, err = tp(capsys, "keygen", org, "--role", "optician", "--gov-org", "federation",
                    "--siret", siret, "--rpps", rpps, "-o", str(shop_dir))
    assert rc == 0, err
    pub = str(shop_dir / f"{org}.pub.json")
    # the insurer's admin may not register opticians; the federation's may
    rc, _, err = tp(capsys, "participant", "add", org, "--pub", pub, "--gov-org", "federation",
                    "--node", e.url(0), "--admin-key", e.admin("insurer-a"))
    assert rc == Exit.REJECTED and "not_authorised" in err
    row = tp_json(capsys, "participant", "add", org, "--pub", pub, "--gov-org", "federation",
                  "--node", e.url(0), "--admin-key", e.admin("federation"))
    assert row["status"] == "committed", row
    shown = tp_json(capsys, "participant", "show", org, "--node", e.url(1), "--key",
                    e.key("cnam"))
    assert (shown["status"], shown["role"], shown["gov_org"]) == ("active", "optician",
                                                                  "federation")
    assert shown["ids"] == {"siret": siret, "rpps": rpps}
    assert [h["op"] for h in shown["history"]] == ["added"]
    assert shown["history"][0]["height"] == row["height"]
    listed = tp_json(capsys, "participant", "list", "--role", "optician", "--node", e.url(2),
                     "--key", e.key("cnam"))
    assert org in {p["org"] for p in listed["participants"]}

    # the new shop claims (a key in no genesis), the insurer decides, the proof verifies
    rc, claim, err = submit(capsys, e, str(shop_dir / f"{org}.key"), "mutuelle-a", "NT-1",
                            node=1)
    assert rc == 0 and claim["status"] == "committed", err
    decided = tp_json(capsys, "claim", "decide", claim["claim_id"], "--accept", "--node",
                      e.url(2), "--key", e.key("mutuelle-a"), "--wait")
    assert decided["status"] == "committed"
    body = verify_offline(capsys, e, claim["claim_id"], e.key("cnam"), "nantes-1")
    assert body["signer_org"] == org


def test_the_insurer_rotates_its_keys(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    # a claim sealed to the insurer's first key, before the rotation
    rc, before, err = submit(capsys, e, e.key("optic-lyon"), "mutuelle-a", "LY-1")
    assert rc == 0, err
    ins_dir = e.work / "insurer-a-host"
    ins_dir.mkdir(parents=True)
    key = ins_dir / "mutuelle-a.key"
    shutil.copy2(e.key("mutuelle-a"), key)  # the cluster's copy stays: the old key
    old = KeyFile.load(key)
    rot = tp_json(capsys, "participant", "rotate", "mutuelle-a", "--key", str(key),
                  "--genesis", e.genesis, "--node", e.url(1))
    assert rot["status"] == "committed"
    new = KeyFile.load(key)
    assert new.signer.public != old.signer.public
    assert (ins_dir / "mutuelle-a.history.json").exists()
    shown = tp_json(capsys, "participant", "show", "mutuelle-a", "--node", e.url(0), "--key",
                    e.key("cnam"))
    assert shown["ed25519"] == new.signer.public.hex()
    assert shown["history"][-1]["op"] == "rotated"
    assert shown["history"][-1]["height"] == rot["height"]

    # a claim after the rotation is sealed to the new X25519 key (read from the registry)
    rc, after, err = submit(capsys, e, e.key("optic-lyon"), "mutuelle-a", "LY-2", node=2)
    assert rc == 0, err
    for cid in (before["claim_id"], after["claim_id"]):
        rc, out, err = tp(capsys, "claim", "open", cid, "--node", e.url(3), "--key", str(key),
                          "--genesis", e.genesis)
        assert rc == 0 and "opening verified" in out, err
    # the old key: refused by the ledger (reads and txs), exit 4 revoked_signer
    rc, _, err = tp(capsys, "claim", "decide", after["claim_id"], "--accept", "--node",
                    e.url(0), "--key", e.key("mutuelle-a"), "--wait")
    assert rc == Exit.REJECTED and "revoked_signer" in err
    row = tp_json(capsys, "claim", "decide", after["claim_id"], "--accept", "--node", e.url(0),
                  "--key", str(key), "--genesis", e.genesis, "--wait")
    assert row["status"] == "committed"


def test_suspend_reinstate_and_an_admin_rotation(env: Env,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A suspended key is refused (reads too: exit 4 ``suspended_signer``) until reinstated;
    the admin rotates a shop that lost its key, from the shop's new public file."""
    e = env
    lyon = e.key("optic-lyon")
    read = ("participant", "show", "optic-lyon", "--node", e.url(1), "--key", lyon)
    row = tp_json(capsys, "participant", "suspend", "optic-lyon", "--reason", "audit",
                  "--node", e.url(0), "--admin-key", e.admin("federation"))
    assert row["status"] == "committed"
    rc, _, err = tp(capsys, *read)
    assert rc == Exit.REJECTED and "suspended_signer" in err
    rc, _, err = tp(capsys, "participant", "suspend", "optic-lyon", "--reason", "again",
                    "--node", e.url(0), "--admin-key", e.admin("federation"))
    assert rc == Exit.REJECTED and "bad_status_change" in err
    tp_json(capsys, "participant", "reinstate", "optic-lyon", "--reason", "cleared",
            "--node", e.url(0), "--admin-key", e.admin("federation"))
    assert tp_json(capsys, *read)["status"] == "active"
    # the shop makes a new key on its host, its admin registers it
    new_dir = e.work / "optic-lyon-new"
    rc, _, err = tp(capsys, "keygen", "optic-lyon", "--role", "optician", "-o", str(new_dir))
    assert rc == 0, err
    tp_json(capsys, "participant", "rotate", "optic-lyon", "--new-pub",
            str(new_dir / "optic-lyon.pub.json"), "--node", e.url(2), "--admin-key",
            e.admin("federation"))
    rc, _, err = tp(capsys, *read)
    assert rc == Exit.REJECTED and "revoked_signer" in err  # the lost key
    new_key = str(new_dir / "optic-lyon.key")
    shown = tp_json(capsys, "participant", "show", "optic-lyon", "--node", e.url(3), "--key",
                    new_key)
    assert shown["ed25519"] == KeyFile.load(new_key).signer.public.hex()
    assert [h["op"] for h in shown["history"]][-3:] == ["suspended", "reinstated", "rotated"]


def _burst(e: Env, n: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Claims of optic-paris built offline (sealed to the genesis keys of mutuelle-b)."""
    builder = ClaimBuilder(KeyFile.load(e.key("optic-paris")), Genesis.load(e.genesis))
    items = []
    for i in range(n):
        nir, bd = e.patient()
        pc = builder.build(ClaimInput(f"burst {i}", "mutuelle-b", nir, bd, "",
                                      (("2261874", 1, 1204),), ref=f"BURST-{i}"))
        items.append((pc.stx.encode(), list(pc.sealed)))
    return items


def _committed_height(e: Env, tx_id: str, node: int, timeout_s: float = 60.0) -> int:
    """The height of ``tx_id``'s block, asked on ``node`` until it has applied it."""
    row = {"claim_id": tx_id, "status": "pending"}  # wait_committed's row: any tx id will do
    with e.cluster.client("cnam", node=node) as cl:
        wait_committed(cl, [row], timeout_s)
    assert row["status"] == "committed", row
    return int(row["height"])


def _settled(e: Env, tx_ids: list[str], timeout_s: float = 60.0) -> dict[str, dict[str, Any]]:
    """Each tx's final status on node 2 (committed with its height, or rejected with its
    code), through the CLI's own wait."""
    rows = [{"claim_id": t, "status": "pending"} for t in tx_ids]
    with e.cluster.client("cnam", node=2) as cl:
        wait_committed(cl, rows, timeout_s)
    assert all(r["status"] in ("committed", "rejected") for r in rows), rows
    return {r["claim_id"]: r for r in rows}


def test_a_phished_shop_key_is_revoked(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    e = env
    rc, earlier, err = submit(capsys, e, e.key("optic-paris"), "mutuelle-b", "PA-1")
    assert rc == 0, err
    # the revocation, and without waiting a burst of the shop's claims to another node
    rev = tp_json(capsys, "participant", "revoke", "optic-paris", "--reason", "phished",
                  "--no-wait", "--node", e.url(0), "--admin-key", e.admin("federation"))
    burst = _burst(e, 20)
    with e.cluster.client("optic-paris", node=2) as cl:
        sent = cl.submit(burst)
    # on a slow machine the revocation may already be in force when the burst arrives: those
    # claims are refused at admission (answered now, never held, so their status is unknown)
    refused_at_once = [r for r in sent if r.get("status") == "rejected"]
    assert all(r.get("code") == "revoked_signer" for r in refused_at_once), refused_at_once
    ids = [r["tx_id"] for r in sent if r.get("tx_id") and r.get("status") != "rejected"]
    revoked_at = _committed_height(e, rev["tx_id"], node=1)  # sent to node 0: node 1 may
    final = _settled(e, ids)                                   # not know it yet ("unknown")
    for tx_id, st in final.items():
        if st["status"] == "committed":
            assert st["height"] <= revoked_at, (tx_id, st, revoked_at)
        else:
            assert st["code"] == "revoked_signer", st
    # its next claim is refused, and its signed reads
    rc, _, err = submit(capsys, e, e.key("optic-paris"), "mutuelle-b", "PA-2", node=3)
    assert rc == Exit.REJECTED and "revoked_signer" in err
    shown = tp_json(capsys, "participant", "show", "optic-paris", "--node", e.url(1), "--key",
                    e.key("cnam"))
    assert shown["status"] == "revoked" and shown["history"][-1]["op"] == "revoked"
    # the proofs of its earlier claims, fetched now, verify from genesis.json alone
    body = verify_offline(capsys, e, earlier["claim_id"], e.key("cnam"), "paris-1")
    assert body["signer_org"] == "optic-paris"
    committed = [t for t, st in final.items() if st["status"] == "committed"]
    for tx_id in committed[:2]:
        verify_offline(capsys, e, tx_id, e.key("cnam"), f"burst-{tx_id[:8]}")


def test_no_patient_data_in_any_node_file(env: Env) -> None:
    assert env.patients
    hits = scan_paths([env.cluster.info.root / "nodes"], identity_needles(env.patients))
    assert hits == []
