"""``tpledger demo``: the whole flow on a throw-away 4-validator cluster, in under a minute.

Init a cluster in a temporary directory, start its nodes as child processes, submit claims from
two opticians to two insurers and wait until committed, fetch a proof and verify it offline
against the genesis file only, print a summary, stop the cluster. The patients are fictitious
(valid-looking NIRs drawn at random) and never printed.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tpledger.cli.bounded_files import write_atomically
from tpledger.cli.claims import ClaimBuilder, ClaimInput, submit_prepared, wait_committed
from tpledger.cli.client import ClientError
from tpledger.cli.cluster import LocalCluster
from tpledger.cli.errors import CliError
from tpledger.cli.euros import format_cents, parse_euros
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.patient import make_test_birth_date, make_test_nir
from tpledger.ledger.proofs import verify_bundle
from tpledger.ledger.tx import Claim

DEMO_VALIDATORS = 4
ROUTES = (("optic-paris", "mutuelle-a"), ("optic-lyon", "mutuelle-b"))
# (lpp, qty, euros): a child's frame and lenses at or below their price limit (PLV).
BASKETS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    (("2210546", 1, "30.49"), ("2261874", 2, "24.08")),
    (("2210546", 1, "28.00"), ("2243540", 2, "80.04")),
    (("2200393", 2, "29.88"),),
    (("2210546", 1, "30.49"), ("2283953", 2, "108.84")),
)


@dataclass
class DemoSummary:
    """What the demo did; ``rows`` has one dict per claim."""

    directory: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    proof_claim: str = ""
    proof_message: str = ""
    heights: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    console: Console,
    keep_dir: Path | None = None,
    per_optician: int = 3,
    commit_timeout_s: float = 60.0,
) -> DemoSummary:
    """Run the demo; raise CliError (after stopping the cluster) if any step fails."""
    start = time.monotonic()
    if keep_dir is not None:
        return _run(console, Path(keep_dir), per_optician, commit_timeout_s, start)
    with tempfile.TemporaryDirectory(prefix="tpledger-demo-") as tmp:
        try:
            return _run(console, Path(tmp), per_optician, commit_timeout_s, start)
        except (CliError, ClientError) as exc:
            kept = _keep_logs(Path(tmp))
            raise CliError(f"{exc} (node logs kept in {kept})") from None


def _keep_logs(base: Path) -> Path:
    """Copy the node logs out of the temporary directory before it is removed."""
    dest = Path(tempfile.mkdtemp(prefix="tpledger-demo-logs-"))
    for log in (base / "cluster" / "nodes").glob("*/node.log"):
        shutil.copy(log, dest / f"{log.parent.name}.log")
    return dest


def _run(console: Console, base: Path, per_optician: int, commit_timeout_s: float,
         start: float) -> DemoSummary:
    summary = DemoSummary(base)
    rng = random.Random()
    lpp = LppTable.default()
    console.print(f"[bold]1.[/] cluster init: {DEMO_VALIDATORS} validators in {base / 'cluster'}")
    lc = LocalCluster(base / "cluster", validators=DEMO_VALIDATORS, base_port=0,
                      startup_timeout_s=60.0, stop_timeout_s=10.0)
    _ = lc.info  # init now, so the step's output comes before the nodes start
    orgs = ", ".join(f"{n.name}={_org_of(lc, n.name)}" for n in lc.info.nodes)
    console.print(f"   validators: {orgs}")
    console.print("[bold]2.[/] starting the nodes (child processes)…")
    with lc:
        for n in lc.info.nodes:
            console.print(f"   {n.name} {n.api}")
        genesis = lc.genesis()
        console.print(f"[bold]3.[/] submitting {per_optician} claims from each of "
                      f"{len(ROUTES)} opticians, waiting for commit…")
        for i in range(len(ROUTES)):
            rows = _submit_route(lc, genesis, lpp, rng, i, per_optician, commit_timeout_s)
            summary.rows.extend(rows)

        first = summary.rows[0]
        reader = len(lc.urls) - 1  # a node no claim was submitted to
        _wait_height(lc, reader, max(int(r["height"]) for r in summary.rows), commit_timeout_s)
        console.print(f"[bold]4.[/] fetching the proof of claim {first['claim_id'][:16]}… "
                      f"as its insurer ({first['insurer']}) from another node")
        with lc.client(first["insurer"], node=reader) as client:
            state = client.claim(first["claim_id"])
            data = client.proof(first["claim_id"])
        proof_file = base / "claim.proof"
        write_atomically(proof_file, data)
        console.print(f"   claim status seen by the insurer: {state.get('status')}; "
                      f"proof: {proof_file.name}, {len(data)} bytes")
        console.print("[bold]5.[/] verifying the proof offline, with the genesis file only…")
        result = verify_bundle(proof_file.read_bytes(), Genesis.load(lc.info.genesis))
        if not result.ok:
            raise CliError(f"demo: proof invalid ({result.failure_code}): {result.message}")
        if result.claim_id is None or result.claim_id.hex() != first["claim_id"]:
            raise CliError("demo: the proof is for another claim")
        summary.proof_claim = first["claim_id"]
        summary.proof_message = result.message
        for n in lc.info.nodes:
            with lc.client(node=lc.urls.index(n.api)) as client:
                summary.heights[n.name] = int(client.status().get("height", 0))
        console.print("[bold]6.[/] stopping the cluster…")
    summary.seconds = time.monotonic() - start
    _print_summary(console, summary)
    return summary


def _wait_height(lc: LocalCluster, node: int, height: int, timeout_s: float,
                 poll_s: float = 0.1) -> None:
    """Wait until node ``node`` has applied block ``height``: a commit seen by the node a
    claim went to reaches the others a moment later, and a read there must not miss it."""
    deadline = time.monotonic() + timeout_s
    with lc.client(node=node) as client:
        while (seen := int(client.status().get("height", 0))) < height:
            if time.monotonic() >= deadline:
                raise CliError(f"demo: node {node} is at height {seen} after {timeout_s:g} s; "
                               f"the claims were committed at height {height}")
            time.sleep(poll_s)


def _submit_route(lc: LocalCluster, genesis: Genesis, lpp: LppTable, rng: random.Random,
                  i: int, per_optician: int, commit_timeout_s: float) -> list[dict[str, Any]]:
    """Submit ``per_optician`` claims of route ``i`` and wait until every one is committed."""
    optician, insurer = ROUTES[i]
    # the demo's cluster is fresh (no tariff version published): the genesis table is the one
    # in force, so the builder keeps it (``claim submit`` reads the node's: cli.governance)
    builder = ClaimBuilder(lc.key(optician), genesis, lpp)
    prepared = []
    for k in range(per_optician):
        basket = BASKETS[(i + k) % len(BASKETS)]
        prepared.append(builder.build(ClaimInput(
            f"claim {k + 1} of {optician}", insurer, make_test_nir(rng),
            make_test_birth_date(rng), "",
            tuple((code, qty, parse_euros(euros)) for code, qty, euros in basket),
        )))
    with lc.client(optician, node=i % len(lc.urls)) as client:
        rows = submit_prepared(client, prepared)
        wait_committed(client, rows, commit_timeout_s)
    for row, p in zip(rows, prepared, strict=True):
        claim = p.stx.parse()
        assert isinstance(claim, Claim)
        row.update(optician=optician, insurer=insurer, total=claim.total_cents,
                   amo=claim.amo_cents, amc=claim.amc_cents)
    bad = [r for r in rows if r["status"] != "committed"]
    if bad:
        r = bad[0]
        if r["status"] == "pending":
            heights = []
            for k in range(len(lc.urls)):
                with lc.client(node=k) as c:
                    heights.append(str(c.status().get("height")))
            raise CliError(
                f"demo: {len(bad)} claims of {optician} still pending after "
                f"{commit_timeout_s:g} s (submitted to node {i % len(lc.urls)}; "
                f"node heights {', '.join(heights)})"
            )
        raise CliError(f"demo: {r['where']} is {r['status']}"
                       f" ({r.get('code', '?')}: {r.get('message', '')})")
    return rows


def _org_of(lc: LocalCluster, name: str) -> str:
    for v in Genesis.load(lc.info.genesis).validators:
        if v.name == name:
            return v.org
    return "?"


def _print_summary(console: Console, s: DemoSummary) -> None:
    table = Table(title="tpledger demo: claims on the ledger")
    for col in ("claim id", "optician", "insurer", "total €", "AMO €", "AMC €", "status",
                "height"):
        table.add_column(col, justify="right" if "€" in col or col == "height" else "left",
                         no_wrap=True)
    for r in s.rows:
        table.add_row(r["claim_id"][:12] + "…", r["optician"], r["insurer"],
                      format_cents(r["total"]), format_cents(r["amo"]), format_cents(r["amc"]),
                      r["status"], str(r.get("height", "")))
    console.print(table)
    heights = ", ".join(f"{k}={v}" for k, v in s.heights.items())
    console.print(f"proof of claim {s.proof_claim[:16]}… verified offline: {s.proof_message}")
    console.print(f"node heights: {heights}")
    console.print(f"[bold green]demo OK[/]: {len(s.rows)} claims committed, proof verified, "
                  f"cluster stopped in {s.seconds:.1f} s")
