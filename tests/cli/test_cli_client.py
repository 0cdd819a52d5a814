"""The HTTP client and ``claim submit`` against a small fake node (no consensus needed)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.cluster import ClusterInfo
from tpledger.cli.main import run
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.patient import make_test_nir, open_sealed
from tpledger.ledger.tx import SignedTx
from tpledger.node.auth import RequestVerifier
from tpledger.node.errors import AuthError
from tpledger.node.gov_api import rows_json


class FakeNode:
    """Just enough of docs/api.md: status, batch submit (msgpack), signed tx status."""

    def __init__(self, chain_id: str, genesis: Genesis | None = None) -> None:
        self.chain_id = chain_id
        self.genesis = genesis  # serves GET /v1/participants/{org} (the claim builder's)
        self.verifier = RequestVerifier(chain_id)
        self.bodies: list[bytes] = []
        self.busy = 0  # number of 503 answers still to give on POST /v1/txs
        self.txs: dict[str, bytes] = {}
        self.sealed: dict[str, list[tuple[str, bytes]]] = {}
        self.polls = 0
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, msg: str, **h: str) -> None:
                self._send(status, {"error": {"code": code, "message": msg}}, h)

            def do_GET(self) -> None:
                if self.path == "/v1/status":
                    self._send(200, {"name": "v0", "chain_id": fake.chain_id, "height": 3,
                                     "head": "00" * 32, "tree_size": 5, "tree_root": "11" * 32})
                    return
                try:
                    fake.verifier.verify(self.headers.get("Authorization"), "GET", self.path,
                                         b"", int(time.time() * 1000))
                except AuthError as exc:
                    self._error(401, "unauthorized", str(exc))
                    return
                if self.path.startswith("/v1/txs/"):
                    tx_id = self.path.rsplit("/", 1)[1]
                    with fake.lock:
                        fake.polls += 1
                        known = tx_id in fake.txs
                        # committed from the second poll on
                        status = "committed" if known and fake.polls > 1 else "pending"
                    if not known:
                        status = "unknown"
                    body: dict[str, Any] = {"tx_id": tx_id, "status": status}
                    if status == "committed":
                        body.update(height=2, leaf_index=0)
                    self._send(200, body)
                    return
                if self.path.startswith("/v1/participants/") and fake.genesis is not None:
                    p = fake.genesis.participant(self.path.rsplit("/", 1)[1])
                    if p is None:
                        self._error(404, "unknown_participant", "no participant with this id")
                    else:
                        self._send(200, {"org": p.org, "role": p.role, "status": "active",
                                         "ed25519": p.ed25519.hex(), "x25519": p.x25519.hex()})
                    return
                if self.path.startswith("/v1/lpp/versions?at="):  # the claim builder's tariff
                    table = LppTable.default()  # the only version: the genesis table
                    self._send(200, {"version": 1, "effective": "1970-01-01",
                                     "table_digest": table.digest().hex(),
                                     "rows": rows_json(table)})
                    return
                parts = self.path.split("/")  # ["", "v1", "claims", id, ("proof")]
                if len(parts) >= 4 and parts[2] == "claims" and parts[3] in fake.txs:
                    if len(parts) == 5 and parts[4] == "proof":
                        data = b"TPLPRF1\nfake-bundle"
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    share = {"status": "submitted", "asked_cents": 1000, "approved_cents": 0,
                             "paid_cents": 0, "reason_code": ""}
                    self._send(200, {"claim_id": parts[3], "optician": "optic-paris",
                                     "insurer": "mutuelle-a", "total_cents": 3049,
                                     "status": "submitted", "owed_cents": 0, "amo": share,
                                     "amc": share, "cancelled": False, "height": 2})
                    return
                self._error(404, "unknown_claim", "no committed claim with this id")

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/txs":
                    self._error(404, "not_found", "no such route")
                    return
                with fake.lock:
                    fake.bodies.append(data)
                    if fake.busy > 0:
                        fake.busy -= 1
                        self._error(503, "mempool_full", "mempool is full", **{"Retry-After": "0"})
                        return
                assert self.headers.get("Content-Type") == "application/msgpack"
                results = []
                for tx, sealed in msgpack.unpackb(data, raw=False):
                    try:
                        stx = SignedTx.decode(tx)
                    except EncodingError:
                        results.append({"tx_id": None, "status": "rejected",
                                        "code": "bad_encoding", "message": "not a SignedTx"})
                        continue
                    tid = stx.tx_id().hex()
                    if not stx.verify(fake.chain_id):
                        results.append({"tx_id": tid, "status": "rejected",
                                        "code": "bad_signature", "message": "bad"})
                        continue
                    fake.txs[tid] = tx
                    fake.sealed[tid] = [(o, s) for o, s in sealed]
                    results.append({"tx_id": tid, "status": "pending"})
                self._send(200, {"results": results})

        return H


@pytest.fixture()
def fake(cluster_info: ClusterInfo) -> Iterator[tuple[FakeNode, str]]:
    genesis = Genesis.load(cluster_info.genesis)
    node = FakeNode(genesis.chain_id, genesis)
    server = ThreadingHTTPServer(("127.0.0.1", 0), node.handler())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield node, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_status_and_errors(fake: tuple[FakeNode, str], cluster_info: ClusterInfo) -> None:
    node, url = fake
    key = KeyFile.load(cluster_info.client("optic-paris").key)
    with NodeClient(url, signer=key.signer) as c:
        assert c.status()["height"] == 3
        assert c.chain_id == node.chain_id
        with pytest.raises(ClientError) as info:
            c.claim("ab" * 32)
        assert (info.value.code, info.value.status) == ("unknown_claim", 404)
        with pytest.raises(ClientError, match="bad_id"):
            c.claim("xyz")
    with NodeClient(url) as c, pytest.raises(ClientError, match="no_key"):
        c.tx_status("ab" * 32)


def test_retry_on_503(fake: tuple[FakeNode, str], cluster_info: ClusterInfo) -> None:
    node, url = fake
    node.busy = 2
    with NodeClient(url, max_retries=3) as c:
        assert c.submit([(b"\x00", [])])[0]["code"] == "bad_encoding"
    assert len(node.bodies) == 3
    node.busy = 5
    with NodeClient(url, max_retries=2) as c, pytest.raises(ClientError) as info:
        c.submit([(b"\x00", [])])
    assert info.value.code == "mempool_full" and info.value.status == 503


def test_claim_submit_json_wait(fake: tuple[FakeNode, str], cluster_info: ClusterInfo,
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node, url = fake
    node.busy = 1
    rng = random.Random(3)
    nirs = [make_test_nir(rng) for _ in range(5)]
    f = tmp_path / "claims.jsonl"
    f.write_text("".join(json.dumps({
        "ref": f"FAC-{i}", "insurer": "mutuelle-b" if i % 2 else "mutuelle-a",
        "patient": {"nir": nir, "birth_date": "1990-01-0" + str(i + 1)},
        "lines": [{"lpp": "2261874", "qty": 1, "amount": "12.04"}],
    }) + "\n" for i, nir in enumerate(nirs)))
    key_path = cluster_info.client("optic-lyon").key
    rc = run(["claim", "submit", "--node", url, "--key", str(key_path), "--from-json", str(f),
              "--batch-size", "2", "--json", "--wait", "--timeout", "10"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5
    assert all(r["status"] == "committed" and r["height"] == 2 for r in rows)
    assert len({r["claim_id"] for r in rows}) == 5
    assert len(node.bodies) == 4  # one 503 retried, then batches of 2, 2, 1
    wire = b"".join(node.bodies) + out.encode() + err.encode()
    for nir in nirs:
        assert nir.encode() not in wire
    # each claim carries openings sealed to its insurer and to the CNAM
    cnam = KeyFile.load(cluster_info.client("cnam").key)
    for r in rows:
        orgs = [o for o, _ in node.sealed[r["claim_id"]]]
        assert orgs[1] == "cnam" and orgs[0] in ("mutuelle-a", "mutuelle-b")
        opening = open_sealed(cnam.box, node.sealed[r["claim_id"]][1][1])
        assert opening.nir in nirs


def test_claim_submit_flags_human(fake: tuple[FakeNode, str], cluster_info: ClusterInfo,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, url = fake
    key_path = cluster_info.client("optic-paris").key
    nir = make_test_nir(random.Random(5))
    rc = run(["claim", "submit", "--node", url, "--key", str(key_path), "--insurer",
              "mutuelle-a", "--nir", nir, "--birth-date", "1970-12-31",
              "--line", "2210546:1:30.49", "--line", "2261874:2:24.08",
              "--amo", "10.00", "--amc", "20.00"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("claim ") and "pending" in out
    assert nir not in out + err and "1970-12-31" not in out + err


def test_claim_status_and_proof_get(fake: tuple[FakeNode, str], cluster_info: ClusterInfo,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node, url = fake
    node.txs["ab" * 32] = b""
    key = str(cluster_info.client("mutuelle-a").key)
    assert run(["claim", "status", "ab" * 32, "--node", url, "--key", key, "--json"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out)["total_cents"] == 3049
    assert run(["claim", "status", "AB" * 32, "--node", url, "--key", key]) == 0
    out, _ = capsys.readouterr()
    assert "30.49 EUR" in out and "mutuelle-a" in out
    dest = tmp_path / "p.proof"
    assert run(["proof", "get", "ab" * 32, "--node", url, "--key", key, "-o", str(dest)]) == 0
    assert dest.read_bytes() == b"TPLPRF1\nfake-bundle"
    assert run(["claim", "status", "cd" * 32, "--node", url, "--key", key]) == 1
    _, err = capsys.readouterr()
    assert err.endswith("error: unknown_claim: no committed claim with this id\n")
