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
@click.option("--json", "as_json", is_flag=True, help="Print the cluster description as JSON.")
def cluster_init(directory: Path, validators: int, base_port: int, chain_id: str,
                 as_json: bool) -> None:
    """Write keys, genesis.json, node configs and cluster.json into an empty DIRECTORY."""
    from cli.cluster import CLUSTER_FILE, init_cluster

    info = init_cluster(directory, validators, base_port, chain_id)
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
@click.option("--node", "node_url", required=True, help="Node API URL.")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The optician's key file.")
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
@click.option("--node", "node_url", required=True, help="Node API URL.")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Key of the claim's optician, its insurer, or the CNAM.")
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


# -- proofs ----------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT)
def proof() -> None:
    """Fetch and verify offline inclusion proofs."""


@proof.command("get", epilog="Example: tpledger proof get 3fa1…e9 --node http://127.0.0.1:7000 "
                             "--key c/keys/optic-paris.key -o claim.proof")
@click.argument("claim_id")
@click.option("--node", "node_url", required=True, help="Node API URL.")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Key of the claim's optician, its insurer, or the CNAM.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the proof bundle.")
@click.option("--tree-size", type=click.IntRange(1), help="Prove against this tree size.")
def proof_get(claim_id: str, node_url: str, key_path: Path, output: Path,
              tree_size: int | None) -> None:
    """Download the inclusion proof bundle of claim CLAIM_ID into a file."""
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        data = client.proof(claim_id, tree_size)
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
    if as_json:
        _print_json(body)
        if not res.ok:
            ctx.exit(1)
        return
    if not res.ok:
        raise CliError(f"proof invalid ({res.failure_code}): {res.message}")
    _stdout().print(f"valid: {res.message}; claim {body['claim_id']}, signed by "
                    f"{res.signer_org}, tree size {res.tree_size}")


# -- status, lpp ---------------------------------------------------------------------------
@cli.command("status", context_settings=CONTEXT,
             epilog="Example: tpledger status --node http://127.0.0.1:7000 --json")
@click.option("--node", "node_url", required=True, help="Node API URL.")
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
