"""``tpledger checkpoint``: fetch and verify certified checkpoints and consistency proofs."""

from __future__ import annotations

from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import UsageError
from tpledger.cli.options import (
    CONTEXT,
    ca_option,
    chain_genesis_option,
    json_option,
    node_option,
    output_option,
)
from tpledger.ledger.genesis import Genesis


@click.group(context_settings=CONTEXT)
def checkpoint() -> None:
    """Fetch and verify certified checkpoints and consistency proofs offline."""


@checkpoint.command("get", epilog="Example: tpledger checkpoint get --node "
                                  "http://127.0.0.1:7000 -o cp-1.ckp")
@node_option
@output_option("Where to write the checkpoint.")
@click.option("--height", type=click.IntRange(1), help="Height (default: the node's latest).")
def checkpoint_get(node_url: str, output: Path, height: int | None) -> None:
    """Download a certified checkpoint (header + quorum certificate) into a file."""
    from tpledger.cli.bounded_files import write_atomically
    from tpledger.ledger.proofs import Checkpoint

    with NodeClient(node_url) as client:
        data = client.checkpoint(height)
    cp = Checkpoint.from_bytes(data)
    write_atomically(output, data)
    render.stderr().print(f"checkpoint at height {cp.height} (tree size {cp.tree_size}) "
                          f"written to {output}")


@checkpoint.command("verify", epilog="Example: tpledger checkpoint verify cp-1.ckp "
                                     "--genesis c/genesis.json")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@chain_genesis_option()
@json_option()
@click.pass_context
def checkpoint_verify(ctx: click.Context, file: Path, genesis: Path, as_json: bool) -> None:
    """Verify a checkpoint offline against the genesis: exit 0 if valid, 7 if not."""
    from tpledger.cli.bounded_files import read_checkpoint
    from tpledger.ledger.proofs import verify_checkpoint

    gen = Genesis.load(genesis)
    cp = read_checkpoint(file)
    res = verify_checkpoint(cp, gen)
    render.report_verdict(ctx, as_json, res.ok, {
        "ok": res.ok, "failure": res.failure_code, "message": res.message,
        "height": cp.height, "tree_size": cp.tree_size,
        "tree_root": cp.tree_root.hex(), "hash": cp.header.hash().hex()},
        f"checkpoint invalid ({res.failure_code}): {res.message}",
        f"valid: height {cp.height}, tree size {cp.tree_size}, root {cp.tree_root.hex()}")


@checkpoint.command("consistency", epilog="""\b
Examples:
  tpledger checkpoint consistency cp-1.ckp cp-2.ckp --genesis c/genesis.json \\
      --node http://127.0.0.1:7000 -o cp-1-2.cns
  tpledger checkpoint consistency cp-1.ckp cp-2.ckp --genesis c/genesis.json --proof cp-1-2.cns
""")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@chain_genesis_option()
@click.option("--node", "node_url", help="Fetch the consistency path from this node.")
@ca_option
@click.option("--proof", "proof_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A consistency proof file (instead of --node).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the consistency proof (with --node) for offline re-checks.")
@json_option()
@click.pass_context
def checkpoint_consistency(ctx: click.Context, old: Path, new: Path, genesis: Path,
                           node_url: str | None, proof_path: Path | None, output: Path | None,
                           as_json: bool) -> None:
    """Prove that the log at checkpoint NEW extends the log at OLD (RFC 9162); exit 0, or 7."""
    from tpledger.cli.bounded_files import read_checkpoint, read_consistency_proof, write_atomically
    from tpledger.cli.checkpoint_source import fetch_consistency_path
    from tpledger.ledger.proofs import ConsistencyProof, verify_consistency_proof

    if node_url is not None and proof_path is not None:
        raise UsageError("give --node or --proof, not both")
    gen = Genesis.load(genesis)
    cp_old, cp_new = read_checkpoint(old), read_checkpoint(new)
    path: tuple[bytes, ...] = ()
    if proof_path is not None:
        path = read_consistency_proof(proof_path, cp_old, cp_new).path
    elif node_url is not None and cp_old.tree_size not in (0, cp_new.tree_size):
        with NodeClient(node_url) as client:
            path = fetch_consistency_path(client, cp_old.tree_size, cp_new.tree_size)
    elif cp_old.tree_size not in (0, cp_new.tree_size):
        raise UsageError("the tree sizes differ: give --node URL or --proof FILE")
    proof_obj = ConsistencyProof(cp_old, cp_new, path)
    res = verify_consistency_proof(proof_obj, gen)
    if output is not None and res.ok:
        write_atomically(output, proof_obj.to_bytes())
    render.report_verdict(ctx, as_json, res.ok, {
        "ok": res.ok, "failure": res.failure_code, "message": res.message,
        "old_height": cp_old.height, "new_height": cp_new.height,
        "old_size": cp_old.tree_size, "new_size": cp_new.tree_size},
        f"not consistent ({res.failure_code}): {res.message}", f"consistent: {res.message}")
