"""``tpledger stats``: anonymous statistics from certified blocks."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError
from tpledger.cli.options import (
    CONTEXT,
    genesis_option,
    json_option,
    key_option,
    load_genesis_for,
    node_option,
)
from tpledger.ledger.keys import KeyFile


@click.command("stats", context_settings=CONTEXT,
               epilog="Example: tpledger stats --node http://127.0.0.1:7000 "
                      "--key c/keys/cnam.key --from-height 1 --to-height 500 --json")
@node_option
@key_option("Key of a participant or validator (blocks are served signed).")
@genesis_option
@click.option("--from-height", type=click.IntRange(1), default=1, show_default=True,
              help="First height.")
@click.option("--to-height", type=click.IntRange(1), help="Last height (default: the head).")
@json_option()
def stats(node_url: str, key_path: Path, genesis: Path | None, from_height: int,
          to_height: int | None, as_json: bool) -> None:
    """Anonymous statistics from certified blocks: per LPP code, class, payer and month."""
    from tpledger.cli.block_stats import aggregate_blocks, fetch_blocks
    from tpledger.ledger.lpp import LppTable

    key = KeyFile.load(key_path)
    gen = load_genesis_for(key_path, genesis)
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        head = int(client.status().get("height") or 0)
        end = head if to_height is None else min(to_height, head)
        if from_height > end:
            raise CliError(f"no blocks in {from_height}..{end} (head is {head})")
        st = aggregate_blocks(fetch_blocks(client.block, gen, from_height, end), gen,
                              LppTable.default())
    if as_json:
        render.print_json(st.to_json())
        return
    render.stats_tables(st, from_height, end)
