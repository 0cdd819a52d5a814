"""tpledger: a permissioned append-only ledger for optical tiers payant.

The distribution installs one top-level name, ``tpledger``. Its four packages keep their own
folders at the repository's top level (``ledger/``, ``consensus/``, ``node/``, ``cli/``); the
entries here are symbolic links to them, so that a source checkout, the type checker and the
built wheel all see the same module names (``tpledger.ledger.keys``, ...).
"""
