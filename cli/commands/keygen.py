"""``tpledger keygen``: one organisation's keys, generated on its own host (genesis ceremony)."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.options import CONTEXT, json_option
from tpledger.ledger.genesis import PARTICIPANT_ROLES


@click.command("keygen", context_settings=CONTEXT,
               epilog="Examples: tpledger keygen optic-paris --role optician --gov-org federation "
                      "--siret 75200100800016 --rpps 10001234565 -o ./keys\n\n"
                      "tpledger keygen mutuelle-a --role insurer --gov-org insurer-a "
                      "--amc 775003007 -o ./keys\n\n"
                      "tpledger keygen federation --validator v0 -o ./keys\n\n"
                      "tpledger keygen --admin federation --roles optician -o ./admin")
@click.argument("org")
@click.option("--role", type=click.Choice(PARTICIPANT_ROLES),
              help="The participant's role (not with --validator or --admin).")
@click.option("--validator", "validator", metavar="NAME",
              help="Generate the validator key of validator NAME, run by ORG.")
@click.option("--admin", "admin", is_flag=True,
              help="Generate ORG's governance admin key (ORG.admin.json), kept apart from "
                   "every operational key.")
@click.option("--roles", "roles", metavar="ROLE[,ROLE]",
              help="With --admin: the roles of the participants ORG's admin registers.")
@click.option("--gov-org", "gov_org", default="", metavar="ORG",
              help="A participant's governing organisation (whose admin manages it).")
@click.option("--siret", default="", help="A participant's SIRET (14 digits, Luhn key).")
@click.option("--rpps", default="", help="An optician's RPPS (11 digits, Luhn key).")
@click.option("--billing", default="", help="An optician's billing number (9 digits).")
@click.option("--amc", default="", help="An insurer's AMC number (8 to 10 digits).")
@click.option("-o", "--out-dir", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="This organisation's own key directory (created 0700).")
@json_option("Print the public key file's content as JSON.")
def keygen(org: str, role: str | None, validator: str | None, admin: bool, roles: str | None,
           gov_org: str, siret: str, rpps: str, billing: str, amc: str, out_dir: Path,
           as_json: bool) -> None:
    """Generate ORG's secret key (STEM.key, mode 0600, never leaves this host) and its public
    file (STEM.pub.json: org, role, keys, governing org, identifiers) to send for `tpledger
    genesis assemble`. With --admin: ORG.admin.json and ORG.admin.pub.json."""
    from tpledger.cli.ceremony import keygen as generate
    from tpledger.cli.ceremony import keygen_admin
    from tpledger.cli.errors import UsageError

    if sum((role is not None, validator is not None, admin)) != 1:
        raise UsageError("give exactly one of --role ROLE, --validator NAME or --admin")
    if admin != (roles is not None):
        raise UsageError("--roles goes with --admin, and --admin needs --roles")
    if admin:
        res = keygen_admin(org, [r.strip() for r in (roles or "").split(",") if r.strip()],
                           out_dir)
    else:
        ids = {"siret": siret, "rpps": rpps, "billing": billing, "amc": amc}
        res = generate(org, role or "validator", out_dir, validator, gov_org, ids)
    if as_json:
        render.print_json(res.key.to_json())
        return
    click.echo(f"secret key  {res.secret}  (mode 0600; keep it on this host)")
    click.echo(f"public key  {res.public}  (send this file for the genesis)")
    click.echo(f"ed25519     {res.key.ed25519.hex()}")
