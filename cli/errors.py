"""Errors the CLI raises for bad input; mapped to exit codes in one place (``cli.main.run``)."""

from __future__ import annotations


class CliError(Exception):
    """Bad input or environment detected by the CLI itself (exit 1, one line, no traceback)."""


class UsageError(CliError):
    """Bad combination of options (exit 2)."""
