"""``tpledger gov`` and ``lpp publish|list --at``: parsing the admin's input, building and
signing the tx bodies, and usage errors that exit 2 before anything is sent (the node URL of
these tests answers nothing: a request would exit 6, not 2)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from tests.cli.helpers import assert_one_line_error
from tpledger.cli.bench import synthetic_shop
from tpledger.cli.client import NodeClient
from tpledger.cli.errors import CliError, Exit, UsageError
from tpledger.cli.governance import (
    build_ballot,
    build_propose,
    build_publish,
    fetch_tariff_at,
    fetch_tariff_version,
    format_day,
    latest_tariff_version,
    load_admin_key,
    load_table,
    parse_action_spec,
    parse_day,
    parse_duration_ms,
    parse_policy_file,
    release_of,
    rows_of,
    with_tariff_version,
)
from tpledger.cli.main import cli, run
from tpledger.ledger.genesis import Identifiers, check_identifiers, luhn_complete, luhn_ok, siret_ok
from tpledger.ledger.keys import KeyFile, Signer
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.registry import (
    ADD_ORG,
    PUBLISH_TARIFF,
    REMOVE_ORG,
    SET_ADMIN_KEY,
    SET_POLICY,
)
from tpledger.ledger.tx import GovBallot, GovPropose, LppPublish

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a request would exit 6 (unreachable)
CHAIN = "tpledger-test"
SEED_CSV = Path(__file__).resolve().parents[2] / "seeds" / "lpp_optique_v1.csv"


def write_table(path: Path, rows: int | None, plv_of: dict[str, str], extra: int = 0) -> Path:
    """The seed table CSV, cut to its first ``rows`` codes, with the price limits of
    ``plv_of`` (code -> cents) and ``extra`` more codes copied from the first one."""
    lines = SEED_CSV.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#") or ln.startswith("code,")]
    body = list(csv.reader(ln for ln in lines
                           if ln and not ln.startswith("#") and not ln.startswith("code,")))
    body = body[:rows]
    for cells in body:
        cells[5] = plv_of.get(cells[0], cells[5])
    body += [[f"{9000000 + i}", *body[0][1:]] for i in range(extra)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(body)
    path.write_text("\n".join(head) + "\n" + out.getvalue())
    return path


def _csv(tmp_path: Path, rows: int | None = None, plv_of: dict[str, str] | None = None) -> Path:
    """The seed table, cut to its first ``rows`` codes and with some price limits changed."""
    return write_table(tmp_path / "lpp.csv", rows, plv_of or {})


# -- values ----------------------------------------------------------------------------------
def test_dates_are_utc_days_since_epoch() -> None:
    assert parse_day("1970-01-01") == 0
    assert parse_day("2026-03-01") == 20513
    assert format_day(20513) == "2026-03-01"
    for bad in ("2026-02-30", "2026-3-1", "01/03/2026", "1969-12-31", "", "2026-03-01T00:00"):
        with pytest.raises(UsageError):
            parse_day(bad, "--effective")


def test_durations() -> None:
    assert parse_duration_ms("7d") == 7 * 86_400_000
    assert parse_duration_ms("90s") == 90_000
    assert parse_duration_ms("12h") == 12 * 3_600_000
    for bad in ("0d", "7", "d", "1w", "-1d", "1.5h", "9999999d"):
        with pytest.raises(UsageError):
            parse_duration_ms(bad)


# -- action specs ----------------------------------------------------------------------------
def test_add_org_with_a_hex_key_or_a_pub_file(tmp_path: Path) -> None:
    pub = Signer.generate().public
    a = parse_action_spec(f"add-org:insurer-b:{pub.hex()}:insurer")
    assert (a.op, a.org, a.admin_ed25519, a.roles) == (ADD_ORG, "insurer-b", pub, ("insurer",))
    f = tmp_path / "insurer-b.admin.pub.json"
    f.write_text(json.dumps({"org": "insurer-b", "admin_ed25519": pub.hex()}))
    b = parse_action_spec(f"add-org:insurer-b:{f}:insurer,auditor")
    assert b.admin_ed25519 == pub and b.roles == ("insurer", "auditor")


@pytest.mark.parametrize("spec", [
    "add-org:insurer-b:" + "ab" * 32,              # no roles
    "add-org:insurer-b:abcd:insurer",              # not a key, not a file
    "add-org:Insurer B:" + "ab" * 32 + ":insurer",  # not an org id
    "add-org:x:" + "ab" * 32 + ":a,b,c,d,e",        # more than 4 roles
    "remove-org:",
    "remove-org",
    "set-admin:cnam",
    "set-policy:/no/such/file.json",
    "publish-tariff:lpp.csv",                       # no date
    "publish-tariff:/no/such.csv@2026-03-01",
    "burn-it-all:now",
    "",
])
def test_bad_action_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_action_spec(spec)


def test_remove_org_and_set_admin() -> None:
    assert parse_action_spec("remove-org:mutuelle-x").op == REMOVE_ORG
    pub = Signer.generate().public
    a = parse_action_spec(f"set-admin:cnam:{pub.hex()}")
    assert (a.op, a.org, a.admin_ed25519) == (SET_ADMIN_KEY, "cnam", pub)


def test_set_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_text(json.dumps({"threshold": 2, "tariff_publisher": "cnam",
                             "max_claim_age_days": 730, "max_proposal_ttl": "7d",
                             "lpp_v1_effective": "2025-01-01"}))
    a = parse_action_spec(f"set-policy:{f}")
    assert a.op == SET_POLICY and a.policy is not None
    assert (a.policy.threshold, a.policy.tariff_publisher, a.policy.max_proposal_ttl_ms,
            a.policy.lpp_v1_effective_day) == (2, "cnam", 7 * 86_400_000, parse_day("2025-01-01"))
    for bad in ({"threshold": 2}, {"threshold": 0, "tariff_publisher": "cnam",
                                   "max_claim_age_days": 730, "max_proposal_ttl": "7d",
                                   "lpp_v1_effective": "2025-01-01"}, [1, 2], {"evil": 1}):
        f.write_text(json.dumps(bad))
        with pytest.raises(UsageError):
            parse_policy_file(f)


def test_publish_tariff_carries_the_full_table_and_its_digest(tmp_path: Path) -> None:
    table_csv = _csv(tmp_path, plv_of={"2261874": "1000"})
    a = parse_action_spec(f"publish-tariff:{table_csv}@2026-03-01", tariff_version=3)
    assert a.op == PUBLISH_TARIFF and a.tariff is not None
    rel = a.tariff
    assert (rel.version, rel.effective_day) == (3, parse_day("2026-03-01"))
    table = LppTable.load_csv(table_csv)
    assert rel.table_digest == table.digest() != LppTable.default().digest()
    back = rel.table()  # what the rules rebuild from the rows
    assert back.digest() == rel.table_digest
    entry = back.get("2261874")
    assert entry is not None and entry.max_price_cents == 1000


def test_a_parsed_tariff_action_renumbered_equals_one_parsed_with_that_version(
        tmp_path: Path) -> None:
    """gov propose parses each --action once and renumbers its tariff when the latest
    version is known: the same action, byte for byte, as parsing it with that version."""
    spec = f"publish-tariff:{_csv(tmp_path, plv_of={'2261874': '1000'})}@2026-03-01"
    parsed = parse_action_spec(spec)
    renumbered = with_tariff_version(parsed, 5)
    assert renumbered.encode() == parse_action_spec(spec, tariff_version=5).encode()
    assert renumbered.tariff is not None and renumbered.tariff.version == 5
    other = parse_action_spec("remove-org:mutuelle-x")
    assert with_tariff_version(other, 5) is other
    with pytest.raises(UsageError, match="version"):
        with_tariff_version(parsed, 2**32)


def test_rows_round_trip_the_seed_table() -> None:
    seed = LppTable.default()
    assert LppTable(r.entry() for r in rows_of(seed)).digest() == seed.digest()
    assert any(r.klass == "" for r in rows_of(seed)) or all(e.klass for e in seed)


def test_a_table_over_the_row_bound_is_refused(tmp_path: Path) -> None:
    p = write_table(tmp_path / "big.csv", None, {}, extra=129)
    with pytest.raises(UsageError, match="1 to 128"):
        load_table(p)


# -- signed bodies ---------------------------------------------------------------------------
def test_builders_sign_with_the_admin_key(tmp_path: Path) -> None:
    admin = Signer.generate()
    action = parse_action_spec("remove-org:mutuelle-x")
    p1 = build_propose(CHAIN, admin, [action], 1_000_000)
    p2 = build_propose(CHAIN, admin, [action], 1_000_000)
    assert p1.verify(CHAIN) and not p1.verify("other-chain") and p1.signer == admin.public
    body = p1.parse()
    assert isinstance(body, GovPropose) and body.actions == (action,)
    assert body.expires_at_ms == 1_000_000
    assert p1.tx_id() != p2.tx_id()  # the nonce: two equal proposals are two proposals
    with pytest.raises(UsageError):
        build_propose(CHAIN, admin, [], 1)
    with pytest.raises(UsageError):
        build_propose(CHAIN, admin, [action] * 9, 1)

    ballot = build_ballot(CHAIN, admin, p1.tx_id(), False)
    b = ballot.parse()
    assert isinstance(b, GovBallot) and b.proposal_id == p1.tx_id() and b.approve is False

    rel = release_of(LppTable.load_csv(_csv(tmp_path)), 2, parse_day("2026-03-01"))
    pub = build_publish(CHAIN, admin, rel)
    body_p = pub.parse()
    assert isinstance(body_p, LppPublish) and body_p.release == rel and pub.verify(CHAIN)


# -- bench registry --------------------------------------------------------------------------
def test_bench_shops_have_valid_distinct_identifiers() -> None:
    assert luhn_complete("7992739871") == "79927398713"  # the textbook Luhn example
    shops = [synthetic_shop(i) for i in (0, 1, 99_999, 123_456)]
    assert len({s[0] for s in shops}) == len({s[1] for s in shops}) == len(shops)
    for org, ed, x, billing, siret in shops:
        assert len(ed) == len(x) == 32 and org.startswith("bench-shop-")
        assert luhn_ok(siret) and siret_ok(siret) and len(siret) == 14
        assert check_identifiers("optician", Identifiers("", billing, siret, "")) is None
    broken = shops[0][4][:-1] + str((int(shops[0][4][-1]) + 1) % 10)  # the key digit flipped
    assert not siret_ok(broken)


# -- the commands' usage errors (exit 2, nothing sent) ---------------------------------------
@pytest.mark.parametrize("argv", [
    ["gov", "--help"], ["gov", "propose", "--help"], ["gov", "vote", "--help"],
    ["gov", "list", "--help"], ["gov", "show", "--help"], ["lpp", "publish", "--help"],
    ["lpp", "list", "--help"],
])
def test_help_has_examples(argv: list[str]) -> None:
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 0, res.output
    assert "tpledger" in res.stdout
    assert argv[-1] != "--help" or argv[1] == "--help" or "Example" in res.stdout


def _usage(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    rc = run(list(argv))
    _, err = capsys.readouterr()
    assert rc == Exit.USAGE, err
    assert_one_line_error(err)
    return err


def test_gov_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "any.json"
    f.write_text("{}")
    f.chmod(0o600)
    common = ("--node", NOWHERE, "--admin-key", str(f), "--genesis", str(f))
    assert "--yes or --no" in _usage(capsys, "gov", "vote", "ab" * 32, *common)
    assert "64 hex" in _usage(capsys, "gov", "vote", "abc", "--yes", *common)
    assert "unknown action" in _usage(capsys, "gov", "propose", "--action", "x:y", *common)
    assert "duration" in _usage(capsys, "gov", "propose", "--action", "remove-org:a",
                                "--expires", "soon", *common)
    _usage(capsys, "gov", "propose", *common)  # no --action
    assert "64 hex" in _usage(capsys, "gov", "show", "zz", "--node", NOWHERE, "--key", str(f))
    _usage(capsys, "gov", "list", "--status", "pending", "--node", NOWHERE, "--key", str(f))


def test_admin_key_is_never_taken_from_the_environment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "op.key"
    f.write_text("{}")
    monkeypatch.setenv("TPLEDGER_KEY", str(f))
    monkeypatch.setenv("TPLEDGER_ADMIN_KEY", str(f))
    err = _usage(capsys, "gov", "vote", "ab" * 32, "--yes", "--node", NOWHERE)
    assert "--admin-key" in err
    # the participant commands share the option (it read TPLEDGER_ADMIN_KEY before)
    err = _usage(capsys, "participant", "revoke", "optic-paris", "--reason", "phished",
                 "--node", NOWHERE)
    assert "--admin-key" in err


def test_lpp_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "k.json"
    f.write_text("{}")
    table_csv = _csv(tmp_path)
    assert "--node" in _usage(capsys, "lpp", "list", "--at", "2026-03-01")
    assert "YYYY-MM-DD" in _usage(capsys, "lpp", "list", "--at", "1/3/2026", "--node", NOWHERE,
                                  "--key", str(f))
    assert "--table" in _usage(capsys, "lpp", "list", "--at", "2026-03-01", "--table",
                               str(table_csv), "--node", NOWHERE, "--key", str(f))
    common = ("--node", NOWHERE, "--admin-key", str(f))
    assert "no such date" in _usage(capsys, "lpp", "publish", str(table_csv), "--effective",
                                    "2026-02-30", *common)
    _usage(capsys, "lpp", "publish", str(table_csv), *common)  # no --effective
    _usage(capsys, "lpp", "publish", str(table_csv), "--effective", "2026-03-01", "--version",
           "1", *common)
    bad = tmp_path / "bad.csv"
    bad.write_text("code,label\n")
    assert "header" in _usage(capsys, "lpp", "publish", str(bad), "--effective", "2026-03-01",
                              *common)


def test_lpp_list_file_mode_is_unchanged() -> None:
    res = CliRunner().invoke(cli, ["lpp", "list", "--json"])
    assert res.exit_code == 0
    assert len(json.loads(res.stdout)) == len(LppTable.default())


def test_an_operational_key_is_refused_as_admin_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    op = tmp_path / "optic.key"
    KeyFile.generate("optic-paris", "optician").save(op)
    err = _usage(capsys, "gov", "vote", "ab" * 32, "--yes", "--node", NOWHERE,
                 "--admin-key", str(op), "--genesis", str(op))
    assert "not an organisation's admin key" in err
    with pytest.raises(UsageError):
        load_admin_key(op)
    adm = tmp_path / "federation.admin.json"
    KeyFile.generate("federation", "admin").save(adm)
    loaded = load_admin_key(adm)
    assert loaded.org == "federation" and loaded.signer.public == KeyFile.load(adm).signer.public


# -- reading the tariff in force from a node -------------------------------------------------
class _Answers:
    """A node's JSON answers by path (what ``NodeClient.get_json`` returns)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.paths: list[str] = []

    def get_json(self, path: str, signed: bool = False) -> Any:
        assert signed  # a signed read
        self.paths.append(path)
        return self.body


def _answer(table: LppTable, version: int = 2) -> dict[str, Any]:
    rows = [{"code": e.code, "label": e.label, "category": e.category,
             "age_group": e.age_group, "class": e.klass or "",
             "max_price_cents": e.max_price_cents, "amo_base_cents": e.amo_base_cents}
            for e in table]
    return {"versions": [{"version": 1, "effective": "2024-01-01", "table_digest": "00"},
                         {"version": version, "effective": "2026-03-01",
                          "table_digest": table.digest().hex()}],
            "at": "2026-03-02", "version": version, "effective": "2026-03-01",
            "table_digest": table.digest().hex(), "rows": rows}


def test_the_tariff_read_from_a_node_must_match_its_digest() -> None:
    table = LppTable.default()
    node = _Answers(_answer(table))
    client = cast(NodeClient, node)
    found = fetch_tariff_version(client, parse_day("2026-03-02"))
    assert (found.version, format_day(found.effective_day)) == (2, "2026-03-01")
    assert found.table.digest() == table.digest()
    assert fetch_tariff_at(client, parse_day("2026-03-02")).version == "2"
    assert node.paths[0] == "/v1/lpp/versions?at=2026-03-02"
    assert latest_tariff_version(client) == 2

    tampered = _answer(table)
    tampered["rows"][0]["max_price_cents"] = 999_999  # a higher limit than the ledger's
    with pytest.raises(CliError, match="do not match its digest"):
        fetch_tariff_version(cast(NodeClient, _Answers(tampered)), 20514)
    for broken in ({"versions": []}, {**_answer(table), "rows": [{"code": "1"}]}):
        with pytest.raises(CliError):
            fetch_tariff_version(cast(NodeClient, _Answers(broken)), 20514)
