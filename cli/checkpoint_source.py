"""Nodes as sources of checkpoints: the consistency-path fetch and the witness's polling loop.

``tpledger checkpoint consistency --node`` and ``tpledger witness`` both ask nodes for RFC 9162
consistency paths through :func:`fetch_consistency_path`; the witness polls nodes with
:func:`poll_nodes`, feeding each node's latest checkpoint to the pure
:class:`cli.witness.Witness`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import click

from tpledger.cli import render
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.errors import CliError, Exit
from tpledger.cli.witness import Outcome, Witness
from tpledger.ledger.errors import LedgerError
from tpledger.ledger.proofs import Checkpoint

FORK_EXIT_CODE = int(Exit.FORK)  # ``tpledger witness``: two valid certificates for one height


def fetch_consistency_path(client: NodeClient, old_size: int,
                           new_size: int) -> tuple[bytes, ...]:
    """The node's consistency path from tree size ``old_size`` to ``new_size`` (empty, without
    asking, when there is nothing to prove). Raises CliError if the path is not hex."""
    if old_size in (0, new_size):
        return ()
    body = client.consistency(old_size, new_size)
    try:
        return tuple(bytes.fromhex(h) for h in body.get("path", []))
    except (ValueError, TypeError):
        raise CliError("the node's consistency path is not hex") from None


class NodeSource:
    """A node as the witness sees it (:class:`cli.witness.Source`)."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self.name = client.url

    def latest(self) -> Checkpoint:
        return Checkpoint.from_bytes(self.client.checkpoint())

    def checkpoint_at(self, height: int) -> Checkpoint:
        return Checkpoint.from_bytes(self.client.checkpoint(height))

    def consistency_path(self, old_size: int, new_size: int) -> list[bytes]:
        return list(fetch_consistency_path(self.client, old_size, new_size))


@dataclass(frozen=True)
class PollResult:
    """One poll of every node: how many answered, and the worst outcome."""

    answered: int
    failed: bool  # an invalid or inconsistent checkpoint
    fork: bool


def _report(outcome: Outcome, poll: int, source: str, as_json: bool) -> None:
    if as_json:
        render.print_json({"poll": poll, "source": source, "status": outcome.status,
                           "message": outcome.message})
    elif outcome.status != "fork":
        render.stderr().print(outcome.message)
    if outcome.evidence is not None:
        if as_json:
            render.print_json(outcome.evidence.to_json())
        else:
            click.echo(outcome.evidence.describe())
            click.echo(json.dumps(outcome.evidence.to_json(), sort_keys=True))


def poll_once(w: Witness, clients: list[NodeClient], poll: int, as_json: bool) -> PollResult:
    """Ask every node for its latest checkpoint and let the witness judge it; stop at a fork."""
    answered, failed = 0, False
    w.new_poll()
    for client in clients:
        src = NodeSource(client)
        try:
            cp = src.latest()
        except (ClientError, LedgerError) as exc:
            render.stderr().print(f"warning: {client.url}: {render.one_line(str(exc))}")
            continue
        answered += 1
        outcome = w.observe(cp, src)
        _report(outcome, poll, client.url, as_json)
        if outcome.evidence is not None:
            return PollResult(answered, failed, fork=True)
        if outcome.status in ("invalid", "inconsistent"):
            failed = True
    return PollResult(answered, failed, fork=False)


def poll_nodes(w: Witness, node_urls: tuple[str, ...], state_path: Path, interval_s: float,
               max_polls: int | None, as_json: bool) -> int:
    """Poll until a failure, a fork or ``max_polls``; save the witness state after each poll.

    Returns the exit code: 0 done, 1 an invalid or inconsistent checkpoint (or no node answered
    with a poll limit), ``FORK_EXIT_CODE`` a fork (evidence printed on stdout)."""
    clients = [NodeClient(u, timeout_s=10, max_retries=1) for u in node_urls]
    polls, code = 0, 0
    try:
        while True:
            polls += 1
            res = poll_once(w, clients, polls, as_json)
            w.save(state_path)
            if res.fork:
                return FORK_EXIT_CODE
            code = 1 if res.failed else code
            if res.answered == 0:
                render.stderr().print("warning: no node answered")
                code = 1 if max_polls is not None else code
            if code or (max_polls is not None and polls >= max_polls):
                return code
            time.sleep(interval_s)
    finally:
        for client in clients:
            client.close()


__all__ = ["FORK_EXIT_CODE", "NodeSource", "PollResult", "fetch_consistency_path",
           "poll_nodes", "poll_once"]
