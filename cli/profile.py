"""Defaults of ``--node``, ``--key``, ``--ca`` and ``--genesis`` from a profile file.

Precedence, the usual one: the flag, then the environment (``TPLEDGER_NODE``, ``TPLEDGER_KEY``,
``TPLEDGER_CA``, ``TPLEDGER_GENESIS``), then the profile file, then nothing. The file is
``$TPLEDGER_CONFIG``, else ``$XDG_CONFIG_HOME/tpledger/config.toml``, else
``~/.config/tpledger/config.toml``::

    node = "https://127.0.0.1:7000"
    key = "keys/optic-paris.key"      # relative paths: relative to this file
    ca = "tls/ca.crt"
    genesis = "genesis.json"

    [profiles.cnam]                   # chosen with --profile cnam or TPLEDGER_PROFILE=cnam
    key = "keys/cnam.key"

A named profile overrides the top-level values it sets. An unknown key is refused with its name
and line (a typo never silently falls back to another node or key).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import click

from tpledger.cli.bounded_files import read_bounded
from tpledger.cli.errors import CliError, UsageError

PROFILE_KEYS = ("node", "key", "ca", "genesis")
PATH_KEYS = ("key", "ca", "genesis")
MAX_PROFILE_FILE_BYTES = 64 * 1024
_META_NAME = "tpledger.profile"
_META_VALUES = "tpledger.profile.values"


def profile_path() -> Path:
    """Where the profile file is (it may not exist)."""
    explicit = os.environ.get("TPLEDGER_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "tpledger" / "config.toml"


def _line_of(text: str, table: str, key: str) -> int:
    """The 1-based line where ``key`` is set in ``[table]`` ('' = top level); 0 if not found."""
    current = ""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            current = line.strip("[] ")
        elif current == table and line.split("=", 1)[0].strip().strip("\"'") == key:
            return lineno
    return 0


def _check_table(path: Path, text: str, table: str, values: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in values.items():
        if k == "profiles" and table == "":
            continue
        where = f"{path}:{_line_of(text, table, k)}"
        if k not in PROFILE_KEYS:
            raise CliError(f"{where}: unknown key {k!r} in [{table or 'top level'}] "
                           f"(known: {', '.join(PROFILE_KEYS)})")
        if not isinstance(v, str) or not v:
            raise CliError(f"{where}: {k} must be a non-empty string")
        if k in PATH_KEYS:
            p = Path(v).expanduser()
            v = str(p if p.is_absolute() else path.parent / p)
        out[k] = v
    return out


def load_profile(path: Path, name: str | None) -> dict[str, str]:
    """The values of profile ``name`` (None: the top level) of ``path``; {} if no file."""
    if not path.is_file():
        if name is not None or os.environ.get("TPLEDGER_CONFIG"):
            raise CliError(f"{path}: no such profile file")
        return {}
    raw = read_bounded(path, MAX_PROFILE_FILE_BYTES, "profile file")
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"{path}: not a valid TOML profile file ({exc})") from None
    values = _check_table(path, text, "", doc)
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise CliError(f"{path}:{_line_of(text, '', 'profiles')}: profiles must be tables "
                       "[profiles.NAME]")
    for pname, pvalues in profiles.items():
        checked = _check_table(path, text, f"profiles.{pname}", pvalues)
        if pname == name:
            values = {**values, **checked}
    if name is not None and name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"--profile {name}: no [profiles.{name}] in {path} (known: {known})")
    return values


def select_profile(ctx: click.Context, name: str | None) -> None:
    """Callback of the root ``--profile`` option: remember which profile the defaults use."""
    root = ctx.find_root()
    root.meta[_META_NAME] = name
    root.meta.pop(_META_VALUES, None)


def profile_default(key: str) -> str | None:
    """The profile file's value of ``key`` for the running command (a click default)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    root = ctx.find_root()
    if _META_VALUES not in root.meta:
        root.meta[_META_VALUES] = load_profile(profile_path(), root.meta.get(_META_NAME))
    value: str | None = root.meta[_META_VALUES].get(key)
    return value


__all__ = ["PROFILE_KEYS", "load_profile", "profile_default", "profile_path", "select_profile"]
