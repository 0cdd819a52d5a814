"""tpledger's pure data layer: encoding, keys, transactions, rules, Merkle log, store, proofs.

No asyncio, no network. ``consensus`` and ``node`` build on it; it imports neither.
"""
