"""A 4-validator cluster whose peer links and API run over TLS (consortium CA), as in
configs/deployment: ``tpledger cluster init --tls`` writes the CA and node certificates, nodes
dial each other with https and verify each other's certificates, and commit; the CLI trusts the
CA through ``TPLEDGER_CA``; a client without the CA is refused."""

from __future__ import annotations

import json
import random
import ssl
import urllib.request
from pathlib import Path

import pytest

from tests.node.conftest import wait_until
from tpledger.cli.claims import ClaimBuilder, ClaimInput, submit_prepared, wait_committed
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.main import run
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster]  # one module = one cluster = one worker (--dist loadfile)


def test_cluster_over_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "c"
    assert run(["cluster", "init", str(root), "--validators", "4", "--base-port", "0",
                "--tls"]) == 0
    info = json.loads((root / "cluster.json").read_text())
    assert info["ca"] == "tls/ca.crt"
    assert all(n["api"].startswith("https://") for n in info["nodes"])
    assert (root / "tls" / "v0.key").stat().st_mode & 0o077 == 0

    with LocalCluster(root) as c:
        def all_linked() -> bool:
            with c.client(node=0) as cl:
                return all(cl.status()["peers"].values())

        wait_until(all_linked, 30, "every outbound TLS peer link to come up")
        builder = ClaimBuilder(c.key("optic-paris"), c.genesis())
        rng = random.Random(3)
        pc = builder.build(ClaimInput("claim 1", "mutuelle-a", make_test_nir(rng),
                                      make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
        with c.client("optic-paris", node=1) as cl:
            rows = submit_prepared(cl, [pc])
            wait_committed(cl, rows, timeout_s=30)
        assert rows[0]["status"] == "committed"
        wait_until(lambda: all(c.client(node=i).status()["tree_size"] == 1 for i in range(4)),
                   30, "the claim on all four nodes")

        # The CLI trusts the consortium CA through TPLEDGER_CA.
        monkeypatch.setenv("TPLEDGER_CA", str(root / "tls" / "ca.crt"))
        capsys.readouterr()
        assert run(["status", "--node", c.urls[2], "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["tree_size"] == 1

        # Without it, the node's certificate is refused.
        monkeypatch.delenv("TPLEDGER_CA")
        with pytest.raises(urllib.error.URLError) as ei:
            urllib.request.urlopen(c.urls[3] + "/v1/status", timeout=5)
        assert isinstance(ei.value.reason, ssl.SSLCertVerificationError)
        capsys.readouterr()
        assert run(["status", "--node", c.urls[3]]) == 6  # unreachable (was 1, issue 14)
        err = capsys.readouterr().err
        assert "TLS verification failed" in err and "--ca" in err and "TPLEDGER_CA" in err
        # The --ca flag does what TPLEDGER_CA does.
        assert run(["status", "--node", c.urls[3], "--ca", str(root / "tls" / "ca.crt"),
                    "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["tree_size"] == 1
