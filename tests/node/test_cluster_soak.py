"""Soak (``make soak``): a real 4-node cluster under load while validators are SIGKILLed and
restarted at random, one at a time (f = 1). Afterwards every acknowledged claim is committed,
all four nodes agree on the tree root, and every store passes a full audit.

``TPLEDGER_CLUSTER_SOAK_ROUNDS`` (default 20) kill/restart rounds; the seed is printed.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.node.conftest import make_claims, status, wait_until
from tpledger.cli.claims import submit_prepared, wait_committed
from tpledger.cli.client import ClientError
from tpledger.cli.cluster import LocalCluster
from tpledger.ledger.audit import audit
from tpledger.ledger.lpp import LppTable

pytestmark = [pytest.mark.soak, pytest.mark.cluster]


def test_random_kills_under_load(tmp_path: Path) -> None:
    rounds = int(os.environ.get("TPLEDGER_CLUSTER_SOAK_ROUNDS", "20"))
    seed = int(os.environ.get("TPLEDGER_CLUSTER_SOAK_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"\ncluster soak: {rounds} rounds, seed {seed}")
    acked: list[str] = []
    with LocalCluster(tmp_path / "c", validators=4, startup_timeout_s=60) as c:
        names = [n.name for n in c.info.nodes]
        for r in range(rounds):
            victim = rng.randrange(4)
            c.kill_node(names[victim])
            live = [i for i in range(4) if i != victim]
            claims, _ = make_claims(c, rng.choice(["optic-paris", "optic-lyon"]),
                                    rng.choice(["mutuelle-a", "mutuelle-b"]),
                                    rng.randrange(1, 60), seed=seed * 1000 + r)
            node = rng.choice(live)
            try:
                with c.client("optic-paris", node=node) as cl:
                    rows = submit_prepared(cl, claims, batch_size=25)
                    wait_committed(cl, rows, timeout_s=60)
            except ClientError as exc:
                pytest.fail(f"seed {seed} round {r}: a live node failed: {exc}")
            assert all(row["status"] == "committed" for row in rows), (seed, r, rows[:3])
            acked += [str(row["claim_id"]) for row in rows]
            time.sleep(rng.random() * 0.5)
            c.start_node(names[victim])
            c.wait_ready(60)
        wait_until(lambda: len({status(u)["tree_root"] for u in c.urls}) == 1
                   and {status(u)["tree_size"] for u in c.urls} == {len(acked)},
                   120, f"convergence (seed {seed})")
        for i, cid in enumerate(acked[:: max(1, len(acked) // 50)]):
            with c.client("cnam", node=i % 4) as cl:
                assert cl.tx_status(cid)["status"] == "committed"
        assert not c.dead_nodes()
    genesis = c.genesis()
    for n in c.info.nodes:
        report = audit(n.config.parent / "data" / "ledger", genesis, LppTable.default())
        assert report.ok, (seed, n.name, report.first_bad_height, report.reason)
    print(f"cluster soak: {len(acked)} claims committed through {rounds} SIGKILLs, "
          f"audits clean, violations=0")
