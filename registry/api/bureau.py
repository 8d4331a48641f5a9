"""Credit-bureau routes (profiles, bulk lookup, organisations by name, change feed) and the
regulators' view of them.

Thin: parse, check the purpose, call ``registry.bureau``, record accesses, shape.
Personal data never travels in a URL: practitioners are looked up by POST body, and never
found by name (the name lookup lists organisations only).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK
from litestar.types import Receive, Scope, Send
from msgspec import Meta, Struct

from registry import subjects
from registry.api.auth import BEARER, provide_principal, requires
from registry.api.openapi import problem_responses
from registry.bureau import access, feed, profiles
from registry.bureau.runtime import bureau_runtime
from registry.bureau.views import BureauProfile
from registry.credit.common import decode_cursor, encode_cursor
from registry.domain.policy import Policy
from registry.errors import InvalidInput, NotFound
from registry.services import Services
from registry.structs.common import DocumentNumber, DocumentTypeName
from registry.text import clean_query
from registry.tokens import Principal

BULK_MAX = 1000
Purpose = Annotated[
    str,
    Meta(max_length=100, description="Why the bureau asks: one of Policy.bureau_query_purposes"),
]


def _services(request: Request[Any, Any, Any]) -> Services:
    # Read off the request Litestar builds anyway, rather than injected: resolving the
    # ``services`` dependency was ~3 % of a cached profile read, the busiest route.
    services: Services = request.app.state.services
    return services


# A management enterprise's profile shows the practitioners affiliated to it.
_SHOWS_PEOPLE = "a profile that shows practitioners (a management enterprise's)"


def _within_rate_limit(services: Services, principal: Principal) -> None:
    """429 with Retry-After beyond the token's rate (policy)."""
    bureau_runtime(services).limiter.check(principal.token_id)


def _check_purpose(
    services: Services, purpose: str | None, needed_for: str = "queries about practitioners"
) -> str:
    accepted = ", ".join(services.policy.bureau_query_purposes)
    if purpose is None or not purpose.strip():
        raise InvalidInput("purpose", f"is required for {needed_for}", accepted)
    if purpose not in services.policy.bureau_query_purposes:
        raise InvalidInput("purpose", "is not a recognised purpose", accepted)
    return purpose


async def _record(
    services: Services,
    principal: Principal,
    asked: list[profiles.Identifier],
    answers: list[profiles.Answer],
    purpose: str | None,
    channel: str,
) -> None:
    """Account for every valid document identifier and every practitioner reached;
    returns once the rows are durable, else raises ``Unavailable``: nothing of the
    answer may be sent before (registry/bureau/access.py)."""
    if purpose is None:
        return
    now = services.clock.now()
    accesses: list[access.Access] = []
    # Practitioners a manager's profile shows, each once per request.
    shown = dict.fromkeys(person for answer in answers for person in answer.disclosed)
    accesses += [
        access.Access(who=principal, at=now, purpose=purpose, channel=channel, subject_id=person)
        for person in shown
    ]
    for item, answer in zip(asked, answers, strict=True):
        if answer.status == "found":
            if answer.practitioner_id is not None:
                accesses.append(
                    access.Access(
                        who=principal,
                        at=now,
                        purpose=purpose,
                        channel=channel,
                        subject_id=answer.practitioner_id,
                    )
                )
        elif (
            answer.status == "not_found"
            and item.document_type is not None
            and item.document_number is not None
        ):
            # Nobody disclosed: the number asked for, as its keyed hash (valid, or
            # the answer would be ``invalid``), and the minor it reached, if any.
            accesses.append(
                access.Access(
                    who=principal,
                    at=now,
                    purpose=purpose,
                    channel=channel,
                    subject_id=answer.practitioner_id,
                    found=False,
                    document=access.document_key(
                        services, item.document_type, item.document_number
                    ),
                )
            )
    if accesses:
        await bureau_runtime(services).recorder.record(accesses)


async def _record_feed(
    services: Services, principal: Principal, purpose: str, people: tuple[uuid.UUID, ...]
) -> None:
    """One ``feed`` access per practitioner a change-feed page discloses; returns once
    the rows are durable, else raises ``Unavailable``: nothing of the page may be sent
    before (registry/bureau/access.py)."""
    if not people:
        return
    now = services.clock.now()
    accesses = [
        access.Access(who=principal, at=now, purpose=purpose, channel="feed", subject_id=person)
        for person in people
    ]
    await bureau_runtime(services).recorder.record(accesses)


class PractitionerLookup(Struct, forbid_unknown_fields=True, kw_only=True):
    document_type: DocumentTypeName
    document_number: DocumentNumber
    purpose: Purpose | None = None


class BulkIdentifier(Struct, forbid_unknown_fields=True, kw_only=True):
    """Either ``credit_code``, or ``document_type`` with ``document_number``."""

    credit_code: Annotated[str, Meta(max_length=40)] | None = None
    document_type: Annotated[str, Meta(max_length=40)] | None = None
    document_number: Annotated[str, Meta(max_length=40)] | None = None


class BulkLookup(Struct, forbid_unknown_fields=True, kw_only=True):
    identifiers: Annotated[list[BulkIdentifier], Meta(min_length=1, max_length=BULK_MAX)]
    # Required when any identifier is a document (a practitioner).
    purpose: Purpose | None = None


class InvalidIdentifier(Struct, kw_only=True):
    field: str
    reason: str
    accepted: str | None


class BulkResult(Struct, kw_only=True, omit_defaults=True):
    index: int
    status: Literal["found", "not_found", "invalid"]
    profile: BureauProfile | None = None
    error: InvalidIdentifier | None = None


class BulkAnswer(Struct, kw_only=True):
    results: list[BulkResult]


# The two above as sent: the same fields, each profile an encoded profiles.ProfileJson
# (its lists JSON built by PostgreSQL). tests/test_bureau_profiles.py checks the
# field names agree; the fuzzer checks answers against the documented schema.
class BulkResultJson(Struct, kw_only=True, omit_defaults=True):
    index: int
    status: str
    profile: msgspec.Raw | None = None
    error: InvalidIdentifier | None = None


class BulkAnswerJson(Struct, kw_only=True):
    results: list[BulkResultJson]


class AccessRecord(Struct, kw_only=True):
    """One access to a practitioner: who (token, its holder, its role), when, why, how,
    and whether the answer disclosed them."""

    id: int
    at: datetime
    token_id: uuid.UUID
    token_name: str
    role: Annotated[str, Meta(description="bureau or regulator")]
    authority_code: Annotated[
        str | None, Meta(description="The regulator token's authority when it read")
    ]
    subject_id: Annotated[
        uuid.UUID | None,
        Meta(description="The practitioner reached; null for a lookup that found nobody"),
    ]
    found: Annotated[
        bool,
        Meta(description="The answer disclosed the practitioner (false: answered not found)"),
    ]
    document_type: Annotated[
        str | None,
        Meta(description="For a lookup that found nobody: the document type asked for"),
    ]
    purpose: str
    channel: Annotated[
        str,
        Meta(
            description="profile, lookup, bulk, feed (bureaus); regulator_read, regulator_lookup"
        ),
    ]


class AccessPage(Struct, kw_only=True):
    items: list[AccessRecord]
    next_cursor: str | None


class OrganisationMatch(Struct, kw_only=True):
    """An organisation a name lookup found, and where its profile is."""

    credit_code: str
    name: str
    kind: Annotated[str, Meta(description=" or ".join(subjects.ORGANISATION_KINDS))]
    profile: Annotated[
        str, Meta(description="Path of its profile: /v1/bureau/profiles/{credit_code}")
    ]


class OrganisationPage(Struct, kw_only=True):
    items: list[OrganisationMatch]
    next_cursor: str | None


_ENCODER = msgspec.json.Encoder()


class JsonBody(ASGIResponse):
    """A 200 answer whose body is JSON already encoded, sent as is.

    The handlers' documented types (``_documented``) differ from what they send only
    in holding raw JSON lists, and a profile from the memo is sent as the bytes it
    was kept as: there is nothing for Litestar's ``Response`` to encode, and turning
    one into an ASGI response (header normalisation, content negotiation) was ~5 %
    of a cached profile read. Litestar sends an ``ASGIResponse`` a handler returns
    as it is, and documents its 200 only from ``responses``.
    """

    def __init__(self, body: bytes) -> None:  # the base's set-up is what this skips
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": HTTP_200_OK,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def _json(content: Any) -> JsonBody:
    return JsonBody(_ENCODER.encode(content))


def _documented(kind: Any, *statuses: int) -> dict[int, ResponseSpec]:
    return {
        HTTP_200_OK: ResponseSpec(data_container=kind, description="Request fulfilled"),
        **problem_responses(*statuses),
    }


# The profile route's name: a name lookup links each organisation to its profile with it.
_PROFILE_ROUTE = "bureau_profile"


def _one(answer: profiles.Answer, what: str) -> JsonBody:
    if answer.status == "invalid" and answer.error is not None:
        raise answer.error
    if answer.profile is None:
        raise NotFound(f"no {what}")
    return JsonBody(answer.profile)


class BureauController(Controller):
    path = "/v1/bureau"
    tags = ["credit bureaus"]
    security = BEARER
    middleware = [requires("bureau", then=_within_rate_limit)]

    @get(
        "/profiles/{credit_code:str}",
        name=_PROFILE_ROUTE,
        responses=_documented(BureauProfile, 401, 403, 404, 422, 429),
        summary="Profile of an organisation by unified social credit code",
        description=(
            "Identity, the records and serious-dishonesty listings in publication today with "
            "every 双公示 item, objection marks, and each item's audit-log index for its "
            "inclusion proof. A firm's profile lists its fund managers (`managers`), a "
            "management enterprise's the firms it manages (`firms`) and the practitioners "
            "affiliated to it (`practitioners`, numbers masked, minors never), each relation "
            "with its days, ended ones too. A profile that shows practitioners needs a "
            "`purpose` (422 naming it without one), and each practitioner shown is recorded "
            "(channel `profile`) before it is sent (503 with Retry-After if it cannot be)."
        ),
    )
    async def profile(
        self,
        credit_code: FromPath[str],
        request: Request[Any, Any, Any],
        purpose: Annotated[
            str | None,
            Parameter(
                max_length=100,
                description=(
                    "Why the bureau asks, for a profile that shows practitioners: one of the "
                    "policy's bureau_query_purposes "
                    f"(by default {', '.join(Policy().bureau_query_purposes)})"
                ),
            ),
        ] = None,
    ) -> JsonBody:
        services = _services(request)
        asked = [profiles.Identifier(credit_code=credit_code)]
        answers = await profiles.lookup_many(services.reading(), asked)
        if answers[0].disclosed:
            stated = _check_purpose(services, purpose, _SHOWS_PEOPLE)
            await _record(services, provide_principal(request), asked, answers, stated, "profile")
        return _one(answers[0], "subject with this credit code")

    @get(
        "/subjects",
        responses=problem_responses(400, 401, 403, 422, 429),
        summary="Find organisations by name, credit code or decision number (keyset pagination)",
        description=(
            "The regulators' search (`GET /v1/subjects?q=`): `q` finds any part of the name, of "
            "the credit code (so its start) or of a decision number of one of the subject's "
            "records, in Simplified or Traditional characters, full- or half-width, any case "
            "(西宁 finds 西寧); `%` and `_` are searched as typed. Only organisations "
            f"({', '.join(subjects.ORGANISATION_KINDS)}) are listed, each with the path of its "
            "profile; a search reaches no person, so it is not recorded as an access. "
            "Practitioners are people and are never found by name: a bureau reaches a person "
            "only by document (`POST /v1/bureau/profiles/lookup`), keyed, with a stated "
            "purpose, and recorded. Start without `cursor`, then pass `next_cursor` until it "
            "is null."
        ),
    )
    async def find_organisations(
        self,
        request: Request[Any, Any, Any],
        q: Annotated[
            str,
            Parameter(
                max_length=200,
                description="part of the name, credit code or a record's decision number "
                "(either script, full- or half-width, any case)",
            ),
        ],
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page", max_length=200)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> OrganisationPage:
        # Required, and searching for something: a blank term would list every organisation.
        if clean_query(q, "q") is None:
            raise InvalidInput("q", "holds no visible character",
                               "part of a name, credit code or decision number")
        after = decode_cursor(cursor, (uuid.UUID,))[0] if cursor else None
        rows = await subjects.list_subjects(
            _services(request).reading(), kind=subjects.ORGANISATION_KINDS, name_prefix=None, q=q,
            after=after, limit=limit,
        )
        # Every organisation has a credit code (a CHECK of the subjects table), so every
        # one listed has a profile to link to.
        items = [
            OrganisationMatch(
                credit_code=r["credit_code"],
                name=r["name"],
                kind=r["kind"],
                profile=request.app.route_reverse(_PROFILE_ROUTE, credit_code=r["credit_code"]),
            )
            for r in rows
        ]
        next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
        return OrganisationPage(items=items, next_cursor=next_cursor)

    @post(
        "/profiles/lookup",
        status_code=HTTP_200_OK,
        responses=_documented(BureauProfile, 400, 401, 403, 404, 422, 429),
        summary="Profile of a practitioner by document (in the body, never the URL)",
        description=(
            "Needs a `purpose`; every lookup is recorded (who, when, whom, why), also one that "
            "finds nobody, and the answer is sent only once its record is stored (503 with "
            "Retry-After, and no profile, if it cannot be). The document number is shown "
            "masked. Minors are answered 404, as if unknown."
        ),
    )
    async def lookup(
        self,
        data: JSONBody[PractitionerLookup],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> JsonBody:
        purpose = _check_purpose(services, data.purpose)
        asked = [
            profiles.Identifier(
                document_type=data.document_type, document_number=data.document_number
            )
        ]
        [answer] = await profiles.lookup_many(services.reading(), asked)
        await _record(services, principal, asked, [answer], purpose, "lookup")
        return _one(answer, "practitioner with this document")

    @post(
        "/profiles/bulk",
        status_code=HTTP_200_OK,
        responses=_documented(BulkAnswer, 400, 401, 403, 422, 429),
        summary=f"Profiles of up to {BULK_MAX} subjects, one answer per identifier in order",
        description=(
            "Each answer is `found` (with the profile), `not_found`, or `invalid` (with the "
            "field, reason and accepted values). `purpose` is required when any identifier is "
            "a document, or any profile found shows practitioners (a management "
            "enterprise's); each valid document identifier is recorded, found or not, and so "
            "is each practitioner a profile shows; the answer is sent only once the records "
            "are stored (503 with Retry-After, and no profiles, if they cannot be)."
        ),
    )
    async def bulk(
        self,
        data: JSONBody[BulkLookup],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> JsonBody:
        personal = any(
            i.document_type is not None or i.document_number is not None for i in data.identifiers
        )
        purpose = _check_purpose(services, data.purpose) if personal else None
        asked = [
            profiles.Identifier(
                credit_code=i.credit_code,
                document_type=i.document_type,
                document_number=i.document_number,
            )
            for i in data.identifiers
        ]
        answers = await profiles.lookup_many(services.reading(), asked)
        if purpose is None and any(answer.disclosed for answer in answers):
            purpose = _check_purpose(services, data.purpose, _SHOWS_PEOPLE)
        await _record(services, principal, asked, answers, purpose, "bulk")
        results: list[BulkResultJson] = []
        for index, answer in enumerate(answers):
            error = answer.error
            results.append(
                BulkResultJson(
                    index=index,
                    status=answer.status,
                    profile=None if answer.profile is None else msgspec.Raw(answer.profile),
                    error=InvalidIdentifier(
                        field=error.field, reason=error.reason, accepted=error.accepted
                    )
                    if error is not None
                    else None,
                )
            )
        return _json(BulkAnswerJson(results=results))

    @get(
        "/changes",
        responses=problem_responses(401, 403, 422, 429, 503),
        summary="Every change bureaus may see, in audit-log order (resumable cursor)",
        description=(
            "Items are `upsert` (the bureau view of that version) or `delete` (drop your copy: "
            "publicity ended, repaired, revoked, removed). Start without `since`, then pass "
            "`next_cursor`; the feed never skips or repeats, and only serves leaves already in "
            "the signed tree (`tree_size`). Applying every item in order gives the profiles. "
            "Only what was disclosed appears: proposals, notices and never-published records "
            "give no item, nor does anything about a minor. A person's coming of age "
            "(`subject.came_of_age`) and a practitioner's later versions bring their whole "
            "current profile: several items may share one `log_index`. Needs a `purpose` on "
            "every page (whether a page will carry practitioners is not known in advance); "
            "each practitioner with an `upsert` in a page is recorded once for that page "
            "(channel `feed`: who, when, whom, why), and the page is sent only once those "
            "records are stored (503 with Retry-After, and none of the page, if they cannot "
            "be). Organisations and `delete` items are not recorded."
        ),
    )
    async def changes(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        # Optional to the parser, required in the document: a missing purpose is then
        # our 422 naming it with the accepted list, as for a lookup, not a bare 400.
        purpose: Annotated[
            str | None,
            Parameter(
                required=True,
                max_length=100,
                description=(
                    "Why the bureau reads: one of the policy's bureau_query_purposes "
                    f"(by default {', '.join(Policy().bureau_query_purposes)})"
                ),
            ),
        ] = None,
        since: Annotated[
            str | None, Parameter(description="next_cursor of the previous page", max_length=200)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=5000)] = 500,
    ) -> feed.ChangePage:
        stated = _check_purpose(services, purpose)
        changes = await feed.read_changes(services.reading(), since, limit)
        await _record_feed(services, principal, stated, changes.disclosed)
        return changes.page


def _page(rows: list[Any], limit: int) -> AccessPage:
    items = [AccessRecord(**{f: r[f] for f in AccessRecord.__struct_fields__}) for r in rows]
    return AccessPage(
        items=items, next_cursor=encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    )


class AccessRecordController(Controller):
    path = "/v1"
    tags = ["credit bureaus"]
    security = BEARER
    middleware = [requires("regulator")]

    @get(
        "/access-records",
        responses=problem_responses(401, 403, 422),
        summary="Accesses to practitioners, oldest first (filter by token)",
        description=(
            "Bureau queries (found or not) and regulators' reads of clear document numbers. "
            "A lookup that found nobody has no `subject_id`; it is listed for the person whose "
            "document it asked for at `/v1/subjects/{id}/access-records`."
        ),
    )
    async def list_records(
        self,
        services: NamedDependency[Services],
        token_id: FromQuery[uuid.UUID | None] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> AccessPage:
        after = decode_cursor(cursor, (int,))[0] if cursor else None
        rows = await access.list_access(services.pool, token_id=token_id, after=after, limit=limit)
        return _page(rows, limit)

    @get(
        "/subjects/{subject_id:uuid}/access-records",
        responses=problem_responses(401, 403, 404, 422),
        summary="Who looked this practitioner up, when and why",
        description=(
            "Every access naming the subject, and every lookup for their current document "
            "number that found nobody (before they were registered, or while a minor)."
        ),
    )
    async def for_subject(
        self,
        subject_id: FromPath[uuid.UUID],
        services: NamedDependency[Services],
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> AccessPage:
        after = decode_cursor(cursor, (int,))[0] if cursor else None
        rows = await access.list_for_subject(services.pool, subject_id, after=after, limit=limit)
        return _page(rows, limit)
