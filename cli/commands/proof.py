"""``tpledger proof``: fetch and verify offline inclusion proofs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.evidence import proof_bytes
from tpledger.cli.options import (
    CONTEXT,
    READER_KEY,
    chain_genesis_option,
    json_option,
    key_option,
    node_option,
    output_option,
)
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile

if TYPE_CHECKING:
    from tpledger.ledger.proofs import VerificationResult


@click.group(context_settings=CONTEXT)
def proof() -> None:
    """Fetch and verify offline inclusion proofs."""


@proof.command("get", epilog="Example: tpledger proof get 3fa1…e9 --node http://127.0.0.1:7000 "
                             "--key c/keys/optic-paris.key -o claim.proof")
@click.argument("claim_id")
@node_option
@key_option(READER_KEY)
@output_option("Where to write the proof bundle.")
@click.option("--tree-size", type=click.IntRange(1), help="Prove against this tree size.")
def proof_get(claim_id: str, node_url: str, key_path: Path, output: Path,
              tree_size: int | None) -> None:
    """Download the inclusion proof bundle of claim CLAIM_ID (a unique prefix will do; an
    evidence tx by its full id) into a file."""
    from tpledger.cli.bounded_files import write_atomically
    from tpledger.cli.lifecycle import check_claim_ref, resolve_claim_id

    check_claim_ref(claim_id)
    key = KeyFile.load(key_path)
    with NodeClient(node_url, signer=key.signer) as client:
        # a claim's (a prefix resolved), or an evidence tx's (its full id)
        data = proof_bytes(client, resolve_claim_id(client, claim_id), tree_size)
    write_atomically(output, data)
    render.stderr().print(f"proof written to {output} ({len(data)} bytes)")


@proof.command("verify", epilog="Example: tpledger proof verify claim.proof "
                                "--genesis c/genesis.json")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@chain_genesis_option()
@json_option()
@click.pass_context
def proof_verify(ctx: click.Context, file: Path, genesis: Path, as_json: bool) -> None:
    """Verify a proof bundle offline against the genesis: exit 0 if valid, 7 if not."""
    from tpledger.cli.bounded_files import read_prefix
    from tpledger.ledger.proofs import MAX_BUNDLE_FILE_BYTES, verify_bundle

    gen = Genesis.load(genesis)
    # the parser refuses an oversize bundle with its own verdict
    data = read_prefix(file, MAX_BUNDLE_FILE_BYTES, "proof", allow_stdin=True)
    res = verify_bundle(data, gen)
    body = {
        "ok": res.ok,
        "failure": res.failure_code,
        "message": res.message,
        "claim_id": res.claim_id.hex() if res.claim_id else None,
        "tx_id": res.tx_id.hex() if res.tx_id else None,
        "tx_type": res.tx_type,
        "signer_org": res.signer_org,
        "signer_role": res.signer_role,
        "signer_ids": res.signer_ids,
        "height": res.height,
        "tree_size": res.tree_size,
        "leaf_index": res.leaf_index,
        "time_ms": res.time_ms,
    }
    render.report_verdict(ctx, as_json, res.ok, body,
                          f"proof invalid ({res.failure_code}): {res.message}",
                          f"valid: {res.message}; " + (f"claim {body['claim_id']}" if res.claim_id
                                                       else f"{res.tx_type} tx {body['tx_id']}")
                          + f", signed by {_signer_text(res)}, tree size {res.tree_size}")


def _signer_text(res: VerificationResult) -> str:
    """``org (role; RPPS …, SIRET …)``: the signer as the registry in force named it."""
    ids = ", ".join(f"{name.upper()} {value}" for name, value in (res.signer_ids or {}).items())
    role = f"{res.signer_role}; {ids}" if ids else f"{res.signer_role}"
    return f"{res.signer_org} ({role})"
