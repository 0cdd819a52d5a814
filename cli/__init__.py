"""tpledger command-line front: cluster set-up, nodes, claims, proofs, audit, demo."""
