"""The process around a node: ``tpledger node run CONFIG`` (logging, signals, GC tuning, exit
status). The node itself is ``node/runtime.py``."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from pathlib import Path

from tpledger.ledger.errors import LedgerError
from tpledger.node.config import NodeConfig
from tpledger.node.errors import NodeError
from tpledger.node.runtime import Node

GC_GEN0_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Make the cyclic GC cheap for a node's allocation pattern.

    A loaded node allocates millions of short-lived containers (decoded lists, records) and
    keeps few cycles. With CPython's default thresholds the young collections alone cost ~20%
    of the cluster throughput (measured, docs/benchmarks.md). Objects alive after start-up
    (modules, genesis, tables) are frozen out of every collection; collections still run.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 1000)


async def serve(cfg: NodeConfig) -> None:
    """Run a node until SIGTERM/SIGINT."""
    node = Node(cfg)
    stop = node.stop_requested
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except BaseException:
        await node.stop()  # release what was opened (store, sessions) before reporting
        raise
    tune_gc()
    try:
        await stop.wait()
    finally:
        await node.stop()
    fatal = node.fatal_error
    if fatal is not None:  # one line on stderr, non-zero exit (cli.main)
        why = str(fatal) if isinstance(fatal, LedgerError) else type(fatal).__name__
        raise NodeError(f"node {cfg.name} stopped on a fatal error: {why}")


def run_node(config_path: str | Path) -> None:
    """Foreground entry point for ``tpledger node run CONFIG``."""
    cfg = NodeConfig.load(config_path)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {cfg.name} %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(cfg))
