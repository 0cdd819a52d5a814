"""docs/walkthrough.md is the source of truth: every ```sh block after the set-up runs, in page
order, in bash against a real 4-validator cluster, and each command's exit code and key lines
must be what the page says.

Conventions of the page (docs/walkthrough.md says them too):
- a command is a line (``\\``-continued lines and ``<<'EOF'`` here-documents join it);
- the ``# …`` lines right under a command are its key lines, each found in its stdout or stderr
  (``…`` stands for any text, hex ids and numbers match any hex id or number), and
  ``(exit N)`` in them is its exit code; without it the command must exit 0;
- ``ID`` is the claim submitted in section 1; ``$N`` and ``127.0.0.1:700I`` are the nodes;
- ``text`` blocks are illustrations and do not run; the first ``sh`` block (set-up) is replaced by
  the test's own cluster and must stay the set-up the test knows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tpledger.cli.cluster import LocalCluster

pytestmark = [pytest.mark.cluster]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"
SETUP = [
    "tpledger cluster init ./c --validators 4 --base-port 7000",
    "tpledger cluster up ./c",
    "N=http://127.0.0.1:7000",
]
TIMEOUT_S = 60
EXIT = re.compile(r"\(exit (\d+)\)")
CLAIM_ID = re.compile(r"claim ([0-9a-f]{64}) committed")


@dataclass(frozen=True)
class Step:
    command: str
    expect: tuple[str, ...]  # key lines, as written on the page
    exit_code: int


def sh_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    cur: list[str] | None = None
    for line in text.splitlines():
        if cur is None and line.strip() == "```sh":
            cur = []
        elif cur is not None and line.strip() == "```":
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    assert cur is None, "docs/walkthrough.md: an unclosed ```sh block"
    return blocks


def parse_steps(lines: list[str]) -> list[Step]:
    steps: list[Step] = []
    cmd: list[str] = []
    expect: list[str] = []
    heredoc: str | None = None

    def flush() -> None:
        if cmd:
            exits = [int(m.group(1)) for e in expect for m in EXIT.finditer(e)]
            steps.append(Step("\n".join(cmd), tuple(expect), exits[0] if exits else 0))
        cmd.clear()
        expect.clear()

    for line in lines:
        if heredoc is not None:
            cmd.append(line)
            heredoc = None if line == heredoc else heredoc
        elif cmd and cmd[-1].endswith("\\"):
            cmd.append(line)
        elif line.startswith("#"):
            assert cmd, f"docs/walkthrough.md: key line {line!r} under no command"
            expect.append(line.lstrip("# ").rstrip())
        elif line.strip():
            flush()
            cmd.append(line)
            m = re.search(r"<<'(\w+)'", line)
            heredoc = m.group(1) if m else None
    flush()
    return steps


def key_line_pattern(expected: str) -> re.Pattern[str]:
    text = EXIT.sub("", expected).strip()
    parts = re.split(r"(…|\b[0-9a-f]*[0-9][0-9a-f]*\b)", text)
    rx = ""
    for p in parts:
        if p == "…":
            rx += ".*"
        elif re.fullmatch(r"[0-9a-f]*[0-9][0-9a-f]*", p or "x"):
            rx += "[0-9a-f]+" if re.search("[a-f]", p) else r"\d+"
        else:
            rx += re.escape(p)
    return re.compile(rx)


def page_steps() -> list[Step]:
    blocks = sh_blocks(PAGE.read_text())
    assert blocks, "docs/walkthrough.md has no ```sh block"
    assert [ln.split("#")[0].strip() for ln in blocks[0] if ln.strip()] == SETUP, (
        "the walkthrough's set-up changed: update SETUP in this test with the page")
    return [s for b in blocks[1:] for s in parse_steps(b)]


def test_page_parses_into_commands_with_key_lines() -> None:
    steps = page_steps()
    assert len(steps) >= 20
    assert any(s.exit_code == 4 for s in steps)  # the page shows refusals, and the test runs them
    assert key_line_pattern("claim a4613d10…5aea committed at height 7").search(
        "claim 0a" + "1" * 62 + " committed at height 12")
    assert not key_line_pattern("error: forbidden").search("error: the ledger refused: wrong_org")


def _concrete(cmd: str, urls: list[str], claim_id: str) -> str:
    for i, url in enumerate(urls):
        cmd = cmd.replace(f"http://127.0.0.1:{7000 + i}", url)
    return re.sub(r"\bID\b", claim_id, cmd)


def _run(step: Step, cwd: Path, env: dict[str, str], claim_id: str,
         urls: list[str]) -> tuple[int, str]:
    p = subprocess.run(["bash", "-c", _concrete(step.command, urls, claim_id)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    return p.returncode, p.stdout + p.stderr


def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = page_steps()
    with LocalCluster(tmp_path / "c", validators=4, startup_timeout_s=60) as cluster:
        env = {**os.environ, "N": cluster.urls[0],
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        for var in ("TPLEDGER_NODE", "TPLEDGER_KEY", "TPLEDGER_CA", "TPLEDGER_GENESIS",
                    "TPLEDGER_PROFILE", "TPLEDGER_CONFIG"):
            env.pop(var, None)
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no profile file: the page's flags only
        claim_id = "ID"
        for step in steps:
            rc, out = _run(step, tmp_path, env, claim_id, cluster.urls)
            where = f"docs/walkthrough.md: `{step.command}` answered (exit {rc}):\n{out}"
            assert rc == step.exit_code, where
            for e in step.expect:
                assert key_line_pattern(e).search(out), f"{where}\nwithout the key line {e!r}"
            m = CLAIM_ID.search(out)
            if m and claim_id == "ID":
                claim_id = m.group(1)
