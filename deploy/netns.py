#!/usr/bin/env python3
"""The four-organisation deployment of ``configs/`` run on one machine as four hosts.

Each validator runs in its own network namespace with its own address (10.77.0.11-14, created
here, only inside these namespaces), its own data directory and its own ``/etc``-like folder,
TLS between them (a consortium CA); one more namespace holds the bridge, and one the clients
(10.77.0.100). Nothing is added to the root namespace: every packet stays inside ours.

    python deploy/netns.py up DIR        # ceremony (keygen per org, genesis assemble), CA,
                                         # namespaces, veth pairs, nodes; waits until ready
    python deploy/netns.py cut DIR NODE  # the host's link down (ip link set ... down)
    python deploy/netns.py restore DIR NODE
    python deploy/netns.py status DIR    # link state and height of every node (JSON)
    python deploy/netns.py exec DIR -- CMD...   # run CMD in the clients' namespace
    python deploy/netns.py down DIR      # stop every process in our namespaces, delete them

Needs root and ``ip netns``. State in ``DIR/deploy.json``; node logs in ``DIR/hosts/ORG/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "deployment"
ORGS = ("federation", "insurer-a", "insurer-b", "cnam")  # v0..v3, as in configs/README.md
SUBNET = "10.77.0"
PORT = 7443
CLIENT_ADDR = f"{SUBNET}.100"
STATE_FILE = "deploy.json"
CLIENTS = (("optic-paris", "optician"), ("mutuelle-a", "insurer"), ("cnam", "cnam"))


class DeployError(Exception):
    """A deployment step failed (message for the operator)."""


@dataclass(frozen=True)
class Host:
    org: str
    name: str  # validator name in genesis
    ns: str
    addr: str
    link: str  # the bridge-side end of its veth pair (in the bridge namespace)

    @property
    def url(self) -> str:
        return f"https://{self.addr}:{PORT}"


@dataclass(frozen=True)
class Deployment:
    root: Path
    prefix: str
    hosts: tuple[Host, ...]

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-br"

    @property
    def client_ns(self) -> str:
        return f"{self.prefix}-cl"

    @property
    def namespaces(self) -> list[str]:
        return [self.bridge_ns, self.client_ns, *(h.ns for h in self.hosts)]

    @property
    def ca(self) -> Path:
        return self.root / "ca" / "ca.crt"

    def host(self, name_or_org: str) -> Host:
        for h in self.hosts:
            if name_or_org in (h.name, h.org):
                return h
        raise DeployError(f"no host {name_or_org!r} (hosts: "
                          f"{', '.join(h.name for h in self.hosts)})")

    def save(self) -> None:
        body = {"prefix": self.prefix, "hosts": [asdict(h) for h in self.hosts]}
        (self.root / STATE_FILE).write_text(json.dumps(body, indent=2) + "\n")

    @classmethod
    def load(cls, root: Path) -> Deployment:
        try:
            body = json.loads((root / STATE_FILE).read_text())
            return cls(root.resolve(), str(body["prefix"]),
                       tuple(Host(**h) for h in body["hosts"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DeployError(f"{root / STATE_FILE}: no deployment here ({exc})") from None

    @classmethod
    def new(cls, root: Path, prefix: str | None = None) -> Deployment:
        existing = ip("netns", "list", check=False).stdout
        while prefix is None or f"{prefix}-" in existing:  # never reuse a live deployment's
            prefix = f"tpl{secrets.token_hex(2)}"  # short: link names stay < 16 chars
        hosts = tuple(Host(org, f"v{i}", f"{prefix}-v{i}", f"{SUBNET}.{11 + i}", f"v{i}")
                      for i, org in enumerate(ORGS))
        return cls(root.resolve(), prefix, hosts)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and res.returncode != 0:
        raise DeployError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"tplprobe{os.getpid()}"
    if ip("netns", "add", probe, check=False).returncode != 0:
        return "`ip netns add` fails here"
    ip("netns", "del", probe, check=False)
    return None


# -- files: the ceremony and every host's /etc --------------------------------------------------
def ceremony(d: Deployment) -> Path:
    """Keys per organisation in separate folders, the genesis assembled from public files."""
    from tpledger.cli.ceremony import assemble, keygen, write_genesis

    orgs = d.root / "orgs"
    vals = [keygen(h.org, "validator", orgs / h.org, h.name).public for h in d.hosts]
    members = [keygen(org, role, orgs / org).public for org, role in CLIENTS]
    genesis = d.root / "genesis.json"
    print(f"genesis sha256 {write_genesis(assemble('tpledger-netns', members, vals), genesis)}")
    return genesis


def host_config(d: Deployment, h: Host) -> dict[str, Any]:
    """``configs/deployment/ORG.toml`` with this machine's paths and addresses."""
    import tomllib

    doc = tomllib.loads((CONFIGS / f"{h.org}.toml").read_text())
    etc, by_host = d.root / "hosts" / h.org / "etc", {f"ledger.{o.org}.example": o for o in d.hosts}
    doc |= {"data_dir": str(d.root / "hosts" / h.org / "var"),
            "genesis": str(etc / "genesis.json"), "validator_key": str(etc / "validator.key")}
    doc["api"]["listen"] = f"{h.addr}:{PORT}"
    for peer in doc["peers"]:
        peer_host = peer["url"].split("://", 1)[1].rsplit(":", 1)[0]
        peer["url"] = by_host[peer_host].url
    doc["tls"] = {k: str(etc / "tls" / f) for k, f in
                  (("cert", "node.crt"), ("key", "node.key"), ("ca", "ca.crt"))}
    return doc


def write_hosts(d: Deployment, genesis: Path) -> None:
    """Each host's folder holds its own validator key, the genesis, its certificate."""
    from tpledger.cli.tls import make_ca, make_node_cert

    ca_crt, ca_key = make_ca(d.root / "ca")
    for h in d.hosts:
        etc = d.root / "hosts" / h.org / "etc"
        (etc / "tls").mkdir(parents=True, mode=0o700)
        (d.root / "hosts" / h.org / "var").mkdir(mode=0o700)
        shutil.copy2(genesis, etc / "genesis.json")
        shutil.copy2(d.root / "orgs" / h.org / f"{h.name}.key", etc / "validator.key")
        make_node_cert(etc / "tls", "node", [h.addr], ca_crt, ca_key)
        shutil.copy2(ca_crt, etc / "tls" / "ca.crt")
        (etc / "node.toml").write_text(f"# {h.name} of {h.org}, from configs/deployment\n"
                                       + tomli_w.dumps(host_config(d, h)))


# -- network -----------------------------------------------------------------------------------
def make_network(d: Deployment) -> None:
    """A bridge in its own namespace; one veth pair per host (and one for the clients)."""
    br = d.bridge_ns
    ip("netns", "add", br)
    ip("-n", br, "link", "add", "br0", "type", "bridge")
    ip("-n", br, "link", "set", "br0", "up")
    ends = [(h.ns, h.link, h.addr) for h in d.hosts] + [(d.client_ns, "cl", CLIENT_ADDR)]
    for ns, link, addr in ends:
        ip("netns", "add", ns)
        ip("-n", br, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", br, "link", "set", link, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")


def set_link(d: Deployment, node: str, up: bool) -> None:
    """Cut (down) or restore (up) one host's link at the bridge."""
    ip("-n", d.bridge_ns, "link", "set", d.host(node).link, "up" if up else "down")


def link_up(d: Deployment, h: Host) -> bool:
    res = ip("-n", d.bridge_ns, "-j", "link", "show", h.link, check=False)
    with contextlib.suppress(ValueError, IndexError, KeyError):
        return "UP" in json.loads(res.stdout)[0]["flags"]
    return False


def in_client_ns(d: Deployment, argv: Sequence[str], timeout_s: float = 120
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the clients' namespace (from the repository root)."""
    return subprocess.run(["ip", "netns", "exec", d.client_ns, *argv], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout_s)


# -- processes ---------------------------------------------------------------------------------
def start_node(d: Deployment, h: Host) -> None:
    hdir = d.root / "hosts" / h.org
    env = dict(os.environ, PYTHONUNBUFFERED="1", TPLEDGER_DEBUG="1")
    with open(hdir / "node.log", "ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", h.ns, sys.executable, "-m", "tpledger.cli.main", "node", "run",
             str(hdir / "etc" / "node.toml")],
            cwd=hdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
    (hdir / "node.pid").write_text(f"{proc.pid}\n")


def stop_namespace_processes(namespaces: Sequence[str], timeout_s: float = 10.0) -> None:
    """SIGTERM every process in ``namespaces`` at once (nodes shut down faster together),
    SIGKILL those left after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for ns in namespaces
                for p in ip("netns", "pids", ns, check=False).stdout.split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
            time.sleep(0.1)
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def statuses(d: Deployment) -> dict[str, dict[str, Any]]:
    """Every node's height (-1: unreachable) as seen from the clients' namespace."""
    res = in_client_ns(d, [sys.executable, str(Path(__file__).resolve()), "probe",
                           str(d.root)], timeout_s=60)
    if res.returncode != 0:
        raise DeployError(f"probe failed: {res.stderr.strip()[-500:]}")
    heights: dict[str, int] = json.loads(res.stdout)
    return {h.name: {"org": h.org, "addr": h.addr, "link_up": link_up(d, h),
                     "height": heights[h.name]} for h in d.hosts}


def probe(d: Deployment, wait_min_height: int | None, timeout_s: float) -> dict[str, int]:
    """(In the clients' namespace.) Heights of all nodes; optionally wait until all reach one."""
    from tpledger.cli.client import ClientError, NodeClient

    deadline = time.monotonic() + timeout_s
    while True:
        heights: dict[str, int] = {}
        for h in d.hosts:
            try:
                with NodeClient(h.url, timeout_s=2.0, max_retries=0, ca_file=d.ca) as c:
                    heights[h.name] = int(c.status()["height"])
            except (ClientError, KeyError, TypeError, ValueError):
                heights[h.name] = -1
        if wait_min_height is None or min(heights.values()) >= wait_min_height:
            return heights
        if time.monotonic() > deadline:
            raise DeployError(f"nodes not at height {wait_min_height} in time: {heights}")
        time.sleep(0.3)


# -- commands ----------------------------------------------------------------------------------
def up(root: Path, prefix: str | None = None, timeout_s: float = 60.0) -> Deployment:
    """Everything from an empty ``root`` to four committing nodes; torn down on failure."""
    reason = unavailable_reason()
    if reason:
        raise DeployError(reason)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise DeployError(f"{root}: not empty; `down` the old deployment and remove it first")
    d = Deployment.new(root, prefix)
    d.save()  # first: `down` then finds what to delete whatever fails below
    try:
        write_hosts(d, ceremony(d))
        make_network(d)
        for h in d.hosts:
            start_node(d, h)
        res = in_client_ns(d, [sys.executable, str(Path(__file__).resolve()), "--min-height",
                               "1", "--timeout", str(timeout_s), "probe", str(d.root)],
                           timeout_s=timeout_s + 30)
        if res.returncode != 0:
            raise DeployError(f"nodes not ready: {res.stderr.strip()[-500:]}")
    except BaseException:
        down(d)
        raise
    return d


def down(d: Deployment) -> None:
    """Stop every process in our namespaces and delete them (safe to call twice)."""
    existing = set(ip("netns", "list", check=False).stdout.split())
    ours = [ns for ns in d.namespaces if ns in existing]
    stop_namespace_processes(ours)
    for ns in ours:
        ip("netns", "del", ns, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="deploy/netns.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("up", "down", "cut", "restore", "status", "probe",
                                       "exec"))
    ap.add_argument("dir", type=Path)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    ap.add_argument("--min-height", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv)
    try:
        if a.action == "up":
            d = up(a.dir, timeout_s=a.timeout)
            print(json.dumps(statuses(d), indent=2))
            return 0
        d = Deployment.load(a.dir)
        if a.action in ("cut", "restore") and len(a.rest) == 1:
            set_link(d, a.rest[0], a.action == "restore")
        elif a.action == "down":
            down(d)
        elif a.action == "status":
            print(json.dumps(statuses(d), indent=2))
        elif a.action == "probe":
            print(json.dumps(probe(d, a.min_height, a.timeout)))
        elif a.action == "exec" and a.rest:
            cmd = a.rest[1:] if a.rest[0] == "--" else a.rest
            return subprocess.run(["ip", "netns", "exec", d.client_ns, *cmd]).returncode
        else:
            ap.error(f"{a.action}: missing or extra arguments")
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
