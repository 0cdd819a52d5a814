"""Equivocation evidence goes on the ledger (issue 10): a Byzantine validator that signs two
different votes for one slot is recorded on every node, durably, for the governance to act on.

Threat: one Byzantine validator double-signs (the first step of a fork, or of an attempt to
split honest validators). Before, the proof lived only in one node's memory, metrics and logs:
a restart lost it and no other member could see it. Now:

* against a REAL 4-node cluster (subprocesses): validator v2's key signs two conflicting
  prevotes; validator v0 submits them as an evidence tx (``POST /v1/txs``); the evidence is
  committed, listed at ``GET /v1/evidence`` and by ``tpledger evidence list`` on every node,
  its proof verifies offline (``tpledger proof get/verify``), it survives a node restart, and
  forged or participant-signed evidence is refused with its code;
* in-process (4 real nodes, real aiohttp and LMDB, one event loop): the two conflicting votes
  reach v0 as consensus frames from a peer; v0's consensus machine detects them, v0 signs the
  evidence tx itself, gossips it, and every node records it — once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tpledger.ledger.rules as rules
from tests.node.conftest import status, wait_until
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.cluster import LocalCluster, init_cluster
from tpledger.cli.main import run
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.tx import SignedTx, VoteEvidence, sign_tx
from tpledger.ledger.votes import PREVOTE, SignedVote, Vote
from tpledger.node.config import NodeConfig
from tpledger.node.peers import FRAME_CONSENSUS
from tpledger.node.runtime import Node

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)

A, B = b"\xa1" * 32, b"\xb2" * 32
OFFENDER = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("evidence") / "c"
    with LocalCluster(root, validators=4, startup_timeout_s=60) as c:
        yield c


def validator_key(root: Path, i: int) -> KeyFile:
    return KeyFile.load(root / "nodes" / f"v{i}" / "validator.key")


def conflicting_prevotes(chain_id: str, key: KeyFile, index: int, height: int,
                         round_: int = 0) -> tuple[SignedVote, SignedVote]:
    return (Vote(height, round_, PREVOTE, A, index).sign(chain_id, key.signer),
            Vote(height, round_, PREVOTE, B, index).sign(chain_id, key.signer))


def evidence_list(url: str) -> list[dict[str, Any]]:
    with NodeClient(url, timeout_s=5, max_retries=0) as cl:
        body = cl.get_json("/v1/evidence")
    assert isinstance(body, dict) and body["next"] is None
    rows: list[dict[str, Any]] = body["evidence"]
    return rows


def submit(url: str, stx: SignedTx) -> dict[str, Any]:
    with NodeClient(url, timeout_s=10) as cl:
        result: dict[str, Any] = cl.submit([(stx.encode(), [])])[0]
    return result


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_evidence_is_committed_listed_proven_and_survives_restart(
        cluster: LocalCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    c = cluster
    root, chain = c.info.root, c.genesis().chain_id
    wait_until(lambda: all(int(str(status(u)["height"])) >= 2 for u in c.urls), 60,
               "every node at height 2")
    first, second = conflicting_prevotes(chain, validator_key(root, OFFENDER), OFFENDER, 1)
    v0 = validator_key(root, 0)

    # Refusals first (nothing recorded): a forged vote, a participant as submitter, and the
    # same value twice.
    forged = Vote(1, 0, PREVOTE, B, OFFENDER).sign(chain, v0.signer)  # v0 frames v2
    for stx, code in (
        (sign_tx(chain, v0.signer, VoteEvidence(first, forged)), "bad_evidence"),
        (sign_tx(chain, c.key("optic-paris").signer, VoteEvidence(first, second)), "wrong_role"),
        (sign_tx(chain, v0.signer, VoteEvidence(first, first)), "bad_evidence"),
    ):
        assert submit(c.urls[1], stx)["code"] == code
    assert all(evidence_list(u) == [] for u in c.urls)

    # The real thing: v0 submits v2's two prevotes.
    good = sign_tx(chain, v0.signer, VoteEvidence(first, second))
    assert submit(c.urls[1], good)["status"] == "pending"
    wait_until(lambda: all(len(evidence_list(u)) == 1 for u in c.urls), 60,
               "the evidence on every node")
    want = {"validator": OFFENDER, "name": "v2", "height": 1, "round": 0, "type": "prevote",
            "first_value": A.hex(), "second_value": B.hex(), "tx_id": good.tx_id().hex()}
    for url in c.urls:
        (row,) = evidence_list(url)
        assert {k: row[k] for k in want} == want and row["recorded_height"] >= 2
        code, out, _ = cli(capsys, "evidence", "list", "--node", url, "--json")
        assert code == 0 and [r["tx_id"] for r in json.loads(out)["evidence"]] == [want["tx_id"]]
    code, out, _ = cli(capsys, "evidence", "list", "--node", c.urls[3])
    assert code == 0 and "v2" in out and "prevote" in out
    # Another validator's evidence of the same slot is a duplicate.
    again = sign_tx(chain, validator_key(root, 3).signer, VoteEvidence(second, first))
    assert submit(c.urls[0], again)["code"] == "duplicate_evidence"

    # tpledger proof get / verify: a validator's key file fetches it, the genesis verifies it.
    proof = tmp_path / "ev.proof"
    code, _, err = cli(capsys, "proof", "get", good.tx_id().hex(), "--node", c.urls[2],
                       "--key", str(root / "nodes" / "v1" / "validator.key"), "-o", str(proof))
    assert code == 0, err
    code, out, _ = cli(capsys, "proof", "verify", str(proof), "--genesis",
                       str(c.info.genesis), "--json")
    res = json.loads(out)
    assert code == 0 and res["ok"] and res["tx_type"] == "evidence"
    assert res["signer_org"] == "v0" and res["tx_id"] == good.tx_id().hex()

    # Durable: a restarted node still lists it (read from its LMDB store, not from memory).
    assert c.stop_node("v3") == 0
    c.start_node("v3")
    c.wait_ready()
    assert [r["tx_id"] for r in evidence_list(c.urls[3])] == [want["tx_id"]]


def test_bad_evidence_queries_get_clear_errors(cluster: LocalCluster) -> None:
    with NodeClient(cluster.urls[0], timeout_s=5, max_retries=0) as cl:
        for qs, code in (("?after=zz", "bad_parameter"), ("?limit=0", "bad_parameter"),
                         ("?limit=1001", "bad_parameter"), ("?after=" + "00" * 16,
                                                            "bad_parameter")):
            with pytest.raises(ClientError) as ei:
                cl.get_json("/v1/evidence" + qs)
            assert ei.value.code == code and ei.value.status == 400
        # The public proof endpoint serves evidence only, never a claim's proof.
        with pytest.raises(ClientError) as ei:
            cl.request("GET", "/v1/evidence/" + "00" * 32 + "/proof")
        assert ei.value.code == "unknown_evidence" and ei.value.status == 404


Scenario = Callable[[Path, list[Node]], Awaitable[None]]


def run_nodes(tmp_path: Path, scenario: Scenario) -> None:
    """Four real nodes in this process (one event loop), at height >= 1, then ``scenario``."""
    root = tmp_path / "c"
    info = init_cluster(root, validators=4, base_port=0)
    for n in info.nodes:
        with n.config.open("a") as fh:
            fh.write("\n[consensus]\ntimeout_commit_ms = 50\nempty_block_interval_ms = 200\n")

    async def main() -> None:
        nodes = [Node(NodeConfig.load(n.config)) for n in info.nodes]
        try:
            for node in nodes:
                await node.start()
            await _until(lambda: all(n.store.height >= 1 for n in nodes), "height 1 everywhere")
            await scenario(root, nodes)
        finally:
            for node in nodes:
                await node.stop()

    asyncio.run(main())


def test_node_detects_equivocation_and_records_it_once(tmp_path: Path) -> None:
    """The node path: conflicting votes arrive as peer frames, consensus reports them, the node
    signs and gossips the evidence tx, and all four nodes commit one record."""
    run_nodes(tmp_path, _detect_scenario)


async def _detect_scenario(root: Path, nodes: list[Node]) -> None:
    v0 = nodes[0]
    assert v0.consensus is not None
    h, r = v0.consensus.height, v0.consensus.round
    pair = conflicting_prevotes(v0.chain_id, validator_key(root, OFFENDER), OFFENDER, h, r)
    for _ in range(2):  # the same pair twice: one evidence tx only
        for sv in pair:
            v0._on_frame(OFFENDER, FRAME_CONSENSUS, sv.encode())
    await _until(lambda: all(len(n.store.evidence_page()) == 1 for n in nodes),
                 "the evidence recorded on every node")
    for n in nodes:
        ((_, rec),) = n.store.evidence_page()
        assert (rec.validator, rec.height, rec.round) == (OFFENDER, h, r)
        stx = n.store.tx(rec.tx_id)
        assert stx is not None and stx.signer == v0.key.signer.public  # v0 signed it
    assert 'tpledger_evidence_submitted_total 1' in v0.metrics.render()
    assert "tpledger_evidence_total 1" in v0.metrics.render()
    v0.refresh_metrics()
    assert "tpledger_evidence_recorded 1" in v0.metrics.render()
    await _until(lambda: all(len(n.mempool) == 0 for n in nodes), "mempools drained")


def test_forged_evidence_is_committed_only_without_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant, on real nodes: v0 forges v2's second vote (signs it with its own
    key). The rules refuse it; with ``check_vote_evidence`` patched out, every node would
    commit it and an honest validator would stand accused."""

    async def scenario(root: Path, nodes: list[Node]) -> None:
        v0 = nodes[0]
        first = Vote(1, 0, PREVOTE, A, OFFENDER).sign(v0.chain_id, validator_key(root, 2).signer)
        forged = Vote(1, 0, PREVOTE, B, OFFENDER).sign(v0.chain_id, v0.key.signer)
        stx = sign_tx(v0.chain_id, v0.key.signer, VoteEvidence(first, forged))
        admit = v0.admission.admit_batch
        assert admit([(stx.encode(), [])], gossip=True)[0]["code"] == "bad_evidence"
        monkeypatch.setattr(rules, "check_vote_evidence", lambda *a, **k: None)
        assert admit([(stx.encode(), [])], gossip=True)[0]["status"] == "pending"
        await _until(lambda: all(len(n.store.evidence_page()) == 1 for n in nodes),
                     "the forged evidence committed everywhere")

    run_nodes(tmp_path, scenario)


async def _until(pred: Any, what: str, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
