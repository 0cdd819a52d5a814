"""A participant's local key history: the X25519 secrets of its rotated-out keys.

After a rotation, new claims seal their openings to the new X25519 key, but the openings of
the claims sealed before it still open only with the old secret. ``tpledger participant
rotate`` therefore keeps the old secret in ``STEM.history.json`` next to the key file (mode
0600, written atomically)::

    {"kind": "tpledger-key-history", "version": 1, "org": ORG,
     "keys": [{"x25519_secret": HEX, "ed25519_public": HEX, "retired_height": H}, ...]}

oldest first. The Ed25519 seed of a retired key is NOT kept: that key may never sign again.
``claim open`` tries the current secret, then the history newest first (:func:`box_keys`); a
sealed box that does not open with a key fails cleanly, so a few attempts at most are made.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from tpledger.cli.bounded_files import read_bounded, write_atomically
from tpledger.cli.errors import CliError
from tpledger.ledger.errors import KeyFileError
from tpledger.ledger.jsonsafe import loads_bounded
from tpledger.ledger.keys import BoxKey, KeyFile

HISTORY_KIND = "tpledger-key-history"
MAX_HISTORY_KEYS = 256
MAX_HISTORY_BYTES = 64 * 1024


def history_path(key_path: Path) -> Path:
    """``STEM.history.json`` beside the key file ``STEM.key`` (or ``STEM.json``)."""
    key_path = Path(key_path)
    return key_path.with_name(f"{key_path.stem}.history.json")


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CliError(f"{path}: key history is accessible by group or others (mode "
                       f"{mode:04o}); run chmod 600")
    try:
        body = loads_bounded(read_bounded(path, MAX_HISTORY_BYTES, "key history"),
                             MAX_HISTORY_BYTES)
        ok = (isinstance(body, dict) and body.get("kind") == HISTORY_KIND
              and body.get("version") == 1 and isinstance(body.get("keys"), list))
    except ValueError:
        ok = False
    if not ok:
        raise CliError(f"{path}: not a tpledger key history file (version 1)")
    return body


def load_history(path: Path) -> list[BoxKey]:
    """The retired X25519 keys, newest first ([] when there is no history). Raises CliError."""
    body = _load(Path(path))
    if body is None:
        return []
    out: list[BoxKey] = []
    try:
        for row in body["keys"][:MAX_HISTORY_KEYS]:
            out.append(BoxKey(bytes.fromhex(row["x25519_secret"])))
    except (KeyError, TypeError, ValueError, KeyFileError) as exc:
        raise CliError(f"{path}: malformed key history ({type(exc).__name__})") from None
    out.reverse()
    return out


def append_history(path: Path, old: KeyFile, retired_height: int) -> None:
    """Add ``old``'s X25519 secret (retired at ``retired_height``) to the history file."""
    path = Path(path)
    body = _load(path) or {"kind": HISTORY_KIND, "version": 1, "org": old.org, "keys": []}
    keys = body["keys"]
    if any(isinstance(k, dict) and k.get("ed25519_public") == old.signer.public.hex()
           for k in keys):
        return  # already kept (a rerun after a crash)
    if len(keys) >= MAX_HISTORY_KEYS:
        raise CliError(f"{path}: key history is full ({MAX_HISTORY_KEYS} keys)")
    keys.append({"x25519_secret": old.box.secret().hex(),
                 "ed25519_public": old.signer.public.hex(), "retired_height": retired_height})
    write_atomically(path, (json.dumps(body, indent=2) + "\n").encode())  # 0600 (mkstemp)
    os.chmod(path, 0o600)


def box_keys(key: KeyFile, history: Path | None) -> list[BoxKey]:
    """The X25519 keys to try on a sealed opening: the current one, then the history newest
    first."""
    return [key.box, *(load_history(history) if history is not None else [])]
