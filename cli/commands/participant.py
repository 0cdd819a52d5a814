"""``tpledger participant``: register participants, rotate, suspend, reinstate and revoke their
keys (admin-signed txs, ``cli/participants.py``), and read the registry (show, list)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import UsageError
from tpledger.cli.options import (
    CONTEXT,
    admin_tx_options,
    format_option,
    genesis_option,
    json_option,
    key_option,
    load_genesis_for,
    node_option,
    timeout_option,
)
from tpledger.ledger.genesis import PARTICIPANT_ROLES, STATUS_NAMES
from tpledger.ledger.keys import KeyFile

ROLE_CHOICES = PARTICIPANT_ROLES
STATUS_CHOICES = tuple(STATUS_NAMES.values())
NODE = "--node http://127.0.0.1:7000"
ADMIN = "--admin-key c/admin/federation.admin.json"

reason_option = click.option("--reason", required=True, metavar="CODE",
                             help="Why, as a reason code (a-z, 0-9, '_', '-'), e.g. phished.")
wait_commit = click.option("--wait/--no-wait", default=True, show_default=True,
                           help="Wait until the transaction is committed.")


admin_change_options = admin_tx_options(wait=wait_commit,
                                        json_help="Print the transaction's outcome as JSON.")


def _send_admin(node_url: str, admin_path: Path, genesis: Path | None, make: Any, wait: bool,
                timeout: float, as_json: bool, what: str) -> dict[str, Any]:
    """Sign ``make(chain_id, admin_signer)`` with the admin key (the one admin-tx path of
    ``cli/governance.py``), submit, report, raise on a refusal (exit 4) or a --wait timeout
    (exit 5)."""
    from tpledger.cli.governance import send_admin_tx
    from tpledger.cli.lifecycle import raise_if_refused

    row, _org = send_admin_tx(node_url, admin_path, genesis,
                              lambda _client, chain, signer: make(chain, signer), wait, timeout)
    render.tx_row(row, as_json, what)
    raise_if_refused(row, wait, timeout)
    return row


@click.group(context_settings=CONTEXT, epilog=f"""\b
Examples:
  tpledger participant list --role optician {NODE} --key c/keys/cnam.key
  tpledger participant revoke optic-paris --reason phished {NODE} {ADMIN}
""")
def participant() -> None:
    """The participant registry on the ledger: add, rotate, suspend, reinstate, revoke, show,
    list. Changes are signed by a governing organisation's admin key (a rotation also by the
    participant itself); reads use an operational key."""


@participant.command("add", epilog=f"""\b
Example:
  tpledger keygen optic-nantes --role optician -o ./optic-nantes   # on the shop's host
  tpledger participant add optic-nantes --pub optic-nantes.pub.json --gov-org federation \\
      --siret 44300100800012 --rpps 10001234565 {NODE} {ADMIN}
""")
@click.argument("org")
@click.option("--pub", "pub_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The new participant's public key file (from `tpledger keygen`).")
@click.option("--gov-org", "gov_org", required=True, metavar="ORG",
              help="The governing organisation whose admin signs (and later manages it).")
@click.option("--role", type=click.Choice(ROLE_CHOICES),
              help="Checked against the public file's role.")
@click.option("--siret", default=None, help="SIRET (14 digits, Luhn key).")
@click.option("--rpps", default=None, help="An optician's RPPS (11 digits, Luhn key).")
@click.option("--billing", default=None, help="An optician's billing number (9 digits).")
@click.option("--amc", default=None, help="An insurer's AMC number (8 to 10 digits).")
@admin_change_options
def participant_add(org: str, pub_path: Path, gov_org: str, role: str | None,
                    siret: str | None, rpps: str | None, billing: str | None, amc: str | None,
                    node_url: str, admin_key_path: Path, genesis: Path | None, wait: bool,
                    timeout: float, as_json: bool) -> None:
    """Register participant ORG (keys from its public file, identifiers from the options or
    the file) under governing organisation --gov-org; signed by that org's admin key."""
    from tpledger.cli.ceremony import PublicKey, identifiers
    from tpledger.cli.participants import build_add

    pub = PublicKey.load(pub_path)
    if pub.org != org:
        raise UsageError(f"{pub_path} is the public file of {pub.org!r}, not of {org!r}")
    if role is not None and role != pub.role:
        raise UsageError(f"{pub_path} is a {pub.role} key, not a {role} one")
    given = {k: v for k, v in (("siret", siret), ("rpps", rpps), ("billing", billing),
                               ("amc", amc)) if v is not None}
    ids = identifiers(given, pub.role, "identifiers") if given else pub.ids
    _send_admin(node_url, admin_key_path, genesis,
                lambda chain, signer: build_add(chain, signer, pub, gov_org, ids),
                wait, timeout, as_json, f"participant {org} added")


@participant.command("rotate", epilog=f"""\b
Examples:
  # the participant itself: a new key pair replaces c/keys/mutuelle-a.key once committed;
  # the old X25519 secret is kept in c/keys/mutuelle-a.history.json to open older openings
  tpledger participant rotate mutuelle-a --key c/keys/mutuelle-a.key {NODE}
  # its admin, with the participant's new public file (e.g. after a lost key)
  tpledger participant rotate optic-paris --new-pub optic-paris.pub.json {NODE} {ADMIN}
""")
@click.argument("org")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The participant's own current key file (self-rotation).")
@click.option("--admin-key", "admin_key_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its governing organisation's admin key (with --new-pub); never read from "
                   "the environment or a profile.")
@click.option("--new-pub", "new_pub", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="With --admin-key: the participant's new public key file.")
@click.option("--reason", default="key_rotation", show_default=True, metavar="CODE",
              help="Reason code recorded with the rotation.")
@node_option
@genesis_option
@timeout_option
@json_option("Print the outcome as JSON.")
def participant_rotate(org: str, key_path: Path | None, admin_key_path: Path | None,
                       new_pub: Path | None, reason: str, node_url: str, genesis: Path | None,
                       timeout: float, as_json: bool) -> None:
    """Replace ORG's Ed25519 and X25519 keys. The old key is refused from the next block."""
    from tpledger.cli.ceremony import PublicKey
    from tpledger.cli.lifecycle import check_reason
    from tpledger.cli.participants import build_change
    from tpledger.ledger.tx import ROTATE

    check_reason(reason, "--reason")
    if (key_path is None) == (admin_key_path is None):
        raise UsageError("give exactly one of --key (self-rotation) or --admin-key with "
                         "--new-pub")
    if (admin_key_path is None) != (new_pub is None):
        raise UsageError("--new-pub goes with --admin-key (and --admin-key needs it)")
    if key_path is not None:
        _self_rotate(org, key_path, reason, node_url, genesis, timeout, as_json)
        return
    assert admin_key_path is not None and new_pub is not None
    pub = PublicKey.load(new_pub)
    if pub.org != org:
        raise UsageError(f"{new_pub} is the public file of {pub.org!r}, not of {org!r}")
    _send_admin(node_url, admin_key_path, genesis,
                lambda chain, signer: build_change(chain, signer, org, ROTATE, pub, reason),
                True, timeout, as_json, f"participant {org} rotated")


def _self_rotate(org: str, key_path: Path, reason: str, node_url: str, genesis: Path | None,
                 timeout: float, as_json: bool) -> None:
    from tpledger.cli.lifecycle import raise_if_refused, submit_signed
    from tpledger.cli.participants import (
        build_change,
        install_next_key,
        next_key,
        next_key_path,
        rotation_committed,
    )
    from tpledger.ledger.tx import ROTATE

    old = KeyFile.load(key_path)
    if old.org != org:
        raise UsageError(f"{key_path} is the key of {old.org!r}, not of {org!r}")
    gen = load_genesis_for(key_path, genesis)
    new = next_key(key_path, old)
    height = rotation_committed(node_url, gen.chain_id, new)  # a rerun after a crash
    if height is None:
        with NodeClient(node_url, signer=old.signer, chain_id=gen.chain_id) as client:
            row = submit_signed(client, build_change(gen.chain_id, old.signer, org, ROTATE,
                                                     new, reason), True, timeout)
        if row["status"] == "rejected":
            with contextlib.suppress(OSError):
                next_key_path(key_path).unlink()
        raise_if_refused(row, True, timeout)
        height = int(row["height"])
    else:
        row = {"status": "committed", "height": height}
    hist = install_next_key(key_path, old, height)
    row |= {"org": org, "key": str(key_path), "history": str(hist),
            "ed25519": new.signer.public.hex()}
    if as_json:
        render.print_json(row)
        return
    render.stdout().print(f"participant {org} rotated at height {height}: new key in "
                          f"{key_path}, old X25519 secret kept in {hist}")


def _change_command(op_name: str, what: str, example_reason: str) -> None:
    @participant.command(op_name, epilog=f"""\b
Example:
  tpledger participant {op_name} optic-paris --reason {example_reason} {NODE} {ADMIN}
""", help=f"{what} Signed by ORG's governing organisation's admin key.")
    @click.argument("org")
    @reason_option
    @admin_change_options
    def command(org: str, reason: str, node_url: str, admin_key_path: Path,
                genesis: Path | None, wait: bool, timeout: float, as_json: bool) -> None:
        from tpledger.cli.lifecycle import check_reason
        from tpledger.cli.participants import OPS, build_change

        check_reason(reason, "--reason")
        _send_admin(node_url, admin_key_path, genesis,
                    lambda chain, signer: build_change(chain, signer, org, OPS[op_name], None,
                                                       reason),
                    wait, timeout, as_json, f"participant {org}: {op_name}")


_change_command("suspend", "Suspend ORG's key: refused from the next block until reinstated.",
                "investigation")
_change_command("reinstate", "Reinstate a suspended ORG.", "cleared")
_change_command("revoke", "Revoke ORG's key with immediate effect: every tx it signs is refused "
                "from the next block, its pending txs are dropped; its earlier claims stay "
                "valid.", "phished")


@participant.command("show", epilog=f"Example: tpledger participant show optic-paris {NODE} "
                                    "--key c/keys/cnam.key --json")
@click.argument("org")
@node_option
@key_option("Any registered participant's key (a signed read).")
@format_option
def participant_show(org: str, node_url: str, key_path: Path, fmt: str) -> None:
    """ORG's registry record (role, status, keys, identifiers) and its key history with the
    heights of each change."""
    from tpledger.cli.participants import show_participant

    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        body = show_participant(client, org)
    if fmt == "json":
        render.print_json(body)
        return
    render.participant_record(body, wide=fmt == "wide")


@participant.command("list", epilog=f"Example: tpledger participant list --role optician "
                                    f"--status active {NODE} --key c/keys/cnam.key")
@click.option("--role", type=click.Choice(ROLE_CHOICES), help="Only this role.")
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only this status.")
@node_option
@key_option("Any registered participant's key (a signed read).")
@format_option
def participant_list(role: str | None, status: str | None, node_url: str, key_path: Path,
                     fmt: str) -> None:
    """The participants in the registry in force (paged from the node)."""
    from tpledger.cli.participants import list_participants

    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        rows = list_participants(client, role, status)
    if fmt == "json":
        render.print_json({"participants": rows})
        return
    render.participants_table(rows, wide=fmt == "wide")


__all__ = ["participant"]
