"""``tpledger evidence``: equivocations recorded on the ledger."""

from __future__ import annotations

import click

from tpledger.cli import render
from tpledger.cli.client import NodeClient
from tpledger.cli.evidence import iter_evidence
from tpledger.cli.options import CONTEXT, format_option, node_option


@click.group("evidence", context_settings=CONTEXT)
def evidence() -> None:
    """Equivocations (two signed votes of one validator for one slot) recorded on the ledger."""


@evidence.command("list", epilog="Example: tpledger evidence list --node http://127.0.0.1:7000")
@node_option
@format_option
def evidence_list(node_url: str, fmt: str) -> None:
    """List the equivocations recorded on the ledger: offender, slot, the two values, and the
    height and tx that recorded them (public: no key needed)."""
    with NodeClient(node_url) as client:
        rows = iter_evidence(client)
    render.evidence_list(rows, fmt)
