"""Node configuration: one TOML file per validator (see configs/ for a documented example).

Paths in the file are relative to the file's own directory.

```toml
name = "v0"                       # this validator's name in genesis
data_dir = "data"                 # LMDB store, consensus state
genesis = "../../genesis.json"
validator_key = "validator.key"   # KeyFile of role "validator" (mode 0600)
lpp_table = ""                    # optional CSV; default: the shipped seed table

[api]
listen = "127.0.0.1:7000"         # client API and peer endpoint (/v1/peer)

[[peers]]
name = "v1"
url = "http://127.0.0.1:7001"

[limits]
mempool_max_txs = 100000
max_body_bytes = 8388608
max_batch_txs = 5000
max_peer_queue = 10000
retention_days = 0                # delete sealed openings this long after submission
store_map_size_mb = 65536         # LMDB map size; raise it before the store fills it
forget_max_age_ms = 604800000     # a payer's signed forget request is obeyed this long (7 days)
http_read_timeout_ms = 10000      # headers and body of a request must arrive within this

[consensus]
timeout_propose_ms = 3000        # must exceed empty_block_interval_ms
timeout_prevote_ms = 500
timeout_precommit_ms = 500
timeout_delta_ms = 500
timeout_commit_ms = 100
empty_block_interval_ms = 1000

[scrub]
rows_per_s = 1000                # background re-check of every stored row; 0 disables

[metrics]                          # optional
listen = "127.0.0.1:9100"          # also serve GET /metrics (plain http) on this address

[tls]                              # optional; peers then use https:// URLs
cert = ""
key = ""
ca = ""
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpledger.ledger.limits import DEFAULT_HTTP_BODY_BYTES, MAX_HTTP_BODY_BYTES
from tpledger.node.errors import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PeerConfig:
    name: str
    url: str


@dataclass(frozen=True)
class Limits:
    mempool_max_txs: int = 100_000
    max_body_bytes: int = DEFAULT_HTTP_BODY_BYTES  # at most MAX_HTTP_BODY_BYTES (ledger/limits)
    max_batch_txs: int = 5_000
    max_peer_queue: int = 10_000
    retention_days: int = 0  # sealed openings kept this long after submission; 0 = forever
    store_map_size_mb: int = 65_536  # LMDB map (virtual, grows on disk as used): ~60M txs
    forget_max_age_ms: int = 7 * 24 * 3600 * 1000  # a payer's forget request is obeyed this long
    http_read_timeout_ms: int = 10_000  # a request's headers and body must arrive within this


@dataclass(frozen=True)
class ConsensusTimeouts:
    timeout_propose_ms: int = 3000
    timeout_prevote_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_delta_ms: int = 500
    timeout_commit_ms: int = 100
    empty_block_interval_ms: int = 1000  # proposer waits this long for txs before an empty block


@dataclass(frozen=True)
class TlsConfig:
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None


def _consensus(c: ConsensusTimeouts, path: Path) -> ConsensusTimeouts:
    if c.empty_block_interval_ms >= c.timeout_propose_ms:
        raise ConfigError(
            f"{path}: [consensus] empty_block_interval_ms must be below timeout_propose_ms "
            "(else the others time out waiting for an idle proposer)"
        )
    if min(c.timeout_propose_ms, c.timeout_prevote_ms, c.timeout_precommit_ms) <= 0:
        raise ConfigError(f"{path}: [consensus] timeouts must be positive")
    return c


def _limits(lim: Limits, path: Path) -> Limits:
    if not 0 < lim.max_body_bytes <= MAX_HTTP_BODY_BYTES:
        raise ConfigError(f"{path}: [limits] max_body_bytes must be in (0, {MAX_HTTP_BODY_BYTES}]")
    return lim


def _host_port(listen: Any, table: str, path: Path) -> tuple[str, int]:
    host, _, port_s = str(listen).rpartition(":")
    if not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ConfigError(f"{path}: [{table}] listen must be HOST:PORT")
    return host, int(port_s)


@dataclass(frozen=True)
class ScrubConfig:
    rows_per_s: int = 1_000  # rows of the stores re-checked per second; 0: no scrub


def _names(kls: type[Any]) -> frozenset[str]:
    return frozenset(kls.__dataclass_fields__)


# Every key a node.toml may hold, per table ("" is the top level; "peers" each [[peers]]).
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"name", "data_dir", "genesis", "validator_key", "lpp_table", "api", "peers",
                   "limits", "consensus", "scrub", "tls", "metrics"}),
    "api": frozenset({"listen"}),
    "metrics": frozenset({"listen"}),
    "peers": _names(PeerConfig),
    "limits": _names(Limits),
    "consensus": _names(ConsensusTimeouts),
    "scrub": _names(ScrubConfig),
    "tls": _names(TlsConfig),
}
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def key_line(text: str, table: str, key: str) -> int | None:
    """The 1-based line of ``key`` inside ``[table]`` ("" top level), by a scan of the text
    (tomllib gives no positions); None if not found (e.g. written as a dotted or inline key)."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip()
            continue
        found = _KEY.match(line)
        if found and current == table and found.group(1).strip("\"'") == key:
            return number
    return None


def refuse_unknown_keys(raw: dict[str, Any], text: str, path: Path) -> None:
    """Refuse a key no table knows (a typo like ``listne`` would else be silently ignored),
    naming the key, its table and its line in the file."""
    tables: list[tuple[str, Any]] = [("", raw)]
    tables += [(name, raw.get(name)) for name in KNOWN_KEYS if name not in ("", "peers")]
    peers = raw.get("peers")
    tables += [("peers", p) for p in peers] if isinstance(peers, list) else []
    for table, body in tables:
        if not isinstance(body, dict):
            continue  # absent, or a wrong type that from_dict reports
        for key in sorted(set(body) - KNOWN_KEYS[table]):
            line = key_line(text, table, key)
            where = f"{path}:{line}" if line else str(path)
            label = f"[{table}]" if table else "top level"
            raise ConfigError(
                f"{where}: unknown keys in {label}: {key!r} (known keys: "
                f"{', '.join(sorted(KNOWN_KEYS[table]))})"
            )


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    name: str
    data_dir: Path
    genesis: Path
    validator_key: Path
    lpp_table: Path | None
    listen_host: str
    listen_port: int
    peers: tuple[PeerConfig, ...]
    limits: Limits = field(default_factory=Limits)
    consensus: ConsensusTimeouts = field(default_factory=ConsensusTimeouts)
    tls: TlsConfig = field(default_factory=TlsConfig)
    scrub: ScrubConfig = field(default_factory=ScrubConfig)
    metrics_listen: tuple[str, int] | None = None  # [metrics] listen: a second /metrics site

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        p = Path(path).resolve()
        try:
            if p.stat().st_size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{p}: config file larger than {MAX_CONFIG_BYTES} bytes")
            text = p.read_text()
            raw = tomllib.loads(text)
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        refuse_unknown_keys(raw, text, p)
        return cls.from_dict(raw, p)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path) -> NodeConfig:
        base = path.parent

        def rel(v: Any, key: str) -> Path:
            if not isinstance(v, str) or not v:
                raise ConfigError(f"{path}: {key} must be a non-empty string")
            return (base / v).resolve()

        def section(name: str) -> dict[str, Any]:
            sec = raw.get(name, {})
            if not isinstance(sec, dict):
                raise ConfigError(f"{path}: [{name}] must be a table")
            return sec

        def ints(name: str, kls: type[Any]) -> Any:
            sec = section(name)
            known = set(kls.__dataclass_fields__)
            unknown = set(sec) - known
            if unknown:
                raise ConfigError(f"{path}: unknown keys in [{name}]: {', '.join(sorted(unknown))}")
            for k, v in sec.items():
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ConfigError(f"{path}: [{name}] {k} must be a non-negative integer")
            return kls(**sec)

        try:
            name = raw["name"]
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{path}: name must be a non-empty string")
            host, port = _host_port(section("api").get("listen", "127.0.0.1:0"), "api", path)
            metrics_listen = section("metrics").get("listen")
            peers_raw = raw.get("peers", [])
            if not isinstance(peers_raw, list):
                raise ConfigError(f"{path}: peers must be an array of tables")
            peers = []
            for pr in peers_raw:
                if not isinstance(pr, dict) or not isinstance(pr.get("name"), str) or not str(
                    pr.get("url", "")
                ).startswith(("http://", "https://")):
                    raise ConfigError(f"{path}: each [[peers]] needs name and an http(s) url")
                peers.append(PeerConfig(pr["name"], pr["url"].rstrip("/")))
            tls_raw = section("tls")
            tls = TlsConfig(
                cert=rel(tls_raw["cert"], "tls.cert") if tls_raw.get("cert") else None,
                key=rel(tls_raw["key"], "tls.key") if tls_raw.get("key") else None,
                ca=rel(tls_raw["ca"], "tls.ca") if tls_raw.get("ca") else None,
            )
            lpp = raw.get("lpp_table") or None
            return cls(
                path=path,
                name=name,
                data_dir=rel(raw.get("data_dir", "data"), "data_dir"),
                genesis=rel(raw.get("genesis"), "genesis"),
                validator_key=rel(raw.get("validator_key"), "validator_key"),
                lpp_table=rel(lpp, "lpp_table") if lpp else None,
                listen_host=host,
                listen_port=port,
                peers=tuple(peers),
                limits=_limits(ints("limits", Limits), path),
                consensus=_consensus(ints("consensus", ConsensusTimeouts), path),
                tls=tls,
                scrub=ints("scrub", ScrubConfig),
                metrics_listen=(None if metrics_listen is None
                                else _host_port(metrics_listen, "metrics", path)),
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: missing key {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
