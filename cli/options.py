"""Options shared by several commands, each defined once, and the genesis look-up they imply.

A command composes its signature from these decorators (the order of the decorators is the
order of the options in ``--help``); an option used by one command only stays with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tpledger.cli.client import CA_FILE
from tpledger.cli.errors import UsageError
from tpledger.cli.profile import profile_default, profile_path
from tpledger.ledger.genesis import Genesis

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

READER_KEY = "Key of the claim's optician, its insurer, or the CNAM."
PAYER_KEY = "Key of the payer (insurer: AMC share, CNAM: AMO share)."
CHAIN_GENESIS = "The chain's genesis file."

OUTPUT_FORMATS = ("table", "json", "wide")


def _from_profile(key: str) -> Callable[[], str | None]:
    return functools.partial(profile_default, key)


def _required(what: str, env: str, key: str) -> Callable[..., Any]:
    """A callback refusing a missing value, naming the three places it may come from."""
    def check(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is None:
            raise UsageError(f"missing {what}: give it, set {env}, or set {key} in the profile "
                             f"file {profile_path()}")
        return value
    return check


def _use_ca(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    CA_FILE.set(str(value) if value is not None else None)
    return value


ca_option = click.option(
    "--ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="TPLEDGER_CA",
    default=_from_profile("ca"), expose_value=False, callback=_use_ca,
    help="CA certificate that signs the nodes' TLS certificates (https nodes; TPLEDGER_CA).")


def node_option(f: F) -> F:
    """``--node URL`` (required; TPLEDGER_NODE, the profile's ``node``) and ``--ca FILE``."""
    f = ca_option(f)
    return click.option("--node", "node_url", required=True, envvar="TPLEDGER_NODE",
                        default=_from_profile("node"),
                        callback=_required("--node URL", "TPLEDGER_NODE", "node"),
                        help="Node API URL (TPLEDGER_NODE, or the profile's node).")(f)


# --genesis next to --key: optional, found next to the key's cluster directory when absent.
genesis_option = click.option(
    "--genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="TPLEDGER_GENESIS", default=_from_profile("genesis"),
    help="Genesis file (TPLEDGER_GENESIS, the profile's genesis, else genesis.json of the "
         "key's cluster directory).")

wait_option = click.option("--wait", is_flag=True,
                           help="Wait until the transaction is committed.")

timeout_option = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=60,
                              show_default=True, help="Seconds --wait waits at most.")


def key_option(help_text: str) -> Callable[[F], F]:
    """``--key FILE`` (required, an existing file): the signer's key file."""
    return click.option("--key", "key_path", required=True, envvar="TPLEDGER_KEY",
                        default=_from_profile("key"),
                        callback=_required("--key FILE", "TPLEDGER_KEY", "key"),
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help=f"{help_text} (TPLEDGER_KEY, or the profile's key)")


def admin_key_option(help_text: str = "The governing organisation's admin key file "
                     "(ORG.admin.json; kept apart from every operational key)."
                     ) -> Callable[[F], F]:
    """``--admin-key FILE`` (required, an existing file): an organisation's admin key, for the
    commands that change the registry, the policy or the tariffs. Deliberately neither an
    environment variable nor a profile default: an admin key is given on purpose, each time."""
    return click.option("--admin-key", "admin_key_path", required=True,
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help=help_text)


def admin_tx_options(admin_help: str | None = None, *,
                     wait: Callable[[Any], Any] = wait_option,
                     json_help: str = "Print the result as JSON.") -> Callable[[F], F]:
    """The options of a command that sends a tx signed by an admin key: ``--node``,
    ``--admin-key``, ``--genesis``, ``wait`` (default ``--wait``, a flag), ``--timeout`` and
    ``--json``."""
    admin = admin_key_option() if admin_help is None else admin_key_option(admin_help)

    def apply(f: F) -> F:
        for option in (json_option(json_help), timeout_option, wait, genesis_option, admin,
                       node_option):
            f = option(f)
        return f
    return apply


def chain_genesis_option(help_text: str = CHAIN_GENESIS, *,
                         must_exist: bool = False) -> Callable[[F], F]:
    """``--genesis FILE`` (required): the genesis an offline check trusts. Without
    ``must_exist`` a missing file is an error of the command (exit 1), not of usage (exit 2)."""
    return click.option("--genesis", required=True, envvar="TPLEDGER_GENESIS",
                        default=_from_profile("genesis"),
                        callback=_required("--genesis FILE", "TPLEDGER_GENESIS", "genesis"),
                        type=click.Path(exists=must_exist, dir_okay=False, path_type=Path),
                        help=f"{help_text} (TPLEDGER_GENESIS, or the profile's genesis)")


def json_option(help_text: str = "Print the result as JSON.") -> Callable[[F], F]:
    """``--json``: machine-readable output on stdout (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def format_option(f: F) -> F:
    """``-o/--output table|json|wide`` and ``--json`` (short for ``-o json``), handed to the
    command as one parameter ``fmt``."""
    @functools.wraps(f)
    def wrapper(*args: Any, output_format: str | None, as_json: bool, **kwargs: Any) -> Any:
        if as_json and output_format not in (None, "json"):
            raise UsageError(f"--json is -o json: it does not go with -o {output_format}")
        return f(*args, fmt="json" if as_json else output_format or "table", **kwargs)

    wrapper = click.option("--json", "as_json", is_flag=True, help="Short for -o json.")(wrapper)
    wrapper = click.option(
        "-o", "--output", "output_format", type=click.Choice(OUTPUT_FORMATS),
        help="table (terminal: cut ids; piped: tab-separated, full ids), json, or wide "
             "(full ids).")(wrapper)
    return wrapper  # type: ignore[return-value]


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
    "OUTPUT_FORMATS",
    "PAYER_KEY",
    "READER_KEY",
    "admin_key_option",
    "admin_tx_options",
    "ca_option",
    "chain_genesis_option",
    "format_option",
    "genesis_option",
    "json_option",
    "key_option",
    "load_genesis_for",
    "node_option",
    "output_option",
    "timeout_option",
    "wait_option",
]
