"""The submission envelope: a batch of signed txs with their sealed openings, in one place.

A batch is ``[[tx_bytes, [[payer_org, sealed_bytes], ...]], ...]`` in msgpack (``POST /v1/txs``
with ``application/msgpack``, and the peers' tx gossip), or ``{"txs": [{"tx": hex,
"sealed": {payer_org: hex}}]}`` in JSON. The client, the bench, the gossip and the API build
and parse it here only.

The envelope is neither hashed nor signed, so its encoding need not be canonical; each tx is
decoded strictly (canonical bytes, every field checked) on admission (``node/admission.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tpledger.ledger.encoding import pack, unpack
from tpledger.ledger.errors import EncodingError
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.node.errors import NodeError

MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
MAX_SEALED_PER_TX = 4
MAX_ORG_CHARS = 64
MAX_SEALED_BYTES = 4096
MAX_JSON_DEPTH = 8  # {"txs": [{"tx": ..., "sealed": {...}}]} is 3 deep

Sealed = list[tuple[str, bytes]]
Item = tuple[bytes, Sealed]  # (signed tx bytes, [(payer_org, sealed box), ...])


class SubmissionError(NodeError):
    """A malformed envelope; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_submission(items: Sequence[tuple[bytes, Sequence[tuple[str, bytes]]]]) -> bytes:
    """The msgpack envelope of ``items`` (what :func:`parse_submission` reads back)."""
    return pack([[tx, [[org, sealed] for org, sealed in pairs]] for tx, pairs in items])


def parse_submission(body: bytes, max_items: int) -> list[Item]:
    """Strictly parse a msgpack envelope (raises :class:`SubmissionError`).

    The loop below checks the type of everything it keeps (no separate walk).
    """
    try:
        obj = unpack(body, MAX_ENVELOPE_BYTES, check_types=False, canonical=False)
    except EncodingError as exc:
        raise SubmissionError("malformed_body", str(exc)) from None
    if not isinstance(obj, list):
        raise SubmissionError("malformed_body", "submission must be an array of [tx, sealed] items")
    if len(obj) > max_items:
        raise SubmissionError("malformed_body",
                              f"too many transactions in one batch (max {max_items})")
    items: list[Item] = []
    for item in obj:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and isinstance(item[1], list) and len(item[1]) <= MAX_SEALED_PER_TX):
            raise SubmissionError("malformed_body",
                                  "each item must be [tx_bytes, [[payer_org, sealed_bytes], ...]]")
        sealed = []
        for pair in item[1]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], bytes) and len(pair[0]) <= MAX_ORG_CHARS
                    and len(pair[1]) <= MAX_SEALED_BYTES):
                raise SubmissionError("malformed_body",
                                      "each sealed opening must be [payer_org, sealed_bytes]")
            sealed.append((pair[0], pair[1]))
        items.append((item[0], sealed))
    return items


def parse_json_submission(body: bytes, max_items: int) -> list[Item]:
    """Parse the JSON form ``{"txs": [{"tx": hex, "sealed": {org: hex}}]}`` (raises
    :class:`SubmissionError`)."""
    try:
        doc = loads_bounded(body, len(body), MAX_JSON_DEPTH)
    except ValueError as exc:
        raise SubmissionError("malformed_body", f"body is not accepted JSON: {exc}") from None
    txs = doc.get("txs") if isinstance(doc, dict) else None
    if not isinstance(txs, list):
        raise SubmissionError("malformed_body", 'expected {"txs": [...]}')
    if len(txs) > max_items:
        raise SubmissionError("batch_too_large", f"at most {max_items} transactions per request")
    items = []
    for t in txs:
        if not isinstance(t, dict) or not isinstance(t.get("tx"), str):
            raise SubmissionError("malformed_body", 'each item needs "tx" as hex')
        sealed_raw = t.get("sealed", {})
        if not isinstance(sealed_raw, dict) or len(sealed_raw) > MAX_SEALED_PER_TX:
            raise SubmissionError("malformed_body", '"sealed" must map payer org to hex')
        try:
            raw = bytes.fromhex(t["tx"])
            sealed = [(str(o), bytes.fromhex(v)) for o, v in sealed_raw.items()
                      if isinstance(v, str)]
        except ValueError:
            raise SubmissionError("malformed_body", "bad hex in submission") from None
        if len(sealed) != len(sealed_raw):
            raise SubmissionError("malformed_body", "sealed openings must be hex strings")
        items.append((raw, sealed))
    return items
