"""A 4-validator cluster whose peer links and API run over TLS (consortium CA), as in
configs/deployment: nodes dial each other with https, verify each other's certificates, and
commit; a client without the CA cannot talk to them."""

from __future__ import annotations

import http.client
import json
import random
import ssl
import time
from pathlib import Path

import pytest

from cli.claims import ClaimBuilder, ClaimInput
from cli.cluster import LocalCluster, init_cluster
from cli.tls import make_ca, make_node_cert
from ledger.encoding import pack
from ledger.patient import make_test_birth_date, make_test_nir

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


def _get(port: int, path: str, ctx: ssl.SSLContext, method: str = "GET", body: bytes = b"",
         ctype: str = "") -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request(method, path, body=body or None,
                     headers={"Content-Type": ctype} if ctype else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_cluster_over_tls(tmp_path: Path) -> None:
    root = tmp_path / "c"
    info = init_cluster(root, validators=4, base_port=0)
    tls = root / "tls"
    ca_crt, ca_key = make_ca(tls)
    ports = []
    for node in info.nodes:
        crt, key = make_node_cert(tls, node.name, ["127.0.0.1", "localhost"], ca_crt, ca_key)
        text = node.config.read_text().replace("http://", "https://")
        text += f'\n[tls]\ncert = "{crt}"\nkey = "{key}"\nca = "{ca_crt}"\n'
        node.config.write_text(text)
        ports.append(int(node.api.rsplit(":", 1)[1]))
    ctx = ssl.create_default_context(cafile=str(ca_crt))

    c = LocalCluster(root)
    try:
        c.start()
        deadline = time.monotonic() + 60
        heights: list[int] = []
        while time.monotonic() < deadline:
            try:
                heights = [json.loads(_get(p, "/v1/status", ctx)[1])["height"] for p in ports]
                if min(heights) >= 2:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        assert heights and min(heights) >= 2, f"no commits over TLS: {heights}"
        st = json.loads(_get(ports[0], "/v1/status", ctx)[1])
        assert all(st["peers"].values()), st["peers"]  # every outbound TLS link is up

        # A claim submitted over https commits on all four.
        builder = ClaimBuilder(c.key("optic-paris"), c.genesis())
        rng = random.Random(3)
        pc = builder.build(ClaimInput("claim 1", "mutuelle-a", make_test_nir(rng),
                                      make_test_birth_date(rng), "", (("2261874", 1, 1204),)))
        status, body = _get(ports[1], "/v1/txs", ctx, "POST",
                            pack([[pc.stx.encode(), [list(s) for s in pc.sealed]]]),
                            "application/msgpack")
        assert status == 200 and json.loads(body)["results"][0]["status"] == "pending"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = [json.loads(_get(p, "/v1/status", ctx)[1])["tree_size"] for p in ports]
            if sizes == [1, 1, 1, 1]:
                break
            time.sleep(0.2)
        assert sizes == [1, 1, 1, 1]

        # Without the consortium CA, a client refuses the node's certificate.
        with pytest.raises(ssl.SSLCertVerificationError):
            _get(ports[2], "/v1/status", ssl.create_default_context())
    finally:
        c.stop()
