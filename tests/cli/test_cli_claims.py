"""Claim input parsing and local building: errors name the claim, never the patient."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from tpledger.cli.claims import (
    ClaimBuilder,
    ClaimInput,
    ClaimInputError,
    parse_claim_json,
    parse_line_spec,
    prepare_all,
    read_claims_file,
)
from tpledger.cli.cluster import ClusterInfo
from tpledger.cli.main import cli, run
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.lpp import LppTable, default_shares
from tpledger.ledger.patient import commitment, make_test_nir, open_sealed, sealed_digest
from tpledger.ledger.tx import Claim, LppLine

NIR = make_test_nir(random.Random(7))
BIRTH = "1984-03-09"


def _record(**over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "ref": "FAC-2026-0001",
        "insurer": "mutuelle-a",
        "patient": {"nir": NIR, "birth_date": BIRTH, "member_number": "M-42"},
        "lines": [{"lpp": "2210546", "qty": 1, "amount": "30.49"},
                  {"lpp": "2261874", "qty": 2, "amount": "24.08"}],
    }
    rec.update(over)
    return rec


def test_parse_good_record() -> None:
    inp = parse_claim_json(json.dumps(_record(amo="10.00", amc="44.57")), "line 1")
    assert inp.insurer == "mutuelle-a"
    assert inp.lines == (("2210546", 1, 3049), ("2261874", 2, 2408))
    assert (inp.amo_cents, inp.amc_cents) == (1000, 4457)
    assert NIR not in repr(inp) and BIRTH not in repr(inp) and NIR not in str(inp)


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (_record(lines=[{"lpp": "2210546", "qty": 1, "amount": 30.49}]), "fraction"),
        (_record(lines=[{"lpp": "2210546", "qty": 1, "amount": 30}]), "decimal string"),
        (_record(lines=[{"lpp": "2210546", "qty": 1, "amount": "30.495"}]), "not a euro amount"),
        (_record(lines=[{"lpp": "221054", "qty": 1, "amount": "3.00"}]), "7-digit"),
        (_record(lines=[{"lpp": "2210546", "qty": 0, "amount": "3.00"}]), "qty"),
        (_record(lines=[]), "non-empty array"),
        (_record(amo="1.00"), "both amo and amc"),
        (_record(extra=1), "unknown keys: extra"),
        (_record(patient={"nir": NIR}), "birth_date"),
        (_record(patient={"nir": 1, "birth_date": BIRTH}), "nir must be a string"),
        (_record(insurer=""), "insurer"),
    ],
)
def test_parse_errors_name_the_line_not_the_patient(record: dict[str, object],
                                                     fragment: str) -> None:
    with pytest.raises(ClaimInputError) as info:
        parse_claim_json(json.dumps(record), "line 7")
    msg = str(info.value)
    assert msg.startswith("line 7: ")
    assert fragment in msg
    assert NIR not in msg and BIRTH not in msg


def test_parse_not_json() -> None:
    with pytest.raises(ClaimInputError, match=r"^line 2: not valid JSON"):
        parse_claim_json('{"insurer": ', "line 2")
    with pytest.raises(ClaimInputError, match="JSON object"):
        parse_claim_json("[1]", "line 2")


def test_parse_line_spec() -> None:
    assert parse_line_spec("2261874:2:24.08") == ("2261874", 2, 2408)
    with pytest.raises(ClaimInputError, match="LPP:QTY:EUROS"):
        parse_line_spec("2261874:2")
    with pytest.raises(ClaimInputError):
        parse_line_spec("2261874:x:1.00")


def test_read_claims_file_numbers_lines(tmp_path: Path) -> None:
    bad_nir_record = _record(ref="FAC-3", patient={"nir": NIR[:-2] + "00", "birth_date": BIRTH})
    f = tmp_path / "claims.jsonl"
    f.write_text("\n".join([json.dumps(_record()), "", "# comment",
                            json.dumps(_record(ref="FAC-2")), json.dumps(bad_nir_record)]) + "\n")
    inputs = list(read_claims_file(f))[:2]
    assert [i.where for i in inputs] == ["line 1", "line 4"]


@pytest.fixture()
def builder(cluster_info: ClusterInfo) -> ClaimBuilder:
    return ClaimBuilder(KeyFile.load(cluster_info.client("optic-paris").key),
                        Genesis.load(cluster_info.genesis))


def _input(**over: object) -> ClaimInput:
    base: dict[str, object] = dict(
        where="line 3", insurer="mutuelle-a", nir=NIR, birth_date=BIRTH, member_number="",
        lines=(("2210546", 1, 3049), ("2261874", 2, 2408)),
    )
    base.update(over)
    return ClaimInput(**base)  # type: ignore[arg-type]


def test_build_claim(builder: ClaimBuilder, cluster_info: ClusterInfo) -> None:
    genesis = Genesis.load(cluster_info.genesis)
    p = builder.build(_input())
    assert p.stx.verify(genesis.chain_id)
    assert p.claim_id == p.stx.tx_id()
    claim = p.stx.parse()
    assert isinstance(claim, Claim)
    assert claim.optician == "optic-paris" and claim.insurer == "mutuelle-a"
    lines = (LppLine("2210546", 1, 3049), LppLine("2261874", 2, 2408))
    assert (claim.amo_cents, claim.amc_cents) == default_shares(lines, LppTable.default())
    assert NIR.encode() not in p.stx.encode()
    assert [org for org, _ in p.sealed] == ["mutuelle-a", "cnam"]
    openings = []
    for (org, sealed), ref in zip(p.sealed, claim.sealed, strict=True):
        assert ref.payer == org and ref.sealed_digest == sealed_digest(sealed)
        opening = open_sealed(KeyFile.load(cluster_info.client(org).key).box, sealed)
        assert commitment(opening) == claim.patient_commitment
        openings.append(opening)
    assert openings[0].nir == NIR and openings[0].birth_date == BIRTH


def test_build_with_explicit_shares(builder: ClaimBuilder) -> None:
    claim = builder.build(_input(amo_cents=100, amc_cents=200)).stx.parse()
    assert isinstance(claim, Claim) and (claim.amo_cents, claim.amc_cents) == (100, 200)
    with pytest.raises(ClaimInputError, match="exceeds the claim total"):
        builder.build(_input(amo_cents=6000, amc_cents=1))


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"nir": NIR[:-2] + ("00" if NIR[-2:] != "00" else "01")}, "control key"),
        ({"birth_date": "1984-02-30"}, "calendar date"),
        ({"insurer": "cnam"}, "not a registered insurer"),
        ({"lines": (("9999999", 1, 100),)}, "unknown LPP code"),
        ({"lines": (("2261874", 1, 1205),)}, "price limit"),
    ],
)
def test_build_errors_never_echo_patient(builder: ClaimBuilder, over: dict[str, object],
                                         fragment: str) -> None:
    with pytest.raises(ClaimInputError) as info:
        builder.build(_input(**over))
    msg = str(info.value)
    assert msg.startswith("line 3: ") and fragment in msg
    assert NIR[:13] not in msg and "1984" not in msg


def test_builder_refuses_non_optician(cluster_info: ClusterInfo) -> None:
    from tpledger.cli.errors import CliError

    with pytest.raises(CliError, match="not an optician"):
        ClaimBuilder(KeyFile.load(cluster_info.client("mutuelle-a").key),
                     Genesis.load(cluster_info.genesis))


def _raised(table: LppTable, code: str, plv_cents: int) -> LppTable:
    return LppTable((dataclasses.replace(e, max_price_cents=plv_cents, amo_base_cents=plv_cents)
                     if e.code == code else e for e in table), "2")


def test_priced_by_the_tariff_of_the_claim_day(cluster_info: ClusterInfo) -> None:
    """Lines are priced and default shares computed by the table the tariff source gives for
    the claim's UTC day (the claim is dated that day); the source is read only once every
    claim passed the checks that need no table."""
    genesis, raised = LppTable.default(), _raised(LppTable.default(), "2261874", 1500)
    asked: list[int] = []

    def tariff(day: int) -> LppTable:
        asked.append(day)
        return raised if day >= 20_000 else genesis

    b = ClaimBuilder(KeyFile.load(cluster_info.client("optic-paris").key),
                     Genesis.load(cluster_info.genesis), tariff=tariff)
    inp = _input(lines=(("2261874", 1, 1400),))
    bad_nir = _input(where="line 4", nir=NIR[:-2] + ("00" if NIR[-2:] != "00" else "01"))
    with pytest.raises(ClaimInputError, match=r"^line 4: .*control key"):
        prepare_all(b, iter([inp, bad_nir]), lambda _m: None)
    assert asked == []  # refused before the tariff (maybe a node) was read
    day_ms = 86_400_000
    claim = b.build(inp, now_ms=20_000 * day_ms + 5).stx.parse()
    assert isinstance(claim, Claim) and claim.created_at_ms == 20_000 * day_ms + 5
    assert claim.amo_cents == (1500 * 60 + 50) // 100 and asked == [20_000]
    with pytest.raises(ClaimInputError, match=r"price limit 12\.04 EUR"):
        b.build(inp, now_ms=19_999 * day_ms)  # the day before: the genesis table
    assert asked == [20_000, 19_999]


def test_submit_bad_nir_in_file(cluster_info: ClusterInfo, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = NIR[:-2] + ("00" if NIR[-2:] != "00" else "01")
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(_record()) + "\n" +
                 json.dumps(_record(ref="FAC-2", patient={"nir": bad, "birth_date": BIRTH}))
                 + "\n")
    key = cluster_info.client("optic-paris").key
    # the node URL is never contacted: the input is refused before anything is sent
    rc = run(["claim", "submit", "--node", "http://127.0.0.1:9", "--key", str(key),
              "--from-json", str(f)])
    out, err = capsys.readouterr()
    assert rc == 2  # was 1: issue 14, a malformed value (nothing sent) is a usage error
    assert err.startswith("error: line 2: ") and "control key" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert bad not in err + out and NIR not in err + out and BIRTH not in err + out


def test_submit_flags_usage(cluster_info: ClusterInfo) -> None:
    key = str(cluster_info.client("optic-paris").key)
    res = CliRunner().invoke(cli, ["claim", "submit", "--node", "http://127.0.0.1:9",
                                   "--key", key, "--insurer", "mutuelle-a"])
    assert res.exit_code != 0
    assert run(["claim", "submit", "--node", "http://127.0.0.1:9", "--key", key,
                "--insurer", "mutuelle-a"]) == 2


def test_submit_genesis_found_next_to_key(cluster_info: ClusterInfo,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    key = str(cluster_info.client("optic-paris").key)
    rc = run(["claim", "submit", "--node", "http://127.0.0.1:9", "--key", key,
              "--insurer", "mutuelle-a", "--nir", NIR, "--birth-date", BIRTH,
              "--line", "2261874:1:12.04"])
    _, err = capsys.readouterr()
    # genesis was found and the claim built; only the (closed) port fails, in one line
    assert rc == 6 and err.startswith("error: unreachable") and err.count("\n") == 1
    assert NIR not in err and BIRTH not in err
