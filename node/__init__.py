"""tpledger's validator node: aiohttp runtime around ``ledger`` and ``consensus``."""

# one name per module, never a second copy as a top-level package
if __name__ != "tpledger.node":
    raise ImportError(f"import tpledger.node, not {__name__} (see tpledger/__init__.py)")
