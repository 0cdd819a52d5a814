"""``tpledger evidence``: equivocations recorded on the ledger (``GET /v1/evidence``), and the
proof download of an evidence tx used by ``tpledger proof get``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.client import ClientError, NodeClient, _hex_id
from cli.errors import CliError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PAGE = 1000  # the node's largest page
MAX_ROWS = 100_000  # a listing stops here (bounded memory and time)


def iter_evidence(client: NodeClient, max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Every recorded equivocation (at most ``max_rows``), following the ``next`` cursor."""
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while len(rows) < max_rows:
        qs = f"?limit={PAGE}" + (f"&after={after}" if after else "")
        body = client.get_json("/v1/evidence" + qs)
        page = body.get("evidence") if isinstance(body, dict) else None
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise CliError("the node's evidence answer is not a list of objects")
        rows.extend(page)
        nxt = body.get("next")
        if nxt is None:
            break
        if not isinstance(nxt, str) or nxt == after:
            raise CliError("the node's evidence cursor does not advance")
        after = nxt
    return rows[:max_rows]


def proof_bytes(client: NodeClient, tx_id: str, tree_size: int | None) -> bytes:
    """The proof bundle of a claim (signed read) or, if no claim has this id (or the key may
    read no claim: a validator's), of an evidence tx (public): ``tpledger proof get`` works
    for both."""
    try:
        return client.proof(tx_id, tree_size)
    except ClientError as exc:
        if exc.code not in ("unknown_claim", "forbidden"):
            raise
        qs = f"?tree_size={tree_size}" if tree_size is not None else ""
        try:
            _, data = client.request("GET", f"/v1/evidence/{_hex_id(tx_id)}/proof{qs}")
        except ClientError as ev_exc:
            if ev_exc.code == "unknown_evidence":
                raise exc from None  # neither: report the claim error, as before
            raise
        return data


def _short(value: Any) -> str:
    return "nil" if value is None else f"{str(value)[:16]}…"


@click.group("evidence", context_settings=CONTEXT)
def evidence() -> None:
    """Equivocations (two signed votes of one validator for one slot) recorded on the ledger."""


@evidence.command("list", epilog="Example: tpledger evidence list --node http://127.0.0.1:7000")
@click.option("--node", "node_url", required=True, help="Node API URL.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"evidence": [...]} as JSON (one object per recorded equivocation).')
def evidence_list(node_url: str, as_json: bool) -> None:
    """List the equivocations recorded on the ledger: offender, slot, the two values, and the
    height and tx that recorded them (public: no key needed)."""
    with NodeClient(node_url) as client:
        rows = iter_evidence(client)
    if as_json:
        click.echo(json.dumps({"evidence": rows}, sort_keys=True))
        return
    out = Console(highlight=False, soft_wrap=True)
    if not rows:
        out.print("no equivocation recorded")
        return
    t = Table("validator", "height", "round", "type", "first value", "second value",
              "recorded at", "tx")
    for r in rows:
        t.add_row(f"{r.get('validator')} {r.get('name')}", str(r.get("height")),
                  str(r.get("round")), str(r.get("type")), _short(r.get("first_value")),
                  _short(r.get("second_value")), str(r.get("recorded_height")),
                  _short(r.get("tx_id")))
    out.print(t)


__all__ = ["evidence", "iter_evidence", "proof_bytes"]
