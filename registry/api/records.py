"""Regulator routes for credit records: record, read, list, correct, revoke, history."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from registry.api.auth import BEARER, requires
from registry.api.openapi import enum_query, problem_responses
from registry.clock import today
from registry.credit import history, idempotency, records
from registry.credit.common import decode_cursor, encode_cursor
from registry.db.types import Conn
from registry.domain.publicity import Grade
from registry.errors import InvalidInput
from registry.services import Services
from registry.structs.credit import (
    CreditRecord,
    HistoryItem,
    RecordCorrection,
    RecordIn,
    RecordPage,
    Revocation,
    credit_record,
)
from registry.tlog.leaf import decode_leaf
from registry.tokens import Principal

# The grades a listing filters by: every one the domain defines, in its order.
GRADES = tuple(grade.value for grade in Grade)


class RecordController(Controller):
    path = "/v1/records"
    tags = ["credit records"]
    security = BEARER

    @post(
        "/",
        middleware=[requires("regulator")],
        status_code=HTTP_201_CREATED,
        responses={201: ResponseSpec(data_container=CreditRecord, description="The record"),
                   **problem_responses(400, 401, 403, 409, 422)},
        summary="Record a penalty or another credit fact against a subject",
        description=(
            "Validates every 双公示 item (authority and source credit codes with their check "
            "character), computes the publicity window from the grade and penalty types and "
            "stores the 公示截止期. Amounts in 万元 as decimal strings. A decision number is "
            "unique per authority credit code (409). Send `Idempotency-Key` to retry safely: "
            "the same key and body replays the first answer (`Idempotent-Replayed: true`); the "
            "same key with another body is 422. Keys belong to the token. Only a recorded "
            "write uses a key: a refused request (any 4xx) leaves it free for the corrected "
            "retry. A request while another with its key is still running waits for it (409 "
            "after 5 s). Free text is stored as typed; a resident-ID number in it is "
            "published masked, and the answer's `masked_on_publication` says where. "
            "`published` is whether the record is in publication today; `publishable` whether "
            "the rules allow publishing it at all."
        ),
    )
    async def create(
        self,
        data: JSONBody[RecordIn],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", required=False, max_length=200)
        ] = None,
    ) -> Response[bytes]:
        fields = {f: getattr(data, f) for f in data.__struct_fields__ if f != "subject_id"}

        async def work(conn: Conn) -> idempotency.Answer:
            # Joins run_once's transaction (the key's answer commits with the record); the
            # receipt is added after the commit.
            written = await records.create_record(services, principal, data.subject_id, fields)
            record = credit_record(written.row, today(services.clock))
            return idempotency.Answer(201, msgspec.json.encode(record),
                                      log_index=written.log_index)

        canonical = msgspec.json.encode(msgspec.to_builtins(data), order="sorted")
        sent = await idempotency.run_once(
            services, principal.token_id, idempotency_key,
            b"POST /v1/records\n" + canonical, work,
        )
        headers = {"Idempotent-Replayed": "true"} if sent.replayed else None
        return Response(content=sent.body, status_code=sent.status,
                        media_type="application/json", headers=headers)

    @get(
        "/",
        middleware=[requires("regulator")],
        responses=problem_responses(400, 401, 403, 422),
        summary="List records, newest decision first (keyset pagination)",
    )
    async def list_records(
        self,
        services: NamedDependency[Services],
        subject_id: FromQuery[uuid.UUID | None] = None,
        authority_code: Annotated[str | None, Parameter(max_length=40)] = None,
        grade: Annotated[str | None, enum_query(GRADES, "the records' dishonesty grade")] = None,
        status: Annotated[
            str | None, enum_query(records.STATUSES, "the records' status as stored")
        ] = None,
        date_from: Annotated[date | None, Parameter(description="decision date from")] = None,
        date_to: Annotated[date | None, Parameter(description="decision date to")] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> RecordPage:
        if grade is not None and grade not in GRADES:
            raise InvalidInput("grade", f"unknown grade {grade!r}", ", ".join(GRADES))
        if status is not None and status not in records.STATUSES:
            raise InvalidInput("status", f"unknown status {status!r}", ", ".join(records.STATUSES))
        after = decode_cursor(cursor, (date, uuid.UUID)) if cursor else None
        rows = await records.list_records(
            services, subject_id=subject_id, authority_code=authority_code, grade=grade,
            status=status, date_from=date_from, date_to=date_to,
            after=(after[0], after[1]) if after else None, limit=limit,
        )
        next_cursor = (encode_cursor(rows[-1]["decision_date"], rows[-1]["id"])
                       if len(rows) == limit else None)
        on = today(services.clock)
        return RecordPage(items=[credit_record(r, on) for r in rows], next_cursor=next_cursor)

    @get("/{record_id:uuid}", middleware=[requires("regulator")],
         responses=problem_responses(401, 403, 404), summary="Read a record's current version")
    async def read(self, record_id: FromPath[uuid.UUID],
                   services: NamedDependency[Services]) -> CreditRecord:
        return credit_record(await records.get_record(services, record_id), today(services.clock))

    @get("/{record_id:uuid}/versions", middleware=[requires("regulator")],
         responses=problem_responses(401, 403, 404),
         summary="Every version of a record, oldest first, each with its audit-log index")
    async def versions(self, record_id: FromPath[uuid.UUID],
                       services: NamedDependency[Services]) -> list[HistoryItem]:
        await records.get_record(services, record_id)
        rows = await services.pool.fetch(
            "SELECT o.object_type, o.object_id, o.log_index, o.body, l.leaf FROM tlog_objects o"
            " JOIN tlog_leaves l ON l.idx = o.log_index WHERE o.object_type = 'credit_record'"
            " AND o.object_id = $1 ORDER BY o.log_index", str(record_id))
        return [history_item(r) for r in rows]

    @post("/{record_id:uuid}/correct", middleware=[requires("regulator")], status_code=HTTP_200_OK,
          responses=problem_responses(400, 401, 403, 404, 409, 422),
          summary="Correct a record: a new version pointing to the one it replaces",
          description="The answer is the new version; its `masked_on_publication` says which "
                      "free-text fields hold resident-ID numbers the public and bureaus will "
                      "see masked.")
    async def correct(self, record_id: FromPath[uuid.UUID], data: JSONBody[RecordCorrection],
                      services: NamedDependency[Services],
                      principal: NamedDependency[Principal]) -> CreditRecord:
        written = await records.correct_record(services, principal, record_id, data.version,
                                               data.changes(), data.note)
        return credit_record(written.row, today(services.clock),
                             await services.receipt(written.log_index))

    @post("/{record_id:uuid}/revoke", middleware=[requires("regulator")], status_code=HTTP_200_OK,
          responses=problem_responses(400, 401, 403, 404, 409, 422),
          summary="Revoke a record: out of publication at once, kept for regulators")
    async def revoke(self, record_id: FromPath[uuid.UUID], data: JSONBody[Revocation],
                     services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> CreditRecord:
        written = await records.revoke_record(services, principal, record_id, data.version,
                                              data.reason)
        return credit_record(written.row, today(services.clock),
                             await services.receipt(written.log_index))


def history_item(row: Any) -> HistoryItem:
    leaf = decode_leaf(bytes(row["leaf"]))
    return HistoryItem(object_type=row["object_type"], object_id=row["object_id"],
                       log_index=row["log_index"], action=leaf.action, actor=leaf.actor,
                       time=leaf.time, row=msgspec.json.decode(bytes(row["body"])))


class CreditHistoryController(Controller):
    path = "/v1/subjects"
    tags = ["credit records"]
    security = BEARER

    @get("/{subject_id:uuid}/credit-history", middleware=[requires("regulator")],
         responses=problem_responses(401, 403, 404),
         summary="A subject's full credit history",
         description="Every version of every record, listing, objection and repair of the "
                     "subject, and of every fund-manager relation it is part of, in log order, "
                     "each with its audit-log index, leaf fields and row.")
    async def credit_history(self, subject_id: FromPath[uuid.UUID],
                             services: NamedDependency[Services]) -> list[HistoryItem]:
        rows = await history.subject_credit_history(services, subject_id)
        return [history_item(r) for r in rows]


