"""End to end over a real 4-validator cluster: commit, SIGKILL one, keep committing, restart,
converge, prove every acknowledged claim offline."""

from __future__ import annotations

import pytest

from tests.node.conftest import level_nodes, make_claims, status, wait_until
from tpledger.cli.claims import submit_prepared, wait_committed
from tpledger.cli.client import ClientError
from tpledger.cli.cluster import LocalCluster
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.proofs import verify_bundle

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)


def _submit_and_wait(c: LocalCluster, node: int, optician: str, insurer: str, n: int,
                     seed: int) -> list[dict[str, object]]:
    claims, _ = make_claims(c, optician, insurer, n, seed)
    with c.client(optician, node=node) as cl:
        rows = submit_prepared(cl, claims, batch_size=50)
        assert all(r["status"] == "pending" for r in rows), rows
        wait_committed(cl, rows, timeout_s=60)
    assert all(r["status"] == "committed" for r in rows), rows
    level_nodes(c.urls)  # committed through ``node``; the tests read them on others too
    return rows


def test_commit_crash_restart_converge_and_prove(cluster: LocalCluster) -> None:
    c = cluster
    genesis = Genesis.load(c.info.genesis)
    acked = _submit_and_wait(c, 0, "optic-paris", "mutuelle-a", 40, seed=1)

    # SIGKILL one validator: the other three (a quorum of 4) keep committing.
    c.kill_node("v3")
    h_before = int(status(c.urls[0])["height"])  # type: ignore[call-overload]
    acked += _submit_and_wait(c, 1, "optic-lyon", "mutuelle-b", 40, seed=2)
    assert int(status(c.urls[1])["height"]) > h_before  # type: ignore[call-overload]

    # Restart it: it resumes from its persisted state, catches up and converges.
    c.start_node("v3")
    c.wait_ready(30)
    acked += _submit_and_wait(c, 3, "optic-paris", "mutuelle-b", 10, seed=3)

    def converged() -> bool:
        sts = [status(u) for u in c.urls]
        sizes = {s["tree_size"] for s in sts}
        roots = {s["tree_root"] for s in sts}
        return len(roots) == 1 and sizes == {len(acked)}

    wait_until(converged, 60, "all four nodes at the same tree root")

    # Every acknowledged claim has a proof that verifies offline, from any node.
    for i, row in enumerate(acked):
        optician = "optic-paris" if i < 40 or i >= 80 else "optic-lyon"
        with c.client(optician, node=i % 4) as cl:
            bundle = cl.proof(str(row["claim_id"]))
        res = verify_bundle(bundle, genesis)
        assert res.ok, (res.failure_code, res.message)
        assert res.claim_id is not None and res.claim_id.hex() == row["claim_id"]
        if i % 16 == 0:  # a flipped byte anywhere fails
            for pos in range(0, len(bundle), 37):
                bad = bytearray(bundle)
                bad[pos] ^= 0x40
                assert not verify_bundle(bytes(bad), genesis).ok

    # Nothing was lost by the crash: the restarted node serves the same history.
    with c.client("optic-paris", node=3) as cl:
        st = cl.tx_status(str(acked[0]["claim_id"]))
    assert st["status"] == "committed"
    assert not c.dead_nodes()


def test_other_participant_cannot_read_a_claim(cluster: LocalCluster) -> None:
    rows = _submit_and_wait(cluster, 2, "optic-lyon", "mutuelle-a", 1, seed=9)
    claim_id = str(rows[0]["claim_id"])
    with cluster.client("mutuelle-b", node=2) as cl, pytest.raises(ClientError) as ei:
        cl.claim(claim_id)
    assert ei.value.status == 403
    with cluster.client("optic-paris", node=2) as cl, pytest.raises(ClientError) as ei:
        cl.proof(claim_id)
    assert ei.value.status == 403
    for org in ("optic-lyon", "mutuelle-a", "cnam"):
        with cluster.client(org, node=1) as cl:
            assert cl.claim(claim_id)["status"] == "submitted"


def test_sigterm_stops_cleanly_and_node_rejoins(cluster: LocalCluster) -> None:
    h = int(status(cluster.urls[1])["height"])  # type: ignore[call-overload]
    assert cluster.stop_node("v1") == 0  # SIGTERM: clean exit, code 0
    assert "stopped at height" in cluster.log_path("v1").read_text()
    cluster.start_node("v1")
    cluster.wait_ready(30)
    wait_until(lambda: int(status(cluster.urls[1])["height"]) > h,  # type: ignore[call-overload]
               30, "v1 to commit again after a clean restart")


def test_a_node_that_lacks_the_openings_fetches_them_for_the_payer(
        cluster: LocalCluster) -> None:
    """A node whose off-ledger openings are gone (missed gossip, restored from an old backup)
    fetches a payer's opening from its peers, with the payer's own signed request."""
    import shutil

    c = cluster
    rows = _submit_and_wait(c, 0, "optic-paris", "mutuelle-a", 1, seed=21)
    claim_id = str(rows[0]["claim_id"])

    def v3_holds() -> bool:
        with c.client("cnam", node=3) as cl:
            return bool(cl.claim(claim_id)["openings_held"])

    wait_until(v3_holds, 30, "v3 to hold the openings")
    assert c.stop_node("v3") == 0
    shutil.rmtree(c.info.nodes[3].config.parent / "data" / "openings")
    c.start_node("v3")
    c.wait_ready(30)
    with c.client("mutuelle-a", node=3) as cl:
        assert cl.claim(claim_id)["openings_held"] == []
        fetched = cl.opening(claim_id)  # fetched from a peer with the payer's signed request
        assert "mutuelle-a" in cl.claim(claim_id)["openings_held"]  # and kept
    with c.client("mutuelle-a", node=0) as cl:
        assert cl.opening(claim_id) == fetched
    # Another payer's opening is not served to this insurer, by any route.
    with c.client("mutuelle-b", node=3) as cl, pytest.raises(ClientError) as ei:
        cl.opening(claim_id)
    assert ei.value.status == 403
