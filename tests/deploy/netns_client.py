"""The clients' side of the netns deployment test; runs INSIDE the clients' namespace:

    python -m tests.deploy.netns_client submit DIR NODE N SEED   # N claims, wait committed
    python -m tests.deploy.netns_client has DIR NODE CLAIM_ID TIMEOUT_S

Prints one JSON line; exit 0 on success.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.deploy.helpers import commit, load_netns
from tests.node.conftest import make_claims
from tpledger.cli.client import ClientError, NodeClient
from tpledger.ledger.genesis import Genesis
from tpledger.ledger.keys import KeyFile

netns = load_netns()


class Orgs:
    """Keys from each organisation's own folder (as the ceremony left them) and the genesis."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def key(self, org: str) -> KeyFile:
        return KeyFile.load(self.root / "orgs" / org / f"{org}.key")

    def genesis(self) -> Genesis:
        return Genesis.load(self.root / "genesis.json")


def client(d: object, node: str, org: str) -> NodeClient:
    orgs = Orgs(d.root)  # type: ignore[attr-defined]
    return NodeClient(d.host(node).url, signer=orgs.key(org).signer,  # type: ignore[attr-defined]
                      chain_id=orgs.genesis().chain_id, ca_file=d.ca)  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    action, root, node = argv[0], Path(argv[1]), argv[2]
    d = netns.Deployment.load(root)
    if action == "submit":
        claims, _ = make_claims(Orgs(root), "optic-paris", "mutuelle-a",  # type: ignore[arg-type]
                                int(argv[3]), int(argv[4]))
        commit(client(d, node, "optic-paris"), claims)
        print(json.dumps({"claim_ids": [pc.claim_id.hex() for pc in claims]}))
        return 0
    deadline = time.monotonic() + float(argv[4])
    while True:
        try:
            with client(d, node, "optic-paris") as c:
                c.claim(argv[3])
            print(json.dumps({"has": True}))
            return 0
        except ClientError as exc:
            if time.monotonic() > deadline:
                print(json.dumps({"has": False, "error": str(exc)}))
                return 1
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
