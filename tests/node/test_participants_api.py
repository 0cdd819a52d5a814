"""The participant endpoints on an in-process node: a record with its key history, the
paged list; signed reads by active participants and admins only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.node.inprocess import node_config, run_with_node
from tests.node.test_revocation import _get
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.node.runtime import Node


def _answers(tmp_path: Path, paths: list[tuple[str, str]]) -> list[tuple[int, Any]]:
    """GET each (key file relative to the cluster dir, path); the answers in order."""
    cfg, root = node_config(tmp_path, 30)
    out: list[tuple[int, Any]] = []

    async def scenario(node: Node) -> None:
        for key, path in paths:
            if key == "":
                async with aiohttp.ClientSession() as http, http.get(
                        f"http://127.0.0.1:{node.port}{path}") as r:
                    out.append((r.status, await r.json()))
                continue
            out.append(await _get(node, KeyFile.load(root / key), path))

    run_with_node(cfg, scenario)
    return out


def test_participants_read_by_participants_and_admins(tmp_path: Path) -> None:
    shop, admin = "keys/optic-lyon.key", "admin/cnam.admin.json"
    (one, listed, page1, page2, by_role, unknown, as_admin, unsigned,
     bad_role) = _answers(tmp_path, [
        (shop, "/v1/participants/optic-paris"),
        (shop, "/v1/participants"),
        (shop, "/v1/participants?limit=2"),
        (shop, "/v1/participants?limit=2&after=4"),
        (shop, "/v1/participants?role=insurer"),
        (shop, "/v1/participants/nobody"),
        (admin, "/v1/participants/cnam"),
        ("", "/v1/participants"),
        (shop, "/v1/participants?role=pilot"),
    ])
    genesis = Genesis.load(tmp_path / "c" / "genesis.json")
    p = genesis.participant("optic-paris")
    assert p is not None and one[0] == 200
    assert one[1]["ed25519"] == p.ed25519.hex() and one[1]["status"] == "active"
    assert one[1]["ids"] == p.ids.as_dict() and one[1]["gov_org"] == "federation"
    assert isinstance(one[1]["history"], list)
    assert [r["org"] for r in listed[1]["participants"]] == [q.org for q in genesis.participants]
    assert listed[1]["next"] is None
    # slots: the 3 governing orgs first (0-2), then the participants (3-7)
    assert [r["slot"] for r in page1[1]["participants"]] == [3, 4] and page1[1]["next"] == "4"
    assert [r["slot"] for r in page2[1]["participants"]] == [5, 6]
    assert {r["org"] for r in by_role[1]["participants"]} == {"mutuelle-a", "mutuelle-b"}
    assert unknown[0] == 404 and unknown[1]["error"]["code"] == "unknown_participant"
    assert as_admin[0] == 200 and as_admin[1]["role"] == "cnam"
    assert unsigned[0] == 401
    assert bad_role[0] == 400
