"""The 雙公示 consistency rules of a credit record (registry/domain/record_rules.py).

Each rule twice: as a pure function, and through the HTTP API, where a refused record
or correction is a 422 naming the field and leaves no trace (no row, no leaf).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain import record_rules as rules
from registry.domain.publicity import PenaltyType
from registry.errors import InvalidInput
from tests.credit_helpers import AUTHORITY, Client, log_size, penalty, record, subject

TODAY = date(2026, 3, 2)  # the suite's clock (tests/conftest.py), Xining's day


# --- the pure rules --------------------------------------------------------------------


def test_distinct_penalty_types_pass() -> None:
    """Every type once, in any order, is accepted."""
    rules.check_no_repeated_types([t.value for t in PenaltyType])
    rules.check_no_repeated_types([])


@pytest.mark.parametrize("types", [["fine", "fine", "fine"], ["warning", "other", "warning"]])
def test_repeated_penalty_type_is_refused(types: list[str]) -> None:
    """A repeated type is refused, naming the value, not silently merged."""
    with pytest.raises(InvalidInput) as info:
        rules.check_no_repeated_types(types)
    assert info.value.field == "penalty_types"
    assert repr(types[0]) in info.value.reason


AMOUNT_CASES: list[tuple[list[str], str | None, str | None, str | None]] = [
    # types, fine_amount, confiscation_amount, the field refused (None: accepted)
    (["fine"], "12.5", None, None),
    (["fine", "confiscation"], "0.000001", "3", None),
    (["warning"], None, None, None),
    (["confiscation"], None, "1", None),
    ([], None, None, None),
    (["fine"], None, None, "fine_amount"),
    (["fine"], "0", None, "fine_amount"),
    (["fine"], "0.000000", None, "fine_amount"),
    (["warning", "other"], "12.5", None, "fine_amount"),
    ([], "1", None, "fine_amount"),
    (["warning", "other"], "0", None, "fine_amount"),
    (["confiscation"], None, None, "confiscation_amount"),
    (["confiscation"], None, "0", "confiscation_amount"),
    (["fine"], "1", "1", "confiscation_amount"),
    (["fine", "confiscation"], None, None, "fine_amount"),  # fine is checked first
]


@pytest.mark.parametrize(("types", "fine", "confiscation", "refused"), AMOUNT_CASES)
def test_amount_goes_with_its_penalty_type(types: list[str], fine: str | None,
                                           confiscation: str | None, refused: str | None) -> None:
    """fine ⇔ a positive fine_amount, confiscation ⇔ a positive confiscation_amount."""
    amounts = (None if fine is None else Decimal(fine),
               None if confiscation is None else Decimal(confiscation))
    if refused is None:
        rules.check_amounts(types, *amounts)
        return
    with pytest.raises(InvalidInput) as info:
        rules.check_amounts(types, *amounts)
    assert info.value.field == refused
    assert info.value.accepted


@given(types=st.lists(st.sampled_from([t.value for t in PenaltyType]), unique=True),
       fine=st.none() | st.decimals(min_value=0, max_value=10**6, places=6),
       confiscation=st.none() | st.decimals(min_value=0, max_value=10**6, places=6))
def test_amount_rule_is_an_equivalence(types: list[str], fine: Decimal | None,
                                       confiscation: Decimal | None) -> None:
    """Accepted exactly when each amount type is present iff its amount is positive."""
    expected = (("fine" in types) == (fine is not None and fine > 0)
                and ("fine" in types or fine is None)
                and ("confiscation" in types) == (confiscation is not None and confiscation > 0)
                and ("confiscation" in types or confiscation is None))
    try:
        rules.check_amounts(types, fine, confiscation)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == expected


@pytest.mark.parametrize("day", [rules.DATE_FLOOR, date(2000, 6, 1), TODAY])
def test_past_dates_from_the_floor_to_today_pass(day: date) -> None:
    rules.check_past_date("decision_date", day, TODAY)


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1900, 1, 1), date(1989, 12, 31),
                                 TODAY + timedelta(days=1), date(9999, 12, 31)])
def test_absurd_past_dates_are_refused(day: date) -> None:
    """Before 1990-01-01 or after today: refused, saying which dates are accepted."""
    with pytest.raises(InvalidInput) as info:
        rules.check_past_date("decision_date", day, TODAY)
    assert info.value.field == "decision_date"
    assert info.value.accepted == "a date from 1990-01-01 up to 2026-03-02"


@pytest.mark.parametrize(("start", "end"), [
    (date(2026, 3, 2), date(2076, 3, 2)),
    (date(2024, 2, 29), date(2074, 2, 28)),  # no 29 February in 2074
    (date(1990, 1, 1), date(2040, 1, 1)),
])
def test_horizon_is_fifty_calendar_years(start: date, end: date) -> None:
    assert rules.END_HORIZON_YEARS == 50
    assert rules.horizon(start) == end


@pytest.mark.parametrize("end", [None, date(2026, 3, 2), date(2027, 3, 1), date(2076, 3, 2)])
def test_end_dates_within_the_horizon_pass(end: date | None) -> None:
    rules.check_end_date("valid_until", end, "decision_date", date(2026, 3, 2))


@pytest.mark.parametrize(("end", "reason"), [
    (date(2026, 3, 1), "before decision_date"),
    (date(2076, 3, 3), "more than 50 years after decision_date"),
    (date(9999, 12, 31), "more than 50 years after decision_date"),
])
def test_end_dates_outside_are_refused(end: date, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        rules.check_end_date("valid_until", end, "decision_date", date(2026, 3, 2))
    assert info.value.field == "valid_until"
    assert reason in info.value.reason
    assert info.value.accepted == ("a date from decision_date (2026-03-02) up to 2076-03-02 "
                                   "(50 years later), or omit it")


def test_authority_is_never_the_subject() -> None:
    rules.check_authority_not_subject(AUTHORITY, "91630100MA752LKX1M")
    rules.check_authority_not_subject(AUTHORITY, None)  # a practitioner has no credit code
    with pytest.raises(InvalidInput) as info:
        rules.check_authority_not_subject(AUTHORITY, AUTHORITY)
    assert info.value.field == "authority_code"


# --- through the API: refused and nothing written ---------------------------------------


async def records_of(client: Client, headers: dict[str, str], sid: str) -> list[dict[str, Any]]:
    page = await client.get("/v1/records", params={"subject_id": sid}, headers=headers)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def refused(client: Client, headers: dict[str, str], db: asyncpg.Pool, sid: str,
                  body: dict[str, Any], field: str) -> dict[str, Any]:
    """Post ``body``: a 422 naming ``field`` and what is accepted; no record, no leaf."""
    before = await log_size(db)
    response = await client.post("/v1/records", json=body, headers=headers)
    assert response.status_code == 422, response.text
    problem: dict[str, Any] = response.json()
    assert problem["field"] == field, problem
    assert problem["accepted"], problem
    assert await log_size(db) == before
    assert await records_of(client, headers, sid) == []
    return problem


async def test_fine_needs_a_positive_amount(client: Client, regulator: dict[str, str],
                                            db: asyncpg.Pool) -> None:
    """A fine with no 罰款金額, or with 0, is refused."""
    sid = await subject(client, regulator)
    await refused(client, regulator, db, sid, penalty(sid, fine_amount=None), "fine_amount")
    await refused(client, regulator, db, sid, penalty(sid, fine_amount="0"), "fine_amount")


async def test_amount_needs_a_fine(client: Client, regulator: dict[str, str],
                                   db: asyncpg.Pool) -> None:
    """A 罰款金額 beside penalty types without a fine is refused."""
    sid = await subject(client, regulator)
    problem = await refused(client, regulator, db, sid,
                            penalty(sid, penalty_types=["warning", "other"], fine_amount="12.5"),
                            "fine_amount")
    assert "penalty_types" in problem["reason"]
    filing = {"subject_id": sid, "record_kind": "filing", "facts": "完成備案",
              "decision_date": "2026-01-05", "fine_amount": "1", "source_name": "西寧市發改委",
              "source_code": AUTHORITY}
    await refused(client, regulator, db, sid, filing, "fine_amount")


async def test_confiscation_goes_with_its_amount(client: Client, regulator: dict[str, str],
                                                 db: asyncpg.Pool) -> None:
    """confiscation ⇔ a positive confiscation_amount, both ways."""
    sid = await subject(client, regulator)
    for body in (penalty(sid, penalty_types=["fine", "confiscation"]),
                 penalty(sid, penalty_types=["fine", "confiscation"], confiscation_amount="0"),
                 penalty(sid, confiscation_amount="3")):
        await refused(client, regulator, db, sid, body, "confiscation_amount")
    both = await record(client, regulator, penalty(sid, penalty_types=["fine", "confiscation"],
                                                   confiscation_amount="3"))
    assert both["confiscation_amount"] == "3.000000"


async def test_repeated_penalty_types_are_refused(client: Client, regulator: dict[str, str],
                                                  db: asyncpg.Pool) -> None:
    """["fine", "fine", "fine"] is refused naming the value, not merged into ["fine"]."""
    sid = await subject(client, regulator)
    problem = await refused(client, regulator, db, sid,
                            penalty(sid, penalty_types=["fine", "fine", "fine"]), "penalty_types")
    assert "'fine'" in problem["reason"]


@pytest.mark.parametrize("day", ["0001-01-01", "1900-01-01", "1989-12-31"])
async def test_decision_date_before_the_floor_is_refused(client: Client, regulator: dict[str, str],
                                                         db: asyncpg.Pool, day: str) -> None:
    sid = await subject(client, regulator)
    problem = await refused(client, regulator, db, sid,
                            penalty(sid, decision_date=day, valid_until="2027-03-01"),
                            "decision_date")
    assert problem["accepted"] == "a date from 1990-01-01 up to 2026-03-02"


async def test_decision_date_on_the_floor_is_accepted(client: Client,
                                                      regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    body = await record(client, regulator, penalty(sid, decision_date="1990-01-01",
                                                   valid_until="1991-01-01"))
    assert body["decision_date"] == "1990-01-01"
    assert body["status"] == "expired"


async def test_end_date_beyond_the_horizon_is_refused(client: Client, regulator: dict[str, str],
                                                      db: asyncpg.Pool) -> None:
    """valid_until 9999-12-31 (a penalty's or a filing's) or one day past 50 years: refused."""
    sid = await subject(client, regulator)
    await refused(client, regulator, db, sid, penalty(sid, valid_until="9999-12-31"), "valid_until")
    await refused(client, regulator, db, sid, penalty(sid, valid_until="2076-03-03"), "valid_until")
    filing = {"subject_id": sid, "record_kind": "filing", "facts": "完成備案",
              "decision_date": "2026-01-05", "valid_until": "9999-12-31",
              "source_name": "西寧市發改委", "source_code": AUTHORITY}
    problem = await refused(client, regulator, db, sid, filing, "valid_until")
    assert "2076-01-05" in problem["accepted"]
    edge = await record(client, regulator, penalty(sid, valid_until="2076-03-02"))
    assert edge["valid_until"] == "2076-03-02"


async def test_authority_cannot_decide_on_itself(client: Client, regulator: dict[str, str],
                                                 db: asyncpg.Pool) -> None:
    """A subject registered under the deciding authority's own code cannot be penalised by it."""
    sid = await subject(client, regulator, code=AUTHORITY)
    problem = await refused(client, regulator, db, sid, penalty(sid), "authority_code")
    assert AUTHORITY in problem["reason"]


# --- corrections re-validate the whole record --------------------------------------------


async def test_correction_to_an_inconsistent_record_is_refused(client: Client,
                                                               regulator: dict[str, str],
                                                               db: asyncpg.Pool) -> None:
    """Each change alone is well formed; the record it would produce is not: 422, no version."""
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"penalty_types": ["warning"]}, "fine_amount"),  # drops fine, the amount stays
        ({"fine_amount": "0"}, "fine_amount"),
        ({"confiscation_amount": "1"}, "confiscation_amount"),
        ({"penalty_types": ["fine", "confiscation"]}, "confiscation_amount"),
        ({"penalty_types": ["fine", "fine"]}, "penalty_types"),
        ({"decision_date": "1900-01-01"}, "decision_date"),
        ({"valid_until": "9999-12-31"}, "valid_until"),
    ]
    before = await log_size(db)
    for change, field in cases:
        response = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                     json={"version": 1, "note": "更正", **change})
        assert response.status_code == 422, (change, response.text)
        assert response.json()["field"] == field, (change, response.text)
    assert await log_size(db) == before
    now = (await client.get(f"/v1/records/{first['id']}", headers=regulator)).json()
    assert now["version"] == 1
    assert now["penalty_types"] == ["fine"]
    fixed = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                              json={"version": 1, "note": "補充沒收", "confiscation_amount": "1",
                                    "penalty_types": ["fine", "confiscation"]})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["penalty_types"] == ["fine", "confiscation"]


async def test_a_correction_can_clear_an_item_with_null(client: Client,
                                                         regulator: dict[str, str]) -> None:
    """`null` clears (a fine that becomes a warning loses its amount); left out keeps it."""
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid))
    assert first["fine_amount"] is not None
    cleared = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                json={"version": 1, "note": "改为警告",
                                      "penalty_types": ["warning"], "fine_amount": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["fine_amount"] is None
    assert cleared.json()["penalty_types"] == ["warning"]
    assert cleared.json()["facts"] == first["facts"]  # not sent: unchanged
    refused = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                json={"version": 2, "note": "清空", "decision_date": None})
    assert refused.status_code == 422 and refused.json()["field"] == "decision_date"
    refused = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                json={"version": 2, "note": "清空", "facts": None})
    assert refused.status_code == 422 and refused.json()["field"] == "facts"


async def test_correction_when_the_subject_took_the_authority_code(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A record whose subject carries the authority's own code cannot be corrected as is."""
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid))
    # A row from before the rule (or a subject whose code was changed afterwards): set
    # directly, so the test does not depend on what a subject update accepts.
    await db.execute("UPDATE subjects SET credit_code = $1 WHERE id = $2", AUTHORITY,
                     uuid.UUID(sid))
    before = await log_size(db)
    response = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                 json={"version": 1, "note": "更正", "facts": "更正後事實"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "authority_code"
    assert await log_size(db) == before


async def test_objection_correction_to_an_inconsistent_record_is_refused(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """An upheld objection's correction is checked too; the objection stays undecided."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "罰款金額有誤"})
    assert filed.status_code == 201, filed.text
    objection = filed.json()["objection"]
    before = await log_size(db)
    decided = await client.post(f"/v1/objections/{objection['id']}/decide", headers=regulator,
                                json={"outcome": "upheld", "action": "correct", "note": "金額",
                                      "corrections": {"fine_amount": "0"}})
    assert decided.status_code == 422, decided.text
    assert decided.json()["field"] == "fine_amount"
    assert await log_size(db) == before
    still = (await client.get(f"/v1/objections/{objection['id']}", headers=regulator)).json()
    assert still["state"] == "filed"
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["fine_amount"] == "12.500000"
    assert now["under_objection"] is True
