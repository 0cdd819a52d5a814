"""The genesis ceremony with governance: each governing organisation generates its admin key
alone (``keygen --admin``: a file of its own), participants put their governing organisation
and professional identifiers in their public files, ``genesis assemble --admin`` builds a
version-2 genesis with the policy."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import tpledger.cli.ceremony as ceremony
from tests.cli.helpers import assert_one_line_error
from tpledger.cli.cluster import GOV_ORGS, PARTICIPANT_GOVERNANCE, PARTICIPANTS
from tpledger.cli.main import run
from tpledger.ledger.genesis import Genesis, parse_day
from tpledger.ledger.keys import KeyFile

T0_MS = 1_767_225_600_000
ID_OPTIONS = ("siret", "rpps", "billing", "amc")


def _member_args(org: str) -> list[str]:
    gov_org, ids = PARTICIPANT_GOVERNANCE[org]
    args = ["--gov-org", gov_org] if gov_org else []
    for name in ID_OPTIONS:
        if getattr(ids, name):
            args += [f"--{name}", getattr(ids, name)]
    return args


def gov_ceremony(tmp_path: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Validator, member and admin public files, each made in its organisation's directory."""
    orgs = tmp_path / "orgs"
    vals = []
    for i in range(4):
        assert run(["keygen", f"op{i}", "--validator", f"v{i}", "-o", str(orgs / f"op{i}")]) == 0
        vals.append(orgs / f"op{i}" / f"v{i}.pub.json")
    members = []
    for org, role in PARTICIPANTS:
        assert run(["keygen", org, "--role", role, *_member_args(org), "-o",
                    str(orgs / org)]) == 0
        members.append(orgs / org / f"{org}.pub.json")
    admins = []
    for name, roles in GOV_ORGS:
        assert run(["keygen", "--admin", name, "--roles", ",".join(roles), "-o",
                    str(orgs / name / "admin")]) == 0
        admins.append(orgs / name / "admin" / f"{name}.admin.pub.json")
    return vals, members, admins


def _assemble(vals: list[Path], members: list[Path], admins: list[Path], out: Path,
              *extra: str) -> int:
    args = ["genesis", "assemble", "--chain-id", "gov-test", "--genesis-time-ms", str(T0_MS),
            "-o", str(out), *extra]
    for flag, files in (("--validator", vals), ("--member", members), ("--admin", admins)):
        for f in files:
            args += [flag, str(f)]
    return run(args)


def test_admin_keygen_writes_a_separate_admin_file(tmp_path: Path) -> None:
    assert run(["keygen", "--admin", "federation", "--roles", "optician", "-o",
                str(tmp_path)]) == 0
    secret, public = tmp_path / "federation.admin.json", tmp_path / "federation.admin.pub.json"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    kf = KeyFile.load(secret)
    body = json.loads(public.read_text())
    assert (kf.org, kf.role) == ("federation", "admin")
    assert body["role"] == "admin" and body["roles"] == ["optician"]
    assert body["ed25519"] == kf.signer.public.hex()
    assert not set(body) & set(ceremony.SECRET_FIELDS)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".key"] == []  # no operational key


@pytest.mark.parametrize("argv", [
    ["keygen", "federation", "--admin", "--role", "optician", "--roles", "optician"],
    ["keygen", "federation", "--admin"],  # no --roles
    ["keygen", "federation", "--role", "optician", "--roles", "optician"],
])
def test_admin_keygen_usage(tmp_path: Path, argv: list[str]) -> None:
    assert run([*argv, "-o", str(tmp_path)]) == 2


def test_keygen_checks_identifiers(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIRET with one digit changed fails its Luhn key; an optician without an RPPS or a
    billing number is refused. Broken variant: without the role check, keygen accepts it."""
    good = ["keygen", "optic-x", "--role", "optician", "--siret", "75200100800016"]
    flipped = [*good[:-1], "75200100800026"]
    assert run([*flipped, "--rpps", "10001234565", "-o", str(tmp_path)]) == 1
    assert "SIRET" in capsys.readouterr().err
    assert run([*good, "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "RPPS or a billing number" in err
    assert_one_line_error(err)
    assert run(["keygen", "mutuelle-x", "--role", "insurer", "--amc", "12", "-o",
                str(tmp_path)]) == 1
    assert not list(tmp_path.iterdir())  # nothing written for a refused key
    monkeypatch.setattr(ceremony, "check_identifiers", lambda role, ids: None)
    assert run([*good, "-o", str(tmp_path)]) == 0


def test_assemble_governance_genesis(tmp_path: Path) -> None:
    vals, members, admins = gov_ceremony(tmp_path)
    out = tmp_path / "genesis.json"
    assert _assemble(vals, members, admins, out, "--threshold", "2", "--tariff-publisher",
                     "cnam", "--lpp-v1-effective", "2024-01-01") == 0
    g = Genesis.load(out)
    assert [(o.name, o.roles) for o in g.gov_orgs] == list(GOV_ORGS)
    assert (g.policy.threshold, g.policy.tariff_publisher) == (2, "cnam")
    assert g.policy.lpp_v1_effective_day == parse_day("2024-01-01")
    for p in g.participants:
        assert (p.gov_org, p.ids) == PARTICIPANT_GOVERNANCE[p.org]
    for name, _ in GOV_ORGS:
        admin = KeyFile.load(tmp_path / "orgs" / name / "admin" / f"{name}.admin.json")
        org = next(o for o in g.gov_orgs if o.name == name)
        assert org.admin_ed25519 == admin.signer.public
    # the default threshold is a majority; the default publisher is the quorum
    assert _assemble(vals, members, admins, tmp_path / "g2.json") == 0
    g2 = Genesis.load(tmp_path / "g2.json")
    assert (g2.policy.threshold, g2.policy.tariff_publisher) == (2, "quorum")
    assert g2.policy.lpp_v1_effective_day == T0_MS // 86_400_000


@pytest.mark.parametrize("case", ["admin_as_member", "member_as_admin", "threshold_too_high",
                                  "unknown_publisher", "member_without_ids", "bad_date",
                                  "role_not_governed"])
def test_assemble_refuses_bad_governance(tmp_path: Path, case: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    vals, members, admins = gov_ceremony(tmp_path)
    extra: list[str] = []
    if case == "admin_as_member":
        members = [*members, admins[0]]
    elif case == "member_as_admin":
        admins = [*admins, members[0]]
    elif case == "threshold_too_high":
        extra = ["--threshold", "4"]
    elif case == "unknown_publisher":
        extra = ["--tariff-publisher", "insurer-b"]
    elif case == "bad_date":
        extra = ["--lpp-v1-effective", "2024-13-01"]
    elif case == "role_not_governed":  # the federation's admin does not govern insurers
        body = json.loads(members[2].read_text()) | {"gov_org": "federation"}
        members[2].write_text(json.dumps(body))
    else:  # a genesis with governance needs every participant's identifiers
        assert run(["keygen", "optic-z", "--role", "optician", "-o",
                    str(tmp_path / "z")]) == 0
        members = [*members, tmp_path / "z" / "optic-z.pub.json"]
    capsys.readouterr()
    assert _assemble(vals, members, admins, tmp_path / "g.json", *extra) in (1, 2)
    assert_one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "g.json").exists()


def test_public_file_with_bad_identifiers_refused(tmp_path: Path) -> None:
    """A public file edited after keygen (identifiers no longer valid) is refused at assembly."""
    vals, members, admins = gov_ceremony(tmp_path)
    body = json.loads(members[0].read_text())
    body["ids"]["siret"] = body["ids"]["siret"][:-1] + str((int(body["ids"]["siret"][-1]) + 1) % 10)
    members[0].write_text(json.dumps(body))
    with pytest.raises(ceremony.CliError, match="SIRET"):
        ceremony.assemble("x", members, vals, T0_MS, admins=admins)
