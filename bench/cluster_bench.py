"""End-to-end cluster benchmark; the code lives in ``cli/bench.py`` (``tpledger bench``)."""

from __future__ import annotations

import sys

from tpledger.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
