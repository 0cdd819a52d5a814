"""``tpledger demo``: the whole flow on a throw-away local cluster."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT


@click.command("demo", context_settings=CONTEXT, epilog="Example: tpledger demo")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Build the cluster in this (empty) directory and keep it.")
@click.option("--claims", "per_optician", type=click.IntRange(1, 100), default=3,
              show_default=True, help="Claims per optician.")
def demo(keep: Path | None, per_optician: int) -> None:
    """Run the whole flow on a throw-away 4-validator cluster, then stop it."""
    from tpledger.cli.demo import run_demo

    run_demo(render.wide_stdout(), keep_dir=keep, per_optician=per_optician)
