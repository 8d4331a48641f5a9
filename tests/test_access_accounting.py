"""The person's right to know who looked: lookups that found nobody, minors answered as
unknown, and regulators' reads of clear document numbers are all recorded (never the
number itself), and a subject's access records show every one of them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.bureau_helpers import (
    PURPOSE,
    credit_code,
    lookup,
    organisation,
    practitioner,
    resident_id,
)
from tests.conftest import bearer, issue
from tests.credit_helpers import Client


async def _rows(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM bureau_access ORDER BY id"))


async def _accesses(client: Client, regulator: dict[str, str], sid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/subjects/{sid}/access-records", headers=regulator)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _regulator_lookup(
    client: Client, regulator: dict[str, str], number: str, **extra: str
) -> Any:
    return await client.post(
        "/v1/subjects/lookup",
        headers=regulator,
        json={"document_type": "resident_id", "document_number": number, **extra},
    )


async def test_a_lookup_that_found_nobody_is_shown_once_the_person_is_registered(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Recorded with no subject, found false, the document type and its keyed hash; no
    clear number anywhere in the row. Registering the person later shows those lookups
    in their access records, and only in theirs."""
    bureau_token = await issue(db, "bureau", "征信丙")
    bureau = bearer(bureau_token)
    number, other = resident_id(501), resident_id(502)
    assert (await lookup(client, bureau, number)).status_code == 404
    assert (await _regulator_lookup(client, regulator, number)).status_code == 404
    # Invalid (wrong check character): refused as input, nobody's number, not recorded.
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert (await lookup(client, bureau, wrong)).status_code == 422
    assert (await _regulator_lookup(client, regulator, wrong)).status_code == 422

    rows = await _rows(db)
    assert [(r["subject_id"], r["found"], r["role"], r["channel"]) for r in rows] == [
        (None, False, "bureau", "lookup"),
        (None, False, "regulator", "regulator_lookup"),
    ]
    assert {r["document_type"] for r in rows} == {"resident_id"}
    assert {len(r["document_lookup"]) for r in rows} == {32}
    assert rows[0]["document_lookup"] == rows[1]["document_lookup"]
    dumped = await db.fetchval("SELECT string_agg(b::text, ' ') FROM bureau_access b")
    assert number not in dumped
    assert number[6:14] not in dumped  # not even the date of birth
    assert number.encode() not in b"".join(bytes(r["document_lookup"]) for r in rows)

    person = await practitioner(client, regulator, number)
    someone_else = await practitioner(client, regulator, other)
    assert (await lookup(client, bureau, number)).status_code == 200
    items = await _accesses(client, regulator, person)
    assert [(i["subject_id"], i["found"], i["role"], i["channel"]) for i in items] == [
        (None, False, "bureau", "lookup"),
        (None, False, "regulator", "regulator_lookup"),
        (person, True, "bureau", "lookup"),
    ]
    regulator_name = await db.fetchval("SELECT name FROM api_tokens WHERE role = 'regulator'")
    assert [i["token_name"] for i in items] == ["征信丙", regulator_name, "征信丙"]
    assert [i["purpose"] for i in items] == [PURPOSE, "supervision", PURPOSE]
    assert all("document_lookup" not in i for i in items)
    assert await _accesses(client, regulator, someone_else) == []

    # Keyset pages over both kinds of rows.
    first = await client.get(
        f"/v1/subjects/{person}/access-records", headers=regulator, params={"limit": 2}
    )
    assert [i["id"] for i in first.json()["items"]] == [items[0]["id"], items[1]["id"]]
    rest = await client.get(
        f"/v1/subjects/{person}/access-records",
        headers=regulator,
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    assert [i["id"] for i in rest.json()["items"]] == [items[2]["id"]]
    assert rest.json()["next_cursor"] is None


async def test_a_minor_answered_as_unknown_is_recorded_as_not_disclosed(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """The bureau hears 404; the row names the minor (found false) and the document,
    and their listing shows it once."""
    number = resident_id(503, born="20120101")
    child = await practitioner(client, regulator, number)
    assert (await lookup(client, bureau, number)).status_code == 404
    [row] = await _rows(db)
    assert (row["subject_id"], row["found"], row["document_type"]) == (
        uuid.UUID(child),
        False,
        "resident_id",
    )
    items = await _accesses(client, regulator, child)
    assert [(i["subject_id"], i["found"], i["channel"]) for i in items] == [
        (child, False, "lookup")
    ]


async def test_regulator_reads_of_clear_numbers_are_recorded(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A regulator's read of a practitioner (clear number) and lookup by number each
    leave a row, with the purpose given or "supervision"; their own create does not,
    nor does reading an organisation (no number)."""
    org = await organisation(client, regulator, 31)
    number = resident_id(504)
    person = await practitioner(client, regulator, number)
    assert await _rows(db) == []

    read = await client.get(f"/v1/subjects/{person}", headers=regulator)
    assert read.status_code == 200
    assert read.json()["document_number"] == number
    assert (
        await client.get(
            f"/v1/subjects/{person}", headers=regulator, params={"purpose": "enforcement"}
        )
    ).status_code == 200
    bad = await client.get(
        f"/v1/subjects/{person}", headers=regulator, params={"purpose": "curiosity"}
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["field"] == "purpose"
    found = await _regulator_lookup(client, regulator, number, purpose="objection_review")
    assert found.status_code == 200
    assert found.json()["document_number"] == number
    bad_body = await _regulator_lookup(client, regulator, number, purpose="curiosity")
    assert bad_body.status_code == 400
    assert (await client.get(f"/v1/subjects/{org}", headers=regulator)).status_code == 200

    # The token's authority, where tokens have one (jsonb: whether or not the column exists).
    token = await db.fetchrow(
        "SELECT id, name, to_jsonb(t) ->> 'authority_code' AS authority"
        " FROM api_tokens t WHERE role = 'regulator'"
    )
    assert token is not None
    items = await _accesses(client, regulator, person)
    assert [(i["channel"], i["purpose"], i["found"]) for i in items] == [
        ("regulator_read", "supervision", True),
        ("regulator_read", "enforcement", True),
        ("regulator_lookup", "objection_review", True),
    ]
    assert {(i["token_id"], i["token_name"], i["role"], i["authority_code"]) for i in items} == {
        (str(token["id"]), token["name"], "regulator", token["authority"])
    }
    assert all(i["at"].startswith("2026-03-02T02:00:00") for i in items)
    assert await _accesses(client, regulator, org) == []
    listed = await client.get(
        "/v1/access-records", headers=regulator, params={"token_id": str(token["id"])}
    )
    assert [i["id"] for i in listed.json()["items"]] == [i["id"] for i in items]


async def test_the_subject_listing_never_shows_clear_numbers(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A listing would be a bulk export: numbers are masked there, and nothing is
    recorded; the single read stays clear."""
    numbers = [resident_id(505 + i) for i in range(3)]
    for number in numbers:
        await practitioner(client, regulator, number)
    listed = await client.get("/v1/subjects", headers=regulator, params={"kind": "practitioner"})
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 3
    for item in items:
        assert item["document_number_masked"] is True
        assert "*" in item["document_number"]
    for number in numbers:
        assert number not in listed.text
    assert await _rows(db) == []


async def test_bulk_records_found_and_not_found_documents_but_not_invalid_ones(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """One row per valid document identifier, in order: found (the subject), not found
    (the document's hash), a minor (both); none for credit codes or invalid identifiers."""
    await organisation(client, regulator, 32)
    known, unknown = resident_id(510), resident_id(511)
    minor = resident_id(512, born="20150505")
    person = await practitioner(client, regulator, known)
    child = await practitioner(client, regulator, minor)
    wrong = known[:-1] + ("0" if known[-1] != "0" else "1")
    response = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={
            "purpose": PURPOSE,
            "identifiers": [
                {"credit_code": credit_code(32)},
                {"document_type": "resident_id", "document_number": known},
                {"document_type": "resident_id", "document_number": unknown},
                {"document_type": "resident_id", "document_number": wrong},
                {"document_type": "resident_id"},
                {"document_type": "resident_id", "document_number": minor},
                {"credit_code": credit_code(33)},
            ],
        },
    )
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [
        "found",
        "found",
        "not_found",
        "invalid",
        "invalid",
        "not_found",
        "not_found",
    ]
    rows = await _rows(db)
    assert [(r["subject_id"], r["found"], r["document_type"], r["channel"]) for r in rows] == [
        (uuid.UUID(person), True, None, "bulk"),
        (None, False, "resident_id", "bulk"),
        (uuid.UUID(child), False, "resident_id", "bulk"),
    ]
    assert [r["document_lookup"] is None for r in rows] == [True, False, False]
    dumped = await db.fetchval("SELECT string_agg(b::text, ' ') FROM bureau_access b")
    for number in (known, unknown, minor, wrong):
        assert number not in dumped
    # Registered later, the unknown number's holder sees the lookup.
    late = await practitioner(client, regulator, unknown)
    assert [(i["found"], i["channel"]) for i in await _accesses(client, regulator, late)] == [
        (False, "bulk")
    ]


async def test_the_recorders_checks_agree_with_the_tables(db: asyncpg.Pool) -> None:
    """A row the recorder would refuse is one the table refuses, and the reverse: a
    bad row fails its own request in Python, never a COPY shared with other answers."""
    from datetime import UTC, datetime
    from itertools import product

    from registry.bureau.access import CHANNELS, COLUMNS, Access
    from registry.tokens import Principal

    subject = await db.fetchval("SELECT gen_random_uuid()")
    document = ("resident_id", bytes(32))
    cases = product(
        ("bureau", "regulator", "admin"),
        (*CHANNELS, "gossip"),
        (subject, None),
        (True, False),
        (document, None),
    )
    accepted = 0
    for role, channel, subject_id, found, doc in cases:
        who = Principal(uuid.uuid4(), "checker", role)
        at = datetime(2026, 3, 2, tzinfo=UTC)
        try:
            row = Access(
                who=who,
                at=at,
                purpose=PURPOSE,
                channel=channel,
                subject_id=subject_id,
                found=found,
                document=doc,
            ).row()
        except ValueError:
            row = None
        raw = (at, who.token_id, who.name, role, None, subject_id, found, *(doc or (None, None)))
        raw += (PURPOSE, channel)
        async with db.acquire() as conn:
            try:
                await conn.copy_records_to_table("bureau_access", records=[raw], columns=COLUMNS)
                stored = True
            except asyncpg.CheckViolationError:
                stored = False
        assert stored == (row is not None), (role, channel, subject_id, found, doc)
        accepted += stored
    # Six channels, each with its role, times three shapes: found (subject), nobody
    # disclosed (document), a minor answered as unknown (both).
    assert accepted == 6 * 3
