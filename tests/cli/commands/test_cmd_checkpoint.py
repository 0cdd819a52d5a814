"""``tpledger checkpoint``: verify and prove consistency offline, answering through the one
verdict helper (JSON body and exit 1, or one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import ENTRIES, assert_one_line_error, cp
from tests.ledger.helpers import World
from tpledger.cli.main import run
from tpledger.ledger.merkle import consistency_path
from tpledger.ledger.proofs import ConsistencyProof


@pytest.fixture()
def files(world: World, tmp_path: Path) -> dict[str, Path]:
    out = {"genesis": tmp_path / "genesis.json"}
    world.genesis.save(out["genesis"])
    for name, (height, size) in {"c1": (1, 5), "c2": (2, 9), "c2b": (3, 9)}.items():
        out[name] = tmp_path / f"{name}.ckp"
        out[name].write_bytes(cp(world, height, size).to_bytes())
    return out


def test_consistency_offline(world: World, files: dict[str, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    g = ["--genesis", str(files["genesis"])]
    # same tree size: nothing to fetch, no node needed
    assert run(["checkpoint", "consistency", str(files["c2"]), str(files["c2b"]), *g,
                "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["ok"] is True and (body["old_size"], body["new_size"]) == (9, 9)
    # with a proof file
    proof = tmp_path / "p.cns"
    proof.write_bytes(ConsistencyProof(cp(world, 1, 5), cp(world, 2, 9),
                                       tuple(consistency_path(ENTRIES[:9], 5))).to_bytes())
    assert run(["checkpoint", "consistency", str(files["c1"]), str(files["c2"]), *g,
                "--proof", str(proof)]) == 0
    assert capsys.readouterr().out.startswith("consistent: ")
    # a path that does not link the roots: refused, as JSON and as one line (exit 7, invalid
    # proof; 1 before issue 14)
    proof.write_bytes(ConsistencyProof(cp(world, 1, 5), cp(world, 2, 9), tuple(
        consistency_path([b"x" + e for e in ENTRIES[:9]], 5))).to_bytes())
    bad = ["checkpoint", "consistency", str(files["c1"]), str(files["c2"]), *g, "--proof",
           str(proof)]
    assert run([*bad, "--json"]) == 7
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert run(bad) == 7
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "not consistent (" in err


def test_consistency_usage(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    g = ["--genesis", str(files["genesis"])]
    assert run(["checkpoint", "consistency", str(files["c1"]), str(files["c2"]), *g]) == 2
    assert run(["checkpoint", "consistency", str(files["c1"]), str(files["c2"]), *g,
                "--node", "http://127.0.0.1:9", "--proof", "x"]) == 2
    assert "give --node or --proof" in capsys.readouterr().err


def test_checkpoint_verify(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["checkpoint", "verify", str(files["c1"]), "--genesis",
                str(files["genesis"])]) == 0
    assert capsys.readouterr().out.startswith("valid: height 1, tree size 5")
