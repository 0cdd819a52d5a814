"""Claims on the optician's machine: parse input, commit and seal the patient, sign, submit.

The NIR and birth date are validated, committed and sealed here and never leave the process in
clear: the node receives only the signed claim (with the salted commitment) and the openings
sealed to the insurer's and the CNAM's X25519 keys. No message, log or repr of this module
contains them; input errors name the claim (``line 3`` / ``claim 1``), never the value.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.errors import CliError, UsageError
from tpledger.cli.euros import AmountError, format_cents, parse_euros
from tpledger.cli.participants import Directory, ParticipantInfo, genesis_directory, is_org_id
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.lpp import LppTable, default_shares
from tpledger.ledger.patient import (
    WITHHELD,
    Opening,
    commitment,
    new_opening,
    seal_opening,
    sealed_digest,
    shown,
)
from tpledger.ledger.registry import day_of
from tpledger.ledger.tx import (
    CLIENT_REF_CHARS,
    MAX_CLIENT_REF_LEN,
    NONCE_BYTES,
    Claim,
    LppLine,
    SealedRef,
    SignedTx,
    sign_tx,
)

T = TypeVar("T")
DEFAULT_BATCH = 500
MAX_CLAIMS_FILE_BYTES = 512 * 1024 * 1024
MAX_CLAIM_LINE_BYTES = 1024 * 1024  # one JSON-lines record
MAX_CLAIM_JSON_DEPTH = 8
MAX_REPORTED_ERRORS = 1000  # bad lines listed one by one; past this, only counted
_CLAIM_KEYS = {"ref", "insurer", "patient", "lines", "amo", "amc"}
ALREADY_SUBMITTED = "already_submitted"  # a row whose reference is on the ledger already
_PATIENT_KEYS = {"nir", "birth_date", "member_number"}
_LINE_KEYS = {"lpp", "qty", "amount"}


@dataclass(frozen=True, repr=False)
class ClaimInput:
    """One claim as typed or read from a file. ``repr`` hides the patient entirely."""

    where: str  # "line 3" or "claim 1": how errors name this claim
    insurer: str
    nir: str
    birth_date: str
    member_number: str
    lines: tuple[tuple[str, int, int], ...]  # (lpp, qty, amount_cents)
    amo_cents: int | None = None
    amc_cents: int | None = None
    ref: str = ""  # the shop's reference; "" = a one-off one is generated (no idempotency)

    def __repr__(self) -> str:
        return f"ClaimInput({self.where}, insurer={self.insurer!r}, lines={len(self.lines)})"

    __str__ = __repr__


@dataclass(frozen=True)
class PreparedClaim:
    """A signed claim and its sealed openings, ready to POST."""

    where: str
    stx: SignedTx
    sealed: tuple[tuple[str, bytes], ...]
    claim_id: bytes = field(default=b"")

    @property
    def item(self) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
        return self.stx.encode(), self.sealed


class ClaimInputError(UsageError):
    """Bad claim input (exit 2: nothing is sent); the message names the claim and the field,
    never personal data."""


# -- parsing ---------------------------------------------------------------------------------
def parse_line_spec(spec: str, where: str = "--line") -> tuple[str, int, int]:
    """Parse ``LPP:QTY:EUROS`` (e.g. ``2261874:2:24.08``, the line's total) into cents."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise ClaimInputError(f"{where}: expected LPP:QTY:EUROS, e.g. 2261874:2:24.08")
    lpp, qty_s, euros = (p.strip() for p in parts)
    return _check_line(lpp, _qty(qty_s, where), parse_euros(euros, f"{where}: amount"), where)


def _qty(value: object, where: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
        raise ClaimInputError(f"{where}: qty must be an integer from 1 to 99")
    return value


def _check_line(lpp: object, qty: int, cents: int, where: str) -> tuple[str, int, int]:
    if not (isinstance(lpp, str) and len(lpp) == 7 and lpp.isascii() and lpp.isdigit()):
        raise ClaimInputError(f"{where}: lpp must be a 7-digit LPP code")
    return lpp, qty, cents


def check_ref(value: object, where: str) -> str:
    """A client reference: 1 to 64 visible ASCII characters (never echoed: a NIR typed into
    the wrong field must not reach an error message)."""
    if not (isinstance(value, str) and 1 <= len(value) <= MAX_CLIENT_REF_LEN
            and all(c in CLIENT_REF_CHARS for c in value)):
        raise ClaimInputError(f"{where}: ref must be 1 to {MAX_CLIENT_REF_LEN} visible ASCII "
                              "characters, no spaces (the shop's invoice or PEC number)")
    return value


def _reject_float(_: str) -> Any:
    raise ClaimInputError("numbers with a fraction are not allowed; write amounts as strings")


def _reject_constant(_: str) -> Any:
    raise ClaimInputError("NaN and Infinity are not allowed")


def parse_claim_json(text: str, where: str) -> ClaimInput:
    """Parse one JSON-lines record. Errors name ``where`` and never echo the NIR/birth date."""
    try:
        obj = loads_bounded(text, MAX_CLAIM_LINE_BYTES, MAX_CLAIM_JSON_DEPTH,
                            parse_float=_reject_float, parse_constant=_reject_constant)
    except ClaimInputError as exc:
        raise ClaimInputError(f"{where}: {exc}") from None
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ClaimInputError(f"{where}: not valid JSON ({msg})") from None
    if not isinstance(obj, dict):
        raise ClaimInputError(f"{where}: a claim must be a JSON object")
    _no_unknown(obj, _CLAIM_KEYS, where)
    if "ref" not in obj:
        raise ClaimInputError(f"{where}: ref is required (the shop's invoice or PEC number: "
                              "a retry of the same file then creates no second claim)")
    ref = check_ref(obj["ref"], f"{where}: ref")
    insurer = obj.get("insurer")
    if not isinstance(insurer, str) or not insurer:
        raise ClaimInputError(f"{where}: insurer must be a non-empty string (an org id)")
    patient = obj.get("patient")
    if not isinstance(patient, dict):
        raise ClaimInputError(f"{where}: patient must be an object with nir and birth_date")
    _no_unknown(patient, _PATIENT_KEYS, f"{where}: patient")
    nir, birth = patient.get("nir"), patient.get("birth_date")
    member = patient.get("member_number", "")
    if not isinstance(nir, str):
        raise ClaimInputError(f"{where}: patient.nir must be a string")
    if not isinstance(birth, str):
        raise ClaimInputError(f"{where}: patient.birth_date must be a string YYYY-MM-DD")
    if not isinstance(member, str):
        raise ClaimInputError(f"{where}: patient.member_number must be a string")
    raw_lines = obj.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ClaimInputError(f"{where}: lines must be a non-empty array")
    lines = []
    for i, ln in enumerate(raw_lines, start=1):
        lw = f"{where}: lines[{i}]"
        if not isinstance(ln, dict):
            raise ClaimInputError(f"{lw}: must be an object with lpp, qty, amount")
        _no_unknown(ln, _LINE_KEYS, lw)
        try:
            cents = parse_euros(ln.get("amount"), f"{lw}: amount")
        except AmountError as exc:
            raise ClaimInputError(str(exc)) from None
        lines.append(_check_line(ln.get("lpp"), _qty(ln.get("qty"), lw), cents, lw))
    amo = _opt_euros(obj, "amo", where)
    amc = _opt_euros(obj, "amc", where)
    if (amo is None) != (amc is None):
        raise ClaimInputError(f"{where}: give both amo and amc, or neither (default shares)")
    return ClaimInput(where, insurer, nir, birth, member, tuple(lines), amo, amc, ref)


def _opt_euros(obj: dict[str, Any], key: str, where: str) -> int | None:
    if key not in obj or obj[key] is None:
        return None
    try:
        return parse_euros(obj[key], f"{where}: {key}")
    except AmountError as exc:
        raise ClaimInputError(str(exc)) from None


def _no_unknown(obj: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in known)
    if unknown:
        names = ", ".join(k[:32] if shown(k) != WITHHELD else WITHHELD for k in unknown[:5])
        raise ClaimInputError(f"{where}: unknown keys: {names}")


def read_claims_file(path: str | Path) -> Iterator[ClaimInput]:
    """Claims of a JSON-lines file (blank lines and ``#`` comments skipped), or ``-`` = stdin.
    Stops at the first bad line; :func:`prepare_claims_file` reports them all."""
    for item in _claims_of_file(path):
        if isinstance(item, ClaimInputError):
            raise item
        yield item


def _claims_of_file(path: str | Path) -> Iterator[ClaimInput | ClaimInputError]:
    """Every record of the file, parsed, or the error of its line (never raised)."""
    p = Path(path)
    try:
        if str(path) == "-":
            text = sys.stdin.read()
        else:
            if p.stat().st_size > MAX_CLAIMS_FILE_BYTES:
                raise ClaimInputError(f"{p}: claims file too large")
            text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{p}: cannot read claims file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ClaimInputError(f"{p}: not UTF-8 (byte {exc.start})") from None
    first_line_of: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                inp = parse_claim_json(line, f"line {lineno}")
            except ClaimInputError as exc:
                yield exc
                continue
            first = first_line_of.setdefault(inp.ref, lineno)
            yield inp if first == lineno else ClaimInputError(
                f"line {lineno}: ref already used by line {first} (one claim per reference)")


# -- building --------------------------------------------------------------------------------
TariffSource = Callable[[int], LppTable]  # the LPP table in force on a UTC day (days since 1970)


@dataclass(frozen=True, repr=False)
class OfflineInput:
    """A claim input whose checks that need no table passed (insurer id, patient, explicit
    shares). Never printed: it holds the patient's opening."""

    inp: ClaimInput
    opening: Opening


@dataclass(frozen=True, repr=False)
class CheckedInput:
    """A claim input checked (also its lines against the table in force on its dispensing
    day, ``created_at_ms``, and its shares), not yet sealed nor signed. Never printed."""

    inp: ClaimInput
    opening: Opening
    lines: tuple[LppLine, ...]
    amo_cents: int
    amc_cents: int
    created_at_ms: int


def _same_every_day(table: LppTable) -> TariffSource:
    return lambda _day: table


class ClaimBuilder:
    """Builds signed claims for one optician key against one genesis and LPP tariff."""

    def __init__(self, key: KeyFile, genesis: Genesis, lpp: LppTable | None = None,
                 directory: Directory | None = None,
                 tariff: TariffSource | None = None) -> None:
        """``directory``: the registry to seal to (``cli.participants.node_directory``: the
        insurers' and the CNAM's current X25519 keys); default the genesis. ``tariff``: the
        table in force on a claim's dispensing day (``cli.governance.node_tariff``: the
        ledger's tariff versions); default ``lpp`` on every day (the genesis table when
        None). Both are first read after every claim passed :meth:`check_offline`, so that
        input errors are refused before any node is contacted."""
        self.key = key
        self.genesis = genesis
        self.tariff: TariffSource = tariff if tariff is not None else _same_every_day(
            lpp if lpp is not None else LppTable.default())  # the seed: read only if needed
        self.directory = directory if directory is not None else genesis_directory(genesis)
        if key.role != "optician":
            raise CliError(f"key of org {key.org!r} is not an optician's key")
        self._cnam: ParticipantInfo | None = None

    def _cnam_info(self) -> ParticipantInfo:
        """Check our own registration, then find the CNAM's current record (once)."""
        if self._cnam is None:
            me = self.directory(self.key.org)
            if me is None or me.role != "optician":
                raise CliError(f"key of org {self.key.org!r} is not an optician registered "
                               "on the ledger")
            if me.ed25519 != self.key.signer.public:
                raise CliError(f"key of org {self.key.org!r} does not match its registered "
                               "key")
            cnams = [p for p in self.genesis.participants if p.role == "cnam"]
            self._cnam = self.directory(cnams[0].org) if cnams else None
            if self._cnam is None:
                raise CliError("the genesis registers no CNAM participant to seal the AMO "
                               "share to")
        return self._cnam

    def check_offline(self, inp: ClaimInput) -> OfflineInput:
        """The checks of one claim input that need neither table nor node. Raises
        ClaimInputError."""
        where = inp.where
        if not is_org_id(inp.insurer):
            raise ClaimInputError(f"{where}: insurer {shown(inp.insurer)} is not an org id")
        try:
            opening = new_opening(inp.nir, inp.birth_date, inp.member_number)
        except LedgerError as exc:  # PatientDataError: messages never hold the value
            raise ClaimInputError(f"{where}: {exc}") from None
        amo, amc = inp.amo_cents, inp.amc_cents
        if amo is not None and amc is not None and amo + amc > sum(c for _, _, c in inp.lines):
            raise ClaimInputError(f"{where}: amo + amc exceeds the claim total")
        return OfflineInput(inp, opening)

    def price(self, offline: OfflineInput, now_ms: int | None = None) -> CheckedInput:
        """Date the claim (``now_ms``, default now) and check its lines against the table in
        force on that UTC day; default shares from that table. Raises ClaimInputError."""
        inp, where = offline.inp, offline.inp.where
        created_at_ms = int(time.time() * 1000) if now_ms is None else now_ms
        table = self.tariff(day_of(created_at_ms))
        for i, (lpp, qty, cents) in enumerate(inp.lines, start=1):
            entry = table.get(lpp)
            if entry is None:
                raise ClaimInputError(f"{where}: line {i}: unknown LPP code {lpp}")
            if entry.max_price_cents is not None and cents > qty * entry.max_price_cents:
                raise ClaimInputError(
                    f"{where}: line {i}: {format_cents(cents)} EUR exceeds {qty} x the price "
                    f"limit {format_cents(entry.max_price_cents)} EUR of {lpp}"
                )
        lines = tuple(LppLine(lpp, qty, cents) for lpp, qty, cents in inp.lines)
        if inp.amo_cents is None or inp.amc_cents is None:
            amo, amc = default_shares(lines, table)
        else:
            amo, amc = inp.amo_cents, inp.amc_cents
        return CheckedInput(inp, offline.opening, lines, amo, amc, created_at_ms)

    def check(self, inp: ClaimInput, now_ms: int | None = None) -> CheckedInput:
        """Every check of one claim input dispensed at ``now_ms`` (default now)."""
        return self.price(self.check_offline(inp), now_ms)

    def seal(self, checked: CheckedInput) -> PreparedClaim:
        """Seal the opening to the payers' current keys (the directory) and sign; the claim
        is dated as it was priced (``created_at_ms``: its table is the one in force then)."""
        inp, where = checked.inp, checked.inp.where
        cnam = self._cnam_info()
        insurer = self.directory(inp.insurer)
        if insurer is None or insurer.role != "insurer":
            raise ClaimInputError(f"{where}: insurer {shown(inp.insurer)} is not a registered "
                                  "insurer")
        sealed_ins = seal_opening(checked.opening, insurer.x25519)
        sealed_cnam = seal_opening(checked.opening, cnam.x25519)
        claim = Claim(
            optician=self.key.org,
            insurer=insurer.org,
            lines=checked.lines,
            amo_cents=checked.amo_cents,
            amc_cents=checked.amc_cents,
            patient_commitment=commitment(checked.opening),
            sealed=(
                SealedRef(insurer.org, sealed_digest(sealed_ins)),
                SealedRef(cnam.org, sealed_digest(sealed_cnam)),
            ),
            created_at_ms=checked.created_at_ms,
            nonce=os.urandom(NONCE_BYTES),
            client_ref=inp.ref or f"auto-{os.urandom(12).hex()}",
        )
        try:
            stx = sign_tx(self.genesis.chain_id, self.key.signer, claim)
        except LedgerError as exc:
            raise ClaimInputError(f"{where}: {exc}") from None
        return PreparedClaim(
            where, stx, ((insurer.org, sealed_ins), (cnam.org, sealed_cnam)), stx.tx_id()
        )

    def build(self, inp: ClaimInput, now_ms: int | None = None) -> PreparedClaim:
        return self.seal(self.check(inp, now_ms))


def prepare_all(builder: ClaimBuilder, inputs: Iterator[ClaimInput | ClaimInputError],
                report: Callable[[str], None],
                max_reported: int = MAX_REPORTED_ERRORS) -> list[PreparedClaim]:
    """Build every claim. Nothing is sent unless every claim is good: one bad claim is raised
    as :class:`ClaimInputError` (one line); several are each reported (``report``, line number
    first, at most ``max_reported``) before raising their count. Every input is checked
    offline first; only then is the tariff in force read (maybe on a node) and every claim
    dated and priced by it; only then are the payers looked up (maybe on a node) and the
    claims sealed and signed."""
    offline = _all_good(_catching(inputs, builder.check_offline), report, max_reported)
    checked = _all_good(_catching(iter(offline), builder.price), report, max_reported)
    return _all_good(_catching(iter(checked), builder.seal), report, max_reported)


def _catching(items: Iterator[Any], fn: Callable[[Any], T]) -> Iterator[T | ClaimInputError]:
    """``fn(item)`` for each item; a ClaimInputError (raised, or an item) passed on as a value."""
    for item in items:
        if isinstance(item, ClaimInputError):
            yield item
            continue
        try:
            yield fn(item)
        except ClaimInputError as exc:
            yield exc


def _all_good(results: Iterator[T | ClaimInputError], report: Callable[[str], None],
              max_reported: int) -> list[T]:
    """The results, or raise when some are errors (each reported when there are several)."""
    good: list[T] = []
    errors: list[str] = []
    bad = 0
    for r in results:
        if not isinstance(r, ClaimInputError):
            good.append(r)
            continue
        bad += 1
        if bad <= max_reported:
            errors.append(str(r))
    if bad == 1:
        raise ClaimInputError(f"{errors[0]} (nothing was sent)")
    if bad:
        for message in errors:
            report(message)
        more = f", {bad - max_reported} not shown" if bad > max_reported else ""
        raise ClaimInputError(f"{bad} bad claims{more}; nothing was sent")
    return good


def prepare_claims_file(builder: ClaimBuilder, path: str | Path,
                        report: Callable[[str], None]) -> list[PreparedClaim]:
    """Every claim of a JSON-lines file, built; every bad line reported before raising."""
    return prepare_all(builder, _claims_of_file(path), report)


# -- submitting ------------------------------------------------------------------------------
def submit_prepared(
    client: NodeClient,
    claims: Sequence[PreparedClaim],
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """POST claims in batches; one result dict per claim (``claim_id``, ``status``, ...)."""
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    out: list[dict[str, Any]] = []
    for start in range(0, len(claims), batch_size):
        chunk = claims[start : start + batch_size]
        results = client.submit([c.item for c in chunk])
        for c, r in zip(chunk, results, strict=True):
            row: dict[str, Any] = {
                "claim_id": c.claim_id.hex(),
                "where": c.where,
                "status": str(r.get("status", "unknown")) if isinstance(r, dict) else "unknown",
            }
            if isinstance(r, dict):
                if r.get("tx_id") not in (None, row["claim_id"]):
                    raise ClientError("bad_response", "the node names another tx id", 0)
                for k in ("code", "message", "existing_claim_id"):
                    if r.get(k) is not None:
                        row[k] = str(r[k])
            out.append(_settle_duplicate(row))
        if on_batch is not None:
            on_batch(len(chunk))
    return out


def _settle_duplicate(row: dict[str, Any]) -> dict[str, Any]:
    """A claim refused as ``duplicate_reference`` was submitted before (a retry after a
    timeout or a crash): the row becomes ``already_submitted`` and names the first claim."""
    first = row.get("existing_claim_id")
    if row["status"] == "rejected" and row.get("code") == "duplicate_reference" and first:
        row.update(status=ALREADY_SUBMITTED, claim_id=str(first))
    return row


def wait_committed(
    client: NodeClient,
    rows: list[dict[str, Any]],
    timeout_s: float,
    poll_s: float = 0.2,
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Ask ``/v1/txs/{id}`` until every pending row is committed or rejected (in place).

    The first pending row is asked with ``wait_ms``: the node answers when a commit settles it,
    so there is no busy polling. Rows still pending at the deadline keep status ``pending``;
    the caller decides the exit code.
    """
    deadline = time.monotonic() + timeout_s
    pending = [r for r in rows if r["status"] == "pending"]
    while pending:
        still = []
        for i, r in enumerate(pending):
            wait_ms = 0 if i else int(max(0.0, min(5.0, deadline - time.monotonic())) * 1000)
            st = client.tx_status(r["claim_id"], wait_ms=wait_ms)
            status = st.get("status")
            if status in ("committed", "rejected"):
                r["status"] = status
                for k in ("height", "leaf_index", "code", "message", "existing_claim_id"):
                    if st.get(k) is not None:
                        r[k] = st[k]
                _settle_duplicate(r)
                if on_done is not None:
                    on_done(1)
            else:
                still.append(r)
                # claims are committed in order, so one pending answer usually means the rest
                # are too: wait for the next poll instead of asking about all of them
                if status == "pending":
                    still.extend(pending[pending.index(r) + 1 :])
                    break
        progressed = len(still) < len(pending)
        pending = still
        if pending:
            if time.monotonic() >= deadline:
                return
            if not progressed:  # the node did not hold the answer back (an older node)
                time.sleep(poll_s)


def submit_with_progress(node_url: str, key: KeyFile, gen: Genesis,
                         prepared: list[PreparedClaim], batch_size: int, wait: bool,
                         timeout: float) -> list[dict[str, Any]]:
    """Submit (and with ``wait``, follow) prepared claims; progress bars on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tpledger.cli.render import stderr

    err = stderr()
    with NodeClient(node_url, signer=key.signer, chain_id=gen.chain_id) as client:
        if not err.is_terminal:
            rows = submit_prepared(client, prepared, batch_size)
            if wait:
                wait_committed(client, rows, timeout)
            return rows
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task("submitting", total=len(prepared))
            rows = submit_prepared(client, prepared, batch_size,
                                   on_batch=lambda n: progress.advance(task, n))
            if wait:
                pending = sum(1 for r in rows if r["status"] == "pending")
                done = progress.add_task("committing", total=pending)
                wait_committed(client, rows, timeout,
                               on_done=lambda n: progress.advance(done, n))
            return rows
