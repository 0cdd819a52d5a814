"""node.toml parsing: the shipped examples load, bad files give clear ConfigErrors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tpledger.node.config import NodeConfig
from tpledger.node.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["federation", "insurer-a", "insurer-b", "cnam"])
def test_deployment_examples_load(name: str) -> None:
    cfg = NodeConfig.load(ROOT / "configs" / "deployment" / f"{name}.toml")
    assert len(cfg.peers) == 3
    assert all(p.url.startswith("https://") for p in cfg.peers)
    assert cfg.tls.cert is not None and cfg.tls.ca is not None
    assert cfg.listen_port == 7443
    assert cfg.limits.retention_days == 365


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "node.toml"
    p.write_text(text)
    return p


BASE = 'name = "v0"\ngenesis = "g.json"\nvalidator_key = "k"\n'


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    cfg = NodeConfig.load(_write(tmp_path, BASE + '[api]\nlisten = "127.0.0.1:7000"\n'))
    assert cfg.genesis == (tmp_path / "g.json").resolve()
    assert cfg.data_dir == (tmp_path / "data").resolve()
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 7000)
    assert cfg.metrics_listen is None


def test_a_separate_metrics_address(tmp_path: Path) -> None:
    cfg = NodeConfig.load(_write(tmp_path, BASE + '[metrics]\nlisten = "127.0.0.1:9100"\n'))
    assert cfg.metrics_listen == ("127.0.0.1", 9100)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name = ", "invalid TOML"),
        ('genesis = "g"\nvalidator_key = "k"\n', "missing key"),
        (BASE + '[api]\nlisten = "nowhere"\n', "HOST:PORT"),
        (BASE + "[limits]\nmempool_max_txs = -1\n", "non-negative"),
        (BASE + "[limits]\nbogus = 1\n", "unknown keys"),
        (BASE + '[[peers]]\nname = "v1"\nurl = "ftp://x"\n', "http(s) url"),
        (BASE + "[consensus]\ntimeout_commit_ms = true\n", "non-negative"),
        (BASE + '[metrics]\nlisten = "9100"\n', "[metrics] listen must be HOST:PORT"),
        (BASE + '[metrics]\nlisten = "127.0.0.1:9100"\nlistne = 1\n',
         "node.toml:6: unknown keys in [metrics]: 'listne'"),
    ],
)
def test_bad_configs_are_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        NodeConfig.load(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        NodeConfig.load(tmp_path / "absent.toml")
