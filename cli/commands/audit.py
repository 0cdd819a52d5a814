"""``tpledger audit``: re-verify a stopped node's whole store from genesis."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli.options import CONTEXT, chain_genesis_option, json_option


@click.command("audit", context_settings=CONTEXT,
               epilog="Example: tpledger audit --config c/nodes/v0/node.toml "
                      "--genesis c/genesis.json")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="node.toml of the node whose store to audit (stop the node first).")
@chain_genesis_option("Genesis file.", must_exist=True)
@json_option("Print the audit report as JSON.")
def audit(config_path: Path, genesis: Path, as_json: bool) -> None:
    """Re-verify a node's whole store from genesis; exit 1 naming the first bad height."""
    from tpledger.cli.store_audit import run_audit

    run_audit(config_path, genesis, as_json)
