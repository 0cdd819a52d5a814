"""The genesis ceremony: keys generated per organisation in separate directories, the genesis
assembled from public files only, and a real 4-node cluster started from the result."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import tpledger.cli.ceremony as ceremony
from tests.cli.helpers import assert_one_line_error
from tests.deploy.helpers import commit
from tests.node.conftest import level_nodes, make_claims
from tpledger.cli.cluster import (
    PARTICIPANTS,
    LocalCluster,
    free_ports,
    validator_orgs,
    write_layout,
)
from tpledger.cli.main import cli, run
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile

ORGS = validator_orgs(4)  # federation, insurer-a, insurer-b, cnam
T0_MS = 1_767_225_600_000


def ceremony_dirs(tmp_path: Path) -> tuple[list[Path], list[Path], dict[str, Path]]:
    """Each org generates in its own directory: validator public files, member public files,
    and each org's directory."""
    dirs: dict[str, Path] = {}
    vals: list[Path] = []
    for i, org in enumerate(ORGS):
        dirs[org] = tmp_path / "orgs" / org
        assert run(["keygen", org, "--validator", f"v{i}", "-o", str(dirs[org])]) == 0
        vals.append(dirs[org] / f"v{i}.pub.json")
    members: list[Path] = []
    for org, role in PARTICIPANTS:
        dirs.setdefault(org, tmp_path / "orgs" / org)
        assert run(["keygen", org, "--role", role, "-o", str(dirs[org])]) == 0
        members.append(dirs[org] / f"{org}.pub.json")
    return vals, members, dirs


def assemble_args(vals: list[Path], members: list[Path], out: Path) -> list[str]:
    args = ["genesis", "assemble", "--chain-id", "ceremony-test", "--genesis-time-ms",
            str(T0_MS), "-o", str(out)]
    for v in vals:
        args += ["--validator", str(v)]
    for m in members:
        args += ["--member", str(m)]
    return args


def test_keygen_files_modes_and_no_secret_in_public(tmp_path: Path) -> None:
    vals, members, dirs = ceremony_dirs(tmp_path)
    for pub in vals + members:
        body = json.loads(pub.read_text())
        assert not set(body) & {"ed25519_seed", "x25519_secret"}
        secret = pub.with_name(pub.name.replace(".pub.json", ".key"))
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert KeyFile.load(secret).signer.public.hex() == body["ed25519"]
    assert stat.S_IMODE(dirs["federation"].stat().st_mode) == 0o700
    assert json.loads(vals[0].read_text())["validator"] == "v0"
    # each org's directory holds only its own secrets
    for org, d in dirs.items():
        assert {KeyFile.load(k).org for k in d.glob("*.key")} == {org}


def test_assemble_prints_sha256_and_is_deterministic(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    vals, members, _ = ceremony_dirs(tmp_path)
    capsys.readouterr()
    out1, out2 = tmp_path / "g1.json", tmp_path / "g2.json"
    assert run(assemble_args(vals, members, out1)) == 0
    printed = capsys.readouterr().out.split()[0]
    assert printed == hashlib.sha256(out1.read_bytes()).hexdigest()
    assert run(assemble_args(vals, members, out2)) == 0  # a second party, same inputs
    assert out2.read_bytes() == out1.read_bytes()
    g = Genesis.load(out1)
    assert [v.name for v in g.validators] == ["v0", "v1", "v2", "v3"]
    assert [v.org for v in g.validators] == ORGS
    assert [p.org for p in g.participants] == [o for o, _ in PARTICIPANTS]
    assert run(assemble_args(vals, members, out1)) == 1  # never overwritten


def test_assemble_refuses_a_secret_key_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    vals, members, dirs = ceremony_dirs(tmp_path)
    capsys.readouterr()
    leaked = dirs["optic-paris"] / "optic-paris.key"
    rc = run(assemble_args(vals, [leaked, *members[1:]], tmp_path / "g.json"))
    err = capsys.readouterr().err
    assert rc == 1 and "holds a SECRET key" in err
    assert_one_line_error(err)
    assert not (tmp_path / "g.json").exists()


def test_public_file_with_secret_fields_caught_and_broken_variant(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A public file with a secret pasted in is refused; without the check it would be
    assembled, carrying one organisation's secret to the assembler."""
    vals, members, dirs = ceremony_dirs(tmp_path)
    kf = json.loads((dirs["cnam"] / "cnam.key").read_text())
    body = json.loads(members[-1].read_text()) | {"ed25519_seed": kf["ed25519_seed"]}
    members[-1].write_text(json.dumps(body))
    with pytest.raises(ceremony.CliError, match="SECRET"):
        ceremony.assemble("x", members, vals, T0_MS)
    monkeypatch.setattr(ceremony, "SECRET_FIELDS", ())
    assert len(ceremony.assemble("x", members, vals, T0_MS).participants) == len(members)


@pytest.mark.parametrize("case", ["validator_as_member", "member_as_validator", "dup_org",
                                  "bad_json", "no_validator"])
def test_assemble_refuses_bad_inputs(tmp_path: Path, case: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    vals, members, _ = ceremony_dirs(tmp_path)
    if case == "validator_as_member":
        members = [*members, vals[0]]
    elif case == "member_as_validator":
        vals = [*vals, members[0]]
    elif case == "dup_org":
        members = [*members, members[0]]
    elif case == "bad_json":
        members[0].write_text("{not json")
    else:
        vals = []
    capsys.readouterr()
    assert run(assemble_args(vals, members, tmp_path / "g.json")) == 1
    assert_one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "g.json").exists()


def test_keygen_usage_and_overwrite(tmp_path: Path) -> None:
    assert run(["keygen", "cnam", "-o", str(tmp_path)]) == 2  # neither --role nor --validator
    assert run(["keygen", "cnam", "--role", "cnam", "--validator", "v0", "-o",
                str(tmp_path)]) == 2
    assert run(["keygen", "Bad Org", "--role", "cnam", "-o", str(tmp_path)]) == 1
    assert run(["keygen", "cnam", "--role", "cnam", "-o", str(tmp_path)]) == 0
    before = (tmp_path / "cnam.key").read_bytes()
    assert run(["keygen", "cnam", "--role", "cnam", "-o", str(tmp_path)]) == 1
    assert (tmp_path / "cnam.key").read_bytes() == before


@pytest.mark.parametrize("argv", [["keygen", "--help"], ["genesis", "assemble", "--help"],
                                  ["cluster", "restart", "--help"], ["cluster", "stop", "--help"]])
def test_help_has_example(argv: list[str]) -> None:
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 0 and "Example" in res.stdout


@pytest.mark.cluster
def test_four_nodes_run_from_assembled_files(tmp_path: Path) -> None:
    """Each validator host gets only its own validator key and the assembled genesis."""
    vals, members, dirs = ceremony_dirs(tmp_path)
    root = tmp_path / "run"
    root.mkdir()
    assert run(assemble_args(vals, members, root / "genesis.json")) == 0
    for i, org in enumerate(ORGS):
        (root / "nodes" / f"v{i}").mkdir(parents=True)
        shutil.copy2(dirs[org] / f"v{i}.key", root / "nodes" / f"v{i}" / "validator.key")
    (root / "keys").mkdir()
    clients = []
    for org, role in PARTICIPANTS:  # the clients' keys, for the test's own submissions
        shutil.copy2(dirs[org] / f"{org}.key", root / "keys" / f"{org}.key")
        clients.append({"org": org, "role": role, "key": f"keys/{org}.key"})
    write_layout(root, free_ports(4), "127.0.0.1", False, clients)
    with LocalCluster(root, startup_timeout_s=60) as lc:
        claims, _ = make_claims(lc, "optic-lyon", "mutuelle-b", 2, seed=7)
        commit(lc.client("optic-lyon", node=1), claims)
        level_nodes(lc.urls)  # committed through node 1, read on node 2
        with lc.client("mutuelle-b", node=2) as c:
            assert c.claim(claims[1].claim_id.hex())
