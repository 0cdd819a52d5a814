"""The exit-code table (one table: cli.errors.EXIT_CODES = --help = README) and the errors that
need no node: one-line usage errors (exit 2), validated choices, bad claims files, Ctrl-C."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

import tpledger.cli.render as render
from tests.cli.helpers import assert_one_line_error
from tpledger.cli.cluster import ClusterInfo
from tpledger.cli.errors import EXIT_CODES, Exit
from tpledger.cli.main import run
from tpledger.ledger.patient import make_test_birth_date, make_test_nir

CLOSED = "http://127.0.0.1:9"  # never contacted by a refused command (else: exit 6)
ROOT = Path(__file__).resolve().parents[2]


def test_codes_distinct_and_documented_once(capsys: pytest.CaptureFixture[str]) -> None:
    codes = [c for c, _ in EXIT_CODES]
    assert len(set(codes)) == len(codes) == len(Exit)
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    table = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+?) \|", readme, re.M)}
    assert set(table) == set(codes)  # the README's one table has every code
    for code, what in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(what)}$", out, re.M), (code, out)


@pytest.mark.parametrize(("argv", "needle"), [
    (["claim", "list", "--node", CLOSED, "--status", "payed"], "'payed' is not one of"),
    (["status", "--node", CLOSED, "--bogus"], "No such option '--bogus'"),
    (["status", "--node", CLOSED, "-o", "json", "--json"], None),
    (["status", "--node", CLOSED, "-o", "table", "--json"], "--json is -o json"),
    (["status", "--node", CLOSED, "-o", "box"], "'box' is not one of"),
    (["claim", "status", "zz-not-hex", "--node", CLOSED], "64 hex characters"),
    (["claim", "list", "--node", CLOSED, "--after", "abcd"], "--after takes the 64-hex"),
    (["claim", "pay", "ab" * 32, "--amount", "1,5", "--reference", "R", "--node", CLOSED],
     "--amount"),
    (["claim", "cancel", "ab" * 32, "--reason", "Bad Reason", "--node", CLOSED], "--reason"),
    (["status", "--node", "ftp://127.0.0.1:9"], "not an http(s) node URL"),
])
def test_usage_errors_are_one_line_exit_2(argv: list[str], needle: str | None,
                                          cluster_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    key = "optic-paris" if argv[1] in ("cancel", "list", "status") else "mutuelle-a"
    with_key = ["--key", str(cluster_dir / "keys" / f"{key}.key")] if argv[0] == "claim" else []
    rc = run([*argv, *with_key])
    err = capsys.readouterr().err
    if needle is None:  # -o json --json agree: the node is tried (unreachable)
        assert rc == Exit.UNREACHABLE
        return
    assert rc == Exit.USAGE, err
    assert_one_line_error(err)
    assert needle in err
    if "--status" in argv:
        assert "'paid'" in err and "'partially_decided'" in err  # the valid values, listed


def test_interrupted_is_130(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "lpp_rows", interrupt)
    assert run(["lpp", "list"]) == Exit.INTERRUPTED
    assert capsys.readouterr().err.endswith("error: interrupted\n")


def test_every_bad_jsonl_line_reported_nothing_sent(cluster_info: ClusterInfo, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import random

    rng = random.Random(5)
    nir, birth = make_test_nir(rng), make_test_birth_date(rng)

    refs = itertools.count()

    def rec(**over: object) -> str:
        r: dict[str, object] = {"ref": f"FAC-{next(refs)}", "insurer": "mutuelle-a",
                                "patient": {"nir": nir, "birth_date": birth},
                                "lines": [{"lpp": "2261874", "qty": 1, "amount": "12.04"}]}
        r.update(over)
        return json.dumps(r)

    f = tmp_path / "c.jsonl"
    f.write_text("\n".join([
        # a malformed insurer id is refused offline (an unknown one by the node's registry)
        rec(), "{not json", rec(), rec(insurer="No Body"), rec(lines=[]), "# comment", rec(),
        rec(patient={"nir": nir[:-1] + "x", "birth_date": birth}),
    ]) + "\n")
    key = str(cluster_info.client("optic-paris").key)
    rc = run(["claim", "submit", "--node", CLOSED, "--key", key, "--from-json", str(f)])
    out, err = capsys.readouterr()
    assert rc == Exit.USAGE  # not 6: the closed port was never tried
    lines = err.splitlines()
    assert [ln.split(":")[1].strip() for ln in lines[:-1]] == [
        "line 2", "line 4", "line 5", "line 8"]
    assert lines[-1] == "error: 4 bad claims; nothing was sent"
    assert out == "" and nir not in err and birth not in err


def test_show_identity_refused_unless_stdout_is_a_terminal(
        cluster_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["claim", "open", "ab" * 32, "--node", CLOSED, "--key",
            str(cluster_dir / "keys" / "mutuelle-a.key"), "--show-identity"]
    for extra in ([], ["--json"]):
        assert run([*argv, *extra]) == Exit.USAGE
        out, err = capsys.readouterr()
        assert out == "" and "terminal" in err
        assert_one_line_error(err)
    # On a terminal the refusal is gone: the (closed) node is then tried. This is the check
    # that refused above, not anything else.
    monkeypatch.setattr(render, "stdout_is_terminal", lambda: True)
    assert run(argv) == Exit.UNREACHABLE
