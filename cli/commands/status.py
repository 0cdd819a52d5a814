"""``tpledger status``: a node's height, head, Merkle tree and peers."""

from __future__ import annotations

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.options import CONTEXT, format_option, node_option


@click.command("status", context_settings=CONTEXT,
               epilog="Example: tpledger status --node http://127.0.0.1:7000 --json")
@node_option
@format_option
def status(node_url: str, fmt: str) -> None:
    """Show a node's height, head, Merkle tree size and root, peers."""
    with NodeClient(node_url) as client:
        st = client.status()
    if fmt == "json":
        render.print_json(st)
        return
    render.node_status(st)
