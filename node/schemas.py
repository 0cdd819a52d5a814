"""The JSON bodies of the client API, as ``TypedDict`` models, and their JSON Schemas.

The handlers in ``node/api.py`` (and ``Node.status``) build their answers as these types, so
mypy checks that what is served has these keys and value types; ``node/openapi.py`` turns the
same types into the OpenAPI components with :func:`json_schema`. No schema library: the bodies
are plain dicts (msgpack bodies are opaque ``Record`` bytes, described as binary).
"""

# No ``from __future__ import annotations`` here: ``TypedDict`` reads ``NotRequired`` from the
# evaluated annotations (Python 3.11).
import types
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)


class ErrorDetail(TypedDict):
    code: str
    message: str


class Error(TypedDict):
    error: ErrorDetail


class SubmitItem(TypedDict):
    tx: str  # hex of the signed tx
    sealed: dict[str, str]  # payer org -> hex of the opening sealed to it


class SubmitJson(TypedDict):
    txs: list[SubmitItem]


class SubmitResult(TypedDict):
    tx_id: str | None
    status: Literal["pending", "rejected"]
    code: NotRequired[str]
    message: NotRequired[str]
    existing_claim_id: NotRequired[str]  # with code duplicate_reference: the first claim


class SubmitAnswer(TypedDict):
    results: list[SubmitResult]


class TxStatus(TypedDict):
    tx_id: str
    status: Literal["committed", "pending", "rejected", "unknown"]
    height: NotRequired[int]
    leaf_index: NotRequired[int]
    code: NotRequired[str]
    message: NotRequired[str]
    existing_claim_id: NotRequired[str]  # with code duplicate_reference: the first claim


class Share(TypedDict):
    status: str
    asked_cents: int
    approved_cents: int
    paid_cents: int
    reason_code: str  # empty unless rejected


class ClaimView(TypedDict):
    claim_id: str
    optician: str
    insurer: str
    total_cents: int
    status: str
    owed_cents: int
    amo: Share
    amc: Share
    cancelled: bool
    height: int | None
    openings_held: list[str]


class ClaimsPage(TypedDict):
    claims: list[ClaimView]
    next: str | None


# -- participants (issue 13): node/participants_api.py ---------------------------------------
class KeyEventView(TypedDict):
    op: str  # added | rotated | suspended | reinstated | revoked | admin_key_set
    height: int
    ed25519: str
    x25519: str
    signer: str  # the key that signed the change (an admin's, or the participant's own)
    tx_id: str


class ParticipantView(TypedDict):
    org: str
    gov_org: str  # the governing organisation whose admin manages it ("" = none)
    role: str
    ed25519: str
    x25519: str
    status: Literal["active", "suspended", "revoked"]
    ids: dict[str, str]  # professional, public identifiers: rpps, billing, siret, amc
    since_height: int  # the block that last changed the record (0: genesis)
    slot: int  # its leaf index in the registry tree
    history: NotRequired[list[KeyEventView]]  # GET /v1/participants/{org} only


class ParticipantsPage(TypedDict):
    participants: list[ParticipantView]
    next: str | None  # the cursor (a slot) to pass as ``after``; null at the end


class ForgetAnswer(TypedDict):
    claim_id: str
    deleted: int
    relayed_to: list[str]


class HeaderAnswer(TypedDict):
    height: int
    hash: str
    header: str
    certificate: str


class ConsistencyAnswer(TypedDict):
    old_size: int
    new_size: int
    path: list[str]


class StatusAnswer(TypedDict):
    name: str
    chain_id: str
    validator: int
    height: int
    head: str
    tree_size: int
    tree_root: str
    round: int
    mempool: int
    peers: dict[str, bool]
    store_damaged: list[str]
    catching_up: bool
    version: str


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "not_ready"]
    reasons: list[str]


class EvidenceView(TypedDict):
    validator: int
    name: str
    org: str
    height: int
    round: int
    type: str  # "prevote" or "precommit"
    first_value: str | None
    second_value: str | None
    recorded_height: int
    tx_id: str


class EvidencePage(TypedDict):
    evidence: list[EvidenceView]
    next: str | None


# -- governance (issue 13): node/gov_api.py ---------------------------------------------------
class PolicyView(TypedDict):
    threshold: int
    tariff_publisher: str
    max_claim_age_days: int
    max_proposal_ttl_ms: int
    lpp_v1_effective: str  # YYYY-MM-DD


class GovActionView(TypedDict):
    op: str  # add-org, remove-org, set-admin, set-policy, publish-tariff
    org: NotRequired[str]
    admin_ed25519: NotRequired[str]
    roles: NotRequired[list[str]]
    policy: NotRequired[PolicyView]
    version: NotRequired[int]
    effective: NotRequired[str]
    table_digest: NotRequired[str]
    codes: NotRequired[int]


class ProposalView(TypedDict):
    proposal_id: str
    proposer: str
    actions: list[GovActionView]
    created_height: int
    expires_at_ms: int
    expires_at: str  # ISO 8601, UTC
    yes: list[str]
    no: list[str]
    status: str  # open, executed, expired, failed
    outcome: str
    closed_height: int


class ProposalsPage(TypedDict):
    proposals: list[ProposalView]
    next: str | None


class TariffVersionView(TypedDict):
    version: int
    effective: str  # YYYY-MM-DD: claims dispensed from this UTC day on
    table_digest: str


# functional form: "class" is a keyword, and the JSON key of an LPP row's class
LppRowView = TypedDict("LppRowView", {
    "code": str, "label": str, "category": str, "age_group": str, "class": str,
    "max_price_cents": int | None, "amo_base_cents": int | None})


class LppVersionsAnswer(TypedDict):
    versions: list[TariffVersionView]
    at: NotRequired[str]
    version: NotRequired[int]
    effective: NotRequired[str]
    table_digest: NotRequired[str]
    rows: NotRequired[list[LppRowView]]


_SCALARS: dict[Any, str] = {str: "string", int: "integer", bool: "boolean", float: "number",
                            type(None): "null"}


def json_schema(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``tp``; each TypedDict becomes a component (``$ref``)."""
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if is_typeddict(tp):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # placeholder: a model may refer to itself
            hints = get_type_hints(tp)
            components[name] = {
                "type": "object", "additionalProperties": False,
                "required": sorted(tp.__required_keys__),
                "properties": {k: json_schema(v, components) for k, v in hints.items()}}
        return {"$ref": f"#/components/schemas/{name}"}
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": json_schema(args[0], components)}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1], components)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(a, components) for a in args]}
    raise TypeError(f"no JSON schema for {tp!r}")  # a model of ours uses an unsupported type
