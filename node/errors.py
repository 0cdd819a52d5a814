"""One exception hierarchy for the node package."""

from __future__ import annotations


class NodeError(Exception):
    """Base class of node errors caused by bad input or environment."""


class ConfigError(NodeError):
    """A node.toml that is missing, malformed or inconsistent."""


class AuthError(NodeError):
    """A request or peer that failed authentication."""


class PeerAuthError(AuthError):
    """A peer that failed the signed-challenge handshake."""


class ApiError(NodeError):
    """An HTTP API error with a stable code; rendered as JSON ``{"error": {code, message}}``."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
