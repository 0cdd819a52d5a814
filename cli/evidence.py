"""Equivocations recorded on the ledger (``GET /v1/evidence``) as a client reads them, and the
proof download of a claim or an evidence tx used by ``tpledger proof get``."""

from __future__ import annotations

from typing import Any

from tpledger.cli.client import ClientError, NodeClient, _hex_id
from tpledger.cli.paging import MAX_ROWS, follow_pages

PAGE = 1000  # the node's largest page


def iter_evidence(client: NodeClient, max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Every recorded equivocation (at most ``max_rows``), following the ``next`` cursor."""
    return follow_pages(client, "/v1/evidence", "evidence", "evidence", page=PAGE,
                        max_rows=max_rows)


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
