"""The disclosure gate: every form of "in publication on day D" gives one answer.

Random records and listings go through the SQL forms (evaluated by the real
PostgreSQL, a batch per example), the Python forms (over dates, and over ISO text
as a stored version body holds them) and the pure domain functions
(``publicity.is_in_publication``, ``blacklist.is_listed``); the derived forms
(expiry's ``due``, the cache's ``next_change``, the feeds' ``shown_on_or_after`` and
``withdrawn``) are checked against the rule itself day by day. Then the minors rule,
the audience table, and that no second copy of the rule is written in SQL.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar

from registry.bureau.views import SubjectReader
from registry.clock import ManualClock
from registry.credit.expiry import expire_once
from registry.domain.blacklist import BlacklistEntryState, BlacklistState, is_listed
from registry.domain.disclosure import (
    AUDIENCES,
    LISTINGS,
    RECORDS,
    Audience,
    Publication,
    adult_from,
    day_of,
    day_of_sql,
    is_minor_on,
)
from registry.domain.publicity import PublicityWindow, is_in_publication
from registry.errors import InvalidInput
from registry.identifiers import is_minor, resident_id_check_character
from registry.pii import PiiCipher, generate_master_key
from registry.publish.selection import SubjectView
from registry.services import Services
from registry.tlog.leaf import format_time
from tests.bureau_helpers import day as bureau_day
from tests.bureau_helpers import practitioner, resident_id
from tests.credit_helpers import Client, actions, log_size
from tests.logcheck import assert_log_consistent

BASE = date(2026, 3, 1)
# Every day lies within 30 days of BASE, so edges (equal days) are frequent and a scan of
# 100 days covers every change.
days = st.integers(0, 30).map(lambda n: BASE + timedelta(days=n))
maybe_days = st.none() | days
RECORD_STATUSES = ("published", "not_published", "expired", "revoked", "repaired")
LISTING_STATES = tuple(s.value for s in BlacklistState)

records = st.fixed_dictionaries({
    "status": st.sampled_from(RECORD_STATUSES),
    "published": st.booleans(),
    "publicity_start": days,
    "publicity_end": maybe_days,
    "publication_ended_on": maybe_days,
    "created_day": days,
    "d": days,
})
listings = st.fixed_dictionaries({
    "state": st.sampled_from(LISTING_STATES),
    "listed_on": maybe_days,
    "planned_removal_on": maybe_days,
    "removed_on": maybe_days,
    "created_day": days,
    "d": days,
})
DB = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PURE = settings(max_examples=400, deadline=None)


def _columns(rule: Publication) -> list[str]:
    names = [rule.state, rule.flag, rule.start, rule.end, rule.ended_on, "created_day", "d"]
    return [n for n in names if n is not None]


def _sql(rule: Publication) -> str:
    """Every SQL form of ``rule`` over a batch of items given as arrays, in order."""
    columns = _columns(rule)
    types = ["text" if n == rule.state else "bool" if n == rule.flag else "date" for n in columns]
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    # Every part is fixed text of this module or of the rule.
    return (
        f"SELECT ({rule.shown_sql('t.d', 't')}) AS shown, ({rule.due_sql('t.d', 't')}) AS due,"  # noqa: S608
        f" ({rule.changes_after_sql('t.d', 't')}) AS changes,"
        f" CASE WHEN {rule.changes_after_sql('t.d', 't')} THEN {rule.change_day_sql('t.d', 't')}"
        " END AS next_change,"
        f" ({rule.withdrawn_sql('t.created_day', 't')}) AS withdrawn"
        f" FROM unnest({arrays}) WITH ORDINALITY AS t ({', '.join(columns)}, n) ORDER BY t.n"
    )


async def _in_sql(db: asyncpg.Pool, rule: Publication, items: list[dict[str, Any]]) -> list[Any]:
    columns = _columns(rule)
    rows = await db.fetch(_sql(rule), *([item[c] for item in items] for c in columns))
    for row in rows:
        assert None not in (row["shown"], row["due"], row["changes"], row["withdrawn"]), (
            "a condition came out NULL"
        )
    return rows


def _as_text(item: dict[str, Any]) -> dict[str, Any]:
    """The item as a stored version body holds it: dates as ISO text."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in item.items()}


def _record_in_domain(item: dict[str, Any]) -> bool:
    window = PublicityWindow(
        start=item["publicity_start"],
        earliest_end=item["publicity_start"],
        latest_end=item["publicity_end"] or date.max,  # as credit/records.stored_window reads it
        published=item["published"],
        reason="random",
    )
    return is_in_publication(window, item["d"], status=item["status"])


def _listing_in_domain(item: dict[str, Any]) -> bool:
    # A row is read on or after its last write: a removed entry was removed by day d.
    state = BlacklistState(item["state"])
    removed_on = None
    if state is BlacklistState.removed:
        removed_on = min(item["removed_on"] or item["d"], item["d"])
    entry = BlacklistEntryState(
        state=state,
        proposed_on=BASE,
        listed_on=item["listed_on"],
        planned_removal_on=item["planned_removal_on"],
        removed_on=removed_on,
    )
    return is_listed(entry, item["d"])


def _check_python(rule: Publication, item: dict[str, Any], sql: Any) -> None:
    day = item["d"]
    text = _as_text(item)
    shown = rule.shown(item, day)
    assert shown == rule.shown(text, day) == sql["shown"], item
    assert rule.due(item, day) == rule.due(text, day) == sql["due"], item
    change = rule.next_change(item, day)
    assert change == rule.next_change(text, day) == sql["next_change"], item
    assert (change is not None) == sql["changes"], item
    first = item["created_day"]
    assert rule.withdrawn(item, first) == rule.withdrawn(text, first) == sql["withdrawn"], item


def _check_derived(rule: Publication, item: dict[str, Any]) -> None:
    """The derived forms against the rule itself, day by day."""
    day = item["d"]
    shown = rule.shown(item, day)
    end = item[rule.end]
    # Expiry moves out exactly what is still in its state with its end reached.
    in_state = item[rule.state] == rule.disclosed
    assert rule.due(item, day) == (in_state and end is not None and not day < end)
    assert not (rule.due(item, day) and shown)
    # The answer holds until next_change; nothing changes after it when there is none.
    change = rule.next_change(item, day)
    horizon = day + timedelta(days=100)
    for n in range(((change or horizon) - day).days):
        assert rule.shown(item, day + timedelta(days=n)) == shown, (item, n)
    # shown_on_or_after: some day from ``first`` on.
    first = item["created_day"]
    ever = any(rule.shown(item, first + timedelta(days=n)) for n in range(100))
    assert rule.shown_on_or_after(item, first) == ever, item
    # withdrawn: ended by a change, after being shown on some day from ``first`` to its end.
    ended_on = item[rule.ended_on]
    before = {**item, rule.state: rule.disclosed}
    was_shown = ended_on is not None and any(
        rule.shown(before, first + timedelta(days=n)) for n in range((ended_on - first).days + 1)
    )
    assert rule.withdrawn(item, first) == (item[rule.state] in rule.ended and was_shown), item


@DB
@given(batch=st.lists(records, min_size=1, max_size=40))
async def test_records_every_form_agrees(db: asyncpg.Pool, batch: list[dict[str, Any]]) -> None:
    """SQL, Python (dates and ISO text) and is_in_publication agree on every record."""
    rows = await _in_sql(db, RECORDS, batch)
    for item, row in zip(batch, rows, strict=True):
        _check_python(RECORDS, item, row)
        assert row["shown"] == _record_in_domain(item), item
        _check_derived(RECORDS, item)


@DB
@given(batch=st.lists(listings, min_size=1, max_size=40))
async def test_listings_every_form_agrees(db: asyncpg.Pool, batch: list[dict[str, Any]]) -> None:
    """SQL, Python (dates and ISO text) and is_listed agree on every blacklist entry."""
    rows = await _in_sql(db, LISTINGS, batch)
    for item, row in zip(batch, rows, strict=True):
        _check_python(LISTINGS, item, row)
        assert row["shown"] == _listing_in_domain(item), item
        _check_derived(LISTINGS, item)


moments = st.datetimes(
    min_value=datetime(2025, 12, 31), max_value=datetime(2026, 1, 2), timezones=st.just(UTC)
)


@DB
@given(batch=st.lists(moments, min_size=1, max_size=40))
async def test_the_day_of_a_moment_agrees(db: asyncpg.Pool, batch: list[datetime]) -> None:
    """The Xining day of a timestamp: SQL, Python, and Python over a stored body's text."""
    sql = f"SELECT {day_of_sql('m')} AS d FROM unnest($1::timestamptz[]) m"  # noqa: S608 - fixed text
    rows = await db.fetch(sql, batch)
    for moment, row in zip(batch, rows, strict=True):
        assert row["d"] == day_of(moment) == day_of(format_time(moment)), moment


async def test_edges_by_hand(db: asyncpg.Pool) -> None:
    """The examples the rule is stated with: half-open windows, no end, not yet listed."""
    day = date(2026, 3, 2)
    record = {"status": "published", "published": True, "publicity_start": day,
              "publicity_end": day + timedelta(days=1), "publication_ended_on": None,
              "created_day": day, "d": day}
    assert RECORDS.shown(record, day)
    assert not RECORDS.shown(record, day + timedelta(days=1))
    assert RECORDS.due(record, day + timedelta(days=1))
    assert RECORDS.next_change(record, day) == day + timedelta(days=1)
    assert not RECORDS.shown({**record, "published": False}, day)
    assert RECORDS.shown({**record, "publicity_end": None}, day + timedelta(days=9999))
    listing = {"state": "listed", "listed_on": None, "planned_removal_on": None,
               "removed_on": None, "created_day": day, "d": day}
    assert not LISTINGS.shown(listing, day)
    assert LISTINGS.shown({**listing, "listed_on": day}, day)
    for state in ("proposed", "notified", "withdrawn", "removed"):
        assert not LISTINGS.shown({**listing, "state": state, "listed_on": day}, day)
    rows = await _in_sql(db, LISTINGS, [{**listing, "listed_on": day}])
    assert rows[0]["shown"] is True


# --- Minors -----------------------------------------------------------------------


def _resident_id(born: date, sequence: int = 123) -> str:
    first = f"630102{born:%Y%m%d}{sequence:03d}"
    return first + resident_id_check_character(first)


@PURE
@given(born=st.dates(date(1990, 1, 1), date(2030, 12, 31)), day=st.dates(date(2000, 1, 1), date(2040, 1, 1)))
def test_is_minor_on_agrees_with_the_age_rule(born: date, day: date) -> None:
    """For a GB 11643 number: a minor until the 18th birthday (born after the day: too)."""
    number = _resident_id(born)
    expected = True if born > day else is_minor(number, day)
    assert is_minor_on(number, day) is expected
    first = adult_from(number)
    assert first is not None
    assert is_minor_on(number, first - timedelta(days=1))
    assert not is_minor_on(number, first)


def test_adult_from_edges() -> None:
    """29 February turns 18 on 1 March; numbers without a birth date have no such day."""
    assert adult_from(_resident_id(date(2008, 2, 29))) == date(2026, 3, 1)
    assert adult_from(_resident_id(date(2008, 3, 20))) == date(2026, 3, 20)
    for number in (None, "E12345678", "USA123456789012", "AB-12", _resident_id(BASE)[:17]):
        assert adult_from(number) is None
        assert not is_minor_on(number, BASE)


def _cipher_services() -> Services:
    """Only the personal-data cipher: what the subject readers use."""
    cipher = PiiCipher.from_master_key(generate_master_key())
    return Services(settings=None, pool=None, clock=None, pii=cipher,  # type: ignore[arg-type]
                    integrator=None, tokens=None, reads=None, listener=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "doc_type", ["resident_id", "other", "hmt_residence_permit", "foreign_permanent_residence"]
)
def test_both_readers_use_the_one_minors_rule(doc_type: str) -> None:
    """A GB 11643 number marks a minor for bureaus and the public whatever its document type
    (before, 'other' did not, and the two readers disagreed on a birth date after the day)."""
    services = _cipher_services()
    day = date(2026, 3, 2)
    for born, minor in ((date(2015, 5, 5), True), (date(1990, 3, 7), False),
                        (date(2026, 3, 3), True)):
        number = _resident_id(born)
        cipher = services.pii.encrypt(doc_type, number)
        assert SubjectReader(services, day).is_minor(
            {"document_type": doc_type, "document_cipher": cipher}
        ) is minor
        row = {"subject_id": born, "subject_kind": "practitioner",
               "subject_document_type": doc_type, "subject_document_cipher": cipher,
               "subject_birth_date_cipher": None}
        assert SubjectView(services, day).visible(row) is not minor  # type: ignore[arg-type]


def test_a_recorded_birth_date_marks_a_minor_for_both_readers() -> None:
    """A passport carries no birth date: the one recorded beside it decides, for both."""
    services = _cipher_services()
    day = date(2026, 3, 2)
    cipher = services.pii.encrypt("passport", "E12345678")
    for born, minor in ((date(2015, 5, 5), True), (date(1990, 3, 7), False), (None, False)):
        blob = None if born is None else services.pii.encrypt_birth_date("passport", born)
        assert SubjectReader(services, day).is_minor(
            {"document_type": "passport", "document_cipher": cipher, "birth_date_cipher": blob}
        ) is minor
        row = {"subject_id": born or date(2000, 1, 1), "subject_kind": "practitioner",
               "subject_document_type": "passport", "subject_document_cipher": cipher,
               "subject_birth_date_cipher": blob}
        assert SubjectView(services, day).visible(row) is not minor  # type: ignore[arg-type]


async def test_a_resident_id_under_another_type_is_422(
    client: Client, regulator: dict[str, str]
) -> None:
    """POST /v1/subjects with document_type 'other' and a valid resident ID is refused, naming
    document_number and resident_id, without echoing the number."""
    number = _resident_id(date(2015, 5, 5))
    response = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "王小明", "document_type": "other",
        "document_number": number})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "document_number"
    assert "resident_id" in response.text
    assert number not in response.text
    assert "20150505" not in response.text
    response = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "王小明", "document_type": "resident_id",
        "document_number": number})
    assert response.status_code == 201, response.text


def test_invalid_input_from_the_refusal_names_no_number() -> None:
    """The refusal is an InvalidInput like every other document error."""
    from registry.identifiers import validate_document

    with pytest.raises(InvalidInput) as info:
        validate_document("other", _resident_id(date(1990, 3, 7)), today=BASE)
    assert info.value.field == "document_number"


async def test_coming_of_age_is_announced_once_and_only_when_needed(
    client: Client, app: Litestar, regulator: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock,
) -> None:
    """The expiry pass writes ``subject.came_of_age`` on a person's 18th birthday, once; not for
    adults, nor for a person whose subject was written on or after that birthday (that write
    already brought their profile to the change feed)."""
    services = replace(app.state.services, pool=db)
    turning = await practitioner(client, regulator, resident_id(1, born="20080320"))
    early = await practitioner(client, regulator, resident_id(2, born="20080310"))
    await practitioner(client, regulator, resident_id(3))
    clock.set(bureau_day("2026-03-10"))  # the day ``early`` turns 18
    start = await log_size(db)
    changed = await client.patch(f"/v1/subjects/{early}", headers=regulator,
                                 json={"version": 1, "name": "李四"})
    assert changed.status_code == 200, changed.text
    clock.set(bureau_day("2026-03-19"))
    assert (await expire_once(services)).adults == 0
    clock.set(bureau_day("2026-03-20"))
    assert (await expire_once(services)).adults == 1
    assert (await expire_once(services)).adults == 0
    assert await actions(db, start) == ["subject.update", "subject.came_of_age"]
    row = await db.fetchrow("SELECT version, updated_by FROM subjects WHERE id = $1",
                            uuid.UUID(turning))
    assert row is not None
    assert (row["version"], row["updated_by"]) == (2, "system:expiry")
    await assert_log_consistent(db)


# --- Audiences and the one place -------------------------------------------------


def test_every_audience_is_written_down() -> None:
    """Public and bureaus see masked numbers and nothing of minors; admin no personal data."""
    assert set(AUDIENCES) == set(Audience)
    for outsider in (Audience.PUBLIC, Audience.BUREAU):
        assert AUDIENCES[outsider].numbers == "masked"
        assert not AUDIENCES[outsider].minors
    assert AUDIENCES[Audience.ADMIN].numbers == "none"
    assert not AUDIENCES[Audience.ADMIN].minors
    for regulator in (Audience.DECIDING_REGULATOR, Audience.OTHER_REGULATOR):
        assert AUDIENCES[regulator].minors


# SQL spellings of the rule: outside registry/domain/disclosure.py they would be a second copy.
_DAYS = "(publicity_start|publicity_end|listed_on|planned_removal_on)"
_COPIES = re.compile(
    r"(status|state)\s*(=|IN)\s*\(?'(published|listed)'"
    rf"|{_DAYS}\s+IS\s+(NOT\s+)?NULL"
    rf"|{_DAYS}\s*[<>]=?\s*\$\d"
    rf"|\$\d\s*[<>]=?\s*(\w+\.)?{_DAYS}"
)


def test_no_second_copy_of_the_rule_in_sql() -> None:
    """Every surface derives its SQL from registry.domain.disclosure; none spells it out."""
    root = Path(__file__).resolve().parents[1] / "registry"
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "disclosure.py"
        for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
        if _COPIES.search(line)
    ]
    assert found == []
