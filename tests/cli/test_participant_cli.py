"""``tpledger participant`` offline: usage, admin-key separation, the local key history
(older openings still open after a rotation)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.helpers import assert_one_line_error
from tpledger.cli import keys_history
from tpledger.cli.cluster import ClusterInfo
from tpledger.cli.errors import VerificationFailed
from tpledger.cli.keys_history import append_history, box_keys, history_path, load_history
from tpledger.cli.lifecycle import _open_with
from tpledger.cli.main import cli, run
from tpledger.cli.participants import install_next_key, is_org_id, next_key
from tpledger.ledger.keys import KeyFile
from tpledger.ledger.patient import make_test_birth_date, make_test_nir, new_opening, seal_opening

NODE = "http://127.0.0.1:9"  # never contacted: refused before


def _key(tmp_path: Path, name: str = "mutuelle-a.key") -> tuple[Path, KeyFile]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    kf = KeyFile.generate("mutuelle-a", "insurer")
    kf.save(tmp_path / name)
    return tmp_path / name, kf


def test_history_keeps_old_secrets_newest_first(tmp_path: Path) -> None:
    path, k1 = _key(tmp_path)
    hist = history_path(path)
    assert hist.name == "mutuelle-a.history.json" and load_history(hist) == []
    k2, k3 = KeyFile.generate("mutuelle-a", "insurer"), KeyFile.generate("mutuelle-a", "insurer")
    append_history(hist, k1, 7)
    append_history(hist, k2, 9)
    append_history(hist, k2, 9)  # a rerun after a crash adds nothing
    assert stat.S_IMODE(hist.stat().st_mode) == 0o600
    body = json.loads(hist.read_text())
    assert [k["retired_height"] for k in body["keys"]] == [7, 9]
    assert "ed25519_seed" not in hist.read_text()  # a retired key may never sign again
    assert [b.public for b in box_keys(k3, hist)] == [k3.box.public, k2.box.public,
                                                      k1.box.public]


def test_old_opening_opens_with_history_only(tmp_path: Path) -> None:
    """After a rotation an opening sealed to the old X25519 key opens with the history;
    with the current key alone it does not (broken variant: no history)."""
    import random

    path, old = _key(tmp_path)
    rng = random.Random(1)
    opening = new_opening(make_test_nir(rng), make_test_birth_date(rng), "")
    sealed = seal_opening(opening, old.box.public)
    new = next_key(path, old)
    assert stat.S_IMODE(path.with_name(path.name + ".next").stat().st_mode) == 0o600
    assert next_key(path, old).signer.public == new.signer.public  # a rerun reuses it
    hist = install_next_key(path, old, 12)
    assert KeyFile.load(path).signer.public == new.signer.public
    assert not path.with_name(path.name + ".next").exists()
    current = KeyFile.load(path)
    assert _open_with(box_keys(current, hist), sealed) == opening
    with pytest.raises(VerificationFailed):
        _open_with([current.box], sealed)


def test_history_refuses_open_modes_and_garbage(tmp_path: Path) -> None:
    path, kf = _key(tmp_path)
    hist = history_path(path)
    append_history(hist, kf, 1)
    os.chmod(hist, 0o644)
    with pytest.raises(keys_history.CliError, match="chmod 600"):
        load_history(hist)
    os.chmod(hist, 0o600)
    hist.write_text('{"kind": "other"}')
    with pytest.raises(keys_history.CliError, match="not a tpledger key history"):
        load_history(hist)
    hist.write_text(json.dumps({"kind": keys_history.HISTORY_KIND, "version": 1,
                                "keys": [{"x25519_secret": "zz"}]}))
    with pytest.raises(keys_history.CliError, match="malformed"):
        load_history(hist)


def test_org_ids_safe_in_paths() -> None:
    assert is_org_id("optic-paris") and is_org_id("a.b")
    assert not any(is_org_id(s) for s in ("", ".", "..", "a/b", "A", "x" * 65, "a?b=1"))


@pytest.mark.parametrize("argv", [
    ["participant", "--help"], ["participant", "add", "--help"],
    ["participant", "rotate", "--help"], ["participant", "revoke", "--help"],
    ["participant", "suspend", "--help"], ["participant", "reinstate", "--help"],
    ["participant", "show", "--help"], ["participant", "list", "--help"],
])
def test_help_has_examples(argv: list[str]) -> None:
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 0 and "Example" in res.stdout


def test_operational_key_refused_as_admin_key(cluster_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An admin command never takes an operational key, and the reverse."""
    info = ClusterInfo.load(cluster_dir)
    shop_key = str(info.client("optic-paris").key)
    rc = run(["participant", "revoke", "optic-lyon", "--reason", "phished", "--node", NODE,
              "--admin-key", shop_key])
    err = capsys.readouterr().err
    assert rc == 2 and "not an organisation's admin key" in err
    assert_one_line_error(err)
    admin = str(info.admin_key("federation"))
    rc = run(["participant", "rotate", "optic-paris", "--key", shop_key, "--admin-key", admin,
              "--node", NODE])
    assert rc == 2
    rc = run(["participant", "rotate", "optic-paris", "--admin-key", admin, "--node", NODE])
    assert rc == 2  # --admin-key needs --new-pub
    rc = run(["participant", "revoke", "optic-paris", "--reason", "Bad Reason", "--node", NODE,
              "--admin-key", admin])
    assert rc == 2
    rc = run(["participant", "rotate", "optic-lyon", "--key", shop_key, "--node", NODE])
    assert rc == 2 and "not of 'optic-lyon'" in capsys.readouterr().err


def test_show_names_the_genesis_as_signer_of_a_height_0_event(
        capsys: pytest.CaptureFixture[str]) -> None:
    from tpledger.cli.render import participant_record

    zeros, signer = "00" * 32, "ab" * 32
    body = {"org": "optic-a", "role": "optician", "status": "suspended", "history": [
        {"op": "added", "height": 0, "ed25519": "11" * 32, "signer": zeros, "tx_id": "22" * 32},
        {"op": "suspended", "height": 6, "ed25519": "11" * 32, "signer": signer,
         "tx_id": "33" * 32}]}
    participant_record(body)
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines() if "\t" in line]
    assert rows[0] == ["height", "change", "ed25519", "signed by", "tx"]
    assert rows[1] == ["0", "added", "11" * 32, "genesis", "genesis"]
    assert rows[2] == ["6", "suspended", "11" * 32, signer, "33" * 32]  # piped: whole ids
