"""Everything the CLI prints: consoles, JSON lines, tables and the verdict of offline checks.

Commands compute, this module shows. Tables never hold a patient's identity: the claim rows
come from :func:`claim_summary` (no commitment, no opening).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from tpledger.cli.errors import VerificationFailed
from tpledger.cli.euros import format_cents
from tpledger.ledger.tx import CLAIM_PARTIALLY_DECIDED, CLAIM_SUBMITTED

if TYPE_CHECKING:
    from tpledger.cli.block_stats import Stats
    from tpledger.cli.cluster import ClusterInfo
    from tpledger.ledger.lpp import LppTable

LOG_WIDTH = 120  # columns when stdout is a log rather than a terminal (no truncated table)
# Past this many rows a terminal table is aligned by hand: rich's Table measures every cell
# (~1 ms a row), a 10,000-row table took 9.5 s. Piped output never goes through rich.
FAST_TABLE_ROWS = 500
CLAIM_UNDECIDED = (CLAIM_SUBMITTED, CLAIM_PARTIALLY_DECIDED)
SHORT_ID_CHARS = 16  # a claim id cut on a terminal's table (full in wide, json and piped)
PENDING = "pending decision"  # "owed" of a claim whose shares are not all decided yet


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def wide_stdout() -> Console:
    """stdout, ``LOG_WIDTH`` columns wide when it is not a terminal and COLUMNS is unset."""
    out = stdout()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, soft_wrap=True, width=LOG_WIDTH)
    return out


def stdout_is_terminal() -> bool:
    """True iff stdout is a terminal (a TTY; FORCE_COLOR and the like do not count)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def _cell(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def rows_out(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """A table: rich on a terminal (aligned plain columns past ``FAST_TABLE_ROWS``), plain
    tab-separated lines with a header when stdout is not a terminal (the title then goes to
    stderr, so that stdout stays rows only)."""
    if not stdout_is_terminal():
        if title:
            click.echo(title, err=True)
        lines = ["\t".join(headers)]
        lines.extend("\t".join(_cell(c).replace("\t", " ") for c in r) for r in rows)
        sys.stdout.write("\n".join(lines) + "\n")
        return
    if len(rows) > FAST_TABLE_ROWS:
        cells = [list(headers), *([_cell(c) for c in r] for r in rows)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        if title:
            sys.stdout.write(title + "\n")
        sys.stdout.write("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                                   .rstrip() for r in cells) + "\n")
        return
    t = Table(*headers, title=title or None)
    for r in rows:
        t.add_row(*(_cell(c) for c in r))
    stdout().print(t)


def short_id(value: Any, wide: bool) -> str:
    """A claim id as a table shows it: cut on a terminal's table, whole in wide or piped."""
    text = str(value)
    if wide or not stdout_is_terminal() or len(text) <= SHORT_ID_CHARS:
        return text
    return text[:SHORT_ID_CHARS] + "…"


def print_json(obj: Any) -> None:
    """One JSON document on one line of stdout (keys sorted)."""
    click.echo(json.dumps(obj, sort_keys=True))


def one_line(text: str) -> str:
    """``text`` on one line (an error message never spans lines)."""
    return " ".join(str(text).split()) or "(no message)"


def input_error(message: str) -> None:
    """One bad input record (``line 3: ...``) on stderr; the command's summary error follows."""
    click.echo(f"error: {one_line(message)}", err=True)


def report_verdict(ctx: click.Context, as_json: bool, ok: bool, body: dict[str, Any],
                   invalid: str, valid: str) -> None:
    """How an offline verification answers: the JSON body (exit 7, invalid proof, when
    invalid), or one line (the ``invalid`` error, exit 7; else ``valid``)."""
    if as_json:
        print_json(body)
        if not ok:
            ctx.exit(VerificationFailed.exit_code)
        return
    if not ok:
        raise VerificationFailed(invalid)
    stdout().print(valid)


def euros(v: Any) -> str:
    return format_cents(v) if isinstance(v, int) else ""


# -- cluster -----------------------------------------------------------------------------------
def cluster_summary(info: ClusterInfo, directory: Any) -> None:
    out = stdout()
    out.print(f"cluster written to {info.root}")
    for n in info.nodes:
        out.print(f"  {n.name}  {n.api}  {n.config.relative_to(info.root)}")
    for c in info.clients:
        out.print(f"  key {c.org:<12} ({c.role})  {c.key.relative_to(info.root)}")
    out.print(f"start it with: tpledger cluster up {directory}")


# -- claims ------------------------------------------------------------------------------------
def submitted_claims(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The outcome of ``claim submit``: one line, a table and counts, or JSON lines."""
    if as_json:
        for r in rows:
            print_json(r)
        return
    out = stdout()
    if len(rows) == 1:
        r = rows[0]
        extra = f" at height {r['height']}" if "height" in r else ""
        why = f" ({r.get('code')}: {r.get('message', '')})" if r["status"] == "rejected" else ""
        if r["status"] == "already_submitted":  # a retry: the reference is on the ledger
            out.print(f"{r['where']}: already submitted: {r['claim_id']}")
        else:
            out.print(f"claim {r['claim_id']} {r['status']}{extra}{why}")
        return
    rows_out(("where", "claim id", "status", "height", "reason"),
             [(r["where"], r["claim_id"], r["status"], r.get("height", ""), _reason(r))
              for r in rows])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    click.echo(", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
               err=not stdout_is_terminal())


def _reason(row: dict[str, Any]) -> str:
    if row["status"] == "already_submitted":
        return f"already submitted: {row['claim_id']}"
    return f"{row['code']}: {row.get('message', '')}" if "code" in row else ""


def owed_cell(c: dict[str, Any]) -> str:
    """What is owed, said plainly: an undecided share is "pending decision", not 0.00."""
    owed = c.get("owed_cents")
    amount = euros(owed)
    if c.get("status") in CLAIM_UNDECIDED:
        return f"{amount} + {PENDING}" if isinstance(owed, int) and owed > 0 else PENDING
    return amount


def claim_state(state: dict[str, Any]) -> None:
    """``claim status``: the ledger state of one claim, one field a row."""
    rows: list[tuple[str, str]] = [(k, str(state.get(k, ""))) for k in
                                   ("claim_id", "optician", "insurer", "status", "height")]
    if isinstance(state.get("total_cents"), int):
        rows.append(("total", format_cents(state["total_cents"]) + " EUR"))
    if isinstance(state.get("owed_cents"), int):
        owed = owed_cell(state)
        rows.append(("owed", owed if PENDING in owed else owed + " EUR"))
    for share in ("amo", "amc"):
        s = state.get(share)
        if isinstance(s, dict):
            parts = [str(s.get("status", ""))]
            for k in ("asked_cents", "approved_cents", "paid_cents"):
                if isinstance(s.get(k), int):
                    parts.append(f"{k.removesuffix('_cents')} {format_cents(s[k])}")
            rows.append((share, ", ".join(parts)))
    if state.get("cancelled"):
        rows.append(("cancelled", "yes"))
    if stdout_is_terminal():
        table = Table(show_header=False, box=None)
        for k, v in rows:
            table.add_row(k, v)
        stdout().print(table)
        return
    rows_out(("field", "value"), rows)


def claim_summary(c: dict[str, Any]) -> dict[str, Any]:
    """The fields of a claim that ``claim list``/``inbox`` show (no commitment, no patient)."""
    out: dict[str, Any] = {k: c.get(k) for k in ("claim_id", "optician", "insurer", "status",
                                                 "total_cents", "owed_cents", "height")}
    for share in ("amo", "amc"):
        s = c.get(share)
        if isinstance(s, dict):
            out[share] = {k: s.get(k) for k in ("status", "asked_cents", "approved_cents",
                                                "paid_cents", "reason_code")}
    return out


def _share_cell(s: dict[str, Any]) -> str:
    st = str(s.get("status", ""))
    if st in ("accepted", "paid"):
        st += f" {euros(s.get('paid_cents'))}/{euros(s.get('approved_cents'))}"
    elif st == "submitted":
        st += f" {euros(s.get('asked_cents'))}"
    elif st == "rejected" and s.get("reason_code"):
        st += f" ({s['reason_code']})"
    return st


def claims_table(rows: list[dict[str, Any]], title: str, wide: bool = False) -> None:
    """``claim list`` / ``claim inbox``: one row per claim summary."""
    rows_out(("claim", "optician", "insurer", "status", "AMO", "AMC", "total", "owed"),
             [(short_id(r["claim_id"], wide), r.get("optician"), r.get("insurer"),
               r.get("status"), *(_share_cell(r.get(share) or {}) for share in ("amo", "amc")),
               euros(r.get("total_cents")), owed_cell(r)) for r in rows], title)


def tx_row(row: dict[str, Any], as_json: bool, what: str) -> None:
    """One sent transaction: a claim's change, a participant change, a proposal (named by its
    ``proposal_id``), a ballot, a tariff publication. A refusal is reported by the caller,
    as an error (exit 4)."""
    if as_json:
        print_json(row)
    elif row["status"] != "rejected":
        where = f" at height {row['height']}" if "height" in row else ""
        pid = f" (proposal {row['proposal_id']})" if "proposal_id" in row else ""
        stdout().print(f"{what}: tx {row['tx_id']} {row['status']}{where}{pid}")


# -- node status, LPP table, evidence ----------------------------------------------------------
def node_status(st: dict[str, Any]) -> None:
    keys = ("name", "chain_id", "height", "head", "tree_size", "tree_root", "round", "mempool")
    rows: list[tuple[str, str]] = [(k, str(st[k])) for k in keys if k in st]
    peers = st.get("peers")
    if isinstance(peers, dict):
        rows.append(("peers", " ".join(f"{n}:{'up' if up else 'down'}"
                                       for n, up in sorted(peers.items()))))
    if not stdout_is_terminal():
        rows_out(("field", "value"), rows)
        return
    table = Table(show_header=False, box=None)
    for k, v in rows:
        table.add_row(k, v)
    stdout().print(table)


def lpp_rows(table: LppTable) -> list[dict[str, Any]]:
    """The LPP table as JSON-ready rows (prices in euros)."""
    return [
        {
            "code": e.code,
            "label": e.label,
            "category": e.category,
            "age_group": e.age_group,
            "class": e.klass,
            "max_price": format_cents(e.max_price_cents) if e.max_price_cents is not None else None,
            "amo_base": format_cents(e.amo_base_cents) if e.amo_base_cents is not None else None,
        }
        for e in table
    ]


def lpp_list(rows: list[dict[str, Any]], version: str, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    rows_out(("code", "label", "class", "category", "age", "max price", "AMO base"),
             [(r["code"], r["label"], r["class"] or "", r["category"], r["age_group"],
               r["max_price"] or "", r["amo_base"] or "") for r in rows],
             f"LPP table {version} ({len(rows)} codes)")


def _short(value: Any, wide: bool) -> str:
    return "nil" if value is None else short_id(value, wide)


def evidence_list(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"evidence": rows}, sort_keys=True))
        return
    if not rows:
        click.echo("no equivocation recorded", err=not stdout_is_terminal())
        return
    wide = fmt == "wide"
    rows_out(("validator", "height", "round", "type", "first value", "second value",
              "recorded at", "tx"),
             [(f"{r.get('validator')} {r.get('name')}", r.get("height"), r.get("round"),
               r.get("type"), _short(r.get("first_value"), wide),
               _short(r.get("second_value"), wide), r.get("recorded_height"),
               _short(r.get("tx_id"), wide)) for r in rows])


# -- statistics --------------------------------------------------------------------------------
def stats_tables(st: Stats, from_height: int, end: int) -> None:
    """``tpledger stats`` as tables: per LPP code, class and month, then per payer."""
    out = stdout()
    out.print(f"heights {from_height}..{end}: {st.claims} claims, "
              f"{format_cents(st.claimed_cents)} EUR claimed, {st.cancels} cancelled")
    for title, counters in (("LPP code", st.by_lpp), ("class", st.by_class),
                            ("month", st.by_month)):
        t = Table(title, "lines/claims", "qty", "EUR")
        for k, v in sorted(counters.items()):
            t.add_row(k, str(v.count), str(v.qty), format_cents(v.cents))
        out.print(t)
    t = Table("payer", "claims", "asked", "accepted", "rejected", "approved", "payments", "paid")
    for org, p in sorted(st.by_payer.items()):
        t.add_row(org, str(p.claims), format_cents(p.asked_cents), str(p.accepted),
                  str(p.rejected), format_cents(p.approved_cents), str(p.payments),
                  format_cents(p.paid_cents))
    out.print(t)


# -- governance --------------------------------------------------------------------------------
def _action_cell(a: Any) -> str:
    if not isinstance(a, dict):
        return str(a)
    parts = [str(a.get("op", "?"))]
    parts += [str(a[k]) for k in ("org", "version", "effective") if a.get(k) not in (None, "")]
    return ":".join(parts)


def _ballots(p: dict[str, Any]) -> str:
    yes, no = p.get("yes") or [], p.get("no") or []
    return f"yes {','.join(map(str, yes)) or '-'} / no {','.join(map(str, no)) or '-'}"


def proposals(rows: list[dict[str, Any]], nxt: str | None, fmt: str) -> None:
    """``gov list``: one row per proposal."""
    if fmt == "json":
        print_json({"proposals": rows, "next": nxt})
        return
    wide = fmt == "wide"
    rows_out(("proposal", "proposer", "status", "actions", "ballots", "expires", "outcome"),
             [(short_id(p.get("proposal_id"), wide), p.get("proposer"), p.get("status"),
               " ".join(_action_cell(a) for a in p.get("actions") or []), _ballots(p),
               p.get("expires_at", p.get("expires_at_ms")), p.get("outcome") or "")
              for p in rows], f"{len(rows)} proposals")
    if nxt is not None:
        click.echo(f"next page: --after {nxt}", err=not stdout_is_terminal())


def proposal(p: dict[str, Any], fmt: str) -> None:
    """``gov show``: one proposal, one field a row (its actions one row each)."""
    if fmt == "json":
        print_json(p)
        return
    rows: list[tuple[str, str]] = [(k, _cell(p.get(k))) for k in (
        "proposal_id", "proposer", "status", "outcome", "created_height", "closed_height",
        "expires_at") if p.get(k) not in (None, "")]
    rows.append(("ballots", _ballots(p)))
    rows.extend((f"action {i}", _action_cell(a))
                for i, a in enumerate(p.get("actions") or [], start=1))
    rows_out(("field", "value"), rows)


def tariff_version(version: int, effective: str, rows: list[dict[str, Any]], fmt: str) -> None:
    """``lpp list --at DATE``: the table in force on that date, from the ledger."""
    if fmt == "json":
        print_json({"version": version, "effective": effective, "codes": rows})
        return
    lpp_list(rows, f"v{version} in force from {effective}", fmt)


# -- participants (WP4) ---------------------------------------------------------------------
def _ids_cell(ids: Any) -> str:
    if not isinstance(ids, dict):
        return ""
    return " ".join(f"{k.upper()} {v}" for k, v in sorted(ids.items()) if v)


def participant_record(body: dict[str, Any], wide: bool = False) -> None:
    """A participant's registry record, then its key history (one row per change)."""
    out = stdout()
    out.print(f"{body.get('org')}  role {body.get('role')}  status {body.get('status')}  "
              f"governed by {body.get('gov_org') or '-'}  since height "
              f"{body.get('since_height')}")
    out.print(f"  ids      {_ids_cell(body.get('ids')) or '-'}")
    out.print(f"  ed25519  {body.get('ed25519')}")
    out.print(f"  x25519   {body.get('x25519')}")
    rows = [(h.get("height"), h.get("op"), short_id(h.get("ed25519"), wide),
             *(("genesis", "genesis") if h.get("height") == 0 else  # listed in genesis.json
               (short_id(h.get("signer"), wide), short_id(h.get("tx_id"), wide))))
            for h in body.get("history") or [] if isinstance(h, dict)]
    rows_out(("height", "change", "ed25519", "signed by", "tx"), rows, "key history")


def participants_table(rows: list[dict[str, Any]], wide: bool = False) -> None:
    rows_out(("org", "role", "status", "governed by", "identifiers", "ed25519", "since"),
             [(r.get("org"), r.get("role"), r.get("status"), r.get("gov_org") or "-",
               _ids_cell(r.get("ids")), short_id(r.get("ed25519"), wide),
               r.get("since_height")) for r in rows],
             f"{len(rows)} participants")


__all__ = [
    "claim_state",
    "claim_summary",
    "claims_table",
    "cluster_summary",
    "euros",
    "evidence_list",
    "input_error",
    "lpp_list",
    "lpp_rows",
    "node_status",
    "one_line",
    "owed_cell",
    "participant_record",
    "participants_table",
    "print_json",
    "proposal",
    "proposals",
    "report_verdict",
    "rows_out",
    "short_id",
    "stats_tables",
    "stderr",
    "stdout",
    "stdout_is_terminal",
    "submitted_claims",
    "tariff_version",
    "tx_row",
    "wide_stdout",
]
