"""tpledger's pure data layer: encoding, keys, transactions, rules, Merkle log, store, proofs.

No asyncio, no network. ``consensus`` and ``node`` build on it; it imports neither.
"""

# one name per module, never a second copy as a top-level package
if __name__ != "tpledger.ledger":
    raise ImportError(f"import tpledger.ledger, not {__name__} (see tpledger/__init__.py)")
