"""``tpledger genesis``: assemble the genesis from the organisations' public key files."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT, json_option

PUB_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings=CONTEXT)
def genesis() -> None:
    """The genesis ceremony's last step: one genesis.json from public key files."""


@genesis.command("assemble", epilog=(
    "Example: tpledger genesis assemble --chain-id tpledger-prod "
    "--validator v0.pub.json --validator v1.pub.json --validator v2.pub.json "
    "--validator v3.pub.json --member optic-paris.pub.json --member cnam.pub.json "
    "-o genesis.json"))
@click.option("--chain-id", required=True, help="The chain id (lowercase, digits, '-_.').")
@click.option("--member", "members", multiple=True, type=PUB_FILE,
              help="A participant's public file (repeatable).")
@click.option("--validator", "validators", multiple=True, type=PUB_FILE,
              help="A validator's public file (repeatable, in validator order).")
@click.option("--genesis-time-ms", type=click.IntRange(0), default=None,
              help="Fixed genesis time (default: now); equal inputs then give equal bytes.")
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The genesis file to write.")
@json_option("Print the result (path, sha256, genesis digest) as JSON.")
def genesis_assemble(chain_id: str, members: tuple[Path, ...], validators: tuple[Path, ...],
                     genesis_time_ms: int | None, output: Path, as_json: bool) -> None:
    """Build, validate and write the genesis from public files only (a file holding a secret
    key is refused); print its SHA-256 for every organisation to compare out of band."""
    from tpledger.cli.ceremony import assemble, write_genesis

    g = assemble(chain_id, members, validators, genesis_time_ms)
    sha = write_genesis(g, output)
    if as_json:
        render.print_json({"path": str(output), "sha256": sha, "digest": g.hash().hex(),
                           "validators": len(g.validators), "participants": len(g.participants)})
        return
    click.echo(f"{sha}  {output}")
    click.echo(f"genesis written: {len(g.validators)} validators, {len(g.participants)} "
               "participants; every organisation compares the SHA-256 above (sha256sum) out "
               "of band before starting its node", err=True)
