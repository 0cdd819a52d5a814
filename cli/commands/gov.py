"""``tpledger gov``: quorum proposals of the governing organisations, and their ballots.

Proposing and voting sign with an organisation's **admin** key (``--admin-key``, a file apart
from every operational key); listing and showing proposals are signed reads with any active
participant's operational ``--key``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import UsageError
from tpledger.cli.options import (
    CONTEXT,
    admin_tx_options,
    format_option,
    key_option,
    node_option,
)
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.registry import PROPOSAL_STATUS_NAMES

if TYPE_CHECKING:
    from tpledger.ledger.keys import Signer
    from tpledger.ledger.tx import SignedTx

PROPOSAL_STATUSES = tuple(PROPOSAL_STATUS_NAMES.values())  # as the node shows them
MAX_LIST = 1000


@click.group(context_settings=CONTEXT, epilog="""\b
Examples:
  tpledger gov propose --action add-org:insurer-b:insurer-b.admin.pub.json:insurer \\
      --admin-key c/admin/federation.admin.json --node http://127.0.0.1:7000 --wait
  tpledger gov vote PROPOSAL_ID --yes --admin-key c/admin/cnam.admin.json --node ... --wait
  tpledger gov list --status open --node http://127.0.0.1:7000 --key c/keys/optic-paris.key""")
def gov() -> None:
    """Quorum proposals of the governing organisations (add/remove an org, admin keys,
    policy, tariffs) and their ballots."""


@gov.command("propose", epilog="""\b
Examples:
  tpledger gov propose --action add-org:insurer-b:keys/insurer-b.admin.pub.json:insurer \\
      --expires 7d --admin-key c/admin/federation.admin.json --node http://127.0.0.1:7000 --wait
  tpledger gov propose --action remove-org:mutuelle-x --action set-policy:policy.json ...
  tpledger gov propose --action publish-tariff:lpp_2026_03.csv@2026-03-01 ...
\b
Actions (1 to 8, executed together when the quorum says yes):
  add-org:NAME:ADMIN_PUB:ROLE[,ROLE...]   a governing org, its admin public key (64 hex or a
                                          .pub.json file) and the roles its admin registers
  remove-org:NAME                         (its participants must be revoked first)
  set-admin:NAME:ADMIN_PUB                replace an org's admin key
  set-policy:FILE.json                    threshold, tariff_publisher, max_claim_age_days,
                                          max_proposal_ttl, lpp_v1_effective
  publish-tariff:FILE.csv@YYYY-MM-DD      a full LPP table in force from that date
The proposer's own yes is counted; the proposal id is its tx id (gov vote ID).""")
@click.option("--action", "actions", multiple=True, required=True, metavar="SPEC",
              help="An action (repeatable; see below).")
@click.option("--expires", default="7d", show_default=True, metavar="DURATION",
              help="Time to live: 90s, 30m, 12h, 7d (at most the policy's maximum).")
@admin_tx_options()
def gov_propose(actions: tuple[str, ...], expires: str, node_url: str, admin_key_path: Path,
                genesis: Path | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Propose governance actions, signed by my organisation's admin key."""
    from tpledger.cli.governance import (
        build_propose,
        latest_tariff_version,
        parse_action_spec,
        parse_duration_ms,
        send_admin_tx,
        with_tariff_version,
    )
    from tpledger.cli.lifecycle import raise_if_refused

    ttl_ms = parse_duration_ms(expires)
    parsed = [parse_action_spec(a) for a in actions]  # every spec checked before sending

    def build(client: NodeClient, chain_id: str, admin: Signer) -> SignedTx:
        specs = parsed
        if any(a.tariff is not None for a in parsed):  # it carries the next version's number
            version = latest_tariff_version(client) + 1
            specs = [with_tariff_version(a, version) for a in parsed]
        return build_propose(chain_id, admin, specs, int(time.time() * 1000) + ttl_ms)

    row, org = send_admin_tx(node_url, admin_key_path, genesis, build, wait, timeout)
    row["proposal_id"] = row["tx_id"]
    render.tx_row(row, as_json, f"proposal by {org}")
    raise_if_refused(row, wait, timeout)


@gov.command("vote", epilog="""\b
Examples:
  tpledger gov vote 3fa1…e9 --yes --admin-key c/admin/cnam.admin.json \\
      --node http://127.0.0.1:7000 --wait
  tpledger gov vote 3fa1…e9 --no --admin-key c/admin/insurer-a.admin.json --node ... --json
A ballot that completes the quorum executes the proposal in its block; an expired proposal,
a second ballot of the same org or a non-governing signer is refused (exit 4 and the code).""")
@click.argument("proposal_id")
@click.option("--yes", "approve", flag_value=True, default=None, help="Vote for.")
@click.option("--no", "approve", flag_value=False, help="Vote against.")
@admin_tx_options()
def gov_vote(proposal_id: str, approve: bool | None, node_url: str, admin_key_path: Path,
             genesis: Path | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Cast my organisation's ballot on proposal PROPOSAL_ID."""
    from tpledger.cli.governance import build_ballot, parse_proposal_id, send_admin_tx
    from tpledger.cli.lifecycle import raise_if_refused

    if approve is None:
        raise UsageError("give --yes or --no")
    pid = parse_proposal_id(proposal_id)
    row, org = send_admin_tx(
        node_url, admin_key_path, genesis,
        lambda _client, chain_id, admin: build_ballot(chain_id, admin, pid, bool(approve)),
        wait, timeout)
    row.update(proposal_id=pid.hex(), approve=approve)
    render.tx_row(row, as_json, f"{'yes' if approve else 'no'} of {org}")
    raise_if_refused(row, wait, timeout)


@gov.command("list", epilog="""\b
Examples:
  tpledger gov list --node http://127.0.0.1:7000 --key c/keys/optic-paris.key
  tpledger gov list --status open --json --node ... --key ...""")
@node_option
@key_option("Any active participant's key (a signed read).")
@click.option("--status", "status_filter", type=click.Choice(PROPOSAL_STATUSES),
              help="Only proposals with this status.")
@click.option("--limit", type=click.IntRange(1, MAX_LIST), default=100, show_default=True,
              help="At most this many proposals; the cursor of the next page is printed.")
@click.option("--after", metavar="CURSOR", help="Start after this cursor (a proposal id).")
@format_option
def gov_list(node_url: str, key_path: Path, status_filter: str | None, limit: int,
             after: str | None, fmt: str) -> None:
    """Proposals on the ledger: actions, ballots, status, expiry."""
    from tpledger.cli.governance import fetch_proposals, parse_proposal_id

    if after is not None:
        parse_proposal_id(after)
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        rows, nxt = fetch_proposals(client, status_filter, limit, after)
    render.proposals(rows, nxt, fmt)


@gov.command("show", epilog="Example: tpledger gov show 3fa1…e9 --node http://127.0.0.1:7000 "
                            "--key c/keys/optic-paris.key --json")
@click.argument("proposal_id")
@node_option
@key_option("Any active participant's key (a signed read).")
@format_option
def gov_show(proposal_id: str, node_url: str, key_path: Path, fmt: str) -> None:
    """One proposal: its actions, who voted yes and no, its status and outcome."""
    from tpledger.cli.governance import fetch_proposal, parse_proposal_id

    pid = parse_proposal_id(proposal_id)
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        body = fetch_proposal(client, pid)
    render.proposal(body, fmt)
