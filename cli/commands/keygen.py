"""``tpledger keygen``: one organisation's keys, generated on its own host (genesis ceremony)."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT, json_option

ROLE_CHOICES = ("optician", "insurer", "cnam", "auditor")


@click.command("keygen", context_settings=CONTEXT,
               epilog="Examples: tpledger keygen optic-paris --role optician -o ./keys\n\n"
                      "tpledger keygen federation --validator v0 -o ./keys")
@click.argument("org")
@click.option("--role", type=click.Choice(ROLE_CHOICES),
              help="The participant's role (not with --validator).")
@click.option("--validator", "validator", metavar="NAME",
              help="Generate the validator key of validator NAME, run by ORG.")
@click.option("-o", "--out-dir", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="This organisation's own key directory (created 0700).")
@json_option("Print the public key file's content as JSON.")
def keygen(org: str, role: str | None, validator: str | None, out_dir: Path,
           as_json: bool) -> None:
    """Generate ORG's secret key (STEM.key, mode 0600, never leaves this host) and its public
    file (STEM.pub.json: org, role, ed25519, x25519) to send for `tpledger genesis assemble`."""
    from tpledger.cli.ceremony import keygen as generate
    from tpledger.cli.errors import UsageError

    if (role is None) == (validator is None):
        raise UsageError("give exactly one of --role ROLE or --validator NAME")
    res = generate(org, role or "validator", out_dir, validator)
    if as_json:
        render.print_json(res.key.to_json())
        return
    click.echo(f"secret key  {res.secret}  (mode 0600; keep it on this host)")
    click.echo(f"public key  {res.public}  (send this file for the genesis)")
    click.echo(f"ed25519     {res.key.ed25519.hex()}")
