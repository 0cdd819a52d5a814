"""``tpledger lpp``: the LPP table of optical codes."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT, format_option


@click.group(context_settings=CONTEXT)
def lpp() -> None:
    """The LPP table of optical codes."""


@lpp.command("list", epilog="Example: tpledger lpp list --json")
@click.option("--table", "table_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="LPP CSV (default: the shipped seed table).")
@format_option
def lpp_list(table_path: Path | None, fmt: str) -> None:
    """List LPP codes with label, class, category and price limit (euros)."""
    from tpledger.ledger.lpp import LppTable

    table = LppTable.load_csv(table_path) if table_path else LppTable.default()
    render.lpp_list(render.lpp_rows(table), table.version, fmt)
