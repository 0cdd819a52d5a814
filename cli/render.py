"""Everything the CLI prints: consoles, JSON lines, tables and the verdict of offline checks.

Commands compute, this module shows. Tables never hold a patient's identity: the claim rows
come from :func:`claim_summary` (no commitment, no opening).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from cli.errors import CliError
from cli.euros import format_cents

if TYPE_CHECKING:
    from cli.block_stats import Stats
    from cli.cluster import ClusterInfo
    from ledger.lpp import LppTable

LOG_WIDTH = 120  # columns when stdout is a log rather than a terminal (no truncated table)


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


def print_json(obj: Any) -> None:
    """One JSON document on one line of stdout (keys sorted)."""
    click.echo(json.dumps(obj, sort_keys=True))


def one_line(text: str) -> str:
    """``text`` on one line (an error message never spans lines)."""
    return " ".join(str(text).split()) or "(no message)"


def report_verdict(ctx: click.Context, as_json: bool, ok: bool, body: dict[str, Any],
                   invalid: str, valid: str) -> None:
    """How an offline verification answers: the JSON body (exit 1 when invalid), or one line
    (the ``invalid`` error, exit 1; else ``valid``)."""
    if as_json:
        print_json(body)
        if not ok:
            ctx.exit(1)
        return
    if not ok:
        raise CliError(invalid)
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
        out.print(f"claim {r['claim_id']} {r['status']}{extra}{why}")
        return
    table = Table("where", "claim id", "status", "height", "reason")
    for r in rows:
        reason = f"{r['code']}: {r.get('message', '')}" if "code" in r else ""
        table.add_row(r["where"], r["claim_id"], r["status"], str(r.get("height", "")), reason)
    out.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def claim_state(state: dict[str, Any]) -> None:
    """``claim status``: the ledger state of one claim, one field a row."""
    table = Table(show_header=False, box=None)
    for k in ("claim_id", "optician", "insurer", "status", "height"):
        table.add_row(k, str(state.get(k, "")))
    for k in ("total_cents", "owed_cents"):
        if isinstance(state.get(k), int):
            table.add_row(k.removesuffix("_cents"), format_cents(state[k]) + " EUR")
    for share in ("amo", "amc"):
        s = state.get(share)
        if isinstance(s, dict):
            parts = [str(s.get("status", ""))]
            for k in ("asked_cents", "approved_cents", "paid_cents"):
                if isinstance(s.get(k), int):
                    parts.append(f"{k.removesuffix('_cents')} {format_cents(s[k])}")
            table.add_row(share, ", ".join(parts))
    if state.get("cancelled"):
        table.add_row("cancelled", "yes")
    stdout().print(table)


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


def claims_table(rows: list[dict[str, Any]], title: str) -> None:
    """``claim list`` / ``claim inbox``: one row per claim summary."""
    t = Table("claim", "optician", "insurer", "status", "AMO", "AMC", "total", "owed",
              title=title)
    for r in rows:
        shares = [_share_cell(r.get(share) or {}) for share in ("amo", "amc")]
        t.add_row(str(r["claim_id"])[:16] + "…", str(r.get("optician")), str(r.get("insurer")),
                  str(r.get("status")), *shares, euros(r.get("total_cents")),
                  euros(r.get("owed_cents")))
    stdout().print(t)


def tx_row(row: dict[str, Any], as_json: bool, what: str) -> None:
    """One sent transaction (a refusal is reported by the caller, as an error)."""
    if as_json:
        print_json(row)
    elif row["status"] != "rejected":
        where = f" at height {row['height']}" if "height" in row else ""
        stdout().print(f"{what}: tx {row['tx_id']} {row['status']}{where}")


# -- node status, LPP table, evidence ----------------------------------------------------------
def node_status(st: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for k in ("name", "chain_id", "height", "head", "tree_size", "tree_root", "round", "mempool"):
        if k in st:
            table.add_row(k, str(st[k]))
    peers = st.get("peers")
    if isinstance(peers, dict):
        table.add_row("peers", " ".join(f"{n}:{'up' if up else 'down'}"
                                        for n, up in sorted(peers.items())))
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


def lpp_list(rows: list[dict[str, Any]], version: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    t = Table("code", "label", "class", "category", "age", "max price", "AMO base",
              title=f"LPP table {version} ({len(rows)} codes)")
    for r in rows:
        t.add_row(r["code"], r["label"], r["class"] or "", r["category"], r["age_group"],
                  r["max_price"] or "", r["amo_base"] or "")
    stdout().print(t)


def _short(value: Any) -> str:
    return "nil" if value is None else f"{str(value)[:16]}…"


def evidence_list(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"evidence": rows}, sort_keys=True))
        return
    out = stdout()
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


__all__ = [
    "claim_state",
    "claim_summary",
    "claims_table",
    "cluster_summary",
    "euros",
    "evidence_list",
    "lpp_list",
    "lpp_rows",
    "node_status",
    "one_line",
    "print_json",
    "report_verdict",
    "stats_tables",
    "stderr",
    "stdout",
    "submitted_claims",
    "tx_row",
    "wide_stdout",
]
