"""``tpledger``: the command-line front of the ledger (a thin layer over ledger/ and node/).

Exit codes (mapped in one place, :func:`run`): 0 success; 1 an error of input, environment, the
ledger or a node (one line ``error: ...`` on stderr); 2 bad usage; 70 an unexpected internal
error (traceback only with ``TPLEDGER_DEBUG=1``); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from cli.client import ClientError, NodeClient
from cli.errors import CliError, UsageError
from cli.euros import format_cents
from cli.evidence_cmd import evidence, proof_bytes
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.keys import KeyFile
from node.errors import NodeError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, sort_keys=True))


def _load_genesis_for(key_path: Path, genesis: Path | None) -> Genesis:
    """``--genesis`` if given, else ``genesis.json`` of the cluster directory holding the key."""
    if genesis is not None:
        return Genesis.load(genesis)
    key_dir = key_path.resolve().parent
    for candidate in (key_dir.parent / "genesis.json", key_dir / "genesis.json"):
        if candidate.is_file():
            return Genesis.load(candidate)
    raise UsageError("no genesis.json next to the key's cluster directory; give --genesis FILE")


# -------------------------------------------------------------------------------------------
@click.group(context_settings=CONTEXT)
@click.version_option(package_name="tpledger", prog_name="tpledger")
def cli() -> None:
    """tpledger: a neutral, append-only ledger for optical tiers payant.

    \b
    Quick start:
      tpledger demo                      # whole flow on a throw-away local cluster
      tpledger cluster init ./c --validators 4 --base-port 7000
      tpledger cluster up ./c
    """


# -- options shared by the commands that talk to a node --------------------------------------
_NODE_OPT = click.option("--node", "node_url", required=True, help="Node API URL.")


def _key_opt(help_text: str) -> Any:
    return click.option("--key", "key_path", required=True,
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help=help_text)


_READER_KEY = "Key of the claim's optician, its insurer, or the CNAM."


# -- cluster ---------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def cluster() -> None:
    """Create and run a local cluster of validators."""


@cluster.command("init",
                 epilog="Example: tpledger cluster init ./c --validators 4 --base-port 7000")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--validators", "-n", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Number of validators (federation, insurers, CNAM).")
@click.option("--base-port", type=click.IntRange(0, 65535), default=7000, show_default=True,
              help="Node i listens on BASE+i; 0 picks free ports.")
@click.option("--chain-id", default="tpledger-local", show_default=True, help="Chain id.")
@click.option("--tls", is_flag=True,
              help="Generate a consortium CA and node certificates (DIR/tls); nodes then speak "
                   "https to each other and to clients (export TPLEDGER_CA=DIR/tls/ca.crt).")
@click.option("--json", "as_json", is_flag=True, help="Print the cluster description as JSON.")
def cluster_init(directory: Path, validators: int, base_port: int, chain_id: str,
                 tls: bool, as_json: bool) -> None:
    """Write keys, genesis.json, node configs and cluster.json into an empty DIRECTORY."""
    from cli.cluster import CLUSTER_FILE, init_cluster

    info = init_cluster(directory, validators, base_port, chain_id, tls=tls)
    if as_json:
        click.echo((info.root / CLUSTER_FILE).read_text().strip())
        return
    out = _stdout()
    out.print(f"cluster written to {info.root}")
    for n in info.nodes:
        out.print(f"  {n.name}  {n.api}  {n.config.relative_to(info.root)}")
    for c in info.clients:
        out.print(f"  key {c.org:<12} ({c.role})  {c.key.relative_to(info.root)}")
    out.print(f"start it with: tpledger cluster up {directory}")


@cluster.command("up", epilog="Example: tpledger cluster up ./c   (Ctrl-C stops every node)")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--startup-timeout", type=click.FloatRange(1, 600), default=60, show_default=True,
              help="Seconds to wait for every node's /v1/status.")
def cluster_up(directory: Path, startup_timeout: float) -> None:
    """Run every node of DIRECTORY as a child process until Ctrl-C or SIGTERM."""
    from cli.cluster import ClusterInfo, LocalCluster

    ClusterInfo.load(directory)  # a clear error if this is not a cluster directory
    err = _stderr()
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM,
                                                                      signal.SIGINT)}
    lc = LocalCluster(directory, startup_timeout_s=startup_timeout)
    try:
        with lc:
            for n in lc.info.nodes:
                click.echo(f"{n.name} {n.api}")
            err.print(f"{len(lc.info.nodes)} nodes up; logs in {lc.info.root / 'nodes'}; "
                      "Ctrl-C stops them")
            while True:
                dead = lc.dead_nodes()
                if dead:
                    name = dead[0]
                    raise CliError(f"node {name} exited with code "
                                   f"{lc.procs[name].returncode}: {lc.log_tail(name)}")
                time.sleep(0.5)
    except KeyboardInterrupt:
        err.print("stopping nodes…")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print("all nodes stopped")


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


# -- node ------------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def node() -> None:
    """Run one validator node."""


@node.command("run", epilog="Example: tpledger node run ./c/nodes/v0/node.toml")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def node_run(config: Path) -> None:
    """Run the node described by CONFIG (node.toml) in the foreground until SIGTERM/SIGINT."""
    from node.runtime import run_node

    run_node(config)


# -- claims ----------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def claim() -> None:
    """Submit claims and follow their status."""


@claim.command(
    "submit",
    epilog="""\b
Examples:
  tpledger claim submit --node http://127.0.0.1:7000 --key c/keys/optic-paris.key \\
      --insurer mutuelle-a --nir "$NIR" --birth-date 1980-05-17 \\
      --line 2210546:1:30.49 --line 2261874:2:24.08 --wait
  tpledger claim submit --node http://127.0.0.1:7000 --key c/keys/optic-paris.key \\
      --from-json claims.jsonl --json --wait
\b
JSON lines: {"insurer": "mutuelle-a", "patient": {"nir": "...", "birth_date": "1980-05-17"},
             "lines": [{"lpp": "2261874", "qty": 2, "amount": "24.08"}], "amo": "..", "amc": ".."}
""",
)
@_NODE_OPT
@_key_opt("The optician's key file.")
@click.option("--genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Genesis file (default: genesis.json of the key's cluster directory).")
@click.option("--insurer", help="Complementary insurer (org id in the genesis).")
@click.option("--nir", help="Patient NIR (15 characters); never sent in clear. Command lines "
              "are visible in ps and shell history: prefer --from-json for real data.")
@click.option("--birth-date", help="Patient birth date YYYY-MM-DD; never sent in clear.")
@click.option("--member-number", default="", help="Member number at the insurer (optional).")
@click.option("--line", "lines", multiple=True, metavar="LPP:QTY:EUROS",
              help="A dispensed line (repeatable); EUROS is the line total, e.g. 24.08.")
@click.option("--amo", help="AMO share in euros (default: computed from the LPP table).")
@click.option("--amc", help="AMC share in euros (default: total minus AMO).")
@click.option("--from-json", "from_json", type=click.Path(allow_dash=True, path_type=Path),
              help="JSON-lines file of claims ('-' for stdin).")
@click.option("--batch-size", type=click.IntRange(1, 5000), default=500, show_default=True,
              help="Claims per POST.")
@click.option("--wait", is_flag=True, help="Wait until every claim is committed or rejected.")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60, show_default=True,
              help="Seconds --wait waits at most.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per claim on stdout.")
def claim_submit(node_url: str, key_path: Path, genesis: Path | None, insurer: str | None,
                 nir: str | None, birth_date: str | None, member_number: str,
                 lines: tuple[str, ...], amo: str | None, amc: str | None,
                 from_json: Path | None, batch_size: int, wait: bool, timeout: float,
                 as_json: bool) -> None:
    """Sign and submit claims; the patient is committed and sealed locally."""
    from cli.claims import ClaimBuilder, ClaimInput, parse_line_spec, read_claims_file
    from cli.euros import parse_euros

    flag_given = any(v for v in (insurer, nir, birth_date, member_number, lines, amo, amc))
    if from_json is not None and flag_given:
        raise UsageError("give either --from-json FILE or the claim flags, not both")
    key = KeyFile.load(key_path)
    gen = _load_genesis_for(key_path, genesis)
    builder = ClaimBuilder(key, gen)
    if from_json is not None:
        inputs = list(read_claims_file(from_json))
    else:
        missing = [n for n, v in (("--insurer", insurer), ("--nir", nir),
                                  ("--birth-date", birth_date), ("--line", lines)) if not v]
        if missing:
            raise UsageError(f"missing {', '.join(missing)} (or use --from-json FILE)")
        if (amo is None) != (amc is None):
            raise UsageError("give both --amo and --amc, or neither (default shares)")
        inputs = [ClaimInput(
            "claim 1", str(insurer), str(nir), str(birth_date), member_number,
            tuple(parse_line_spec(s, f"--line {i}") for i, s in enumerate(lines, start=1)),
            parse_euros(amo, "--amo") if amo is not None else None,
            parse_euros(amc, "--amc") if amc is not None else None,
        )]
    if not inputs:
        raise CliError("no claims to submit")
    prepared = [builder.build(inp) for inp in inputs]
    rows = _submit_with_progress(node_url, key, gen, prepared, batch_size, wait, timeout)
    _report_claims(rows, as_json)
    bad = [r for r in rows if r["status"] == "rejected"]
    late = [r for r in rows if wait and r["status"] == "pending"]
    if bad:
        first = bad[0]
        raise CliError(f"{len(bad)} of {len(rows)} claims rejected (first: {first['where']}: "
                       f"{first.get('code', '?')}: {first.get('message', '')})")
    if late:
        raise CliError(f"{len(late)} of {len(rows)} claims not committed after {timeout:g} s")


def _submit_with_progress(node_url: str, key: KeyFile, gen: Genesis, prepared: list[Any],
                          batch_size: int, wait: bool, timeout: float) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cli.claims import submit_prepared, wait_committed

    err = _stderr()
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        if not err.is_terminal:
            rows = submit_prepared(client, prepared, batch_size)
            if wait:
                wait_committed(client, rows, timeout)
            return rows
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task("submitting", total=len(prepared))
            rows = submit_prepared(client, prepared, batch_size,
                                   on_batch=lambda n: progress.advance(task, n))
            if wait:
                pending = sum(1 for r in rows if r["status"] == "pending")
                done = progress.add_task("committing", total=pending)
                wait_committed(client, rows, timeout,
                               on_done=lambda n: progress.advance(done, n))
            return rows


def _report_claims(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for r in rows:
            _print_json(r)
        return
    out = _stdout()
    if len(rows) == 1:
        r = rows[0]
        extra = f" at height {r['height']}" if "height" in r else ""
        why = f" ({r.get('code')}: {r.get('message', '')})" if r["status"] == "rejected" else ""
        out.print(f"claim {r['claim_id']} {r['status']}{extra}{why}")
        return
    table = Table("where", "claim id", "status", "height", "reason")
    for r in rows:
        reason = f"{r['code']}: {r.get('message', '')}" if "code" in r else ""
        table.add_row(r["where"], r["claim_id"], r["status"], str(r.get("height", "")), reason)
    out.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


@claim.command("status", epilog="Example: tpledger claim status 3fa1…e9 --node "
                                "http://127.0.0.1:7000 --key c/keys/optic-paris.key --json")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt(_READER_KEY)
@click.option("--json", "as_json", is_flag=True, help="Print the claim state as JSON.")
def claim_status(claim_id: str, node_url: str, key_path: Path, as_json: bool) -> None:
    """Show the ledger state of claim CLAIM_ID (hex)."""
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        state = client.claim(claim_id)
    if as_json:
        _print_json(state)
        return
    table = Table(show_header=False, box=None)
    for k in ("claim_id", "optician", "insurer", "status", "height"):
        table.add_row(k, str(state.get(k, "")))
    for k in ("total_cents", "owed_cents"):
        if isinstance(state.get(k), int):
            table.add_row(k.removesuffix("_cents"), format_cents(state[k]) + " EUR")
    for share in ("amo", "amc"):
        s = state.get(share)
        if isinstance(s, dict):
            parts = [str(s.get("status", ""))]
            for k in ("asked_cents", "approved_cents", "paid_cents"):
                if isinstance(s.get(k), int):
                    parts.append(f"{k.removesuffix('_cents')} {format_cents(s[k])}")
            table.add_row(share, ", ".join(parts))
    if state.get("cancelled"):
        table.add_row("cancelled", "yes")
    _stdout().print(table)


# -- claim lifecycle (payers and opticians) ----------------------------------------------------
_GENESIS_OPT = click.option(
    "--genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Genesis file (default: genesis.json of the key's cluster directory).")
_WAIT_OPT = click.option("--wait", is_flag=True, help="Wait until the transaction is committed.")
_TIMEOUT_OPT = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60,
                            show_default=True, help="Seconds --wait waits at most.")
_JSON_OPT = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")




def _tx_command(node_url: str, key: KeyFile, gen: Genesis, body: Any, wait: bool,
                timeout: float, as_json: bool, what: str) -> None:
    """Send one transaction and report it; a refusal is a one-line error naming the code."""
    from cli.lifecycle import raise_if_refused, send_tx

    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        row = send_tx(client, key, gen, body, wait, timeout)
    if as_json:
        _print_json(row)
    elif row["status"] != "rejected":
        where = f" at height {row['height']}" if "height" in row else ""
        _stdout().print(f"{what}: tx {row['tx_id']} {row['status']}{where}")
    raise_if_refused(row, wait, timeout)


def _claim_summary(c: dict[str, Any]) -> dict[str, Any]:
    """The fields of a claim that ``claim list``/``inbox`` show (no commitment, no patient)."""
    out: dict[str, Any] = {k: c.get(k) for k in ("claim_id", "optician", "insurer", "status",
                                                 "total_cents", "owed_cents", "height")}
    for share in ("amo", "amc"):
        s = c.get(share)
        if isinstance(s, dict):
            out[share] = {k: s.get(k) for k in ("status", "asked_cents", "approved_cents",
                                                "paid_cents", "reason_code")}
    return out


def _euros(v: Any) -> str:
    return format_cents(v) if isinstance(v, int) else ""


def _print_claims(rows: list[dict[str, Any]], title: str) -> None:
    t = Table("claim", "optician", "insurer", "status", "AMO", "AMC", "total", "owed",
              title=title)
    for r in rows:
        shares = []
        for share in ("amo", "amc"):
            s = r.get(share) or {}
            st = str(s.get("status", ""))
            if st in ("accepted", "paid"):
                st += f" {_euros(s.get('paid_cents'))}/{_euros(s.get('approved_cents'))}"
            elif st == "submitted":
                st += f" {_euros(s.get('asked_cents'))}"
            elif st == "rejected" and s.get("reason_code"):
                st += f" ({s['reason_code']})"
            shares.append(st)
        t.add_row(str(r["claim_id"])[:16] + "…", str(r.get("optician")), str(r.get("insurer")),
                  str(r.get("status")), *shares, _euros(r.get("total_cents")),
                  _euros(r.get("owed_cents")))
    _stdout().print(t)


@claim.command("inbox", epilog="Example: tpledger claim inbox --node http://127.0.0.1:7000 "
                               "--key c/keys/mutuelle-a.key --json")
@_NODE_OPT
@_key_opt("Key of a payer: an insurer (AMC share) or the CNAM (AMO share).")
@_JSON_OPT
def claim_inbox(node_url: str, key_path: Path, as_json: bool) -> None:
    """Claims awaiting my decision on my share (insurer: AMC, CNAM: AMO)."""
    from cli.lifecycle import is_awaiting, iter_claims, share_for_role, share_key

    key = KeyFile.load(key_path)
    share = share_key(share_for_role(key.role))
    with NodeClient(node_url, signer=key.signer) as client:
        rows = [_claim_summary(c) for c in iter_claims(client)
                if is_awaiting(c, key.org, key.role)]
    if as_json:
        _print_json({"org": key.org, "share": share, "claims": rows})
        return
    _print_claims(rows, f"{len(rows)} claims awaiting {key.org}'s {share.upper()} decision")


@claim.command("list", epilog="Example: tpledger claim list --mine --node http://127.0.0.1:7000 "
                              "--key c/keys/optic-paris.key --json")
@_NODE_OPT
@_key_opt("Key of an optician, an insurer or the CNAM.")
@click.option("--mine", is_flag=True, default=True, show_default=True,
              help="Claims where I am the optician or a payer (the only listing offered).")
@click.option("--status", "status_filter", help="Only claims with this overall status.")
@_JSON_OPT
def claim_list(node_url: str, key_path: Path, mine: bool, status_filter: str | None,
               as_json: bool) -> None:
    """My claims: status per payer and overall, and what is still owed."""
    from cli.lifecycle import is_mine, iter_claims

    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        rows = [_claim_summary(c) for c in iter_claims(client)
                if is_mine(c, key.org, key.role)
                and (status_filter is None or c.get("status") == status_filter)]
    owed = sum(int(r.get("owed_cents") or 0) for r in rows)
    if as_json:
        _print_json({"org": key.org, "claims": rows, "owed_cents": owed})
        return
    _print_claims(rows, f"{len(rows)} claims of {key.org}; still owed {format_cents(owed)} EUR")


@claim.command("open", epilog="""\b
Example:
  tpledger claim open 3fa1…e9 --node http://127.0.0.1:7000 --key c/keys/mutuelle-a.key
\b
By default only the verification is shown; --show-identity also prints the member number, the
NIR and the birth date (on this terminal only: never pipe it to a log).""")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt("Key of the claim's insurer or of the CNAM (its X25519 secret opens the opening).")
@_GENESIS_OPT
@click.option("--show-identity", is_flag=True,
              help="Also print the patient's member number, NIR and birth date.")
@_JSON_OPT
def claim_open(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
               show_identity: bool, as_json: bool) -> None:
    """Fetch my sealed patient opening, open it, verify it against the claim's commitment."""
    from cli.lifecycle import open_claim

    key = KeyFile.load(key_path)
    gen = _load_genesis_for(key_path, genesis)
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        opened = open_claim(client, key, gen, claim_id)
    body: dict[str, Any] = {"claim_id": opened.claim_id, "verified": True,
                            "height": opened.height}
    if show_identity:
        body["member_number"] = opened.opening.member_number
        body["nir"] = opened.opening.nir
        body["birth_date"] = opened.opening.birth_date
    if as_json:
        _print_json(body)
        return
    out = _stdout()
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
@_NODE_OPT
@_key_opt("Key of the payer (insurer: AMC share, CNAM: AMO share).")
@_GENESIS_OPT
@click.option("--accept", is_flag=True, help="Accept my share.")
@click.option("--amount", help="Approved amount in euros (default: the amount asked).")
@click.option("--reject", "reject_reason", metavar="REASON",
              help="Reject my share with a reason code (a-z, 0-9, _ and -).")
@_WAIT_OPT
@_TIMEOUT_OPT
@_JSON_OPT
def claim_decide(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
                 accept: bool, amount: str | None, reject_reason: str | None, wait: bool,
                 timeout: float, as_json: bool) -> None:
    """Accept or reject my share of claim CLAIM_ID (the share follows from my role)."""
    from cli.euros import parse_euros
    from cli.lifecycle import decision_body, fetch_claim, share_for_role

    if accept == (reject_reason is not None):
        raise UsageError("give exactly one of --accept or --reject REASON")
    if amount is not None and not accept:
        raise UsageError("--amount goes with --accept")
    key = KeyFile.load(key_path)
    share_for_role(key.role)
    gen = _load_genesis_for(key_path, genesis)
    cents = parse_euros(amount, "--amount") if amount is not None else None
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        state = fetch_claim(client, claim_id)
    body = decision_body(state, key.role, accept, cents, reject_reason)
    _tx_command(node_url, key, gen, body, wait, timeout, as_json,
                "accepted" if accept else "rejected")


@claim.command("pay", epilog="Example: tpledger claim pay 3fa1…e9 --amount 24.08 --reference "
                             "VIR-2024-000123 --node http://127.0.0.1:7000 "
                             "--key c/keys/mutuelle-a.key --wait")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt("Key of the payer (insurer: AMC share, CNAM: AMO share).")
@_GENESIS_OPT
@click.option("--amount", required=True, help="Amount paid in euros (at most what remains).")
@click.option("--reference", required=True,
              help="Bank transfer reference; only its digest goes on the ledger.")
@_WAIT_OPT
@_TIMEOUT_OPT
@_JSON_OPT
def claim_pay(claim_id: str, node_url: str, key_path: Path, genesis: Path | None, amount: str,
              reference: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Record a payment (possibly partial) of my accepted share of CLAIM_ID."""
    from cli.euros import parse_euros
    from cli.lifecycle import payment_body

    key = KeyFile.load(key_path)
    gen = _load_genesis_for(key_path, genesis)
    body = payment_body(claim_id, key.role, parse_euros(amount, "--amount"), reference)
    _tx_command(node_url, key, gen, body, wait, timeout, as_json, "payment")


@claim.command("cancel", epilog="Example: tpledger claim cancel 3fa1…e9 --reason wrong_lens "
                                "--node http://127.0.0.1:7000 --key c/keys/optic-paris.key --wait")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt("Key of the claim's optician.")
@_GENESIS_OPT
@click.option("--reason", required=True, help="Reason code (a-z, 0-9, _ and -).")
@_WAIT_OPT
@_TIMEOUT_OPT
@_JSON_OPT
def claim_cancel(claim_id: str, node_url: str, key_path: Path, genesis: Path | None,
                 reason: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Withdraw claim CLAIM_ID (optician; only before any payer decided)."""
    from cli.lifecycle import cancel_body

    key = KeyFile.load(key_path)
    gen = _load_genesis_for(key_path, genesis)
    _tx_command(node_url, key, gen, cancel_body(claim_id, key.role, reason), wait, timeout,
                as_json, "cancelled")


@claim.command("forget", epilog="Example: tpledger claim forget 3fa1…e9 "
                                "--node http://127.0.0.1:7000 --key c/keys/mutuelle-a.key")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt("Key of one of the claim's payers.")
@_JSON_OPT
def claim_forget(claim_id: str, node_url: str, key_path: Path, as_json: bool) -> None:
    """Delete the claim's sealed patient openings on every node (the commitment stays)."""
    from cli.lifecycle import fetch_claim

    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        fetch_claim(client, claim_id)
        res = client.forget(claim_id)
    if as_json:
        _print_json(res)
        return
    _stdout().print(f"claim {claim_id}: {res.get('deleted', 0)} sealed openings deleted on this "
                    "node; the request was relayed to its peers")


# -- checkpoints, witness, stats (auditors) ----------------------------------------------------
@cli.group(context_settings=CONTEXT)
def checkpoint() -> None:
    """Fetch and verify certified checkpoints and consistency proofs offline."""


@checkpoint.command("get", epilog="Example: tpledger checkpoint get --node "
                                  "http://127.0.0.1:7000 -o cp-1.ckp")
@_NODE_OPT
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the checkpoint.")
@click.option("--height", type=click.IntRange(1), help="Height (default: the node's latest).")
def checkpoint_get(node_url: str, output: Path, height: int | None) -> None:
    """Download a certified checkpoint (header + quorum certificate) into a file."""
    from cli.auditor import write_atomically
    from ledger.proofs import Checkpoint

    with NodeClient(node_url) as client:
        data = client.checkpoint(height)
    cp = Checkpoint.from_bytes(data)
    write_atomically(output, data)
    _stderr().print(f"checkpoint at height {cp.height} (tree size {cp.tree_size}) written to "
                    f"{output}")


@checkpoint.command("verify", epilog="Example: tpledger checkpoint verify cp-1.ckp "
                                     "--genesis c/genesis.json")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--genesis", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The chain's genesis file.")
@_JSON_OPT
@click.pass_context
def checkpoint_verify(ctx: click.Context, file: Path, genesis: Path, as_json: bool) -> None:
    """Verify a checkpoint offline against the genesis: exit 0 if valid, 1 if not."""
    from cli.auditor import read_checkpoint
    from ledger.proofs import verify_checkpoint

    gen = Genesis.load(genesis)
    cp = read_checkpoint(file)
    res = verify_checkpoint(cp, gen)
    _report_verdict(ctx, as_json, res.ok, {
        "ok": res.ok, "failure": res.failure_code, "message": res.message,
        "height": cp.height, "tree_size": cp.tree_size,
        "tree_root": cp.tree_root.hex(), "hash": cp.header.hash().hex()},
        f"checkpoint invalid ({res.failure_code}): {res.message}",
        f"valid: height {cp.height}, tree size {cp.tree_size}, root {cp.tree_root.hex()}")


def _report_verdict(ctx: click.Context, as_json: bool, ok: bool, body: dict[str, Any],
                    invalid: str, valid: str) -> None:
    """How an offline verification answers: the JSON body (exit 1 when invalid), or one line
    (the ``invalid`` error, exit 1; else ``valid``)."""
    if as_json:
        _print_json(body)
        if not ok:
            ctx.exit(1)
        return
    if not ok:
        raise CliError(invalid)
    _stdout().print(valid)


@checkpoint.command("consistency", epilog="""\b
Examples:
  tpledger checkpoint consistency cp-1.ckp cp-2.ckp --genesis c/genesis.json \\
      --node http://127.0.0.1:7000 -o cp-1-2.cns
  tpledger checkpoint consistency cp-1.ckp cp-2.ckp --genesis c/genesis.json --proof cp-1-2.cns
""")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--genesis", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The chain's genesis file.")
@click.option("--node", "node_url", help="Fetch the consistency path from this node.")
@click.option("--proof", "proof_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A consistency proof file (instead of --node).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the consistency proof (with --node) for offline re-checks.")
@_JSON_OPT
@click.pass_context
def checkpoint_consistency(ctx: click.Context, old: Path, new: Path, genesis: Path,
                           node_url: str | None, proof_path: Path | None, output: Path | None,
                           as_json: bool) -> None:
    """Prove that the log at checkpoint NEW extends the log at OLD (RFC 9162); exit 0/1."""
    from cli.auditor import (
        MAX_CONSISTENCY_FILE_BYTES,
        read_bounded,
        read_checkpoint,
        write_atomically,
    )
    from ledger.proofs import ConsistencyProof, verify_consistency_proof

    if node_url is not None and proof_path is not None:
        raise UsageError("give --node or --proof, not both")
    gen = Genesis.load(genesis)
    cp_old, cp_new = read_checkpoint(old), read_checkpoint(new)
    path: tuple[bytes, ...] = ()
    if proof_path is not None:
        try:
            stored = ConsistencyProof.from_bytes(
                read_bounded(proof_path, MAX_CONSISTENCY_FILE_BYTES, "consistency proof"))
        except LedgerError as exc:
            raise CliError(f"{proof_path}: {exc}") from None
        if stored.old != cp_old or stored.new != cp_new:
            raise CliError(f"{proof_path}: the proof is for other checkpoints")
        path = stored.path
    elif node_url is not None and cp_old.tree_size not in (0, cp_new.tree_size):
        with NodeClient(node_url) as client:
            body = client.consistency(cp_old.tree_size, cp_new.tree_size)
        try:
            path = tuple(bytes.fromhex(h) for h in body.get("path", []))
        except (ValueError, TypeError):
            raise CliError("the node's consistency path is not hex") from None
    elif cp_old.tree_size not in (0, cp_new.tree_size):
        raise UsageError("the tree sizes differ: give --node URL or --proof FILE")
    proof_obj = ConsistencyProof(cp_old, cp_new, path)
    res = verify_consistency_proof(proof_obj, gen)
    if output is not None and res.ok:
        write_atomically(output, proof_obj.to_bytes())
    if as_json:
        _print_json({"ok": res.ok, "failure": res.failure_code, "message": res.message,
                     "old_height": cp_old.height, "new_height": cp_new.height,
                     "old_size": cp_old.tree_size, "new_size": cp_new.tree_size})
        if not res.ok:
            ctx.exit(1)
        return
    if not res.ok:
        raise CliError(f"not consistent ({res.failure_code}): {res.message}")
    _stdout().print(f"consistent: {res.message}")


class _NodeSource:
    """A node as the witness sees it (``cli.auditor.Source``)."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self.name = client.url

    def latest(self) -> Any:
        from ledger.proofs import Checkpoint

        return Checkpoint.from_bytes(self.client.checkpoint())

    def checkpoint_at(self, height: int) -> Any:
        from ledger.proofs import Checkpoint

        return Checkpoint.from_bytes(self.client.checkpoint(height))

    def consistency_path(self, old_size: int, new_size: int) -> list[bytes]:
        if old_size in (0, new_size):
            return []
        body = self.client.consistency(old_size, new_size)
        return [bytes.fromhex(h) for h in body.get("path", [])]


@cli.command("witness", context_settings=CONTEXT, epilog="""\b
Example:
  tpledger witness --node http://127.0.0.1:7000 --node http://127.0.0.1:7001 \\
      --genesis c/genesis.json --state witness.json --interval 10
\b
Exit codes: 0 done (--once / --max-polls), 1 an invalid or inconsistent checkpoint or no node
answered, 3 a fork: two valid certificates for one height (evidence on stdout).""")
@click.option("--node", "node_urls", required=True, multiple=True,
              help="Node API URL (repeatable: compare several nodes).")
@click.option("--genesis", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The chain's genesis file.")
@click.option("--state", "state_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the last verified checkpoint (written atomically).")
@click.option("--interval", type=click.FloatRange(0.05, 86400), default=10, show_default=True,
              help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option("--max-polls", type=click.IntRange(1), help="Exit after this many polls.")
@_JSON_OPT
@click.pass_context
def witness_cmd(ctx: click.Context, node_urls: tuple[str, ...], genesis: Path,
                state_path: Path, interval: float, once: bool, max_polls: int | None,
                as_json: bool) -> None:
    """Poll checkpoints, verify each and that the log only grows; detect forks."""
    from cli.auditor import Witness

    gen = Genesis.load(genesis)
    w = Witness.load(gen, state_path)
    limit = 1 if once else max_polls
    clients = [NodeClient(u, timeout_s=10, max_retries=1) for u in node_urls]
    err = _stderr()
    polls, code = 0, 0
    try:
        while True:
            polls += 1
            answered = 0
            w.new_poll()
            for client in clients:
                src = _NodeSource(client)
                try:
                    cp = src.latest()
                except (ClientError, LedgerError) as exc:
                    err.print(f"warning: {client.url}: {_one_line(str(exc))}")
                    continue
                answered += 1
                outcome = w.observe(cp, src)
                if as_json:
                    _print_json({"poll": polls, "source": client.url, "status": outcome.status,
                                 "message": outcome.message})
                elif outcome.status != "fork":
                    err.print(outcome.message)
                if outcome.evidence is not None:
                    if as_json:
                        _print_json(outcome.evidence.to_json())
                    else:
                        click.echo(outcome.evidence.describe())
                        click.echo(json.dumps(outcome.evidence.to_json(), sort_keys=True))
                    w.save(state_path)
                    ctx.exit(3)
                if outcome.status in ("invalid", "inconsistent"):
                    code = 1
            w.save(state_path)
            if answered == 0:
                err.print("warning: no node answered")
                code = 1 if limit is not None else code
            if code or (limit is not None and polls >= limit):
                break
            time.sleep(interval)
    finally:
        for client in clients:
            client.close()
    if code:
        raise CliError("the witness saw an invalid or inconsistent checkpoint (see above)")


@cli.command("stats", context_settings=CONTEXT,
             epilog="Example: tpledger stats --node http://127.0.0.1:7000 --key c/keys/cnam.key "
                    "--from-height 1 --to-height 500 --json")
@_NODE_OPT
@_key_opt("Key of a participant or validator (blocks are served signed).")
@_GENESIS_OPT
@click.option("--from-height", type=click.IntRange(1), default=1, show_default=True,
              help="First height.")
@click.option("--to-height", type=click.IntRange(1), help="Last height (default: the head).")
@_JSON_OPT
def stats_cmd(node_url: str, key_path: Path, genesis: Path | None, from_height: int,
              to_height: int | None, as_json: bool) -> None:
    """Anonymous statistics from certified blocks: per LPP code, class, payer and month."""
    from cli.auditor import aggregate_blocks, fetch_blocks
    from ledger.lpp import LppTable

    key = KeyFile.load(key_path)
    gen = _load_genesis_for(key_path, genesis)
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        head = int(client.status().get("height") or 0)
        end = head if to_height is None else min(to_height, head)
        if from_height > end:
            raise CliError(f"no blocks in {from_height}..{end} (head is {head})")
        st = aggregate_blocks(fetch_blocks(client.block, gen, from_height, end), gen,
                              LppTable.default())
    body = st.to_json()
    if as_json:
        _print_json(body)
        return
    out = _stdout()
    out.print(f"heights {from_height}..{end}: {st.claims} claims, "
              f"{format_cents(st.claimed_cents)} EUR claimed, {st.cancels} cancelled")
    for title, table in (("LPP code", st.by_lpp), ("class", st.by_class),
                         ("month", st.by_month)):
        t = Table(title, "lines/claims", "qty", "EUR")
        for k, v in sorted(table.items()):
            t.add_row(k, str(v.count), str(v.qty), format_cents(v.cents))
        out.print(t)
    t = Table("payer", "claims", "asked", "accepted", "rejected", "approved", "payments", "paid")
    for org, p in sorted(st.by_payer.items()):
        t.add_row(org, str(p.claims), format_cents(p.asked_cents), str(p.accepted),
                  str(p.rejected), format_cents(p.approved_cents), str(p.payments),
                  format_cents(p.paid_cents))
    out.print(t)

# -- proofs ----------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def proof() -> None:
    """Fetch and verify offline inclusion proofs."""


@proof.command("get", epilog="Example: tpledger proof get 3fa1…e9 --node http://127.0.0.1:7000 "
                             "--key c/keys/optic-paris.key -o claim.proof")
@click.argument("claim_id")
@_NODE_OPT
@_key_opt(_READER_KEY)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the proof bundle.")
@click.option("--tree-size", type=click.IntRange(1), help="Prove against this tree size.")
def proof_get(claim_id: str, node_url: str, key_path: Path, output: Path,
              tree_size: int | None) -> None:
    """Download the inclusion proof bundle of claim CLAIM_ID (or of an evidence tx) into a
    file."""
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        data = proof_bytes(client, claim_id, tree_size)  # a claim's, or an evidence tx's
    tmp = output.with_name(output.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(output)
    _stderr().print(f"proof written to {output} ({len(data)} bytes)")


@proof.command("verify", epilog="Example: tpledger proof verify claim.proof "
                                "--genesis c/genesis.json")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--genesis", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The chain's genesis file.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def proof_verify(ctx: click.Context, file: Path, genesis: Path, as_json: bool) -> None:
    """Verify a proof bundle offline against the genesis: exit 0 if valid, 1 if not."""
    from ledger.proofs import MAX_BUNDLE_FILE_BYTES, verify_bundle

    gen = Genesis.load(genesis)
    try:
        if str(file) == "-":
            data = sys.stdin.buffer.read(MAX_BUNDLE_FILE_BYTES + 1)
        else:
            with file.open("rb") as fh:
                data = fh.read(MAX_BUNDLE_FILE_BYTES + 1)
    except OSError as exc:
        raise CliError(f"{file}: cannot read proof: {exc.strerror}") from None
    res = verify_bundle(data, gen)
    body = {
        "ok": res.ok,
        "failure": res.failure_code,
        "message": res.message,
        "claim_id": res.claim_id.hex() if res.claim_id else None,
        "tx_id": res.tx_id.hex() if res.tx_id else None,
        "tx_type": res.tx_type,
        "signer_org": res.signer_org,
        "height": res.height,
        "tree_size": res.tree_size,
        "leaf_index": res.leaf_index,
        "time_ms": res.time_ms,
    }
    _report_verdict(ctx, as_json, res.ok, body,
                    f"proof invalid ({res.failure_code}): {res.message}",
                    f"valid: {res.message}; " + (f"claim {body['claim_id']}" if res.claim_id
                                                 else f"{res.tx_type} tx {body['tx_id']}")
                    + f", signed by {res.signer_org}, tree size {res.tree_size}")


# -- status, lpp ---------------------------------------------------------------------------
@cli.command("bench", context_settings=CONTEXT, epilog="""\b
Example: tpledger bench --claims 20000 --clients 4
Prints committed claims/s, commit latency p50/p99, and the Ed25519 bound measured in the same
run (cores x verifies/s / validators): every validator verifies every claim once.""")
@click.option("--claims", type=click.IntRange(100, 10_000_000), default=20_000,
              show_default=True, help="Claims to submit (pre-signed, not timed).")
@click.option("--clients", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Client processes submitting in parallel.")
@click.option("--batch", type=click.IntRange(1, 5000), default=500, show_default=True,
              help="Claims per POST.")
@click.option("--window", type=click.IntRange(1, 100), default=2, show_default=True,
              help="Batches each client keeps in flight.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the figures to this JSON file.")
@click.option("--timeout-commit-ms", type=click.IntRange(0, 10_000), default=10,
              show_default=True,
              help="The nodes' pause after each commit (one host: precommits arrive at once).")
def bench_cmd(claims: int, clients: int, batch: int, window: int,
              json_out: Path | None, timeout_commit_ms: int) -> None:
    """Start a local 4-validator cluster and measure committed claims/s and commit latency."""
    from cli.bench import run as run_bench

    run_bench(claims, clients, batch, window, out_json=json_out,
              timeout_commit_ms=timeout_commit_ms)


@cli.command("status", context_settings=CONTEXT,
             epilog="Example: tpledger status --node http://127.0.0.1:7000 --json")
@_NODE_OPT
@click.option("--json", "as_json", is_flag=True, help="Print the node status as JSON.")
def status_cmd(node_url: str, as_json: bool) -> None:
    """Show a node's height, head, Merkle tree size and root, peers."""
    with NodeClient(node_url) as client:
        st = client.status()
    if as_json:
        _print_json(st)
        return
    table = Table(show_header=False, box=None)
    for k in ("name", "chain_id", "height", "head", "tree_size", "tree_root", "round", "mempool"):
        if k in st:
            table.add_row(k, str(st[k]))
    peers = st.get("peers")
    if isinstance(peers, dict):
        table.add_row("peers", " ".join(f"{n}:{'up' if up else 'down'}"
                                        for n, up in sorted(peers.items())))
    _stdout().print(table)


@cli.group(context_settings=CONTEXT)
def lpp() -> None:
    """The LPP table of optical codes."""


@lpp.command("list", epilog="Example: tpledger lpp list --json")
@click.option("--table", "table_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="LPP CSV (default: the shipped seed table).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of entries.")
def lpp_list(table_path: Path | None, as_json: bool) -> None:
    """List LPP codes with label, class, category and price limit (euros)."""
    from ledger.lpp import LppTable

    table = LppTable.load_csv(table_path) if table_path else LppTable.default()
    rows = [
        {
            "code": e.code,
            "label": e.label,
            "category": e.category,
            "age_group": e.age_group,
            "class": e.klass,
            "max_price": format_cents(e.max_price_cents) if e.max_price_cents is not None else None,
            "amo_base": format_cents(e.amo_base_cents) if e.amo_base_cents is not None else None,
        }
        for e in table
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    t = Table("code", "label", "class", "category", "age", "max price", "AMO base",
              title=f"LPP table {table.version} ({len(rows)} codes)")
    for r in rows:
        t.add_row(r["code"], r["label"], r["class"] or "", r["category"], r["age_group"],
                  r["max_price"] or "", r["amo_base"] or "")
    _stdout().print(t)


cli.add_command(evidence)


# -- audit, demo -----------------------------------------------------------------------------
@cli.command("audit", context_settings=CONTEXT,
             epilog="Example: tpledger audit --config c/nodes/v0/node.toml "
                    "--genesis c/genesis.json")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="node.toml of the node whose store to audit (stop the node first).")
@click.option("--genesis", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Genesis file.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit report as JSON.")
def audit_cmd(config_path: Path, genesis: Path, as_json: bool) -> None:
    """Re-verify a node's whole store from genesis; exit 1 naming the first bad height."""
    from cli.audit_cmd import run_audit

    run_audit(config_path, genesis, as_json)


@cli.command("demo", context_settings=CONTEXT, epilog="Example: tpledger demo")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Build the cluster in this (empty) directory and keep it.")
@click.option("--claims", "per_optician", type=click.IntRange(1, 100), default=3,
              show_default=True, help="Claims per optician.")
def demo_cmd(keep: Path | None, per_optician: int) -> None:
    """Run the whole flow on a throw-away 4-validator cluster, then stop it."""
    from cli.demo import run_demo

    out = _stdout()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, soft_wrap=True, width=120)  # logs: no truncated table
    run_demo(out, keep_dir=keep, per_optician=per_optician)


# -------------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing more to do
        click.echo(f"error: {_one_line(message)}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; the one place exceptions become exit codes."""
    debug = os.environ.get("TPLEDGER_DEBUG") == "1"
    try:
        rv = cli.main(args=argv, prog_name="tpledger", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _error("interrupted")
        return 130
    except click.ClickException as exc:  # usage errors (exit 2) and friends
        exc.show()
        return exc.exit_code
    except UsageError as exc:
        _error(str(exc))
        return 2
    except (CliError, LedgerError, NodeError) as exc:
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return 1
    except ClientError as exc:
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:
        return 1
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or type(exc).__name__}")
        return 1
    except Exception as exc:
        # Never echo str(exc): an unexpected message could hold input data.
        if debug:
            traceback.print_exc()
        _error(f"internal error ({type(exc).__name__}); rerun with TPLEDGER_DEBUG=1 for details")
        return 70


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
