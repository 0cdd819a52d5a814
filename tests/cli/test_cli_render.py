"""What the CLI prints: the verdict of an offline check and the claim rows (no patient data)."""

from __future__ import annotations

import json

import click
import pytest

from tpledger.cli import render
from tpledger.cli.errors import CliError


def _verdict(ok: bool, as_json: bool) -> int:
    @click.command()
    @click.pass_context
    def cmd(ctx: click.Context) -> None:
        render.report_verdict(ctx, as_json, ok, {"ok": ok}, "bad thing", "good thing")

    rv = cmd.main(args=[], standalone_mode=False)
    return rv if isinstance(rv, int) else 0


def test_verdict_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert _verdict(True, as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    assert _verdict(False, as_json=True) == 7  # the body is printed, then exit 7 (invalid)
    assert json.loads(capsys.readouterr().out) == {"ok": False}
    assert _verdict(True, as_json=False) == 0
    assert capsys.readouterr().out == "good thing\n"
    with pytest.raises(CliError, match="bad thing"):
        _verdict(False, as_json=False)


def test_claim_rows_show_no_commitment_nor_opening(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    served = {"claim_id": "ab" * 32, "optician": "optic-paris", "insurer": "mutuelle-a",
              "status": "open", "total_cents": 5400, "owed_cents": 2400, "height": 3,
              "commitment": "cc" * 32, "sealed": {"mutuelle-a": "dd" * 40},
              "amc": {"status": "accepted", "asked_cents": 2400, "approved_cents": 2000,
                      "paid_cents": 500, "opening": "ee" * 8},
              "amo": {"status": "rejected", "reason_code": "not_covered"}}
    row = render.claim_summary(served)
    assert "commitment" not in row and "sealed" not in row and "opening" not in row["amc"]
    render.claims_table([row], "title")
    out = capsys.readouterr().out
    assert "accepted 5.00/20.00" in out and "rejected (not_covered)" in out
    assert "cc" * 8 not in out and "dd" * 8 not in out


def test_one_line() -> None:
    assert render.one_line("a\nb\t c") == "a b c"
    assert render.one_line("  ") == "(no message)"
