"""Strict node.toml: an unknown key is refused with its name and its line in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import tpledger.node.config as config_mod
from tpledger.node.config import NodeConfig
from tpledger.node.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
# a node
name = "v0"
genesis = "genesis.json"
validator_key = "validator.key"

[api]
listen = "127.0.0.1:7000"

[[peers]]
name = "v1"
url = "http://127.0.0.1:7001"

[[peers]]
name = "v2"
url = "http://127.0.0.1:7002"

[limits]
mempool_max_txs = 1000

[consensus]
timeout_commit_ms = 100

[scrub]
rows_per_s = 10

[tls]
cert = ""
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "node.toml"
    p.write_text(text)
    return p


def with_line(after: str, line: str) -> tuple[str, int]:
    """GOOD with ``line`` inserted after the first line equal to ``after``; its line number."""
    lines = GOOD.splitlines()
    i = lines.index(after) + 1
    lines.insert(i, line)
    return "\n".join(lines) + "\n", i + 1


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = NodeConfig.load(write(tmp_path, GOOD))
    assert cfg.listen_port == 7000 and len(cfg.peers) == 2


@pytest.mark.parametrize(("after", "line", "key", "table"), [
    ("[api]", 'listne = "127.0.0.1:7000"', "listne", "[api]"),
    ('validator_key = "validator.key"', 'data_dri = "d"', "data_dri", "top level"),
    ("# a node", '"quoted key" = 1', "quoted key", "top level"),
    ('url = "http://127.0.0.1:7002"', "weight = 3", "weight", "[peers]"),
    ("[limits]", "mempool_max_tx = 5", "mempool_max_tx", "[limits]"),
    ("[consensus]", "timeout_commit = 5", "timeout_commit", "[consensus]"),
    ("[scrub]", "rows_per_sec = 5", "rows_per_sec", "[scrub]"),
    ("[tls]", 'cafile = "x"', "cafile", "[tls]"),
])
def test_unknown_key_names_key_and_line(tmp_path: Path, after: str, line: str, key: str,
                                        table: str) -> None:
    text, number = with_line(after, line)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        NodeConfig.load(path)
    msg = str(exc.value)
    assert f"{path.resolve()}:{number}:" in msg
    assert repr(key) in msg and table in msg


def test_typo_in_api_was_silently_ignored_without_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: without the check, `listne` is ignored and the node would listen on
    a random port (0), the issue's report."""
    text, _ = with_line("[api]", 'listne = "127.0.0.1:7000"')
    text = text.replace('listen = "127.0.0.1:7000"\n', "")
    monkeypatch.setattr(config_mod, "refuse_unknown_keys", lambda *a: None)
    assert NodeConfig.load(write(tmp_path, text)).listen_port == 0


def test_key_line_scan() -> None:
    text = 'a = 1\n[t]\nb = 2\n[[p]]\nc = 3\n[u.v]\n  d=4\n'
    assert config_mod.key_line(text, "", "a") == 1
    assert config_mod.key_line(text, "t", "b") == 3
    assert config_mod.key_line(text, "p", "c") == 5
    assert config_mod.key_line(text, "u.v", "d") == 7
    assert config_mod.key_line(text, "t", "a") is None


@pytest.mark.parametrize("org", ["federation", "insurer-a", "insurer-b", "cnam"])
def test_shipped_deployment_configs_are_strictly_valid(org: str) -> None:
    NodeConfig.load(REPO / "configs" / "deployment" / f"{org}.toml")
