"""``tpledger lpp``: the LPP table of optical codes, and its versions on the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import UsageError
from tpledger.cli.options import CONTEXT, admin_tx_options, ca_option, format_option

if TYPE_CHECKING:
    from tpledger.ledger.keys import Signer
    from tpledger.ledger.registry import TariffRelease
    from tpledger.ledger.tx import SignedTx


@click.group(context_settings=CONTEXT)
def lpp() -> None:
    """The LPP table of optical codes, and its versions on the ledger."""


@lpp.command("list", epilog="""\b
Examples:
  tpledger lpp list --json                       # the shipped seed table (a file)
  tpledger lpp list --table lpp_2026_03.csv      # a table file
  tpledger lpp list --at 2026-03-15 --node http://127.0.0.1:7000 --key c/keys/optic-paris.key
With --at, the version in force on that date on the ledger (a signed read with any active
participant's key); a claim dispensed that day is judged by it.""")
@click.option("--table", "table_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="LPP CSV (default: the shipped seed table).")
@click.option("--at", "at_date", metavar="YYYY-MM-DD",
              help="The version in force on this date, from the node (needs --node, --key).")
@click.option("--node", "node_url", envvar="TPLEDGER_NODE", help="Node API URL, with --at "
              "(TPLEDGER_NODE).")
@ca_option
@click.option("--key", "key_path", envvar="TPLEDGER_KEY", type=click.Path(
              exists=True, dir_okay=False, path_type=Path),
              help="Any active participant's key, with --at (TPLEDGER_KEY).")
@format_option
def lpp_list(table_path: Path | None, at_date: str | None, node_url: str | None,
             key_path: Path | None, fmt: str) -> None:
    """List LPP codes with label, class, category and price limit (euros)."""
    from tpledger.ledger.lpp import LppTable

    if at_date is None:
        table = LppTable.load_csv(table_path) if table_path else LppTable.default()
        render.lpp_list(render.lpp_rows(table), table.version, fmt)
        return
    from tpledger.cli.governance import fetch_tariff_version, format_day, parse_day
    from tpledger.ledger.keys import KeyFile

    day = parse_day(at_date, "--at")
    if table_path is not None:
        raise UsageError("--at reads the ledger's version: it does not go with --table")
    if node_url is None or key_path is None:
        raise UsageError("--at needs --node URL and --key FILE (a signed read)")
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        found = fetch_tariff_version(client, day)
    render.tariff_version(found.version, format_day(found.effective_day),
                          render.lpp_rows(found.table), fmt)


@lpp.command("publish", epilog="""\b
Example:
  tpledger lpp publish lpp_2026_03.csv --effective 2026-03-01 \\
      --admin-key c/admin/cnam.admin.json --node http://127.0.0.1:7000 --wait
\b
Publishes the full table as the next version (--version: default the latest + 1), in force
for claims dispensed from --effective on (after the latest version's date). Only the policy's
tariff publisher signs it; when the publisher is the quorum, propose it instead:
  tpledger gov propose --action publish-tariff:lpp_2026_03.csv@2026-03-01 ...""")
@click.argument("table_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--effective", required=True, metavar="YYYY-MM-DD",
              help="First dispensing date (UTC) judged by this version.")
@click.option("--version", "version", type=click.IntRange(2, 2**32 - 1),
              help="Version number (default: the latest on the ledger + 1).")
@admin_tx_options("The tariff publisher's admin key file (ORG.admin.json).")
def lpp_publish(table_file: Path, effective: str, version: int | None, node_url: str,
                admin_key_path: Path, genesis: Path | None, wait: bool, timeout: float,
                as_json: bool) -> None:
    """Publish an LPP table version on the ledger, effective from a date."""
    from tpledger.cli.governance import (
        build_publish,
        latest_tariff_version,
        load_table,
        parse_day,
        release_of,
        send_admin_tx,
    )
    from tpledger.cli.lifecycle import raise_if_refused

    day = parse_day(effective, "--effective")
    table = load_table(table_file)
    release: list[TariffRelease] = []

    def build(client: NodeClient, chain_id: str, admin: Signer) -> SignedTx:
        number = version if version is not None else latest_tariff_version(client) + 1
        release.append(release_of(table, number, day))
        return build_publish(chain_id, admin, release[0])

    row, org = send_admin_tx(node_url, admin_key_path, genesis, build, wait, timeout)
    rel = release[0]
    row.update(version=rel.version, effective=effective, table_digest=rel.table_digest.hex(),
               codes=len(table))
    render.tx_row(row, as_json, f"LPP v{rel.version} from {effective} by {org}")
    raise_if_refused(row, wait, timeout)
