"""``tpledger bench``: committed claims/s and commit latency of a local cluster."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli.options import CONTEXT


@click.command("bench", context_settings=CONTEXT, epilog="""\b
Examples:
  tpledger bench --claims 20000 --clients 4
  tpledger bench --claims 20000 --registry 100000 --json r.json
Prints committed claims/s, commit latency p50/p99, and the Ed25519 bound measured in the same
run (cores x verifies/s / validators): every validator verifies every claim once. With
--registry N, N synthetic shops are first registered by the federation's admin (not timed),
and the registry size, its warm-up time and the store's size on disk are reported.""")
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
@click.option("--registry", type=click.IntRange(0, 1_000_000), default=0, show_default=True,
              help="Shops to register before the timed phase (the issue's figure: 100000).")
def bench(claims: int, clients: int, batch: int, window: int,
          json_out: Path | None, timeout_commit_ms: int, registry: int) -> None:
    """Start a local 4-validator cluster and measure committed claims/s and commit latency."""
    from tpledger.cli.bench import run as run_bench

    run_bench(claims, clients, batch, window, out_json=json_out,
              timeout_commit_ms=timeout_commit_ms, registry=registry)
