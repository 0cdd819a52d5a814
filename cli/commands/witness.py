"""``tpledger witness``: poll checkpoints, check the log only grows, detect forks."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli.errors import CliError
from tpledger.cli.options import CONTEXT, ca_option, chain_genesis_option, json_option
from tpledger.ledger.genesis import Genesis


@click.command("witness", context_settings=CONTEXT, epilog="""\b
Example:
  tpledger witness --node http://127.0.0.1:7000 --node http://127.0.0.1:7001 \\
      --genesis c/genesis.json --state witness.json --interval 10
\b
Exit codes: 0 done (--once / --max-polls), 1 an invalid or inconsistent checkpoint or no node
answered, 3 a fork: two valid certificates for one height (evidence on stdout).""")
@click.option("--node", "node_urls", required=True, multiple=True,
              help="Node API URL (repeatable: compare several nodes).")
@ca_option
@chain_genesis_option(must_exist=True)
@click.option("--state", "state_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the last verified checkpoint (written atomically).")
@click.option("--interval", type=click.FloatRange(0.05, 86400), default=10, show_default=True,
              help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option("--max-polls", type=click.IntRange(1), help="Exit after this many polls.")
@json_option()
@click.pass_context
def witness(ctx: click.Context, node_urls: tuple[str, ...], genesis: Path,
            state_path: Path, interval: float, once: bool, max_polls: int | None,
            as_json: bool) -> None:
    """Poll checkpoints, verify each and that the log only grows; detect forks."""
    from tpledger.cli.checkpoint_source import FORK_EXIT_CODE, poll_nodes
    from tpledger.cli.witness import Witness

    w = Witness.load(Genesis.load(genesis), state_path)
    code = poll_nodes(w, node_urls, state_path, interval, 1 if once else max_polls, as_json)
    if code == FORK_EXIT_CODE:
        ctx.exit(FORK_EXIT_CODE)
    if code:
        raise CliError("the witness saw an invalid or inconsistent checkpoint (see above)")
