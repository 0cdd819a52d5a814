"""A claim's life after submission, from the payers' and the optician's side.

Payers (an insurer for the AMC share, the CNAM for the AMO share) list the claims awaiting
their decision, open the sealed patient opening and check it against the on-ledger commitment,
decide, pay, and ask the nodes to forget the opening; opticians cancel and follow what is still
owed. Every transaction is signed here, with the key file, and sent to one node.

Privacy: an :class:`~ledger.patient.Opening` never reaches a message, a log or a repr from this
module; the CLI shows its identity only on explicit request (``claim open --show-identity``). A
payment's bank reference is sent only as :func:`reference_digest`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.errors import CliError, Rejected, TimedOut, UsageError, VerificationFailed
from tpledger.ledger.encoding import tagged_hash
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import BoxKey, KeyFile
from tpledger.ledger.patient import Opening, open_sealed, sealed_digest, verify_opening
from tpledger.ledger.proofs import ProofBundle, verify_bundle
from tpledger.ledger.rules import share_of_payer
from tpledger.ledger.tx import (
    MAX_REASON_LEN,
    REASON_CHARS,
    SHARE_AMC,
    SHARE_NAMES,
    Cancel,
    Claim,
    Decision,
    Payment,
    SignedTx,
    TxBody,
    sign_tx,
)

REFERENCE_DOMAIN = "tpledger/payment-reference/v1"
MAX_REFERENCE_LEN = 140  # a SEPA end-to-end id is 35, a remittance text 140
PAYER_ROLES = ("insurer", "cnam")
PAGE = 500
MIN_PREFIX_CHARS = 4  # git's minimum abbreviation
MAX_SHOWN_MATCHES = 5  # candidates named by an "ambiguous prefix" error
_HEX = frozenset("0123456789abcdef")


# -- pure helpers ----------------------------------------------------------------------------
def share_for_role(role: str) -> int:
    """The share a payer decides and pays: the CNAM the AMO share, an insurer the AMC share."""
    share = share_of_payer(role)  # the rules' table says who decides and pays which share
    if share is None:
        raise CliError(f"the {role} key decides no share: use an insurer's or the CNAM's key")
    return share


def check_claim_ref(text: str) -> str:
    """A claim id (64 hex) or a prefix of one (at least 4 hex characters), lower-cased."""
    ref = text.strip().lower()
    if not MIN_PREFIX_CHARS <= len(ref) <= 64 or not set(ref) <= _HEX:
        raise UsageError(f"a claim id is 64 hex characters, or a unique prefix of at least "
                         f"{MIN_PREFIX_CHARS} (git style): {text[:70]!r}")
    return ref


def share_key(share: int) -> str:
    """``"amo"`` or ``"amc"``: the key of the share in the node's claim JSON."""
    return SHARE_NAMES[share]


def reference_digest(reference: str) -> bytes:
    """Digest of a bank transfer reference; the reference itself never leaves the payer."""
    ref = reference.strip()
    if not ref:
        raise UsageError("--reference must not be empty")
    if len(ref) > MAX_REFERENCE_LEN:
        raise UsageError(f"--reference is longer than {MAX_REFERENCE_LEN} characters")
    return tagged_hash(REFERENCE_DOMAIN, ref.encode("utf-8"))


def check_reason(reason: str, what: str = "--reject") -> str:
    """A reason code: 1 to 64 characters among a-z, 0-9, '_' and '-'."""
    if not 1 <= len(reason) <= MAX_REASON_LEN or any(c not in REASON_CHARS for c in reason):
        raise UsageError(f"{what}: a reason code is 1 to {MAX_REASON_LEN} characters among "
                       "a-z, 0-9, '_' and '-', e.g. not_covered")
    return reason


def is_awaiting(claim: dict[str, Any], org: str, role: str) -> bool:
    """True iff ``claim`` (node JSON) waits for a decision of ``org`` (with ``role``)."""
    if claim.get("cancelled"):
        return False
    share = share_for_role(role)
    if share == SHARE_AMC and claim.get("insurer") != org:
        return False
    s = claim.get(share_key(share))
    return isinstance(s, dict) and s.get("status") == "submitted"


def is_mine(claim: dict[str, Any], org: str, role: str) -> bool:
    """True iff ``org`` is the claim's optician or one of its payers."""
    if role == "optician":
        return claim.get("optician") == org
    if role == "insurer":
        return claim.get("insurer") == org
    return role == "cnam"


def my_share_cents(claim: dict[str, Any], role: str) -> dict[str, int]:
    """Asked/approved/paid/owed of the payer's own share (cents)."""
    s = claim.get(share_key(share_for_role(role)))
    s = s if isinstance(s, dict) else {}
    out = {k: int(s.get(f"{k}_cents") or 0) for k in ("asked", "approved", "paid")}
    owed = out["approved"] - out["paid"] if s.get("status") in ("accepted", "paid") else 0
    out["owed"] = 0 if claim.get("cancelled") else owed
    return out


# -- reading ---------------------------------------------------------------------------------
MAX_PAGES = 1_000_000  # a bound on paging, far above any real ledger's claims / window


def iter_claims(client: NodeClient, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every claim the node shows the signer, page after page (claim-id order)."""
    after: str | None = None
    for _ in range(MAX_PAGES):
        rows, nxt = client.claims_page(page, after)
        yield from rows
        if nxt is None or nxt == after:
            return
        after = nxt


def list_claims(client: NodeClient, keep: Callable[[dict[str, Any]], bool],
                limit: int | None = None, after: str | None = None,
                page: int = PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """The claims ``keep`` keeps, from cursor ``after`` on, at most ``limit`` of them; and the
    cursor of the next page (None when the listing is complete)."""
    out: list[dict[str, Any]] = []
    cursor = after
    for _ in range(MAX_PAGES):
        rows, nxt = client.claims_page(page, cursor)
        for i, c in enumerate(rows):
            if not keep(c):
                continue
            out.append(c)
            if limit is not None and len(out) >= limit:
                last = i == len(rows) - 1 and (nxt is None or nxt == cursor)
                return out, None if last else str(c.get("claim_id"))
        if nxt is None or nxt == cursor:
            return out, None
        cursor = nxt
    return out, cursor


def resolve_claim_id(client: NodeClient, text: str) -> str:
    """The full id of claim ``text``: itself when 64 hex, else the one claim the signer can
    list (``GET /v1/claims``, paged) whose id starts with it; ambiguous prefixes are refused
    naming a few candidates."""
    ref = check_claim_ref(text)
    if len(ref) == 64:
        return ref
    matches: list[str] = []
    for c in iter_claims(client):
        cid = str(c.get("claim_id", ""))
        if cid.startswith(ref):
            matches.append(cid)
            if len(matches) >= MAX_SHOWN_MATCHES:
                break
    if not matches:
        raise CliError(f"no claim id starts with {ref} among the claims this key can list")
    if len(matches) > 1:
        raise UsageError(f"claim id prefix {ref} is ambiguous ({', '.join(matches)}"
                         f"{', …' if len(matches) >= MAX_SHOWN_MATCHES else ''}): "
                         "give more characters")
    return matches[0]


@dataclass(frozen=True, repr=False)
class OpenedClaim:
    """A claim whose opening was checked against the on-ledger commitment."""

    claim_id: str
    claim: Claim
    opening: Opening
    height: int

    def __repr__(self) -> str:
        return f"OpenedClaim({self.claim_id[:16]}…, <opening hidden>)"

    __str__ = __repr__


def open_claim(client: NodeClient, key: KeyFile, genesis: Genesis, claim_id: str,
               boxes: Sequence[BoxKey] = ()) -> OpenedClaim:
    """Fetch the sealed opening and the claim's proof, open the one, verify the other.

    ``boxes``: the X25519 keys to try, newest first (``cli.keys_history.box_keys``: the
    current key, then the rotated-out ones); default the key file's own.

    The claim's commitment comes from the proof bundle's transaction, itself checked offline
    against the genesis (inclusion and quorum certificate), so a lying node cannot substitute
    another commitment. Raises :class:`CliError` (exit 1) when anything does not match.
    """
    if key.role not in PAYER_ROLES:
        raise CliError(f"only a payer opens a claim's patient opening, not a {key.role}")
    sealed = client.opening(claim_id)
    proof = client.proof(claim_id)
    res = verify_bundle(proof, genesis)
    if not res.ok or res.claim_id is None:
        raise VerificationFailed(f"the claim's proof does not verify ({res.failure_code}): "
                                 f"{res.message}")
    if res.claim_id.hex() != claim_id.lower() or res.tx_type != "claim":
        raise VerificationFailed("the node's proof is not the proof of this claim")
    bundle = ProofBundle.from_bytes(proof)
    body = SignedTx.decode(bundle.tx).parse()
    if not isinstance(body, Claim):  # pragma: no cover - checked through res.tx_type
        raise CliError("the node's proof is not the proof of a claim")
    refs = {r.payer: r.sealed_digest for r in body.sealed}
    if refs.get(key.org) != sealed_digest(sealed):
        raise VerificationFailed("the sealed opening does not match the digest signed into the "
                                 "claim")
    opening = _open_with(boxes or (key.box,), sealed)
    if not verify_opening(opening, body.patient_commitment):
        raise VerificationFailed("the opening does NOT match the claim's patient commitment")
    return OpenedClaim(claim_id.lower(), body, opening, int(res.height or 0))


def _open_with(boxes: Sequence[BoxKey], sealed: bytes) -> Opening:
    """Open ``sealed`` with the first key that opens it (a wrong key fails cleanly)."""
    why = "no key to open the sealed opening with"
    for box in boxes:
        try:
            return open_sealed(box, sealed)
        except LedgerError as exc:
            why = str(exc)
    raise VerificationFailed(why)


# -- transactions ----------------------------------------------------------------------------
def _claim_id_bytes(claim_id: str) -> bytes:
    try:
        b = bytes.fromhex(claim_id.strip())
    except ValueError:
        b = b""
    if len(b) != 32:
        raise UsageError("a claim id is 64 hex characters")
    return b


def decision_body(claim: dict[str, Any], role: str, accept: bool, amount_cents: int | None,
                  reason: str | None) -> Decision:
    """The Decision a payer with ``role`` signs on ``claim`` (node JSON)."""
    share = share_for_role(role)
    cid = _claim_id_bytes(str(claim.get("claim_id", "")))
    if accept:
        if amount_cents is None:
            s = claim.get(share_key(share))
            amount_cents = int(s.get("asked_cents") or 0) if isinstance(s, dict) else 0
        if amount_cents <= 0:
            raise UsageError("an acceptance approves more than 0 EUR (use --reject REASON)")
        return Decision(cid, share, True, amount_cents, "")
    return Decision(cid, share, False, 0, check_reason(reason or ""))


def payment_body(claim_id: str, role: str, amount_cents: int, reference: str) -> Payment:
    if amount_cents <= 0:
        raise UsageError("--amount must be more than 0 EUR")
    return Payment(_claim_id_bytes(claim_id), share_for_role(role), amount_cents,
                   reference_digest(reference))


def cancel_body(claim_id: str, role: str, reason: str) -> Cancel:
    if role != "optician":
        raise CliError(f"only the claim's optician cancels it, not a {role}")
    return Cancel(_claim_id_bytes(claim_id), check_reason(reason, "--reason"))


def send_tx(client: NodeClient, key: KeyFile, genesis: Genesis, body: TxBody, wait: bool,
            timeout_s: float, poll_s: float = 0.2) -> dict[str, Any]:
    """Sign ``body``, submit it, optionally wait; returns ``{"tx_id", "status", ...}``.

    Status ``rejected`` carries the ledger's ``code`` and ``message``; the caller decides the
    exit code.
    """
    stx = sign_tx(genesis.chain_id, key.signer, body)
    return submit_signed(client, stx, wait, timeout_s, poll_s)


def submit_signed(client: NodeClient, stx: SignedTx, wait: bool, timeout_s: float,
                  poll_s: float = 0.2) -> dict[str, Any]:
    tx_id = stx.tx_id().hex()
    [res] = client.submit([(stx.encode(), ())])
    row: dict[str, Any] = {"tx_id": tx_id, "status": str(res.get("status", "unknown"))}
    for k in ("code", "message"):
        if res.get(k) is not None:
            row[k] = str(res[k])
    deadline = time.monotonic() + timeout_s
    while wait and row["status"] == "pending":
        t0 = time.monotonic()
        wait_ms = int(max(0.0, min(5.0, deadline - t0)) * 1000)
        st = client.tx_status(tx_id, wait_ms=wait_ms)  # the node answers at the commit
        status = str(st.get("status"))
        if status in ("committed", "rejected"):
            row["status"] = status
            for k in ("height", "leaf_index", "code", "message"):
                if st.get(k) is not None:
                    row[k] = st[k]
            break
        if time.monotonic() >= deadline:
            break
        if time.monotonic() - t0 < wait_ms / 2000:  # answered at once: an older node
            time.sleep(poll_s)
    return row


def raise_if_refused(row: dict[str, Any], wait: bool, timeout_s: float) -> None:
    """One-line error for a refused transaction (exit 4) or, with --wait, an uncommitted one
    (exit 5, timed out)."""
    if row["status"] == "rejected":
        raise Rejected(f"the ledger refused the transaction: {row.get('code', '?')}: "
                       f"{row.get('message', '')}")
    if wait and row["status"] != "committed":
        raise TimedOut(f"transaction {row['tx_id']} not committed after {timeout_s:g} s")


def fetch_claim(client: NodeClient, claim_id: str) -> dict[str, Any]:
    _claim_id_bytes(claim_id)
    try:
        return client.claim(claim_id)
    except ClientError as exc:
        if exc.code == "unknown_claim":
            raise CliError(f"no committed claim {claim_id[:16]}… on this node") from None
        raise


__all__ = [
    "OpenedClaim",
    "cancel_body",
    "check_claim_ref",
    "decision_body",
    "fetch_claim",
    "is_awaiting",
    "is_mine",
    "iter_claims",
    "list_claims",
    "my_share_cents",
    "open_claim",
    "payment_body",
    "raise_if_refused",
    "reference_digest",
    "resolve_claim_id",
    "send_tx",
    "share_for_role",
    "submit_signed",
]
