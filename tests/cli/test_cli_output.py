"""Output for people and for pipes: tab-separated rows with full ids when stdout is not a
terminal, cut ids on a terminal (full with -o wide), "pending decision" instead of "owed 0.00",
large tables fast; claim ids as unique prefixes and paged listings (stub node pages)."""

from __future__ import annotations

from typing import Any

import pytest

import tpledger.cli.render as render
from tpledger.cli.errors import CliError, UsageError
from tpledger.cli.lifecycle import list_claims, resolve_claim_id

BOX = set("─│┃┏┓┗┛┡┩━╇┼┌┐└┘")


def _row(i: int, status: str = "accepted", owed: int = 2400) -> dict[str, Any]:
    return {"claim_id": f"{i:064x}", "optician": "optic-paris", "insurer": "mutuelle-a",
            "status": status, "total_cents": 5457, "owed_cents": owed,
            "amo": {"status": "paid", "approved_cents": 1000, "paid_cents": 1000},
            "amc": {"status": "accepted", "approved_cents": 2400, "paid_cents": 0}}


def test_piped_table_is_tab_separated_with_full_ids(capsys: pytest.CaptureFixture[str]) -> None:
    render.claims_table([_row(1), _row(2)], "2 claims of optic-paris")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split("\t")[:4] == ["claim", "optician", "insurer", "status"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == [f"{1:064x}", f"{2:064x}"]
    assert not BOX & set(out) and "…" not in out
    assert err == "2 claims of optic-paris\n"  # stdout stays rows only


def test_terminal_table_cuts_ids_unless_wide(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(render, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "250")
    render.claims_table([_row(1)], "t")
    out = capsys.readouterr().out
    assert f"{1:064x}"[:16] + "…" in out and f"{1:064x}" not in out
    render.claims_table([_row(1)], "t", wide=True)
    assert f"{1:064x}" in capsys.readouterr().out


def test_undecided_claim_owes_pending_not_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert render.owed_cell(_row(1, "submitted", 0)) == render.PENDING
    assert render.owed_cell(_row(1, "partially_decided", 800)) == "8.00 + pending decision"
    assert render.owed_cell(_row(1, "paid", 0)) == "0.00"
    render.claim_state(_row(1, "submitted", 0))
    out = capsys.readouterr().out
    assert "owed\tpending decision" in out and "0.00 EUR" not in out.split("owed")[1]


@pytest.mark.parametrize("terminal", [False, True])
def test_ten_thousand_rows_never_go_through_rich(terminal: bool,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """9.5 s (40 s on this shared machine) through rich's Table before issue 14, 0.1 s as plain
    columns. Speed is not asserted here (a shared machine makes timed asserts flaky): the test
    pins what makes it fast, that a long table never builds a rich ``Table``."""
    monkeypatch.setattr(render, "stdout_is_terminal", lambda: terminal)

    def no_rich(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a 10,000-row table went through rich's Table")

    monkeypatch.setattr(render, "Table", no_rich)
    render.claims_table([_row(i) for i in range(10_000)], "t")
    out = capsys.readouterr().out
    assert len(out.splitlines()) >= 10_001 and not BOX & set(out)
    # the check can fail: a short table on a terminal does go through rich
    if terminal:
        with pytest.raises(AssertionError, match="rich"):
            render.claims_table([_row(0)], "t")


class StubNode:
    """Pages of ``GET /v1/claims`` as the node serves them (short pages, a next cursor)."""

    def __init__(self, ids: list[str], page: int = 3) -> None:
        self.ids, self.page, self.calls = sorted(ids), page, 0

    def claims_page(self, limit: int, after: str | None = None) -> tuple[list[dict[str, Any]],
                                                                          str | None]:
        self.calls += 1
        rest = [i for i in self.ids if after is None or i > after][: min(limit, self.page)]
        more = rest and rest[-1] != self.ids[-1]
        return [{"claim_id": i} for i in rest], rest[-1] if more else None


IDS = ["abcd" + "0" * 60, "abce" + "1" * 60, "abce" + "2" * 60, "ffff" + "3" * 60]


def test_prefix_resolution() -> None:
    node = StubNode(IDS)
    assert resolve_claim_id(node, "ABCD") == IDS[0]  # type: ignore[arg-type]
    assert resolve_claim_id(node, "abce2") == IDS[2]  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="ambiguous") as ei:
        resolve_claim_id(node, "abce")  # type: ignore[arg-type]
    assert IDS[1] in str(ei.value) and IDS[2] in str(ei.value)
    with pytest.raises(CliError, match="no claim id starts with 0123"):
        resolve_claim_id(node, "0123")  # type: ignore[arg-type]
    for bad in ("abc", "xyz1", "a" * 65):
        with pytest.raises(UsageError, match="64 hex"):
            resolve_claim_id(node, bad)  # type: ignore[arg-type]
    node.calls = 0
    assert resolve_claim_id(node, IDS[3].upper()) == IDS[3]  # type: ignore[arg-type]
    assert node.calls == 0  # a full id is never looked up


def test_paging_with_a_cursor() -> None:
    ids = [f"{i:064x}" for i in range(10)]
    node = StubNode(ids, page=3)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        rows, cursor = list_claims(node, lambda c: int(c["claim_id"], 16) % 2 == 0,  # type: ignore[arg-type]
                                   limit=2, after=cursor)
        seen += [r["claim_id"] for r in rows]
        if cursor is None:
            break
    assert seen == ids[::2]
    rows, cursor = list_claims(node, lambda c: True, limit=10)  # type: ignore[arg-type]
    assert len(rows) == 10 and cursor is None  # the last page names no next cursor
