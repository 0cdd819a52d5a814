"""Attacks through the client API and the CLI, against real node processes.

* A curious optician reads a competitor's sales from whole blocks (issue 10, hole 3).
* A body nested 100,000 deep, headers and a body dribbled byte by byte.
* A NIR or birth date typed into the wrong field of a claims file is never echoed.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.security.conftest import READ_TIMEOUT_MS, Sec
from tpledger.cli.client import ClientError
from tpledger.cli.main import run
from tpledger.ledger.proofs import ProofBundle, Verifier
from tpledger.ledger.tx import SignedTx
from tpledger.node.policy import may_read_blocks

pytestmark = [pytest.mark.cluster]


def _height_of(s: Sec, claim_id: str) -> int:
    with s.client("optic-paris") as cl:
        return int(cl.claim(claim_id)["height"])


def test_a_competitor_cannot_read_whole_blocks(sec: Sec) -> None:
    s = sec
    cid = s.claims["optic-paris"][0]
    h = _height_of(s, cid)
    for org in ("optic-lyon", "mutuelle-b", "optic-paris", "mutuelle-a"):
        with s.client(org) as cl, pytest.raises(ClientError) as err:
            cl.block(h)
        assert err.value.status == 403 and err.value.code == "forbidden", org
    with s.client("optic-lyon") as cl, pytest.raises(ClientError) as err:
        cl.claim(cid)
    assert err.value.status == 403
    with s.client("cnam") as cl:  # the AMO payer of every claim reads blocks (statistics)
        block_bytes, _ = cl.block(h)
    assert bytes.fromhex(cid) in {SignedTx.decode(t).tx_id() for t in _txs(block_bytes)}
    # the optician still proves its own claim offline, without reading anybody else's
    with s.client("optic-paris") as cl:
        bundle = ProofBundle.from_bytes(cl.proof(cid))
    result = Verifier(s.cluster.genesis()).verify_bundle(bundle)
    assert result.ok and result.claim_id == bytes.fromhex(cid), result


def _txs(block_bytes: bytes) -> tuple[bytes, ...]:
    from tpledger.ledger.blocks import Block

    return Block.decode(block_bytes).txs


def test_block_policy_is_the_one_enforced() -> None:
    """The broken variant: the old rule ("any participant") would let an optician read
    blocks; the policy function the API calls refuses it."""
    from tpledger.cli.cluster import PARTICIPANTS
    from tpledger.ledger.genesis import DEFAULT_PARAMS, Genesis, Participant, Validator
    from tpledger.ledger.keys import Signer
    from tpledger.ledger.lpp import LppTable

    parts = tuple(Participant(org, role, Signer(bytes([i + 1]) * 32).public, b"\x01" * 32)
                  for i, (org, role) in enumerate(PARTICIPANTS))
    g = Genesis("c", 1, (Validator("v0", "federation", Signer(b"\x77" * 32).public),),
                parts, LppTable.default().digest(), DEFAULT_PARAMS)

    def old_rule(key: bytes) -> bool:
        return key in g.validator_keys or key in {p.ed25519 for p in g.participants}

    from tpledger.ledger.registry import Registry

    reg = Registry.of_genesis(g)
    optician = parts[0].ed25519
    assert old_rule(optician) and not may_read_blocks(g.validator_keys, reg, optician)
    assert may_read_blocks(g.validator_keys, reg, g.validator_keys[0])


def test_deeply_nested_json_is_a_clean_400(sec: Sec) -> None:
    body = b'{"txs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = _raw_post(sec.url(0), "/v1/txs", body, "application/json")
    assert status == 400, answer
    assert json.loads(answer)["error"]["code"] == "malformed_body"


def _raw_post(url: str, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:
    import http.client
    import urllib.parse

    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _closed_within(sock: socket.socket, limit_s: float, dribble: bytes) -> float | None:
    """Send ``dribble`` one byte every 0.2 s; the seconds until the node closed the
    connection (or answered), or None if it was still open after ``limit_s``."""
    start = time.monotonic()
    sock.settimeout(0.2)
    for b in dribble:
        if time.monotonic() - start > limit_s:
            return None
        try:
            sock.sendall(bytes([b]))
            data = sock.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                return time.monotonic() - start
            if data:
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


@pytest.mark.parametrize("part", ["headers", "body"])
def test_slow_clients_are_cut_off(sec: Sec, part: str) -> None:
    host, port = sec.url(0).removeprefix("http://").split(":")
    limit_s = READ_TIMEOUT_MS / 1000
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        if part == "headers":
            dribble = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        else:
            sock.sendall(b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 100000\r\n\r\n")
            dribble = b"{" * 200
        took = _closed_within(sock, 6 * limit_s, dribble)
    assert took is not None, f"a client dribbling its {part} kept the connection open"
    assert took >= limit_s * 0.5


def test_cli_never_echoes_a_nir_or_a_date(sec: Sec, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    s = sec
    nir, birth = s.patients[0]
    key = str(s.cluster.info.client("optic-paris").key)
    bad_lines = [
        {"insurer": nir, "patient": {"nir": nir, "birth_date": birth},
         "lines": [{"lpp": "2210546", "qty": 1, "amount": "30.49"}]},
        {"insurer": "mutuelle-a", "patient": {"nir": nir, "birth_date": birth},
         "lines": [{"lpp": "2210546", "qty": 1, "amount": birth}]},
        {"insurer": "mutuelle-a", "patient": {"nir": nir, "birth_date": birth, nir: 1},
         "lines": [{"lpp": "2210546", "qty": 1, "amount": "30.49"}]},
        {"insurer": "mutuelle-a", "patient": {"nir": birth, "birth_date": nir},
         "lines": [{"lpp": "2210546", "qty": 1, "amount": "30.49"}]},
    ]
    for i, line in enumerate(bad_lines):
        f = tmp_path / f"bad{i}.jsonl"
        f.write_text(json.dumps(line) + "\n")
        capsys.readouterr()
        rc = run(["claim", "submit", "--node", s.url(0), "--key", key, "--from-json", str(f)])
        out, err = capsys.readouterr()
        assert rc != 0, (i, out)
        text = out + err
        compact = text.replace(" ", "")
        assert nir not in compact and birth not in text, (i, text)
