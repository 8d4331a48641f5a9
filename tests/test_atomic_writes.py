"""Use cases of several changes commit as one write, and their answers say what a caller needs.

A subject with its affiliations, an objection with the item it marks: every change keeps
its own leaf, the leaves are consecutive, and all of them commit together or none does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import pytest

import registry.subjects as subjects_module
from registry.clock import SystemClock
from registry.db.types import Conn, required
from registry.db.writes import audited_write, last_leaf, write_transaction
from registry.settings import Settings
from registry.tokens import issue_token
from tests.conftest import bearer, issue
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject
from tests.logcheck import assert_log_consistent, ensure_log

FIRM = {"kind": "vc_firm", "name": "西寧創新投資有限公司", "credit_code": "91630100MA752LKX1M"}
MANAGER = {"kind": "vc_manager", "name": "青海高原創業投資管理有限公司",
           "credit_code": "91630104MA7X3TQK5Y"}
PERSON = {"kind": "practitioner", "name": "李四", "document_type": "resident_id",
          "document_number": "630102199003071231"}


class Injected(Exception):
    """A failure injected by a test."""


def size_of(checkpoint: str) -> int:
    """The tree size a signed checkpoint commits to (its second line, C2SP tlog-checkpoint)."""
    return int(checkpoint.split("\n")[1])


async def created(client: Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/subjects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def stored(db: asyncpg.Pool) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM subjects WHERE kind = 'practitioner') AS people,"
        " (SELECT count(*) FROM affiliations) AS affiliations,"
        " (SELECT count(*) FROM tlog_leaves) AS leaves")
    assert row is not None
    return row["people"], row["affiliations"], row["leaves"]


# --- a subject with its affiliations -------------------------------------------------


async def test_a_refused_affiliation_leaves_no_subject(client: Client, regulator: dict[str, str],
                                                       db: asyncpg.Pool) -> None:
    """A bad second organisation: 422 naming it, and nothing of the request is stored, so
    the corrected retry is a 201 (not a 409 for a practitioner left half-registered)."""
    firm = await created(client, regulator, FIRM)
    manager = await created(client, regulator, MANAGER)
    before = await stored(db)
    good = {"organisation_id": firm["id"], "role": "投資經理", "valid_from": "2020-01-01"}
    bad = {"organisation_id": str(uuid.uuid4()), "role": "合夥人", "valid_from": "2021-01-01"}
    refused = await client.post("/v1/subjects", headers=regulator,
                                json={**PERSON, "affiliations": [good, bad]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "affiliations[1].organisation_id"
    assert await stored(db) == before

    start = await log_size(db)
    fixed = {**bad, "organisation_id": manager["id"]}
    person = await created(client, regulator, {**PERSON, "affiliations": [good, fixed]})
    assert await actions(db, start) == ["subject.create", "affiliation.create",
                                        "affiliation.create"]
    listed = person["affiliations"]
    assert [a["log_index"] for a in listed] == [start + 1, start + 2]
    assert [(a["organisation_name"], a["organisation_credit_code"]) for a in listed] == [
        (FIRM["name"], FIRM["credit_code"]), (MANAGER["name"], MANAGER["credit_code"])]
    # One receipt: the subject's leaf, signed in a checkpoint holding every leaf of the write.
    assert person["receipt"]["log_index"] == person["log_index"] == start
    assert size_of(person["receipt"]["checkpoint"]) >= start + 3
    await assert_log_consistent(db)


async def test_an_affiliation_to_a_non_organisation_is_refused_whole(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    other = await created(client, regulator, {**PERSON, "document_number": "630104198512310024",
                                              "name": "王五"})
    before = await stored(db)
    refused = await client.post("/v1/subjects", headers=regulator, json={
        **PERSON, "affiliations": [{"organisation_id": other["id"], "role": "x",
                                    "valid_from": "2020-01-01"}]})
    assert refused.status_code == 422
    assert refused.json()["field"] == "affiliations[0].organisation_id"
    assert await stored(db) == before


async def test_a_failure_after_the_affiliations_leaves_nothing(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed after the subject and an affiliation were written, before the commit: no
    subject, no affiliation, no leaf, no index used; the same request then succeeds."""
    firm = await created(client, regulator, FIRM)
    before = await stored(db)
    next_index = await db.fetchval("SELECT next_index FROM tlog_sequence")
    real = subjects_module.add_affiliation

    async def add_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise Injected("after the affiliation, before the commit")

    monkeypatch.setattr(subjects_module, "add_affiliation", add_then_fail)
    body = {**PERSON, "affiliations": [{"organisation_id": firm["id"], "role": "投資經理",
                                        "valid_from": "2020-01-01"}]}
    failed = await client.post("/v1/subjects", headers=regulator, json=body)
    assert failed.status_code == 500
    assert await stored(db) == before
    assert await db.fetchval("SELECT next_index FROM tlog_sequence") == next_index
    monkeypatch.undo()
    person = await created(client, regulator, body)
    assert person["log_index"] == next_index
    await assert_log_consistent(db)


async def test_duplicate_practitioner_names_the_existing_subject(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """The 409 gives the regulator the id to go to; bureaus cannot create subjects at all."""
    first = await created(client, regulator, PERSON)
    again = await client.post("/v1/subjects", headers=regulator, json={**PERSON, "name": "別人"})
    assert again.status_code == 409
    assert again.json()["field"] == "document_number"
    assert again.json()["existing_id"] == first["id"]
    from_bureau = await client.post("/v1/subjects", headers=bureau, json={**PERSON, "name": "別人"})
    assert from_bureau.status_code == 403
    assert "existing_id" not in from_bureau.json()
    assert first["id"] not in from_bureau.text


async def test_duplicate_on_change_names_the_existing_subject(
    client: Client, regulator: dict[str, str]
) -> None:
    first = await created(client, regulator, PERSON)
    second = await created(client, regulator, {**PERSON, "document_type": "passport",
                                               "document_number": "E12345678",
                                               "birth_date": "1990-03-07"})
    clash = await client.patch(f"/v1/subjects/{second['id']}", headers=regulator, json={
        "version": 1, "document_type": "resident_id",
        "document_number": PERSON["document_number"]})
    assert clash.status_code == 409, clash.text
    assert clash.json()["existing_id"] == first["id"]
    firm = await created(client, regulator, FIRM)
    manager = await created(client, regulator, MANAGER)
    code = await client.patch(f"/v1/subjects/{manager['id']}", headers=regulator,
                              json={"version": 1, "credit_code": FIRM["credit_code"]})
    assert code.status_code == 409
    assert (code.json()["field"], code.json()["existing_id"]) == ("credit_code", firm["id"])


async def test_affiliation_answers_name_the_organisation(
    client: Client, regulator: dict[str, str]
) -> None:
    firm = await created(client, regulator, FIRM)
    person = await created(client, regulator, PERSON)
    added = await client.post(f"/v1/subjects/{person['id']}/affiliations", headers=regulator,
                              json={"organisation_id": firm["id"], "role": "投資經理",
                                    "valid_from": "2020-01-01"})
    assert added.status_code == 201, added.text
    affiliation = added.json()["affiliation"]
    assert affiliation["organisation_name"] == FIRM["name"]
    assert affiliation["organisation_credit_code"] == FIRM["credit_code"]
    ended = await client.post(f"/v1/affiliations/{affiliation['id']}/end", headers=regulator,
                              json={"valid_to": "2025-06-30"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["affiliation"]["organisation_name"] == FIRM["name"]
    read = (await client.get(f"/v1/subjects/{person['id']}", headers=regulator)).json()
    assert read["affiliations"][0]["organisation_credit_code"] == FIRM["credit_code"]


async def test_history_carries_leaves_as_objects(client: Client, regulator: dict[str, str],
                                                 db: asyncpg.Pool) -> None:
    """Each leaf is an object whose canonical JSON is exactly the logged leaf."""
    from registry.tlog.leaf import canonical_json

    firm = await created(client, regulator, FIRM)
    history = (await client.get(f"/v1/subjects/{firm['id']}/history", headers=regulator)).json()
    assert len(history) == 1
    leaf = history[0]["leaf"]
    assert isinstance(leaf, dict) and leaf["action"] == "subject.create"
    logged = await db.fetchval("SELECT leaf FROM tlog_leaves WHERE idx = $1", firm["log_index"])
    assert canonical_json(leaf) == bytes(logged)


# --- an objection and what it marks ----------------------------------------------------


async def test_objection_answers_carry_one_receipt(client: Client, regulator: dict[str, str],
                                                   db: asyncpg.Pool) -> None:
    """Filing and deciding: one receipt, for the objection's leaf, whose checkpoint holds
    every leaf of the write; ``log_indexes`` lists them, the target's among them."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    start = await log_size(db)
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "處罰對象認定有誤"})
    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert "receipt" not in body["objection"]
    assert body["log_indexes"] == [start, start + 1]
    assert body["receipt"]["log_index"] == body["objection"]["log_index"] == start
    assert body["target_log_index"] == start + 1
    assert size_of(body["receipt"]["checkpoint"]) >= start + 2

    start = await log_size(db)
    decided = await client.post(f"/v1/objections/{body['objection']['id']}/decide",
                                headers=regulator, json={"outcome": "upheld", "action": "revoke"})
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert "receipt" not in answer["objection"]
    assert answer["log_indexes"][0] == answer["receipt"]["log_index"] == start
    assert answer["log_indexes"] == list(range(start, await log_size(db)))
    assert answer["target_log_index"] in answer["log_indexes"]
    assert size_of(answer["receipt"]["checkpoint"]) > answer["log_indexes"][-1]
    await assert_log_consistent(db)


# --- the write path itself ---------------------------------------------------------


@pytest.fixture
async def log_ready(db: asyncpg.Pool, settings: Settings) -> None:
    await ensure_log(db, settings)


async def _token(pool: asyncpg.Pool, name: str) -> int:
    _, written = await issue_token(pool, SystemClock(), role="bureau",
                                   name=f"{name} {uuid.uuid4().hex[:8]}", actor="admin:test")
    return written.log_index


async def test_changes_of_one_transaction_take_consecutive_indexes(
    db: asyncpg.Pool, log_ready: None
) -> None:
    """Several audited writes joined to one transaction: one leaf each, consecutive, and
    ``last_leaf`` names the last; an ambient transaction is joined without ``conn=``."""
    async with write_transaction(db, ambient=True) as conn:
        first = await _token(db, "one")  # joins without conn=
        second = await _token(db, "two")
        assert second == first + 1
        assert await last_leaf(conn) == second
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == second + 1
    await assert_log_consistent(db)


async def test_a_failed_transaction_takes_every_change_back(
    db: asyncpg.Pool, log_ready: None
) -> None:
    before = await db.fetchval("SELECT next_index FROM tlog_sequence")

    async def write_twice_then_fail() -> None:
        async with write_transaction(db, ambient=True):
            await _token(db, "one")
            # A nested use case with its own write_transaction is a savepoint of this one.
            async with write_transaction(db) as inner:

                async def write(c: Conn, index: int, now: datetime) -> asyncpg.Record:
                    return required(await c.fetchrow(
                        "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at,"
                        " created_by, log_index) VALUES ($1, 'inner', 'bureau', $2, 'x', $3,"
                        " 'admin:test', $4) RETURNING *", uuid.uuid4(), b"h" * 32, now, index))

                await audited_write(db, SystemClock(), actor="admin:test", action="token.issue",
                                    object_type="token", conn=inner, write=write)
            raise Injected("before the commit")

    with pytest.raises(Injected):
        await write_twice_then_fail()
    assert await db.fetchval("SELECT next_index FROM tlog_sequence") == before
    assert await db.fetchval("SELECT count(*) FROM api_tokens") == 0
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == before
    # Outside any ambient transaction, writes commit on their own again.
    assert await _token(db, "after") == before
    await assert_log_consistent(db)


async def test_regulator_tokens_of_other_authorities_still_create_subjects(
    client: Client, db: asyncpg.Pool
) -> None:
    """Master data is shared: a second authority's regulator registers with affiliations."""
    from tests.conftest import OTHER_AUTHORITY

    headers = bearer(await issue(db, "regulator", authority=OTHER_AUTHORITY[0]))
    firm = await created(client, headers, FIRM)
    person = await created(client, headers, {**PERSON, "affiliations": [
        {"organisation_id": firm["id"], "role": "投資經理", "valid_from": "2020-01-01"}]})
    assert person["affiliations"][0]["organisation_name"] == FIRM["name"]


# --- a new row and its leaf in one statement (db/writes.py audited_insert) -------------


async def test_a_new_subject_waits_a_bounded_time_for_the_sequence_lock(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, database_url: str
) -> None:
    """The one-statement write sets its own 5 s lock_timeout: behind a writer that holds the
    log's sequence row it answers 503 + Retry-After, and nothing of it is stored."""
    before = await stored(db)
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            await blocker.execute("SELECT next_index FROM tlog_sequence FOR UPDATE")
            started = datetime.now().timestamp()
            busy = await client.post("/v1/subjects", headers=regulator, json=PERSON)
            waited = datetime.now().timestamp() - started
    finally:
        await blocker.close()
    assert busy.status_code == 503, busy.text
    assert busy.headers.get("retry-after")
    assert 4.5 < waited < 10, f"answered after {waited:.1f}s, the bound is 5 s"
    assert await stored(db) == before
    assert (await created(client, regulator, PERSON))["kind"] == "practitioner"


async def test_a_duplicate_new_subject_takes_no_index(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A refused INSERT is the whole statement refused: the index it took is given back."""
    first = await created(client, regulator, FIRM)
    next_index = await db.fetchval("SELECT next_index FROM tlog_sequence")
    again = await client.post("/v1/subjects", headers=regulator, json=FIRM)
    assert again.status_code == 409, again.text
    assert again.json()["existing_id"] == first["id"]
    assert await db.fetchval("SELECT next_index FROM tlog_sequence") == next_index
    await assert_log_consistent(db)


async def test_a_mispredicted_stored_form_is_caught_before_the_answer(
    db: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """insert_with_leaf commits to the body it predicted; a row the database stores
    otherwise than predicted is reported (LogIntegrityError), never answered as fine."""
    import registry.db.audit as audit
    from registry.db.shapes import TableShapes, stored_form
    from registry.errors import LogIntegrityError

    await ensure_log(db, settings)
    now = datetime.now().astimezone()
    async with db.acquire() as conn:
        row = stored_form("subjects", await TableShapes().of(conn, "subjects"), {
            "id": uuid.uuid4(), "kind": "vc_firm", "name": "預測失誤有限公司", "status": "active",
            "credit_code": "91630100MA752LKX1M", "registered_region": None,
            "filing_number": None, "filing_date": None, "legal_representative": None,
            "document_type": None, "document_cipher": None, "document_lookup": None,
            "version": 1, "created_at": now, "created_by": "admin:test", "updated_at": now,
            "updated_by": "admin:test",
        })
        real = audit._leaf_parts
        # A wrong prediction: the body committed to names the firm otherwise than the row.
        monkeypatch.setattr(audit, "_leaf_parts", lambda time, actor, action, ref, _: real(
            time, actor, action, ref, {**row, "name": "別的名稱"}))
        with pytest.raises(LogIntegrityError, match="mispredicted"):
            async with conn.transaction():
                await audit.insert_with_leaf(conn, time=now, actor="admin:test",
                                             action="subject.create", object_type="subject",
                                             stored=row)


def _practitioner(name: str, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "kind": "practitioner", "name": name, "status": "active",
        "credit_code": None, "registered_region": None, "filing_number": None,
        "filing_date": None, "legal_representative": None, "document_type": "resident_id",
        "document_cipher": bytes(range(256)) + name.encode(), "document_lookup": name.encode(),
        "version": 1, "created_at": now, "created_by": "admin:test", "updated_at": now,
        "updated_by": "admin:test",
    }


async def test_many_rows_with_their_leaves_in_one_statement(
    db: asyncpg.Pool, settings: Settings
) -> None:
    """insert_many_with_leaves: consecutive indexes in the order given, each row stored as
    predicted (bytea through its hex form, times to the microsecond), each with its leaf."""
    from registry.db.audit import insert_many_with_leaves
    from registry.db.shapes import TableShapes, stored_form

    await ensure_log(db, settings)
    now = datetime.now().astimezone()
    first = await db.fetchval("SELECT next_index FROM tlog_sequence")
    async with db.acquire() as conn, conn.transaction():
        shape = await TableShapes().of(conn, "subjects")
        rows = [stored_form("subjects", shape, _practitioner(name, now))
                for name in ("張三", "李四", "王五")]
        appended = await insert_many_with_leaves(
            conn, time=now, actor="admin:test", action="subject.create",
            object_type="subject", stored=rows)
    assert [a.index for a in appended] == [first, first + 1, first + 2]
    for row, done in zip(rows, appended, strict=True):
        assert done.row is not None and done.row["id"] == row["id"]
        assert bytes(done.row["document_cipher"]) == row["document_cipher"]
        assert done.row["created_at"] == now
    await assert_log_consistent(db)


async def test_a_mispredicted_row_of_many_takes_the_whole_batch_back(
    db: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One row of a batch stored otherwise than committed to: LogIntegrityError, and the
    batch's transaction writes nothing (no row, no leaf, no index)."""
    import registry.db.audit as audit
    from registry.db.shapes import TableShapes, stored_form
    from registry.errors import LogIntegrityError

    await ensure_log(db, settings)
    now = datetime.now().astimezone()
    before = await stored(db)
    next_index = await db.fetchval("SELECT next_index FROM tlog_sequence")
    real = audit._leaf_parts

    def second_wrong(time: datetime, actor: str, action: str, ref: str, row: Any) -> Any:
        if row["name"] == "李四":
            row = {**row, "name": "別的名稱"}
        return real(time, actor, action, ref, row)

    monkeypatch.setattr(audit, "_leaf_parts", second_wrong)
    async with db.acquire() as conn:
        shape = await TableShapes().of(conn, "subjects")
        rows = [stored_form("subjects", shape, _practitioner(name, now))
                for name in ("張三", "李四")]
        with pytest.raises(LogIntegrityError, match="mispredicted"):
            async with conn.transaction():
                await audit.insert_many_with_leaves(
                    conn, time=now, actor="admin:test", action="subject.create",
                    object_type="subject", stored=rows)
    assert await stored(db) == before
    assert await db.fetchval("SELECT next_index FROM tlog_sequence") == next_index
    await assert_log_consistent(db)


def test_stored_form_predicts_what_postgresql_returns() -> None:
    """Numeric columns come back at their scale, rounded half away from zero; a missing
    column, an unknown one and a type it cannot predict are refused."""
    from decimal import Decimal

    from registry.db.shapes import Column, stored_form

    shape = (Column("id", "uuid", None), Column("fine_amount", "numeric(18,6)", 6),
             Column("log_index", "bigint", None), Column("search_text", "text", None),
             Column("extra", "jsonb", None))
    base = {"id": "0b4e3c1e-6a8e-4a43-9d9b-2d7c9b1c0a11", "extra": None}
    got = stored_form("t", shape, {**base, "fine_amount": Decimal("1.2345675")})
    assert got == {"id": uuid.UUID(base["id"]), "fine_amount": Decimal("1.234568"), "extra": None}
    assert str(stored_form("t", shape, {**base, "fine_amount": 3})["fine_amount"]) == "3.000000"
    with pytest.raises(RuntimeError, match="needs fine_amount"):
        stored_form("t", shape, base)
    with pytest.raises(RuntimeError, match="no column"):
        stored_form("t", shape, {**base, "fine_amount": 1, "other": 1})
    with pytest.raises(RuntimeError, match="jsonb"):
        stored_form("t", shape, {**base, "fine_amount": 1, "extra": "{}"})
