"""The process shell (``node/shell.py``): GC tuning, and a node that cannot start is reported
as a clean error with its resources released."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from tpledger.cli.cluster import init_cluster
from tpledger.node.config import NodeConfig
from tpledger.node.errors import ConfigError
from tpledger.node.shell import GC_GEN0_THRESHOLD, serve, tune_gc


def test_tune_gc_raises_the_young_threshold_and_freezes_start_up_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_node_that_cannot_start_is_a_clean_error(tmp_path: Path) -> None:
    info = init_cluster(tmp_path / "c", validators=1, base_port=0)
    cfg_path = info.nodes[0].config
    text = cfg_path.read_text()
    assert "peers = []" in text
    cfg_path.write_text(text.replace(
        "peers = []", 'peers = [{ name = "stranger", url = "http://127.0.0.1:9" }]'))
    cfg = NodeConfig.load(cfg_path)
    with pytest.raises(ConfigError, match="not a genesis validator"):
        asyncio.run(serve(cfg))
    # the store was closed on the way out: a second node opens it at once
    with pytest.raises(ConfigError):
        asyncio.run(serve(cfg))
