"""tpledger's validator node: aiohttp runtime around ``ledger`` and ``consensus``."""
