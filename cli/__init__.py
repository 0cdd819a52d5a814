"""tpledger command-line front: cluster set-up, nodes, claims, proofs, audit, demo."""

# one name per module, never a second copy as a top-level package
if __name__ != "tpledger.cli":
    raise ImportError(f"import tpledger.cli, not {__name__} (see tpledger/__init__.py)")
