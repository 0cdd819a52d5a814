"""``tpledger lpp list``: the shipped LPP table as JSON and as a table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tpledger.cli.main import cli
from tpledger.ledger.lpp import LppTable


def test_lpp_list_json() -> None:
    res = CliRunner().invoke(cli, ["lpp", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == len(LppTable.default())
    for r in rows:
        assert {"code", "label", "max_price", "class", "category"} <= set(r)
        assert len(r["code"]) == 7
        assert r["max_price"] is None or isinstance(r["max_price"], str)
    by_code = {r["code"]: r for r in rows}
    assert by_code["2261874"]["max_price"] == "12.04"


def test_lpp_list_table() -> None:
    res = CliRunner().invoke(cli, ["lpp", "list"])
    assert res.exit_code == 0 and "2261874" in res.stdout
