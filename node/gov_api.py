"""Governance reads of the client API: quorum proposals and LPP tariff versions (issue 13).

``GET /v1/gov/proposals``, ``GET /v1/gov/proposals/{id}`` and ``GET /v1/lpp/versions`` are
signed reads, checked as every signed read of the API (``Api._reader``): the signer must be an
active participant or an active governing organisation's admin in the registry in force (a
revoked or suspended key gets 403 with the registry's code).
They show what is ledger state and public to the members: proposals with their actions and
ballots, tariff versions with their rows. No patient data is involved.

A proposal's status is the stored one, except that an open proposal whose expiry has passed
is shown ``expired``: nothing executes it any more (a ballot is refused ``proposal_expired``).
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from aiohttp import web

from tpledger.ledger.genesis import day_text, parse_day, policy_json
from tpledger.ledger.lpp import LppTable
from tpledger.ledger.registry import (
    EXPIRED,
    GOV_OP_NAMES,
    OPEN,
    PROPOSAL_STATUS_NAMES,
    GovAction,
    ProposalState,
    Registry,
)
from tpledger.node.clock import now_ms
from tpledger.node.errors import ApiError
from tpledger.node.httputil import hex32, int_arg
from tpledger.node.schemas import (
    GovActionView,
    LppRowView,
    LppVersionsAnswer,
    PolicyView,
    ProposalsPage,
    ProposalView,
    TariffVersionView,
)

MAX_PROPOSALS_PAGE = 1000
DEFAULT_PROPOSALS_PAGE = 100
STATUS_OF_NAME = {v: k for k, v in PROPOSAL_STATUS_NAMES.items()}


class GovReader(Protocol):
    """What the governance endpoints read (``ledger.store.Store``): ``lpp`` is the genesis
    table (version 1)."""

    lpp: LppTable

    def registry(self) -> Registry: ...
    def proposal(self, pid: bytes) -> ProposalState | None: ...
    def proposals(self, status: int | None = None, after: bytes = b"", limit: int = 100
                  ) -> list[tuple[bytes, ProposalState]]: ...


def _day_arg(text: str) -> int:
    try:
        day = parse_day(text)  # up to 9999-12-31, the largest date there is
    except ValueError:
        raise ApiError(400, "bad_parameter", "at is a date YYYY-MM-DD") from None
    if day < 0:
        raise ApiError(400, "bad_parameter", "at is a date from 1970-01-01 on")
    return day


def action_json(a: GovAction) -> GovActionView:
    out: GovActionView = {"op": GOV_OP_NAMES.get(a.op, str(a.op))}
    if a.org:
        out["org"] = a.org
    if a.admin_ed25519 is not None:
        out["admin_ed25519"] = a.admin_ed25519.hex()
    if a.roles:
        out["roles"] = list(a.roles)
    if a.policy is not None:
        out["policy"] = cast(PolicyView, policy_json(a.policy))
    if a.tariff is not None:
        out["version"] = a.tariff.version
        out["effective"] = day_text(a.tariff.effective_day)
        out["table_digest"] = a.tariff.table_digest.hex()
        out["codes"] = len(a.tariff.rows)
    return out


def proposal_json(pid: bytes, p: ProposalState, time_ms: int) -> ProposalView:
    status = p.status
    if status == OPEN and time_ms >= p.expires_at_ms:
        status = EXPIRED
    return {
        "proposal_id": pid.hex(), "proposer": p.proposer,
        "actions": [action_json(a) for a in p.actions],
        "created_height": p.created_height, "expires_at_ms": p.expires_at_ms,
        "expires_at": datetime.datetime.fromtimestamp(
            p.expires_at_ms / 1000, datetime.UTC).isoformat(timespec="seconds"),
        "yes": list(p.yes), "no": list(p.no), "status": PROPOSAL_STATUS_NAMES.get(status, "?"),
        "outcome": p.outcome, "closed_height": p.closed_height,
    }


def rows_json(table: LppTable) -> list[LppRowView]:
    return [{"code": e.code, "label": e.label, "category": e.category,
             "age_group": e.age_group, "class": e.klass or "",
             "max_price_cents": e.max_price_cents, "amo_base_cents": e.amo_base_cents}
            for e in table]


Reader = Callable[[web.Request], Awaitable[object]]


class GovApi:
    """The governance read endpoints (signed reads by active members)."""

    def __init__(self, ledger: GovReader, reader: Reader) -> None:
        self.ledger = ledger
        self.reader = reader  # the API's signed-read check (``Api._reader``): 401/403

    async def proposals(self, request: web.Request) -> web.Response:
        """Proposals by id, paged (``next``: the cursor to pass as ``after``)."""
        await self.reader(request)
        limit = int_arg(request, "limit", DEFAULT_PROPOSALS_PAGE)
        if not 1 <= limit <= MAX_PROPOSALS_PAGE:
            raise ApiError(400, "bad_parameter", f"limit is 1 to {MAX_PROPOSALS_PAGE}")
        name = request.query.get("status")
        if name is not None and name not in STATUS_OF_NAME:
            raise ApiError(400, "bad_parameter", f"status is one of {', '.join(STATUS_OF_NAME)}")
        after = hex32(request.query["after"], "after") if "after" in request.query else b""
        t = now_ms()
        # expired is shown, not stored: read the open ones and keep those past their expiry
        stored = OPEN if name in ("open", "expired") else STATUS_OF_NAME.get(name or "")
        page = self.ledger.proposals(stored, after, limit + 1)
        more = len(page) > limit
        page = page[:limit]
        rows = [proposal_json(pid, p, t) for pid, p in page]
        if name is not None:
            rows = [r for r in rows if r["status"] == name]
        answer: ProposalsPage = {"proposals": rows,
                                 "next": page[-1][0].hex() if more else None}
        return web.json_response(answer)

    async def proposal(self, request: web.Request) -> web.Response:
        await self.reader(request)
        pid = hex32(request.match_info["proposal_id"], "proposal id")
        p = self.ledger.proposal(pid)
        if p is None:
            raise ApiError(404, "unknown_proposal", "no proposal with this id")
        return web.json_response(proposal_json(pid, p, now_ms()))

    async def lpp_versions(self, request: web.Request) -> web.Response:
        """The tariff versions (1: the genesis table); with ``at``, the one in force on that
        date and its rows."""
        await self.reader(request)
        reg = self.ledger.registry()
        v1 = self.ledger.lpp
        versions: list[TariffVersionView] = [
            {"version": 1, "effective": day_text(reg.policy.lpp_v1_effective_day),
             "table_digest": v1.digest().hex()}]
        versions += [{"version": version, "effective": day_text(day),
                      "table_digest": table.digest().hex()}
                     for version, day, table in reg.tariffs()]
        answer: LppVersionsAnswer = {"versions": versions}
        at = request.query.get("at")
        if at is not None:
            found = reg.tariff_at(_day_arg(at), v1)
            if found is None:
                raise ApiError(404, "tariff_not_in_force", f"no tariff version in force on {at}")
            version, table = found
            effective = next(v["effective"] for v in versions if v["version"] == version)
            answer["at"], answer["version"], answer["effective"] = at, version, effective
            answer["table_digest"], answer["rows"] = table.digest().hex(), rows_json(table)
        return web.json_response(answer)


def add_gov_routes(router: web.UrlDispatcher, ledger: GovReader, reader: Reader) -> None:
    api = GovApi(ledger, reader)
    router.add_get("/v1/gov/proposals", api.proposals)
    router.add_get("/v1/gov/proposals/{proposal_id}", api.proposal)
    router.add_get("/v1/lpp/versions", api.lpp_versions)


__all__ = ["GovApi", "GovReader", "action_json", "add_gov_routes", "proposal_json"]
