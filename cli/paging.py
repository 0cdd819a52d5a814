"""Following a node's ``next`` cursor through every page of a listing, bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError

MAX_ROWS = 100_000  # a listing stops here (bounded memory and time)


def follow_pages(client: NodeClient, path: str, field: str, what: str, *, page: int,
                 query: str = "", signed: bool = False, max_rows: int = MAX_ROWS,
                 keep: Callable[[dict[str, Any]], bool] | None = None
                 ) -> list[dict[str, Any]]:
    """The rows under ``field`` of every page of ``path`` (``page`` rows a request, then
    ``&after=NEXT`` until the node gives no ``next``) that ``keep`` accepts, at most
    ``max_rows``. A malformed page or a cursor that does not advance is a CliError: a
    node's bad answer never makes this loop spin."""
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while len(rows) < max_rows:
        qs = f"?limit={page}{query}" + (f"&after={after}" if after else "")
        body = client.get_json(path + qs, signed=signed)
        got = body.get(field) if isinstance(body, dict) else None
        if not isinstance(got, list) or not all(isinstance(r, dict) for r in got):
            raise CliError(f"the node's {what} answer is not a list of objects")
        rows.extend(r for r in got if keep is None or keep(r))
        nxt = body.get("next")
        if not nxt:
            break
        if not isinstance(nxt, str) or nxt == after:
            raise CliError(f"the node's {what} cursor does not advance")
        after = nxt
    return rows[:max_rows]


__all__ = ["MAX_ROWS", "follow_pages"]
