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
    "--admin federation.admin.pub.json --admin cnam.admin.pub.json "
    "--admin insurer-a.admin.pub.json --threshold 2 --tariff-publisher cnam "
    "--lpp-v1-effective 2024-01-01 -o genesis.json"))
@click.option("--chain-id", required=True, help="The chain id (lowercase, digits, '-_.').")
@click.option("--member", "members", multiple=True, type=PUB_FILE,
              help="A participant's public file (repeatable).")
@click.option("--validator", "validators", multiple=True, type=PUB_FILE,
              help="A validator's public file (repeatable, in validator order).")
@click.option("--admin", "admins", multiple=True, type=PUB_FILE,
              help="A governing organisation's admin public file (repeatable; from "
                   "`keygen ORG --admin`).")
@click.option("--threshold", type=click.IntRange(1, 64), default=None,
              help="Yes-ballots of distinct organisations a quorum change needs "
                   "(default: a majority of the --admin organisations).")
@click.option("--tariff-publisher", default="quorum", show_default=True,
              help="Who publishes LPP versions: an --admin organisation, or 'quorum'.")
@click.option("--max-claim-age-days", type=click.IntRange(1, 3650), default=730,
              show_default=True, help="A claim older than this is refused (claim_too_old).")
@click.option("--proposal-ttl-days", type=click.IntRange(1, 90), default=7, show_default=True,
              help="The longest life of a governance proposal.")
@click.option("--lpp-v1-effective", default=None, metavar="YYYY-MM-DD",
              help="The genesis LPP table is in force from this day (default: the genesis "
                   "day).")
@click.option("--genesis-time-ms", type=click.IntRange(0), default=None,
              help="Fixed genesis time (default: now); equal inputs then give equal bytes.")
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The genesis file to write.")
@json_option("Print the result (path, sha256, genesis digest) as JSON.")
def genesis_assemble(chain_id: str, members: tuple[Path, ...], validators: tuple[Path, ...],
                     admins: tuple[Path, ...], threshold: int | None, tariff_publisher: str,
                     max_claim_age_days: int, proposal_ttl_days: int,
                     lpp_v1_effective: str | None, genesis_time_ms: int | None, output: Path,
                     as_json: bool) -> None:
    """Build, validate and write the genesis from public files only (a file holding a secret
    key is refused); print its SHA-256 for every organisation to compare out of band.
    With --admin files, the genesis names the governing organisations and the policy."""
    import time

    from tpledger.cli.ceremony import assemble, make_policy, write_genesis
    from tpledger.cli.errors import UsageError
    from tpledger.ledger.genesis import parse_day
    from tpledger.ledger.registry import day_of

    if genesis_time_ms is None:
        genesis_time_ms = int(time.time() * 1000)
    try:
        v1_day = (day_of(genesis_time_ms) if lpp_v1_effective is None
                  else parse_day(lpp_v1_effective))
    except ValueError:
        raise UsageError("--lpp-v1-effective must be a date YYYY-MM-DD") from None
    policy = make_policy(len(admins), threshold, tariff_publisher, max_claim_age_days,
                         proposal_ttl_days, v1_day) if admins else None
    g = assemble(chain_id, members, validators, genesis_time_ms, admins=admins, policy=policy)
    sha = write_genesis(g, output)
    if as_json:
        render.print_json({"path": str(output), "sha256": sha, "digest": g.hash().hex(),
                           "validators": len(g.validators), "participants": len(g.participants),
                           "gov_orgs": [o.name for o in g.gov_orgs],
                           "threshold": g.policy.threshold,
                           "tariff_publisher": g.policy.tariff_publisher})
        return
    click.echo(f"{sha}  {output}")
    click.echo(f"genesis written: {len(g.validators)} validators, {len(g.participants)} "
               f"participants, {len(g.gov_orgs)} governing organisations (threshold "
               f"{g.policy.threshold}); every organisation compares the SHA-256 above "
               "(sha256sum) out of band before starting its node", err=True)
