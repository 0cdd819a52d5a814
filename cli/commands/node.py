"""``tpledger node``: run one validator node."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli.options import CONTEXT


@click.group(context_settings=CONTEXT)
def node() -> None:
    """Run one validator node."""


@node.command("run", epilog="Example: tpledger node run ./c/nodes/v0/node.toml")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def node_run(config: Path) -> None:
    """Run the node described by CONFIG (node.toml) in the foreground until SIGTERM/SIGINT."""
    from tpledger.node.shell import run_node

    run_node(config)
