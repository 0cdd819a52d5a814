"""One module per command group (or top-level command) of ``tpledger``.

Each module defines its click group or command and nothing else that another module needs:
the work is done by the helpers of ``cli/`` (client, claims, lifecycle, witness, ...), the
output by :mod:`cli.render`, the shared options come from :mod:`cli.options`.
:mod:`cli.main` registers them (:data:`COMMANDS`).
"""
