"""The participant registry endpoints: ``GET /v1/participants/{org}`` (the record in the
registry in force and its key history with heights) and ``GET /v1/participants`` (paged by
slot). Signed reads by an active participant or governing organisation's admin (``_reader``
of ``node/api.py``): professional, public data only (org ids, roles, public keys,
RPPS/SIRET/AMC numbers), never patient data. (Proposals and tariff versions:
``node/gov_api.py``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

from aiohttp import web

from tpledger.ledger.genesis import ACTIVE, PARTICIPANT_ROLES, REVOKED, SUSPENDED
from tpledger.ledger.registry import (
    KEY_EVENT_NAMES,
    KeyEvent,
    OrgRecord,
    ParticipantRecord,
    Registry,
)
from tpledger.node.errors import ApiError
from tpledger.node.httputil import int_arg
from tpledger.node.schemas import KeyEventView, ParticipantsPage, ParticipantView

MAX_PAGE = 1000
SCAN_WINDOW = 5000  # registry slots scanned by one list call (bounded work)
MAX_HISTORY = 100  # key events shown by GET /v1/participants/{org}
_STATUS: dict[int, Literal["active", "suspended", "revoked"]] = {
    ACTIVE: "active", SUSPENDED: "suspended", REVOKED: "revoked"}

Reader = Callable[[web.Request], Awaitable[ParticipantRecord | OrgRecord]]


class ParticipantReader(Protocol):
    """What these endpoints read of the ledger (``ledger.store.Store``)."""

    def registry(self) -> Registry: ...
    def key_history(self, org: str, limit: int = 100) -> list[KeyEvent]: ...


# -- JSON views ------------------------------------------------------------------------------
def participant_json(rec: ParticipantRecord) -> ParticipantView:
    status = _STATUS[rec.status]
    return {"org": rec.org, "gov_org": rec.gov_org, "role": rec.role,
            "ed25519": rec.ed25519.hex(), "x25519": rec.x25519.hex(), "status": status,
            "ids": rec.ids.as_dict(), "since_height": rec.since_height, "slot": rec.slot}


def key_event_json(ev: KeyEvent) -> KeyEventView:
    return {"op": KEY_EVENT_NAMES.get(ev.op, str(ev.op)), "height": ev.height,
            "ed25519": ev.ed25519.hex(), "x25519": ev.x25519.hex(), "signer": ev.signer.hex(),
            "tx_id": ev.tx_id.hex()}


# -- handlers --------------------------------------------------------------------------------
class ParticipantsApi:
    def __init__(self, ledger: ParticipantReader, reader: Reader) -> None:
        self.ledger, self.reader = ledger, reader

    async def participant(self, request: web.Request) -> web.Response:
        await self.reader(request)
        org = request.match_info["org"]
        rec = self.ledger.registry().participant(org)
        if rec is None:
            raise ApiError(404, "unknown_participant", "no participant with this id")
        view = participant_json(rec)
        view["history"] = [key_event_json(ev)
                           for ev in self.ledger.key_history(org, MAX_HISTORY)]
        return web.json_response(view)

    async def participants(self, request: web.Request) -> web.Response:
        """Participants in slot (registration) order; ``role`` filters. One call scans at most
        ``SCAN_WINDOW`` slots: keep paging until ``next`` is null."""
        await self.reader(request)
        limit = min(int_arg(request, "limit", 100), MAX_PAGE)
        after_raw = request.query.get("after")
        start = int_arg(request, "after") + 1 if after_raw else 0
        role = request.query.get("role")
        if role is not None and role not in PARTICIPANT_ROLES:
            raise ApiError(400, "bad_parameter",
                           f"role must be one of {', '.join(PARTICIPANT_ROLES)}")
        reg = self.ledger.registry()
        end = min(reg.size, start + SCAN_WINDOW)
        out: list[ParticipantView] = []
        next_cursor: int | None = end - 1 if end < reg.size else None
        for slot in range(start, end):
            rec = reg.leaf(slot)
            if not isinstance(rec, ParticipantRecord) or (role and rec.role != role):
                continue
            out.append(participant_json(rec))
            if len(out) >= limit:
                next_cursor = slot if slot + 1 < reg.size else None
                break
        page: ParticipantsPage = {"participants": out,
                                  "next": None if next_cursor is None else str(next_cursor)}
        return web.json_response(page)

def add_participant_routes(router: web.UrlDispatcher, ledger: ParticipantReader,
                           reader: Reader) -> None:
    api = ParticipantsApi(ledger, reader)
    router.add_get("/v1/participants", api.participants)
    router.add_get("/v1/participants/{org}", api.participant)


__all__ = ["ParticipantReader", "ParticipantsApi", "add_participant_routes",
           "participant_json"]
