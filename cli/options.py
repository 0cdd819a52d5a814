"""Options shared by several commands, each defined once, and the genesis look-up they imply.

A command composes its signature from these decorators (the order of the decorators is the
order of the options in ``--help``); an option used by one command only stays with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cli.errors import UsageError
from ledger.genesis import Genesis

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

READER_KEY = "Key of the claim's optician, its insurer, or the CNAM."
PAYER_KEY = "Key of the payer (insurer: AMC share, CNAM: AMO share)."
CHAIN_GENESIS = "The chain's genesis file."

node_option = click.option("--node", "node_url", required=True, help="Node API URL.")

# --genesis next to --key: optional, found next to the key's cluster directory when absent.
genesis_option = click.option(
    "--genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Genesis file (default: genesis.json of the key's cluster directory).")

wait_option = click.option("--wait", is_flag=True,
                           help="Wait until the transaction is committed.")

timeout_option = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60,
                              show_default=True, help="Seconds --wait waits at most.")


def key_option(help_text: str) -> Callable[[F], F]:
    """``--key FILE`` (required, an existing file): the signer's key file."""
    return click.option("--key", "key_path", required=True,
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help=help_text)


def chain_genesis_option(help_text: str = CHAIN_GENESIS, *,
                         must_exist: bool = False) -> Callable[[F], F]:
    """``--genesis FILE`` (required): the genesis an offline check trusts. Without
    ``must_exist`` a missing file is an error of the command (exit 1), not of usage (exit 2)."""
    return click.option("--genesis", required=True,
                        type=click.Path(exists=must_exist, dir_okay=False, path_type=Path),
                        help=help_text)


def json_option(help_text: str = "Print the result as JSON.") -> Callable[[F], F]:
    """``--json``: machine-readable output on stdout (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def output_option(help_text: str) -> Callable[[F], F]:
    """``-o/--output FILE`` (required): where a downloaded file is written."""
    return click.option("-o", "--output", required=True,
                        type=click.Path(dir_okay=False, path_type=Path), help=help_text)


def load_genesis_for(key_path: Path, genesis: Path | None) -> Genesis:
    """``--genesis`` if given, else ``genesis.json`` of the cluster directory holding the key."""
    if genesis is not None:
        return Genesis.load(genesis)
    key_dir = key_path.resolve().parent
    for candidate in (key_dir.parent / "genesis.json", key_dir / "genesis.json"):
        if candidate.is_file():
            return Genesis.load(candidate)
    raise UsageError("no genesis.json next to the key's cluster directory; give --genesis FILE")


__all__ = [
    "CHAIN_GENESIS",
    "CONTEXT",
    "PAYER_KEY",
    "READER_KEY",
    "chain_genesis_option",
    "genesis_option",
    "json_option",
    "key_option",
    "load_genesis_for",
    "node_option",
    "output_option",
    "timeout_option",
    "wait_option",
]
