"""Working days are China's official ones: holidays skipped, 调休 weekends counted.

The expected days come from the ``chinesecalendar`` library itself (never a copy of
its dates here): a deadline is checked by counting the library's working days one
at a time. A year the library does not know is counted Monday to Friday, shown as
provisional and logged, and counted again once an override file adds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import chinese_calendar  # type: ignore[import-untyped]  # ships no type hints
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from registry.api.app import create_app
from registry.clock import ManualClock
from registry.credit import objections as objection_cases
from registry.credit.expiry import expire_once
from registry.db.migrate import load_migrations, migrate
from registry.db.types import Conn, required
from registry.db.writes import audited_write
from registry.domain.policy import Policy
from registry.domain.working_days import WorkingCalendar, YearNotice
from registry.services import Services
from registry.settings import Settings, SettingsError
from registry.working_calendar import (
    CalendarFileError,
    build_calendar,
    library_notices,
    parse_overrides,
    read_override_file,
)
from tests.conftest import PgServer, bearer, issue
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject
from tests.logcheck import assert_log_consistent, ensure_log, integrate_all

CALENDAR = build_calendar()
MONDAY_TO_FRIDAY = WorkingCalendar()
LIBRARY_YEARS = {n.year for n in library_notices()}
# A year no source knows (the library's last is the year of its newest notice).
UNKNOWN = 2031


def library_deadline(start: date, n: int) -> date:
    """The naive reference: the library's working days, one day at a time."""
    day = start
    while n:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return day


def days_after(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        day += timedelta(days=1)
        yield day


def festival_days(start: date, end: date, festival: Any) -> list[date]:
    """Days in (start, end] that the library names as ``festival``'s holiday."""
    return [d for d in days_after(start, end)
            if chinese_calendar.get_holiday_detail(d) == (True, festival.value)]


def moment(text: str) -> datetime:
    """10:00 in Xining on that day."""
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


def test_the_library_knows_2026_and_not_the_unknown_year() -> None:
    """The tests' premises: 2026's notice is in the library, UNKNOWN's is not."""
    assert 2026 in LIBRARY_YEARS
    assert CALENDAR.knows(2026)
    assert UNKNOWN not in LIBRARY_YEARS, f"the library now knows {UNKNOWN}: pick a later year"
    assert not CALENDAR.knows(UNKNOWN)


@pytest.mark.parametrize(
    ("start", "n", "festival"),
    [
        (date(2026, 2, 12), 10, chinese_calendar.Holiday.spring_festival),  # 春节
        (date(2026, 2, 13), 3, chinese_calendar.Holiday.spring_festival),
        (date(2026, 9, 28), 10, chinese_calendar.Holiday.national_day),  # 国庆节
        (date(2026, 9, 28), 3, chinese_calendar.Holiday.national_day),
    ],
)
def test_deadlines_across_2026_holidays_count_the_librarys_working_days(
        start: date, n: int, festival: Any) -> None:
    """Every day counted is a library working day, every holiday of the festival in the span
    is skipped, and the result is not what Monday to Friday would say."""
    deadline = CALENDAR.add_working_days(start, n)
    assert deadline.day == library_deadline(start, n)
    assert not deadline.provisional
    counted = [d for d in days_after(start, deadline.day) if CALENDAR.is_working_day(d)]
    assert len(counted) == n
    assert all(chinese_calendar.is_workday(d) for d in counted)
    assert deadline.day in counted
    skipped = festival_days(start, deadline.day, festival)
    assert any(d.weekday() < 5 for d in skipped), "a weekday holiday of the festival is in the span"
    assert not set(skipped) & set(counted)
    assert deadline.day != MONDAY_TO_FRIDAY.add_working_days(start, n).day


def test_a_tiaoxiu_weekend_day_is_a_working_day() -> None:
    """A weekend day the 2026 notice makes a working day counts like any working day."""
    worked = sorted(d for d in chinese_calendar.workdays if d.year == 2026)
    assert worked, "the 2026 notice has 调休 working weekend days"
    for day in worked:
        assert day.weekday() >= 5
        assert CALENDAR.is_working_day(day)
        assert not MONDAY_TO_FRIDAY.is_working_day(day)
        # The day before it, one working day on, is that weekend day.
        assert CALENDAR.add_working_days(day - timedelta(days=1), 1).day == day


@given(st.dates(min_value=date(min(LIBRARY_YEARS), 1, 1), max_value=date(max(LIBRARY_YEARS), 11, 30)),
       st.integers(min_value=0, max_value=20))
def test_known_years_agree_with_the_library_day_by_day(start: date, n: int) -> None:
    """Anywhere in the library's years the count is the library's, and final."""
    deadline = CALENDAR.add_working_days(start, n)
    assert deadline.day == library_deadline(start, n)
    assert not deadline.provisional
    if n:
        assert chinese_calendar.is_workday(deadline.day)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2031-01-13", 0, "2031-01-13"),  # Monday, zero days
        ("2031-01-13", 1, "2031-01-14"),
        ("2031-01-17", 1, "2031-01-20"),  # Friday + 1 -> Monday
        ("2031-01-18", 1, "2031-01-20"),  # Saturday + 1 -> Monday
        ("2031-01-19", 1, "2031-01-20"),  # Sunday + 1 -> Monday
        ("2031-01-13", 5, "2031-01-20"),  # a whole week
        ("2031-01-18", 5, "2031-01-24"),  # Saturday + 5 -> Friday
        ("2031-01-19", 10, "2031-01-31"),  # Sunday + 10 -> Friday two weeks on
        ("2031-01-15", 3, "2031-01-20"),  # Wednesday + 3 -> Monday
    ],
)
def test_an_unknown_year_counts_monday_to_friday_provisionally(start: str, n: int,
                                                                expected: str) -> None:
    """Without a notice, weekends are skipped and nothing else; any day counted in such a
    year makes the deadline provisional, naming the year."""
    deadline = CALENDAR.add_working_days(date.fromisoformat(start), n)
    assert deadline.day == date.fromisoformat(expected)
    assert deadline.provisional is bool(n)
    assert deadline.unknown_years == ((UNKNOWN,) if n else ())


def test_a_deadline_reaching_into_an_unknown_year_is_provisional() -> None:
    """From the last known year into the next: the known days count officially, the
    unknown year's Monday to Friday, and the deadline says which year it guessed."""
    last = max(LIBRARY_YEARS)
    start = date(last, 12, 24)
    deadline = CALENDAR.add_working_days(start, 10)
    assert deadline.day.year == last + 1
    assert deadline.unknown_years == (last + 1,)
    in_known = [d for d in days_after(start, date(last, 12, 31))]
    assert all(CALENDAR.is_working_day(d) == chinese_calendar.is_workday(d) for d in in_known)


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        CALENDAR.add_working_days(date(2026, 3, 2), -1)


# --- the override file ------------------------------------------------------------------

OVERRIDE = f"""\
# 国务院办公厅关于{UNKNOWN}年部分节假日安排的通知 (for the tests: an invented notice)
[{UNKNOWN}]
notice = "国办发明电〔{UNKNOWN - 1}〕1号"
holidays = [
    {UNKNOWN}-01-01,
    [{UNKNOWN}-10-01, {UNKNOWN}-10-07],   # 国庆节
]
working_weekends = [{UNKNOWN}-09-28, {UNKNOWN}-10-11]
"""


def test_the_override_file_adds_a_year_and_wins_over_the_library(tmp_path: Path) -> None:
    """Known years are the library's and the file's; a year in both is the file's, whole."""
    path = tmp_path / "calendar.toml"
    path.write_text(OVERRIDE + """
[2026]
holidays = [2026-01-01]
""", encoding="utf-8")
    notices = read_override_file(path)
    calendar = build_calendar(notices)
    assert calendar.years == LIBRARY_YEARS | {UNKNOWN}
    added = calendar.notice(UNKNOWN)
    assert added is not None and "国办发明电" in added.source
    assert not calendar.is_working_day(date(UNKNOWN, 10, 6))  # a Monday, but 国庆节
    assert calendar.is_working_day(date(UNKNOWN, 9, 28))  # a Sunday, but worked (调休)
    # 2026 is the file's now: 国庆节 is not in it, so 2026-10-08's week is ordinary.
    assert calendar.is_working_day(date(2026, 10, 1))
    assert not calendar.is_working_day(date(2026, 10, 10))  # the library's 调休 Saturday, gone
    assert calendar.add_working_days(date(2026, 9, 28), 3).day == date(2026, 10, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[2031\nholidays = []\n", "not valid TOML: .*line 1"),
        ("holidays = [2031-01-01]\n", r"line 1: \[holidays\]: a table per year"),
        ("[31]\nholidays = [2031-01-01]\n", r"line 1: \[31\]: a table per year"),
        ("[2031]\nholiday = [2031-01-01]\n", r"line 2: \[2031\]\.holiday: unknown field; accepted"),
        ("[2031]\nworking_weekends = []\n", r"line 1: \[2031\]\.holidays: missing"),
        ("[2031]\nholidays = []\n", r"line 2: \[2031\]\.holidays: empty"),
        ("[2031]\nholidays = 2031-01-01\n", r"line 2: \[2031\]\.holidays: must be a list"),
        ('[2031]\nholidays = [\n  "2031-01-01",\n]\n',
         r"line 3: \[2031\]\.holidays\[0\]: '2031-01-01' is not a date; write TOML dates"),
        ("[2031]\nholidays = [2031-01-01T08:00:00]\n",
         r"line 2: \[2031\]\.holidays\[0\]: 2031-01-01T08:00:00 is not a date"),
        ("[2031]\nholidays = [\n  2031-01-01,\n  2030-12-31,\n]\n",
         r"line 4: \[2031\]\.holidays: 2030-12-31 is not in 2031"),
        ("[2031]\nholidays = [[2031-10-07, 2031-10-01]]\n",
         r"line 2: \[2031\]\.holidays\[0\]: the span ends \(2031-10-01\) before it starts"),
        ("[2031]\nholidays = [[2031-10-01]]\n",
         r"line 2: \[2031\]\.holidays\[0\]: a span is \[first, last\], two dates"),
        ("[2031]\nholidays = [[2031-01-01, 2031-03-01]]\n", r"holidays\[0\]: a span of 60 days"),
        ("[2031]\nholidays = [\n  [2031-10-01, 2031-10-07],\n  2031-10-03,\n]\n",
         r"line 4: \[2031\]\.holidays\[1\]: 2031-10-03 is listed twice"),
        ("[2031]\nholidays = [2031-01-01]\nworking_weekends = [2031-09-29]\n",
         r"line 3: \[2031\]\.working_weekends: 2031-09-29 is a Monday; list only"),
        ("[2031]\nholidays = [2031-09-28]\nworking_weekends = [2031-09-28]\n",
         r"line 2: \[2031\]: 2031-09-28 is listed both as a holiday and as a working weekend"),
        ("[2031]\nholidays = [2031-01-01]\nnotice = 3\n", r"line 3: \[2031\]\.notice: must be text"),
    ],
)
def test_override_file_errors_name_the_line_and_field(text: str, message: str) -> None:
    """Each mistake is refused with the file, the line and the field it is in."""
    with pytest.raises(CalendarFileError, match=r"^calendar\.toml.*" + message):
        parse_overrides(text, "calendar.toml")


def test_a_bad_calendar_file_stops_the_start(tmp_path: Path) -> None:
    """REGISTRY_CALENDAR_FILE is read with the settings: a missing or wrong file is a
    configuration error naming the variable, the file and the line."""
    missing = tmp_path / "none.toml"
    with pytest.raises(SettingsError, match=f"REGISTRY_CALENDAR_FILE: {missing}: couldn't read"):
        Settings.from_env({"REGISTRY_CALENDAR_FILE": str(missing)})
    wrong = tmp_path / "calendar.toml"
    wrong.write_text("[2031]\nholidays = [2031-01-01]\nworking_weekends = [2031-09-29]\n",
                     encoding="utf-8")
    with pytest.raises(SettingsError, match=f"REGISTRY_CALENDAR_FILE: {wrong} line 3: "):
        Settings.from_env({"REGISTRY_CALENDAR_FILE": str(wrong)})
    wrong.write_bytes(b"[2031]\nholidays = [2031-01-01] # \xff\n")
    with pytest.raises(SettingsError, match="line 2: not UTF-8"):
        Settings.from_env({"REGISTRY_CALENDAR_FILE": str(wrong)})
    wrong.write_text(OVERRIDE, encoding="utf-8")
    settings = Settings.from_env({"REGISTRY_CALENDAR_FILE": str(wrong)})
    assert settings.calendar_file == wrong
    assert [n.year for n in settings.calendar_overrides] == [UNKNOWN]


def test_a_notice_is_checked_when_built() -> None:
    """The domain refuses a notice that cannot be, whoever builds it."""
    with pytest.raises(ValueError, match="is a Monday"):
        YearNotice(year=2031, holidays=frozenset(), working_weekends=frozenset({date(2031, 9, 29)}),
                   source="test")
    with pytest.raises(ValueError, match="not in 2031"):
        YearNotice(year=2031, holidays=frozenset({date(2030, 1, 1)}), working_weekends=frozenset(),
                   source="test")
    with pytest.raises(ValueError, match="two notices for 2031"):
        WorkingCalendar([YearNotice(year=2031, holidays=frozenset(), working_weekends=frozenset(),
                                    source=s) for s in ("a", "b")])


# --- through the API ------------------------------------------------------------------


async def _file(client: Client, headers: dict[str, str], record_id: str) -> dict[str, Any]:
    response = await client.post("/v1/objections", headers=headers, json={
        "target_type": "credit_record", "target_id": record_id, "grounds": "处罚对象认定有误"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()["objection"]
    return body


async def test_objection_deadlines_across_national_day_through_the_api(
        client: Client, regulator: dict[str, str], clock: ManualClock) -> None:
    """Filed before 国庆节 2026: both deadlines skip the holiday, count the 调休 Saturday,
    and are final in every answer (file, read, list, decide)."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    clock.set(moment("2026-09-28"))
    filed = await _file(client, regulator, rec["id"])
    start = date(2026, 9, 28)
    assert filed["decide_due"] == library_deadline(start, 3).isoformat()
    assert filed["answer_due"] == library_deadline(start, 10).isoformat()
    assert filed["decide_due_provisional"] is False
    assert filed["answer_due_provisional"] is False
    read = (await client.get(f"/v1/objections/{filed['id']}", headers=regulator)).json()
    listed = (await client.get("/v1/objections", headers=regulator)).json()["items"]
    for shown in (read, listed[0]):
        assert (shown["answer_due"], shown["answer_due_provisional"]) == (filed["answer_due"], False)
    decided = await client.post(f"/v1/objections/{filed['id']}/decide", headers=regulator,
                                json={"outcome": "rejected"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["objection"]["decide_due_provisional"] is False


async def test_an_unknown_year_is_provisional_then_counted_again_at_start(
        client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool,
        settings: Settings, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Filed in a year no source knows: Monday to Friday, `*_provisional: true` in every
    answer and a `deadline_provisional` warning. Started again with an override file that
    adds the year, the service counts the deadlines again before it serves: they move past
    the holidays, are final, and the move is an audited change by system:calendar."""
    clock.set(moment(f"{UNKNOWN}-09-22"))
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, decision_date=f"{UNKNOWN}-09-01",
                                                  valid_until=f"{UNKNOWN + 1}-09-01"))
    clock.set(moment(f"{UNKNOWN}-09-26"))  # a Friday
    start = date(UNKNOWN, 9, 26)
    with structlog.testing.capture_logs() as logs:
        # A fresh logger inside the capture (another test may have cached the module's).
        monkeypatch.setattr(objection_cases, "log", structlog.get_logger("registry.credit.objections"))
        filed = await _file(client, regulator, rec["id"])
    assert filed["decide_due"] == MONDAY_TO_FRIDAY.add_working_days(start, 3).day.isoformat()
    assert filed["answer_due"] == MONDAY_TO_FRIDAY.add_working_days(start, 10).day.isoformat()
    assert (filed["decide_due_provisional"], filed["answer_due_provisional"]) == (True, True)
    warnings = [e for e in logs if e["event"] == "deadline_provisional"]
    assert {(w["log_level"], w["deadline"], tuple(w["unknown_years"])) for w in warnings} == {
        ("warning", "decide_due", (UNKNOWN,)), ("warning", "answer_due", (UNKNOWN,))}
    assert all(w["object_id"] == filed["id"] for w in warnings)
    read = (await client.get(f"/v1/objections/{filed['id']}", headers=regulator)).json()
    listed = (await client.get("/v1/objections", params={"state": "filed"},
                               headers=regulator)).json()["items"]
    for shown in (read, listed[0]):
        assert (shown["answer_due_provisional"], shown["decide_due_provisional"]) == (True, True)
        assert shown["answer_due"] == filed["answer_due"]

    path = tmp_path / "calendar.toml"
    path.write_text(OVERRIDE, encoding="utf-8")
    known = Settings.from_env({"REGISTRY_CALENDAR_FILE": str(path)})
    calendar = build_calendar(known.calendar_overrides)
    before = await log_size(db)
    restarted = create_app(replace(settings, calendar_file=known.calendar_file,
                                   calendar_overrides=known.calendar_overrides),
                           clock=clock, database_url=database_url, configure_logs=False)
    async with AsyncTestClient(app=restarted) as again:
        now = (await again.get(f"/v1/objections/{filed['id']}", headers=regulator)).json()
    for column, n in (("decide_due", 3), ("answer_due", 10)):
        due = calendar.add_working_days(start, n)
        assert not due.provisional
        assert now[column] == due.day.isoformat() != filed[column]
        assert now[f"{column}_provisional"] is False
    # The decision's 3 days count the notice's working Sunday; the answer's 10 skip 国庆节.
    assert date(UNKNOWN, 9, 28) in days_after(start, date.fromisoformat(now["decide_due"]))
    assert [d for d in days_after(start, date.fromisoformat(now["answer_due"]))
            if d.weekday() < 5 and not calendar.is_working_day(d)] == [
        date(UNKNOWN, 10, d) for d in (1, 2, 3, 6, 7)]
    assert now["version"] == filed["version"] + 1
    assert now["updated_by"] == "system:calendar"
    assert await actions(db, before) == ["objection.deadlines_recounted"]
    assert await db.fetchval("SELECT count(*) FROM provisional_deadlines") == 0
    await assert_log_consistent(db)


async def test_the_expiry_pass_counts_provisional_deadlines_again(
        client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool,
        settings: Settings) -> None:
    """The periodic pass does what start-up does: with a calendar that knows the year the
    deadline is counted again once; a calendar that still does not leaves it as it is."""
    clock.set(moment(f"{UNKNOWN}-09-22"))
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, decision_date=f"{UNKNOWN}-09-01",
                                                  valid_until=f"{UNKNOWN + 1}-09-01"))
    clock.set(moment(f"{UNKNOWN}-09-26"))
    filed = await _file(client, regulator, rec["id"])

    def services(calendar: WorkingCalendar) -> Services:
        return Services(settings=settings, pool=db, clock=clock, pii=None,  # type: ignore[arg-type]
                        integrator=None, tokens=None, reads=None, listener=None, policy=Policy(),  # type: ignore[arg-type]
                        calendar=calendar)

    start = await log_size(db)
    assert (await expire_once(services(CALENDAR))).deadlines == 0
    assert await log_size(db) == start
    calendar = build_calendar(parse_overrides(OVERRIDE, "calendar.toml"))
    assert (await expire_once(services(calendar))).deadlines == 1
    assert (await expire_once(services(calendar))).deadlines == 0
    assert await actions(db, start) == ["objection.deadlines_recounted"]
    now = (await client.get(f"/v1/objections/{filed['id']}", headers=regulator)).json()
    assert now["answer_due"] == calendar.add_working_days(date(UNKNOWN, 9, 26), 10).day.isoformat()
    assert now["answer_due_provisional"] is False


async def test_deadlines_of_the_previous_release_are_counted_again(
        pg_server: PgServer, settings: Settings) -> None:
    """Deadlines stored before the calendar (Monday to Friday) are marked by the migration
    with the count they were made with, then counted in the official calendar once, as an
    audited change: the upgraded log still verifies."""
    name = f"t_wd_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server.uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    mine = next(i for i, m in enumerate(load_migrations()) if m.name.endswith("provisional_deadlines.sql"))
    pool = await asyncpg.create_pool(pg_server.url_for(name), min_size=1, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await migrate(conn, load_migrations()[:mine])
        key = await ensure_log(pool, settings)
        subject_id, objection_id = uuid.uuid4(), uuid.uuid4()
        clock = ManualClock(moment("2026-09-28"))

        async def old_subject(c: Conn, index: int, now: datetime) -> asyncpg.Record:
            return required(await c.fetchrow(
                "INSERT INTO subjects (id, kind, name, status, credit_code, version, created_at,"
                " created_by, updated_at, updated_by, log_index) VALUES ($1, 'vc_firm', '旧创投',"
                " 'active', '91630100MA752LKX1M', 1, $2, 'regulator:old', $2, 'regulator:old', $3)"
                " RETURNING *", subject_id, now, index))

        async def old_objection(c: Conn, index: int, now: datetime) -> asyncpg.Record:
            # Filed on Monday 2026-09-28 by the previous release: 3 and 10 days Monday to Friday.
            return required(await c.fetchrow(
                "INSERT INTO objections (id, target_type, target_id, subject_id, filed_by, grounds,"
                " state, filed_on, decide_due, answer_due, version, created_at, created_by,"
                " updated_at, updated_by, log_index) VALUES ($1, 'credit_record', $2, $3,"
                " 'subject', '有误', 'filed', '2026-09-28', $4, $5, 1, $6, 'regulator:old', $6,"
                " 'regulator:old', $7) RETURNING *", objection_id, uuid.uuid4(), subject_id,
                MONDAY_TO_FRIDAY.add_working_days(date(2026, 9, 28), 3).day,
                MONDAY_TO_FRIDAY.add_working_days(date(2026, 9, 28), 10).day, now, index))

        for action, object_type, write in (("subject.create", "subject", old_subject),
                                           ("objection.file", "objection", old_objection)):
            await audited_write(pool, clock, actor="regulator:old", action=action,
                                object_type=object_type, write=write)
        async with pool.acquire() as conn:
            await migrate(conn)
        marks = await pool.fetch("SELECT deadline, counted_from, working_days"
                                 " FROM provisional_deadlines ORDER BY deadline")
        assert [tuple(m) for m in marks] == [("answer_due", date(2026, 9, 28), 10),
                                            ("decide_due", date(2026, 9, 28), 3)]
        services = Services(settings=settings, pool=pool, clock=clock, pii=None,  # type: ignore[arg-type]
                            integrator=None, tokens=None, reads=None, listener=None)  # type: ignore[arg-type]
        recount = await objection_cases.recount_provisional_deadlines(services)
        assert (recount.moved, recount.settled, recount.provisional) == (1, 2, 0)
        row = required(await pool.fetchrow("SELECT decide_due, answer_due, updated_by FROM objections"))
        assert (row["decide_due"], row["answer_due"]) == (library_deadline(date(2026, 9, 28), 3),
                                                          library_deadline(date(2026, 9, 28), 10))
        assert row["updated_by"] == "system:calendar"
        await integrate_all(pool, key, settings.log_origin)
        await assert_log_consistent(pool)
    finally:
        await pool.close()


# --- the revocation setting -------------------------------------------------------------


def test_the_revocation_setting_is_gone_and_refused() -> None:
    """Revocation ends publication at once, so a number of days governs nothing: the
    setting no longer exists, and setting it stops the start with the reason."""
    assert "revocation_unpublish_working_days" not in Policy.__struct_fields__
    with pytest.raises(SettingsError, match="REGISTRY_POLICY_REVOCATION_UNPUBLISH_WORKING_DAYS "
                                            "no longer exists: a revoked decision leaves"):
        Settings.from_env({"REGISTRY_POLICY_REVOCATION_UNPUBLISH_WORKING_DAYS": "5"})
    assert Settings.from_env({"REGISTRY_POLICY_REVOCATION_UNPUBLISH_WORKING_DAYS": ""})


async def test_a_revoked_decision_leaves_publication_the_day_it_is_recorded(
        client: Client, regulator: dict[str, str], clock: ManualClock) -> None:
    """Revoked on the last working day before 国庆节 2026, the record is gone from the public page and
    the feed that same day, well before any working-day limit."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    clock.set(moment("2026-09-30"))
    assert (await client.get(f"/public/records/{rec['id']}")).status_code == 200
    revoked = await client.post(f"/v1/records/{rec['id']}/revoke", headers=regulator,
                                json={"version": rec["version"], "reason": "决定被撤销"})
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["published"], revoked.json()["publication_ended_on"]) == (
        False, "2026-09-30")
    assert (await client.get(f"/public/records/{rec['id']}")).status_code == 404
    top = (await client.get("/public/feed.json")).json()["entries"][0]
    assert (top["event"], top["object"]) == ("withdrawal", f"credit_record/{rec['id']}")


async def test_a_bureau_token_reads_the_flags_of_what_it_filed(
        client: Client, regulator: dict[str, str], db: asyncpg.Pool) -> None:
    """The bureau's masked view of its own objection carries the same deadline flags."""
    bureau = bearer(await issue(db, "bureau"))
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    filed = await _file(client, bureau, rec["id"])
    read = (await client.get(f"/v1/objections/{filed['id']}", headers=bureau)).json()
    assert (read["decide_due_provisional"], read["answer_due_provisional"]) == (False, False)
