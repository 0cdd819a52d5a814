"""``tpledger claim``: submit claims and follow their life (payers' and optician's side)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError, Rejected, TimedOut, UsageError
from tpledger.cli.euros import format_cents
from tpledger.cli.options import (
    CONTEXT,
    PAYER_KEY,
    READER_KEY,
    format_option,
    genesis_option,
    json_option,
    key_option,
    load_genesis_for,
    node_option,
    timeout_option,
    wait_option,
)
from tpledger.ledger import tx
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.tx import TxBody

# the overall statuses of ledger.tx.ClaimState.status(), in the order a claim goes through them
CLAIM_STATUSES = (tx.CLAIM_SUBMITTED, tx.CLAIM_PARTIALLY_DECIDED, tx.CLAIM_ACCEPTED,
                  tx.CLAIM_REJECTED, tx.CLAIM_PAID, tx.CLAIM_CANCELLED)


@click.group(context_settings=CONTEXT)
def claim() -> None:
    """Submit claims and follow their status."""


@claim.command(
    "submit",
    epilog="""\b
Examples:
  tpledger claim submit --node http://127.0.0.1:7000 --key c/keys/optic-paris.key \\
      --insurer mutuelle-a --nir "$NIR" --birth-date 1980-05-17 \\
      --line 2210546:1:30.49 --line 2261874:2:24.08 --ref FAC-2026-0001 --wait
  tpledger claim submit --node http://127.0.0.1:7000 --key c/keys/optic-paris.key \\
      --from-json claims.jsonl --json --wait
\b
JSON lines: {"ref": "FAC-2026-0001", "insurer": "mutuelle-a",
             "patient": {"nir": "...", "birth_date": "1980-05-17"},
             "lines": [{"lpp": "2261874", "qty": 2, "amount": "24.08"}], "amo": "..", "amc": ".."}

Retries: "ref" (the shop's invoice or PEC number) is unique per optician on the ledger. Rerun
the same file after a timeout or a crash: a line already on the ledger is reported as
"already submitted: <claim id>" and counts as success; nothing is submitted twice.
""",
)
@node_option
@key_option("The optician's key file.")
@genesis_option
@click.option("--insurer", help="Complementary insurer (org id in the genesis).")
@click.option("--nir", help="Patient NIR (15 characters); never sent in clear. Command lines "
              "are visible in ps and shell history: prefer --from-json for real data.")
@click.option("--birth-date", help="Patient birth date YYYY-MM-DD; never sent in clear.")
@click.option("--member-number", default="", help="Member number at the insurer (optional).")
@click.option("--ref", default="", help="The shop's invoice or PEC number (1-64 visible "
              "ASCII): the ledger refuses a second claim with it and answers the first claim's "
              "id. Without it a one-off reference is generated (a retry is then not "
              "recognised). In --from-json files, \"ref\" is required on every line.")
@click.option("--line", "lines", multiple=True, metavar="LPP:QTY:EUROS",
              help="A dispensed line (repeatable); EUROS is the line total, e.g. 24.08.")
@click.option("--amo", help="AMO share in euros (default: computed from the LPP table in "
              "force today, read from the node).")
@click.option("--amc", help="AMC share in euros (default: total minus AMO).")
@click.option("--from-json", "from_json", type=click.Path(allow_dash=True, path_type=Path),
              help="JSON-lines file of claims ('-' for stdin).")
@click.option("--batch-size", type=click.IntRange(1, 5000), default=500, show_default=True,
              help="Claims per POST.")
@click.option("--wait", is_flag=True, help="Wait until every claim is committed or rejected.")
@timeout_option
@json_option("One JSON object per claim on stdout.")
def claim_submit(node_url: str, key_path: Path, genesis: Path | None, insurer: str | None,
                 nir: str | None, birth_date: str | None, member_number: str, ref: str,
                 lines: tuple[str, ...], amo: str | None, amc: str | None,
                 from_json: Path | None, batch_size: int, wait: bool, timeout: float,
                 as_json: bool) -> None:
    """Sign and submit claims; the patient is committed and sealed locally."""
    from tpledger.cli.claims import (
        ClaimBuilder,
        ClaimInput,
        check_ref,
        parse_line_spec,
        prepare_all,
        prepare_claims_file,
        submit_with_progress,
    )
    from tpledger.cli.euros import parse_euros
    from tpledger.cli.governance import node_tariff
    from tpledger.cli.participants import node_directory

    flag_given = any(v for v in (insurer, nir, birth_date, member_number, ref, lines, amo, amc))
    if from_json is not None and flag_given:
        raise UsageError("give either --from-json FILE or the claim flags, not both")
    key = KeyFile.load(key_path)
    gen = load_genesis_for(key_path, genesis)
    if from_json is None:
        missing = [n for n, v in (("--insurer", insurer), ("--nir", nir),
                                  ("--birth-date", birth_date), ("--line", lines)) if not v]
        if missing:
            raise UsageError(f"missing {', '.join(missing)} (or use --from-json FILE)")
        if (amo is None) != (amc is None):
            raise UsageError("give both --amo and --amc, or neither (default shares)")
    # openings are sealed to the payers' current X25519 keys (the node's registry in force),
    # lines are priced by the tariff version in force on the claims' date (today, UTC): both
    # read from the node only once every claim passed the checks that need neither
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        builder = ClaimBuilder(key, gen, directory=node_directory(client),
                               tariff=node_tariff(client))
        if from_json is not None:
            prepared = prepare_claims_file(builder, from_json, render.input_error)
        else:
            prepared = prepare_all(builder, iter([ClaimInput(
                "claim 1", str(insurer), str(nir), str(birth_date), member_number,
                tuple(parse_line_spec(s, f"--line {i}") for i, s in enumerate(lines, start=1)),
                parse_euros(amo, "--amo") if amo is not None else None,
                parse_euros(amc, "--amc") if amc is not None else None,
                check_ref(ref, "--ref") if ref else "",
            )]), render.input_error)
    if not prepared:
        raise CliError("no claims to submit")
    rows = submit_with_progress(node_url, key, gen, prepared, batch_size, wait, timeout)
    render.submitted_claims(rows, as_json)
    bad = [r for r in rows if r["status"] == "rejected"]
    late = [r for r in rows if wait and r["status"] == "pending"]
    if bad:
        first = bad[0]
        raise Rejected(f"{len(bad)} of {len(rows)} claims rejected (first: {first['where']}: "
                       f"{first.get('code', '?')}: {first.get('message', '')})")
    if late:
        raise TimedOut(f"{len(late)} of {len(rows)} claims not committed after {timeout:g} s")


@claim.command("status", epilog="Example: tpledger claim status 3fa1…e9 --node "
                                "http://127.0.0.1:7000 --key c/keys/optic-paris.key --json")
@click.argument("claim_id")
@node_option
@key_option(READER_KEY)
@format_option
def claim_status(claim_id: str, node_url: str, key_path: Path, fmt: str) -> None:
    """Show the ledger state of claim CLAIM_ID (hex id, or a unique prefix of it)."""
    from tpledger.cli.lifecycle import check_claim_ref, resolve_claim_id

    check_claim_ref(claim_id)
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        state = client.claim(resolve_claim_id(client, claim_id))
    if fmt == "json":
        render.print_json(state)
        return
    render.claim_state(state)


def _send(node_url: str, key: KeyFile, gen: Genesis, claim_ref: str,
          make_body: Callable[[NodeClient, str], TxBody], wait: bool, timeout: float,
          as_json: bool, what: str) -> None:
    """Resolve the claim id, build the transaction, send it and report it; a refusal is a
    one-line error naming the ledger's code (exit 4), a --wait timeout exits 5."""
    from tpledger.cli.lifecycle import raise_if_refused, resolve_claim_id, send_tx

    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        body = make_body(client, resolve_claim_id(client, claim_ref))
        row = send_tx(client, key, gen, body, wait, timeout)
    render.tx_row(row, as_json, what)
    raise_if_refused(row, wait, timeout)


@claim.command("inbox", epilog="Example: tpledger claim inbox --node http://127.0.0.1:7000 "
                               "--key c/keys/mutuelle-a.key --json")
@node_option
@key_option("Key of a payer: an insurer (AMC share) or the CNAM (AMO share).")
@format_option
def claim_inbox(node_url: str, key_path: Path, fmt: str) -> None:
    """Claims awaiting my decision on my share (insurer: AMC, CNAM: AMO)."""
    from tpledger.cli.lifecycle import is_awaiting, iter_claims, share_for_role, share_key

    key = KeyFile.load(key_path)
    share = share_key(share_for_role(key.role))
    with NodeClient(node_url, signer=key.signer) as client:
        rows = [render.claim_summary(c) for c in iter_claims(client)
                if is_awaiting(c, key.org, key.role)]
    if fmt == "json":
        render.print_json({"org": key.org, "share": share, "claims": rows})
        return
    render.claims_table(rows, f"{len(rows)} claims awaiting {key.org}'s {share.upper()} "
                              "decision", wide=fmt == "wide")


@claim.command("list", epilog="Example: tpledger claim list --mine --node http://127.0.0.1:7000 "
                              "--key c/keys/optic-paris.key --json")
@node_option
@key_option("Key of an optician, an insurer or the CNAM.")
@click.option("--mine", is_flag=True, default=True, show_default=True,
              help="Claims where I am the optician or a payer (the only listing offered).")
@click.option("--status", "status_filter", type=click.Choice(CLAIM_STATUSES),
              help="Only claims with this overall status.")
@click.option("--limit", type=click.IntRange(1, 1_000_000),
              help="At most this many claims; the cursor of the next page is printed.")
@click.option("--after", metavar="CURSOR", help="Start after this cursor (a claim id).")
@format_option
def claim_list(node_url: str, key_path: Path, mine: bool, status_filter: str | None,
               limit: int | None, after: str | None, fmt: str) -> None:
    """My claims: status per payer and overall, and what is still owed."""
    from tpledger.cli.lifecycle import check_claim_ref, is_mine, list_claims

    if after is not None and len(check_claim_ref(after)) != 64:
        raise UsageError("--after takes the 64-hex cursor printed by the previous page")
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        claims, nxt = list_claims(client, lambda c: is_mine(c, key.org, key.role) and (
            status_filter is None or c.get("status") == status_filter), limit, after)
    rows = [render.claim_summary(c) for c in claims]
    owed = sum(int(r.get("owed_cents") or 0) for r in rows)
    if fmt == "json":
        render.print_json({"org": key.org, "claims": rows, "owed_cents": owed, "next": nxt})
        return
    render.claims_table(rows, f"{len(rows)} claims of {key.org}; still owed "
                              f"{format_cents(owed)} EUR", wide=fmt == "wide")
    if nxt is not None:
        click.echo(f"next page: --after {nxt}", err=not render.stdout_is_terminal())


@claim.command("open", epilog="""\b
Example:
  tpledger claim open 3fa1…e9 --node http://127.0.0.1:7000 --key c/keys/mutuelle-a.key
\b
By default only the verification is shown; --show-identity also prints the member number, the
NIR and the birth date, to a terminal only: it is refused (exit 2) when stdout is a pipe or a
file, with --json too, so that the identity never lands in a log.""")
@click.argument("claim_id")
@node_option
@key_option("Key of the claim's insurer or of the CNAM (its X25519 secret, or a rotated-out one "
            "kept in STEM.history.json, opens the opening).")
@genesis_option
@click.option("--show-identity", is_flag=True,
              help="Also print the patient's member number, NIR and birth date.")
@json_option()
def claim_open(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
               show_identity: bool, as_json: bool) -> None:
    """Fetch my sealed patient opening, open it, verify it against the claim's commitment."""
    from tpledger.cli.keys_history import box_keys, history_path
    from tpledger.cli.lifecycle import check_claim_ref, open_claim, resolve_claim_id

    if show_identity and not render.stdout_is_terminal():
        raise UsageError("--show-identity prints the patient's identity to a terminal only and "
                         "stdout is not one (a pipe or a file): run it without redirection")
    check_claim_ref(claim_id)
    key = KeyFile.load(key_path)
    gen = load_genesis_for(key_path, genesis)
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        opened = open_claim(client, key, gen, resolve_claim_id(client, claim_id),
                            box_keys(key, history_path(key_path)))
    body: dict[str, Any] = {"claim_id": opened.claim_id, "verified": True,
                            "height": opened.height}
    if show_identity:
        body["member_number"] = opened.opening.member_number
        body["nir"] = opened.opening.nir
        body["birth_date"] = opened.opening.birth_date
    if as_json:
        render.print_json(body)
        return
    out = render.stdout()
    out.print(f"claim {opened.claim_id}: opening verified against the commitment")
    if show_identity:
        out.print(f"member number: {opened.opening.member_number or '(none)'}")
        out.print(f"NIR: {opened.opening.nir}  birth date: {opened.opening.birth_date}")


@claim.command("decide", epilog="""\b
Examples:
  tpledger claim decide 3fa1…e9 --accept --node http://127.0.0.1:7000 \\
      --key c/keys/mutuelle-a.key --wait
  tpledger claim decide 3fa1…e9 --accept --amount 20.00 ...
  tpledger claim decide 3fa1…e9 --reject not_covered ...""")
@click.argument("claim_id")
@node_option
@key_option(PAYER_KEY)
@genesis_option
@click.option("--accept", is_flag=True, help="Accept my share.")
@click.option("--amount", help="Approved amount in euros (default: the amount asked).")
@click.option("--reject", "reject_reason", metavar="REASON",
              help="Reject my share with a reason code (a-z, 0-9, _ and -).")
@wait_option
@timeout_option
@json_option()
def claim_decide(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
                 accept: bool, amount: str | None, reject_reason: str | None, wait: bool,
                 timeout: float, as_json: bool) -> None:
    """Accept or reject my share of claim CLAIM_ID (the share follows from my role)."""
    from tpledger.cli.euros import parse_euros
    from tpledger.cli.lifecycle import (
        check_claim_ref,
        check_reason,
        decision_body,
        fetch_claim,
        share_for_role,
    )

    if accept == (reject_reason is not None):
        raise UsageError("give exactly one of --accept or --reject REASON")
    if amount is not None and not accept:
        raise UsageError("--amount goes with --accept")
    check_claim_ref(claim_id)
    if reject_reason is not None:
        check_reason(reject_reason)
    key = KeyFile.load(key_path)
    share_for_role(key.role)
    gen = load_genesis_for(key_path, genesis)
    cents = parse_euros(amount, "--amount") if amount is not None else None

    def body(client: NodeClient, cid: str) -> TxBody:
        return decision_body(fetch_claim(client, cid), key.role, accept, cents, reject_reason)

    _send(node_url, key, gen, claim_id, body, wait, timeout, as_json,
          "accepted" if accept else "rejected")


@claim.command("pay", epilog="Example: tpledger claim pay 3fa1…e9 --amount 24.08 --reference "
                             "VIR-2024-000123 --node http://127.0.0.1:7000 "
                             "--key c/keys/mutuelle-a.key --wait")
@click.argument("claim_id")
@node_option
@key_option(PAYER_KEY)
@genesis_option
@click.option("--amount", required=True, help="Amount paid in euros (at most what remains).")
@click.option("--reference", required=True,
              help="Bank transfer reference; only its digest goes on the ledger.")
@wait_option
@timeout_option
@json_option()
def claim_pay(claim_id: str, node_url: str, key_path: Path, genesis: Path | None, amount: str,
              reference: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Record a payment (possibly partial) of my accepted share of CLAIM_ID."""
    from tpledger.cli.euros import parse_euros
    from tpledger.cli.lifecycle import check_claim_ref, payment_body

    cents = parse_euros(amount, "--amount")
    key = KeyFile.load(key_path)
    payment_body("00" * 32, key.role, cents, reference)  # every value checked before sending
    check_claim_ref(claim_id)
    gen = load_genesis_for(key_path, genesis)
    _send(node_url, key, gen, claim_id,
          lambda _c, cid: payment_body(cid, key.role, cents, reference), wait, timeout,
          as_json, "payment")


@claim.command("cancel", epilog="Example: tpledger claim cancel 3fa1…e9 --reason wrong_lens "
                                "--node http://127.0.0.1:7000 --key c/keys/optic-paris.key --wait")
@click.argument("claim_id")
@node_option
@key_option("Key of the claim's optician.")
@genesis_option
@click.option("--reason", required=True, help="Reason code (a-z, 0-9, _ and -).")
@wait_option
@timeout_option
@json_option()
def claim_cancel(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
                 reason: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Withdraw claim CLAIM_ID (optician; only before any payer decided)."""
    from tpledger.cli.lifecycle import cancel_body, check_claim_ref

    key = KeyFile.load(key_path)
    cancel_body("00" * 32, key.role, reason)  # role and reason checked before sending
    check_claim_ref(claim_id)
    gen = load_genesis_for(key_path, genesis)
    _send(node_url, key, gen, claim_id, lambda _c, cid: cancel_body(cid, key.role, reason),
          wait, timeout, as_json, "cancelled")


@claim.command("forget", epilog="Example: tpledger claim forget 3fa1…e9 "
                                "--node http://127.0.0.1:7000 --key c/keys/mutuelle-a.key")
@click.argument("claim_id")
@node_option
@key_option("Key of one of the claim's payers.")
@json_option()
def claim_forget(claim_id: str, node_url: str, key_path: Path, as_json: bool) -> None:
    """Delete the claim's sealed patient openings on every node (the commitment stays)."""
    from tpledger.cli.lifecycle import check_claim_ref, fetch_claim, resolve_claim_id

    check_claim_ref(claim_id)
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        claim_id = resolve_claim_id(client, claim_id)
        fetch_claim(client, claim_id)
        res = client.forget(claim_id)
    if as_json:
        render.print_json(res)
        return
    render.stdout().print(f"claim {claim_id}: {res.get('deleted', 0)} sealed openings deleted "
                          "on this node; the request was relayed to its peers")
