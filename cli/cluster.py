"""Local clusters: ``cluster init`` files, and :class:`LocalCluster` to run nodes as children.

Layout written by :func:`init_cluster` (paths in ``cluster.json`` are relative to DIR)::

    DIR/genesis.json
    DIR/cluster.json            {"genesis", "nodes": [{"name", "api", "config"}], "clients": [...]}
    DIR/nodes/v0/node.toml      API on 127.0.0.1:P+0, peers = all others
    DIR/nodes/v0/validator.key  (0600)
    DIR/keys/optic-paris.key    (0600) ... one operational key per participant
    DIR/admin/federation.admin.json (0600) ... one admin key per governing organisation, in a
                                directory of its own: never in an operational key file

The genesis (version 2) names the governing organisations :data:`GOV_ORGS` with their admin
keys, the policy (:data:`GOV_THRESHOLD` of them for a quorum change, the CNAM's admin publishes
tariffs), and each participant's governing organisation and professional identifiers
(:data:`PARTICIPANT_GOVERNANCE`: fictitious numbers with valid Luhn keys).

:class:`LocalCluster` is reused by the demo, ``tpledger bench`` and end-to-end tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import tomli_w

from tpledger.cli.bounded_files import write_atomically
from tpledger.cli.ceremony import ADMIN_STEM, make_policy
from tpledger.cli.client import ClientError, NodeClient
from tpledger.cli.errors import CliError
from tpledger.ledger.genesis import (
    DEFAULT_PARAMS,
    NO_IDS,
    Genesis,
    GovOrg,
    Identifiers,
    Participant,
    Validator,
    parse_day,
)
from tpledger.ledger.keys import KeyFile

DEFAULT_CHAIN_ID = "tpledger-local"
CLUSTER_FILE = "cluster.json"
GENESIS_FILE = "genesis.json"
PARTICIPANTS: tuple[tuple[str, str], ...] = (
    ("optic-paris", "optician"),
    ("optic-lyon", "optician"),
    ("mutuelle-a", "insurer"),
    ("mutuelle-b", "insurer"),
    ("cnam", "cnam"),
)
CLIENT_ROLES = ("optician", "insurer", "cnam")
# The governing organisations of a local cluster and the roles their admins register. The
# second insurer's organisation (insurer-b) is not a member at genesis: a quorum adds it.
GOV_ORGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("federation", ("optician",)),
    ("insurer-a", ("insurer",)),
    ("cnam", ("cnam", "auditor")),
)
GOV_THRESHOLD = 2  # of the 3 governing organisations
TARIFF_PUBLISHER = "cnam"  # the CNAM's admin publishes LPP versions
MAX_CLAIM_AGE_DAYS = 730
PROPOSAL_TTL_DAYS = 7
LPP_V1_EFFECTIVE = "2024-01-01"
# Each participant's governing org ("" = none yet) and identifiers: fictitious, well formed
# (SIRET and RPPS with their Luhn key, 9-digit billing numbers, AMC numbers).
PARTICIPANT_GOVERNANCE: dict[str, tuple[str, Identifiers]] = {
    "optic-paris": ("federation", Identifiers(rpps="10001234565", billing="751234560",
                                              siret="75200100800016")),
    "optic-lyon": ("federation", Identifiers(rpps="10007654329", billing="691234560",
                                             siret="69300200800011")),
    "mutuelle-a": ("insurer-a", Identifiers(amc="775003007", siret="77500300700017")),
    "mutuelle-b": ("", Identifiers(amc="784004004", siret="78400400400015")),
    "cnam": ("cnam", Identifiers(siret="18003502400017")),
}
ADMIN_DIR = "admin"
NODE_PID_FILE = "node.pid"  # nodes/NAME/node.pid: the running node's pid (written at start)
CONTROL_FILE = "control"  # nodes/NAME/control: "stop" or "restart", consumed by `cluster up`
UP_PID_FILE = "up.pid"  # DIR/up.pid: the pid of the `cluster up` supervising DIR
CONTROL_ACTIONS = ("stop", "restart")
MAX_CONTROL_BYTES = 64


def validator_orgs(n: int) -> list[str]:
    """Who holds each of ``n`` validators: the opticians' federation, insurers, the CNAM.

    >>> validator_orgs(4)
    ['federation', 'insurer-a', 'insurer-b', 'cnam']
    """
    if n < 1:
        raise CliError("a cluster needs at least one validator")
    if n == 1:
        return ["federation"]
    middle = n - 2
    insurers = [
        f"insurer-{chr(ord('a') + i)}" if middle <= 26 else f"insurer-{i + 1}"
        for i in range(middle)
    ]
    return ["federation", *insurers, "cnam"]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that are free right now (bound together, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class NodeEntry:
    name: str
    api: str
    config: Path


@dataclass(frozen=True)
class ClientEntry:
    org: str
    role: str
    key: Path


@dataclass(frozen=True)
class ClusterInfo:
    """The parsed ``cluster.json`` of a cluster directory (paths resolved against it)."""

    root: Path
    genesis: Path
    nodes: tuple[NodeEntry, ...]
    clients: tuple[ClientEntry, ...]
    ca: Path | None = None  # the consortium CA when the nodes speak TLS
    admins: tuple[ClientEntry, ...] = ()  # governing organisations' admin keys (role "admin")

    @classmethod
    def load(cls, directory: str | Path) -> ClusterInfo:
        root = Path(directory).resolve()
        path = root / CLUSTER_FILE
        try:
            body = json.loads(path.read_text())
            return cls(
                root=root,
                genesis=root / body["genesis"],
                nodes=tuple(
                    NodeEntry(str(n["name"]), str(n["api"]), root / n["config"])
                    for n in body["nodes"]
                ),
                clients=tuple(
                    ClientEntry(str(c["org"]), str(c["role"]), root / c["key"])
                    for c in body["clients"]
                ),
                ca=root / body["ca"] if body.get("ca") else None,
                admins=tuple(
                    ClientEntry(str(a["org"]), "admin", root / a["key"])
                    for a in body.get("admins", ())
                ),
            )
        except OSError as exc:
            raise CliError(f"{path}: cannot read cluster file: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{path}: malformed cluster file ({type(exc).__name__})") from None

    def client(self, org: str) -> ClientEntry:
        for c in self.clients:
            if c.org == org:
                return c
        raise CliError(f"no client key for org {org!r} in {self.root / CLUSTER_FILE}")

    def orgs(self, role: str) -> list[str]:
        return [c.org for c in self.clients if c.role == role]

    def admin_key(self, org: str) -> Path:
        """The admin key file of governing organisation ``org``."""
        for a in self.admins:
            if a.org == org:
                return a.key
        raise CliError(f"no admin key for organisation {org!r} in {self.root / CLUSTER_FILE}")


def _write_node_toml(
    path: Path, name: str, port: int, peers: list[tuple[str, int]], host: str,
    tls: bool = False,
) -> None:
    scheme = "https" if tls else "http"
    doc: dict[str, Any] = {
        "name": name,
        "data_dir": "data",
        "genesis": f"../../{GENESIS_FILE}",
        "validator_key": "validator.key",
        "lpp_table": "",
        "api": {"listen": f"{host}:{port}"},
        "peers": [{"name": pn, "url": f"{scheme}://{host}:{pp}"} for pn, pp in peers],
    }
    if tls:
        doc["tls"] = {"cert": f"../../tls/{name}.crt", "key": f"../../tls/{name}.key",
                      "ca": "../../tls/ca.crt"}
    path.write_text(
        f"# tpledger node {name}; written by `tpledger cluster init`\n" + tomli_w.dumps(doc)
    )


def _ports(validators: int, base_port: int, host: str) -> list[int]:
    """Node i's port: ``base_port + i``, or free ports when ``base_port`` is 0."""
    if base_port == 0:
        return free_ports(validators, host)
    if not 1 <= base_port <= 65535 - validators + 1:
        raise CliError("--base-port leaves no room for all nodes below 65536")
    return [base_port + i for i in range(validators)]


def _validator_keys(root: Path, names: list[str]) -> list[Validator]:
    """One validator key per node, in ``nodes/NAME/validator.key``."""
    vals: list[Validator] = []
    for name, org in zip(names, validator_orgs(len(names)), strict=True):
        ndir = root / "nodes" / name
        ndir.mkdir(parents=True, mode=0o700)
        key = KeyFile.generate(org, "validator")
        key.save(ndir / "validator.key")
        vals.append(Validator(name, org, key.signer.public))
    return vals


def _participant_keys(root: Path) -> tuple[list[Participant], list[dict[str, str]]]:
    """One key per participant in ``keys/ORG.key``; the genesis entries and cluster.json rows."""
    parts: list[Participant] = []
    clients: list[dict[str, str]] = []
    for org, role in PARTICIPANTS:
        key = KeyFile.generate(org, role)
        key.save(root / "keys" / f"{org}.key")
        gov_org, ids = PARTICIPANT_GOVERNANCE.get(org, ("", NO_IDS))
        parts.append(Participant(org, role, key.signer.public, key.box.public, gov_org, ids))
        clients.append({"org": org, "role": role, "key": f"keys/{org}.key"})
    return parts, clients


def _admin_keys(root: Path) -> tuple[list[GovOrg], list[dict[str, str]]]:
    """One admin key per governing organisation in ``admin/ORG.admin.json``, kept apart from
    the operational keys; the genesis entries and cluster.json rows."""
    (root / ADMIN_DIR).mkdir(mode=0o700)
    orgs: list[GovOrg] = []
    rows: list[dict[str, str]] = []
    for name, roles in GOV_ORGS:
        key = KeyFile.generate(name, "admin")
        path = f"{ADMIN_DIR}/{ADMIN_STEM.format(org=name)}.json"  # as the ceremony names it
        key.save(root / path)
        orgs.append(GovOrg(name, key.signer.public, roles))
        rows.append({"org": name, "key": path})
    return orgs, rows


def init_cluster(
    directory: str | Path,
    validators: int = 4,
    base_port: int = 0,
    chain_id: str = DEFAULT_CHAIN_ID,
    host: str = "127.0.0.1",
    tls: bool = False,
) -> ClusterInfo:
    """Write keys, genesis, node configs and ``cluster.json`` into an empty ``directory``.

    ``base_port`` 0 picks free ports; otherwise node i listens on ``base_port + i``.
    """
    from tpledger.ledger.lpp import LppTable  # in-flight module: imported when needed

    root = Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CliError(f"{root}: not an empty directory; refusing to overwrite a cluster")
    if not 1 <= validators <= 64:
        raise CliError("--validators must be between 1 and 64")
    ports = _ports(validators, base_port, host)
    lpp_digest = LppTable.default().digest()
    root.parent.mkdir(parents=True, exist_ok=True)
    # written into a sibling temporary directory, renamed into place only when complete: a
    # failure part-way leaves no half-written cluster that the next run would refuse
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=root.parent))
    try:
        _write_cluster(tmp, validators, ports, chain_id, host, tls, lpp_digest)
        os.replace(tmp, root)  # atomic; replaces an empty directory
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ClusterInfo.load(root)


def _write_cluster(root: Path, validators: int, ports: list[int], chain_id: str, host: str,
                   tls: bool, lpp_digest: bytes) -> None:
    (root / "keys").mkdir(mode=0o700)
    names = [f"v{i}" for i in range(validators)]
    vals = _validator_keys(root, names)
    parts, clients = _participant_keys(root)
    gov_orgs, admins = _admin_keys(root)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=int(time.time() * 1000),
        validators=tuple(vals),
        participants=tuple(parts),
        lpp_table_digest=lpp_digest,
        params=DEFAULT_PARAMS,
        gov_orgs=tuple(gov_orgs),
        policy=make_policy(len(GOV_ORGS), GOV_THRESHOLD, TARIFF_PUBLISHER, MAX_CLAIM_AGE_DAYS,
                           PROPOSAL_TTL_DAYS, parse_day(LPP_V1_EFFECTIVE)),
    ).validated()
    genesis.save(root / GENESIS_FILE)
    write_layout(root, ports, host, tls, clients, admins)


def write_layout(root: Path, ports: list[int], host: str, tls: bool,
                 clients: list[dict[str, str]],
                 admins: list[dict[str, str]] | None = None) -> ClusterInfo:
    """Node configs (and TLS material) and ``cluster.json`` around the keys and genesis already
    in ``root`` (``genesis.json``, ``nodes/vI/validator.key``): used by ``init_cluster`` and
    to run a cluster from genesis-ceremony files."""
    validators = len(ports)
    names = [f"v{i}" for i in range(validators)]
    scheme = "https" if tls else "http"
    if tls:  # a consortium CA and one certificate per node, as in configs/deployment
        from tpledger.cli.tls import make_ca, make_node_cert

        ca_crt, ca_key = make_ca(root / "tls")
        for name in names:
            make_node_cert(root / "tls", name, [host, "localhost"], ca_crt, ca_key)
    nodes: list[dict[str, str]] = []
    for i, name in enumerate(names):
        peers = [(names[j], ports[j]) for j in range(validators) if j != i]
        _write_node_toml(root / "nodes" / name / "node.toml", name, ports[i], peers, host, tls)
        nodes.append(
            {"name": name, "api": f"{scheme}://{host}:{ports[i]}",
             "config": f"nodes/{name}/node.toml"}
        )
    body: dict[str, Any] = {"genesis": GENESIS_FILE, "nodes": nodes, "clients": clients,
                            "admins": admins or []}
    if tls:
        body["ca"] = "tls/ca.crt"
    (root / CLUSTER_FILE).write_text(json.dumps(body, indent=2) + "\n")
    return ClusterInfo.load(root)


def node_command(config: Path) -> list[str]:
    """The command line that runs one node in the foreground."""
    return [sys.executable, "-m", "tpledger.cli.main", "node", "run", str(config)]


class LocalCluster:
    """Run every node of a cluster directory as a child process.

    Use as a context manager: inits ``directory`` if it holds no ``cluster.json``, starts one
    process per node (output in ``DIR/nodes/NAME/node.log``), waits for ``/v1/status`` on all,
    and on exit stops them with SIGTERM, then SIGKILL after ``stop_timeout_s``.
    """

    def __init__(
        self,
        directory: str | Path,
        validators: int = 4,
        base_port: int = 0,
        chain_id: str = DEFAULT_CHAIN_ID,
        startup_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.validators = validators
        self.base_port = base_port
        self.chain_id = chain_id
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._info: ClusterInfo | None = None

    # -- set-up ------------------------------------------------------------------------------
    @property
    def info(self) -> ClusterInfo:
        if self._info is None:
            if (self.directory / CLUSTER_FILE).exists():
                self._info = ClusterInfo.load(self.directory)
            else:
                self._info = init_cluster(
                    self.directory, self.validators, self.base_port, self.chain_id
                )
        return self._info

    @property
    def urls(self) -> list[str]:
        return [n.api for n in self.info.nodes]

    def genesis(self) -> Genesis:
        return Genesis.load(self.info.genesis)

    def key(self, org: str) -> KeyFile:
        return KeyFile.load(self.info.client(org).key)

    def admin_key(self, org: str) -> Path:
        """The admin key file of governing organisation ``org`` (``admin/ORG.admin.json``)."""
        return self.info.admin_key(org)

    def client(self, org: str | None = None, node: int = 0) -> NodeClient:
        """A client of node ``node``, signing with ``org``'s key when given."""
        signer = self.key(org).signer if org else None
        return NodeClient(self.urls[node], signer=signer, chain_id=self.genesis().chain_id,
                          ca_file=self.info.ca)

    def log_path(self, name: str) -> Path:
        return self.info.root / "nodes" / name / "node.log"

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> LocalCluster:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every node not already running."""
        env = self._child_env()
        for node in self.info.nodes:
            proc = self.procs.get(node.name)
            if proc is not None and proc.poll() is None:
                continue
            self.start_node(node.name, env)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("TPLEDGER_DEBUG", "1")  # a crashing node logs its traceback
        return env

    def start_node(self, name: str, env: dict[str, str] | None = None) -> None:
        """(Re)start one node by name (used by tests that crash and restart a validator)."""
        node = next((n for n in self.info.nodes if n.name == name), None)
        if node is None:
            raise CliError(f"no node {name!r} in this cluster")
        if env is None:
            env = self._child_env()
        old = self._logs.pop(name, None)
        if old is not None:
            old.close()
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        proc = self.procs[name] = subprocess.Popen(
            node_command(node.config),
            cwd=node.config.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # our stop() signals it; a terminal Ctrl-C reaches only us
        )
        (self.log_path(name).parent / NODE_PID_FILE).write_text(f"{proc.pid}\n")

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until every node answers ``/v1/status``; raise CliError naming a dead node."""
        deadline = time.monotonic() + (self.startup_timeout_s if timeout_s is None else timeout_s)
        pending = {n.name: n.api for n in self.info.nodes}
        while pending:
            for name, api in list(pending.items()):
                self._check_alive(name)
                try:
                    with NodeClient(api, timeout_s=2.0, max_retries=0,
                                    ca_file=self.info.ca) as c:
                        c.status()
                    del pending[name]
                except ClientError:
                    pass
            if not pending:
                return
            if time.monotonic() > deadline:
                raise CliError(
                    f"nodes not answering /v1/status in time: {', '.join(sorted(pending))}"
                    f" (logs in {self.info.root / 'nodes'})"
                )
            time.sleep(0.1)

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise CliError(
                f"node {name} exited with code {proc.returncode}: {self.log_tail(name)}"
            )

    def dead_nodes(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, name: str, max_chars: int = 300) -> str:
        """Last line(s) of a node's log, on one line (for error messages)."""
        try:
            data = self.log_path(name).read_bytes()[-4096:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
        return (lines[-1] if lines else "(empty log)")[-max_chars:]

    def stop_node(self, name: str, timeout_s: float | None = None) -> int | None:
        """SIGTERM one node, SIGKILL it after the timeout; return its exit code."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s if timeout_s is None else timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()
        return proc.returncode

    def kill_node(self, name: str) -> None:
        """SIGKILL one node (crash simulation)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self) -> dict[str, int | None]:
        """Stop all nodes: SIGTERM to all at once, then SIGKILL the ones still running."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
            codes[name] = proc.returncode
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        return codes

    def processes(self) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
        yield from self.procs.items()


@dataclass(frozen=True)
class NodeEvent:
    """Something that happened to one node under ``cluster up``."""

    name: str
    kind: str  # "exited" (on its own), "stopped" or "restarted" (on request), "ignored"
    code: int | None = None
    detail: str = ""


class Supervisor:
    """What ``cluster up`` does every tick: report nodes that exited (once each) and carry out
    the stop/restart requests that ``tpledger cluster stop|restart`` leave in
    ``nodes/NAME/control``. The other nodes keep running whatever happens to one."""

    def __init__(self, lc: LocalCluster) -> None:
        self.lc = lc
        self.down: set[str] = set()  # nodes already reported as not running

    def poll(self) -> list[NodeEvent]:
        events: list[NodeEvent] = []
        for name in self.lc.dead_nodes():
            if name not in self.down:
                self.down.add(name)
                events.append(NodeEvent(name, "exited", self.lc.procs[name].returncode,
                                        self.lc.log_tail(name)))
        for node in self.lc.info.nodes:
            action = self._take_request(node.name)
            if action is None:
                continue
            if action not in CONTROL_ACTIONS:
                events.append(NodeEvent(node.name, "ignored", detail=action[:32]))
                continue
            code = self.lc.stop_node(node.name)
            self.down.add(node.name)
            if action == "restart":
                self.lc.start_node(node.name)
                self.down.discard(node.name)
                events.append(NodeEvent(node.name, "restarted", code))
            else:
                events.append(NodeEvent(node.name, "stopped", code))
        return events

    def _take_request(self, name: str) -> str | None:
        path = self.lc.log_path(name).parent / CONTROL_FILE
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_CONTROL_BYTES)
            path.unlink()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        return data.decode("ascii", "replace").strip()


def pid_alive(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text()[:32].strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@contextlib.contextmanager
def up_pid_file(root: Path) -> Iterator[None]:
    """Mark ``root`` as supervised by this process (refusing a second ``cluster up``)."""
    path = root / UP_PID_FILE
    other = pid_alive(path)
    if other is not None and other != os.getpid():
        raise CliError(f"{root}: `tpledger cluster up` already runs it (pid {other})")
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def request_node_action(directory: Path, name: str, action: str,
                        timeout_s: float = 30.0) -> ClusterInfo:
    """Ask the ``cluster up`` of ``directory`` to stop or restart node ``name``; wait until it
    took the request. Raises CliError if no ``cluster up`` runs or it does not answer."""
    info = ClusterInfo.load(directory)
    if all(n.name != name for n in info.nodes):
        raise CliError(f"no node {name!r} in {info.root / CLUSTER_FILE} "
                       f"(nodes: {', '.join(n.name for n in info.nodes)})")
    if pid_alive(info.root / UP_PID_FILE) is None:
        raise CliError(f"no `tpledger cluster up {directory}` is running "
                       f"(no live {info.root / UP_PID_FILE})")
    path = info.root / "nodes" / name / CONTROL_FILE
    write_atomically(path, (action + "\n").encode())  # never seen half-written
    deadline = time.monotonic() + timeout_s
    while path.exists():
        if time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                path.unlink()
            raise CliError(f"`cluster up` did not take the {action} request in {timeout_s:g} s")
        time.sleep(0.1)
    return info


def wait_node_answers(info: ClusterInfo, name: str, timeout_s: float) -> None:
    """Wait until node ``name`` answers ``/v1/status``; CliError after ``timeout_s``."""
    api = next(n.api for n in info.nodes if n.name == name)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with NodeClient(api, timeout_s=2.0, max_retries=0, ca_file=info.ca) as c:
                c.status()
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise CliError(f"node {name} not answering /v1/status after {timeout_s:g} s "
                               f"(log: {info.root / 'nodes' / name / 'node.log'})") from None
            time.sleep(0.2)
