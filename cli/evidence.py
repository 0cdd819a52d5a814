"""Equivocations recorded on the ledger (``GET /v1/evidence``) as a client reads them, and the
proof download of a claim or an evidence tx used by ``tpledger proof get``."""

from __future__ import annotations

from typing import Any

from tpledger.cli.client import ClientError, NodeClient, _hex_id
from tpledger.cli.errors import CliError

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


__all__ = ["iter_evidence", "proof_bytes"]
