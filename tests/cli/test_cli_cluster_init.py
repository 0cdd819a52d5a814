"""``tpledger cluster init``: files, key modes, cluster.json schema, loadable configs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tpledger.cli import cluster as cluster_mod
from tpledger.cli.cluster import PARTICIPANTS, ClusterInfo, validator_orgs
from tpledger.cli.errors import CliError
from tpledger.cli.main import cli
from tpledger.ledger.genesis import Genesis, check_identifiers, luhn_ok, siret_ok
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.lpp import LppTable
from tpledger.node.config import NodeConfig


def _init(tmp_path: Path, *args: str) -> tuple[Path, str]:
    target = tmp_path / "c"
    res = CliRunner().invoke(cli, ["cluster", "init", str(target), *args])
    assert res.exit_code == 0, res.output
    return target, res.output


def test_init_writes_everything(tmp_path: Path) -> None:
    root, out = _init(tmp_path, "--validators", "4", "--base-port", "17400", "--chain-id",
                      "tp-test")
    assert "cluster up" in out
    body = json.loads((root / "cluster.json").read_text())
    assert set(body) == {"genesis", "nodes", "clients", "admins"}
    assert body["genesis"] == "genesis.json"
    assert [n["name"] for n in body["nodes"]] == ["v0", "v1", "v2", "v3"]
    assert [n["api"] for n in body["nodes"]] == [f"http://127.0.0.1:{17400 + i}" for i in range(4)]
    for n in body["nodes"]:
        assert set(n) == {"name", "api", "config"}
        assert not Path(n["config"]).is_absolute()
    for c in body["clients"]:
        assert set(c) == {"org", "role", "key"}
        assert c["role"] in ("optician", "insurer", "cnam")
        assert not Path(c["key"]).is_absolute()
    orgs = {c["org"]: c["role"] for c in body["clients"]}
    assert orgs == dict(PARTICIPANTS)

    genesis = Genesis.load(root / "genesis.json")
    assert genesis.chain_id == "tp-test"
    assert [v.org for v in genesis.validators] == ["federation", "insurer-a", "insurer-b", "cnam"]
    assert genesis.lpp_table_digest == LppTable.default().digest()
    for c in body["clients"]:
        key_path = root / c["key"]
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        key = KeyFile.load(key_path)
        p = genesis.participant(c["org"])
        assert p is not None and p.role == c["role"]
        assert p.ed25519 == key.signer.public and p.x25519 == key.box.public

    for i, n in enumerate(body["nodes"]):
        cfg = NodeConfig.load(root / n["config"])
        assert cfg.name == n["name"]
        assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 17400 + i)
        assert cfg.genesis == (root / "genesis.json").resolve()
        assert cfg.data_dir == (root / "nodes" / n["name"] / "data").resolve()
        assert cfg.validator_key == (root / "nodes" / n["name"] / "validator.key").resolve()
        assert stat.S_IMODE(cfg.validator_key.stat().st_mode) == 0o600
        assert {p.name for p in cfg.peers} == {"v0", "v1", "v2", "v3"} - {n["name"]}
        assert {p.url for p in cfg.peers} == {m["api"] for m in body["nodes"]} - {n["api"]}
        vkey = KeyFile.load(cfg.validator_key)
        assert vkey.role == "validator"
        assert genesis.validators[i].ed25519 == vkey.signer.public
        assert genesis.validators[i].name == n["name"]


def test_init_writes_governance_genesis_and_separate_admin_keys(tmp_path: Path) -> None:
    """Genesis v2: three governing orgs (2 of 3), the CNAM's admin publishes tariffs, every
    participant has its governing org and well-formed identifiers; each admin key is a file
    of its own under admin/ (0600, dir 0700), in no operational key file."""
    root, _ = _init(tmp_path, "--validators", "4")
    genesis = Genesis.load(root / "genesis.json")
    assert [(o.name, o.roles) for o in genesis.gov_orgs] == list(cluster_mod.GOV_ORGS)
    assert (genesis.policy.threshold, genesis.policy.tariff_publisher) == (2, "cnam")
    for p in genesis.participants:
        assert check_identifiers(p.role, p.ids) is None, p.org
    assert siret_ok(genesis.participants[0].ids.siret) and luhn_ok(genesis.participants[0].ids.rpps)
    info = ClusterInfo.load(root)
    assert stat.S_IMODE((root / "admin").stat().st_mode) == 0o700
    operational = {KeyFile.load(c.key).signer.seed() for c in info.clients}
    for o in genesis.gov_orgs:
        path = info.admin_key(o.name)
        assert path == root / "admin" / f"{o.name}.admin.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        admin = KeyFile.load(path)
        assert (admin.org, admin.role, admin.signer.public) == (o.name, "admin", o.admin_ed25519)
        assert admin.signer.seed() not in operational
        seed = admin.signer.seed().hex()
        for c in info.clients:
            assert seed not in c.key.read_text()
    with pytest.raises(CliError, match="no admin key"):
        info.admin_key("insurer-b")


def test_free_ports_with_base_port_zero(cluster_dir: Path) -> None:
    body = json.loads((cluster_dir / "cluster.json").read_text())
    ports = [int(n["api"].rsplit(":", 1)[1]) for n in body["nodes"]]
    assert len(set(ports)) == 4 and all(p > 0 for p in ports)


def test_json_output(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["cluster", "init", str(tmp_path / "j"), "-n", "1",
                                   "--base-port", "0", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert len(body["nodes"]) == 1
    cfg = NodeConfig.load(tmp_path / "j" / body["nodes"][0]["config"])
    assert cfg.peers == ()


def test_refuses_non_empty_dir(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "something").write_text("x")
    res = CliRunner().invoke(cli, ["cluster", "init", str(target)])
    assert res.exit_code == 1
    assert "not an empty directory" in str(res.exception)
    assert sorted(p.name for p in target.iterdir()) == ["something"]


@pytest.mark.parametrize("empty_dir_first", [False, True])
def test_a_failed_init_leaves_nothing_and_the_next_run_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_dir_first: bool) -> None:
    """Issue 14: a failure part-way (here the TLS/config step) used to leave a half-written
    directory that the next `cluster init` refused as "not an empty directory"."""
    target = tmp_path / "c"
    if empty_dir_first:
        target.mkdir()

    def fail(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(cluster_mod, "write_layout", fail)
        res = CliRunner().invoke(cli, ["cluster", "init", str(target)])
    assert res.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == (["c"] if empty_dir_first else [])
    assert not target.exists() or not any(target.iterdir())  # no half-written cluster
    root, _ = _init(tmp_path)  # and the next run is not refused
    assert (root / "cluster.json").is_file() and (root / "genesis.json").is_file()


def test_validator_orgs() -> None:
    assert validator_orgs(1) == ["federation"]
    assert validator_orgs(2) == ["federation", "cnam"]
    assert validator_orgs(4) == ["federation", "insurer-a", "insurer-b", "cnam"]
    orgs = validator_orgs(7)
    assert orgs[0] == "federation" and orgs[-1] == "cnam" and len(set(orgs)) == 7


def test_bad_validator_count_is_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["cluster", "init", str(tmp_path / "x"), "-n", "0"])
    assert res.exit_code == 2
