"""Fund managers: a vc_firm names the vc_manager that manages it, for a span of days.

Through the real app: the relation written with its leaf, refused naming the field for
the wrong kinds, overlapping spans and impossible days (and refused by the database
too, whatever writes it), listed in both subjects' credit histories, shown on both
bureau profiles (a manager's with its practitioners, masked, minors never, each shown
one recorded) and in the change feed, beside a firm's public items, and never served
stale from a cached profile.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from registry.bureau.profile_memo import ProfileMemo
from registry.bureau.runtime import bureau_runtime
from registry.clock import ManualClock
from registry.db.changes import CHANGES
from registry.domain.disclosure import masked_number
from registry.domain.policy import Policy
from tests.bureau_helpers import (
    PURPOSE,
    credit_code,
    organisation,
    practitioner,
    read_feed,
    resident_id,
    wait_integrated,
)
from tests.credit_helpers import Client, actions, log_size, penalty, record
from tests.logcheck import assert_log_consistent
from tests.test_token_cache import eventually

FIRM = 101  # credit_code(n) of the test's firm
MANAGER = 102


async def manager(client: Client, headers: dict[str, str], n: int = MANAGER,
                  name: str = "青海高原創業投資管理有限公司") -> str:
    response = await client.post("/v1/subjects", headers=headers, json={
        "kind": "vc_manager", "name": name, "credit_code": credit_code(n)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def name(client: Client, headers: dict[str, str], firm: str, manager_id: str,
               valid_from: str = "2024-01-01", valid_to: str | None = None) -> Any:
    """POST the relation; the raw answer."""
    body: dict[str, Any] = {"manager_id": manager_id, "valid_from": valid_from}
    if valid_to is not None:
        body["valid_to"] = valid_to
    return await client.post(f"/v1/subjects/{firm}/fund-managers", headers=headers, json=body)


async def named(client: Client, headers: dict[str, str], firm: str, manager_id: str,
                valid_from: str = "2024-01-01", valid_to: str | None = None) -> dict[str, Any]:
    response = await name(client, headers, firm, manager_id, valid_from, valid_to)
    assert response.status_code == 201, response.text
    relation: dict[str, Any] = response.json()["fund_manager"]
    assert response.json()["receipt"]["log_index"] == relation["log_index"]
    return relation


async def profile(client: Client, bureau: dict[str, str], n: int, **params: str) -> Any:
    return await client.get(f"/v1/bureau/profiles/{credit_code(n)}", headers=bureau,
                            params=params)


async def profile_json(client: Client, bureau: dict[str, str], n: int) -> dict[str, Any]:
    response = await profile(client, bureau, n, purpose=PURPOSE)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def accesses(db: asyncpg.Pool) -> list[tuple[str, uuid.UUID]]:
    rows = await db.fetch("SELECT channel, subject_id FROM bureau_access ORDER BY id")
    return [(r["channel"], r["subject_id"]) for r in rows]


# --- the relation, both profiles ------------------------------------------------------


async def test_a_firm_names_its_manager_and_both_profiles_show_it(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """The firm's profile shows its manager (name, code, days); the manager's the firm and
    the practitioner affiliated to it, the number masked exactly as on the person's own
    profile; one leaf for the relation, and the log verifies."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    number = resident_id(201)
    person = await practitioner(client, regulator, number, boss)
    start = await log_size(db)

    relation = await named(client, regulator, firm, boss, "2024-01-01")
    assert await actions(db, start) == ["fund_manager.create"]
    assert relation["firm_id"] == firm and relation["manager_id"] == boss
    assert relation["manager_name"] == "青海高原創業投資管理有限公司"
    assert relation["manager_credit_code"] == credit_code(MANAGER)
    assert relation["firm_credit_code"] == credit_code(FIRM)
    assert relation["valid_to"] is None and relation["version"] == 1

    shown = (await profile(client, bureau, FIRM)).json()
    [entry] = shown["managers"]
    assert entry["manager"]["name"] == "青海高原創業投資管理有限公司"
    assert entry["manager"]["credit_code"] == credit_code(MANAGER)
    assert entry["fund_manager"] == {k: relation[k] for k in entry["fund_manager"]}
    assert entry["fund_manager"]["valid_from"] == "2024-01-01"
    assert "firms" not in shown and "practitioners" not in shown

    theirs = await profile_json(client, bureau, MANAGER)
    assert [f["firm"]["id"] for f in theirs["firms"]] == [firm]
    assert theirs["firms"][0]["fund_manager"]["id"] == relation["id"]
    [staff] = theirs["practitioners"]
    assert staff["practitioner"]["id"] == person
    assert staff["affiliation"]["organisation_id"] == boss
    assert staff["practitioner"]["document_number"] == masked_number(number, Policy())
    assert number not in str(theirs)
    own = await client.post("/v1/bureau/profiles/lookup", headers=bureau, json={
        "document_type": "resident_id", "document_number": number, "purpose": PURPOSE})
    assert own.json()["subject"] == staff["practitioner"]
    assert "managers" not in theirs
    await assert_log_consistent(db)


async def test_a_profile_that_shows_practitioners_needs_a_purpose_and_records_them(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """A manager's practitioners are people: without a purpose its profile is a 422 naming
    ``purpose`` (alone and in bulk); with one, each person shown is recorded once before
    the answer. A firm's profile, which shows no one, needs none and records nothing."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    person = uuid.UUID(await practitioner(client, regulator, resident_id(202), boss))
    await named(client, regulator, firm, boss)
    before = await accesses(db)

    refused = await profile(client, bureau, MANAGER)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "purpose"
    assert str(person) not in refused.text and "李四" not in refused.text
    bulk = {"identifiers": [{"credit_code": credit_code(FIRM)},
                            {"credit_code": credit_code(MANAGER)}]}
    refused = await client.post("/v1/bureau/profiles/bulk", headers=bureau, json=bulk)
    assert refused.status_code == 422 and refused.json()["field"] == "purpose"
    assert await accesses(db) == before

    assert (await profile(client, bureau, FIRM)).status_code == 200
    assert await accesses(db) == before
    await profile_json(client, bureau, MANAGER)
    assert await accesses(db) == [*before, ("profile", person)]
    answered = await client.post("/v1/bureau/profiles/bulk", headers=bureau,
                                 json={**bulk, "purpose": PURPOSE})
    assert answered.status_code == 200, answered.text
    assert [r["status"] for r in answered.json()["results"]] == ["found", "found"]
    assert await accesses(db) == [*before, ("profile", person), ("bulk", person)]


async def test_a_minor_is_never_among_a_managers_practitioners(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """Nothing about a minor, not even an id: the manager's profile lists no one, so it
    needs no purpose and records no access."""
    boss = await manager(client, regulator)
    child = await practitioner(client, regulator, resident_id(203, born="20150505"), boss)
    before = await accesses(db)
    shown = await profile(client, bureau, MANAGER)
    assert shown.status_code == 200, shown.text
    assert "practitioners" not in shown.json()
    assert child not in shown.text
    assert await accesses(db) == before


# --- refusals -------------------------------------------------------------------------


async def test_spans_sharing_a_day_are_refused_naming_the_day(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """One manager at a time, both days of a span counting: the 409 names the day at fault
    and the relation it falls in; once that relation ends, the next may start the day after."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    other = await manager(client, regulator, 103, "另一家管理有限公司")
    first = await named(client, regulator, firm, boss, "2024-01-01")
    start = await log_size(db)

    inside = await name(client, regulator, firm, other, "2025-01-01")
    assert inside.status_code == 409, inside.text
    assert inside.json()["field"] == "valid_from"
    assert inside.json()["existing_id"] == first["id"]
    reaching = await name(client, regulator, firm, other, "2023-01-01", "2024-01-01")
    assert reaching.status_code == 409 and reaching.json()["field"] == "valid_to"
    assert "a valid_to before 2024-01-01" in reaching.text
    # The same manager again is no exception.
    assert (await name(client, regulator, firm, boss, "2025-01-01")).status_code == 409
    assert await log_size(db) == start

    ended = await client.post(f"/v1/fund-managers/{first['id']}/end", headers=regulator,
                              json={"valid_to": "2024-12-31"})
    assert ended.status_code == 200, ended.text
    on_last_day = await name(client, regulator, firm, other, "2024-12-31")
    assert on_last_day.status_code == 409 and on_last_day.json()["field"] == "valid_from"
    assert "a valid_from after 2024-12-31" in on_last_day.text
    second = await named(client, regulator, firm, other, "2025-01-01")
    # A correction is checked as a new span is.
    back = await client.patch(f"/v1/fund-managers/{second['id']}", headers=regulator,
                              json={"version": 1, "valid_from": "2024-06-01"})
    assert back.status_code == 409 and back.json()["field"] == "valid_from"
    assert back.json()["existing_id"] == first["id"]
    # Another firm may have the same manager at the same time.
    elsewhere = await organisation(client, regulator, 104)
    await named(client, regulator, elsewhere, other, "2025-01-01")
    await assert_log_consistent(db)


async def test_the_wrong_kinds_and_impossible_days_are_refused_naming_the_field(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Only a vc_firm names a manager, only a vc_manager is one: 422 naming ``subject_id``
    (in the path) or ``manager_id``; days as for affiliations: 422 naming the day. Nothing
    is written."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    person = await practitioner(client, regulator, resident_id(204))
    other_firm = await organisation(client, regulator, 104)
    start = await log_size(db)

    for wrong in (other_firm, person, str(uuid.uuid4())):
        refused = await name(client, regulator, firm, wrong)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "manager_id"
    for wrong in (boss, person):
        refused = await name(client, regulator, wrong, boss)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "subject_id"
        assert refused.json()["source"] == "path"
    assert (await name(client, regulator, str(uuid.uuid4()), boss)).status_code == 404
    backwards = await name(client, regulator, firm, boss, "2024-01-01", "2023-12-31")
    assert backwards.status_code == 422 and backwards.json()["field"] == "valid_to"
    too_early = await name(client, regulator, firm, boss, "1989-12-31")
    assert too_early.status_code == 422 and too_early.json()["field"] == "valid_from"
    forever = await name(client, regulator, firm, boss, "2024-01-01", "9999-12-31")
    assert forever.status_code == 422 and forever.json()["field"] == "valid_to"
    assert await log_size(db) == start


async def test_the_database_refuses_what_the_service_refuses(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """The rules' second form (schema/0020_fund_managers.sql) agrees with the first:
    written by hand, a wrong kind, a backwards span or a second manager on a day is
    refused by PostgreSQL itself."""
    firm = uuid.UUID(await organisation(client, regulator, FIRM))
    boss = uuid.UUID(await manager(client, regulator))
    other_firm = uuid.UUID(await organisation(client, regulator, 104))

    async def insert(firm_id: uuid.UUID, manager_id: uuid.UUID, first: str, last: str | None
                     ) -> None:
        await db.execute(
            "INSERT INTO fund_managers VALUES ($1, $2, $3, $4::text::date, $5::text::date, 1,"
            " now(), 'test', now(), 'test', 0)",
            uuid.uuid4(), firm_id, manager_id, first, last,
        )

    with pytest.raises(asyncpg.CheckViolationError, match="vc_manager"):
        await insert(firm, other_firm, "2024-01-01", None)
    with pytest.raises(asyncpg.CheckViolationError, match="vc_firm"):
        await insert(boss, boss, "2024-01-01", None)
    with pytest.raises(asyncpg.CheckViolationError, match="fund_managers_dates"):
        await insert(firm, boss, "2024-01-01", "2023-12-31")
    await insert(firm, boss, "2024-01-01", "2024-12-31")
    with pytest.raises(asyncpg.ExclusionViolationError):
        await insert(firm, boss, "2024-12-31", None)


# --- ending, correcting, history ------------------------------------------------------


async def test_end_correct_and_history(
    client: Client, regulator: dict[str, str], other_regulator: dict[str, str],
    bureau: dict[str, str], db: asyncpg.Pool,
) -> None:
    """Ended once (then 409), corrected with its version (stale: 409 naming ``version``;
    no change: 422), by any authority's regulator (shared master data), never by a bureau.
    Both subjects' credit histories list every version with its leaf, and the log verifies."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    relation = await named(client, regulator, firm, boss, "2024-01-01")
    url = f"/v1/fund-managers/{relation['id']}"

    assert (await name(client, bureau, firm, boss)).status_code == 403
    assert (await client.post(f"{url}/end", headers=bureau,
                              json={"valid_to": "2025-06-30"})).status_code == 403
    ended = await client.post(f"{url}/end", headers=other_regulator,
                              json={"valid_to": "2025-06-30"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["fund_manager"]["valid_to"] == "2025-06-30"
    assert ended.json()["fund_manager"]["version"] == 2
    again = await client.post(f"{url}/end", headers=regulator, json={"valid_to": "2025-07-31"})
    assert again.status_code == 409 and "PATCH" in again.text
    stale = await client.patch(url, headers=regulator,
                               json={"version": 1, "valid_to": "2025-07-31"})
    assert stale.status_code == 409 and stale.json()["field"] == "version"
    unchanged = await client.patch(url, headers=regulator,
                                   json={"version": 2, "valid_to": "2025-06-30"})
    assert unchanged.status_code == 422
    corrected = await client.patch(url, headers=regulator,
                                   json={"version": 2, "valid_from": "2023-07-01",
                                         "valid_to": None})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["fund_manager"]["valid_from"] == "2023-07-01"
    assert corrected.json()["fund_manager"]["valid_to"] is None
    indexes = [relation["log_index"], ended.json()["receipt"]["log_index"],
               corrected.json()["receipt"]["log_index"]]

    for side in (firm, boss):
        history = await client.get(f"/v1/subjects/{side}/credit-history", headers=regulator)
        assert history.status_code == 200, history.text
        versions = [h for h in history.json() if h["object_type"] == "fund_manager"]
        assert [h["log_index"] for h in versions] == indexes
        assert [h["action"] for h in versions] == [
            "fund_manager.create", "fund_manager.end", "fund_manager.correct"]
        assert {h["object_id"] for h in versions} == {relation["id"]}
        assert [h["row"]["valid_to"] for h in versions] == [None, "2025-06-30", None]
        listed = await client.get(f"/v1/subjects/{side}/fund-managers", headers=regulator)
        assert [r["id"] for r in listed.json()] == [relation["id"]]
    assert (await client.get(url, headers=regulator)).json()["version"] == 3
    report = await assert_log_consistent(db)
    assert report.leaves >= indexes[-1] + 1


# --- the cache, the feed, the public page ---------------------------------------------


async def test_a_cached_profile_changes_with_every_relation_and_counterpart(
    app: Litestar, client: Client, regulator: dict[str, str], bureau: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    """Read, kept, then changed: the relation written, ended, edited by hand in SQL, the
    manager renamed, the practitioner's affiliation ended. Each time the next profile
    differs from the one before, as the write says."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    memo: ProfileMemo = bureau_runtime(app.state.services).profile_memo

    async def kept(n: int) -> dict[str, Any]:
        """The profile, read twice: the second comes from the process's memory."""
        first = await profile_json(client, bureau, n)
        hits = memo.trusted_hits
        assert await profile_json(client, bureau, n) == first
        assert memo.trusted_hits == hits + 1
        return first

    before = await kept(FIRM)
    assert "managers" not in before
    relation = await named(client, regulator, firm, boss, "2024-01-01")
    after = await kept(FIRM)
    assert after != before
    assert [m["fund_manager"]["id"] for m in after["managers"]] == [relation["id"]]

    ended = await client.post(f"/v1/fund-managers/{relation['id']}/end", headers=regulator,
                              json={"valid_to": "2025-12-31"})
    assert ended.status_code == 200, ended.text
    shown = await kept(FIRM)
    assert shown["managers"][0]["fund_manager"]["valid_to"] == "2025-12-31"
    assert (await kept(MANAGER))["firms"][0]["fund_manager"]["valid_to"] == "2025-12-31"

    generation = await db.fetchval(
        "SELECT generation FROM bureau_profile_cache WHERE subject_id = $1", uuid.UUID(firm))
    epoch = CHANGES.epoch
    await db.execute("UPDATE fund_managers SET valid_to = '2025-11-30' WHERE id = $1",
                     uuid.UUID(relation["id"]))
    assert await db.fetchval(
        "SELECT generation FROM bureau_profile_cache WHERE subject_id = $1", uuid.UUID(firm)
    ) == generation + 1
    # Written elsewhere (not through this process): its notice tells the process.
    await eventually(lambda: CHANGES.epoch != epoch, "the change notice arrives")
    by_hand = await profile_json(client, bureau, FIRM)
    assert by_hand["managers"][0]["fund_manager"]["valid_to"] == "2025-11-30"

    renamed = await client.patch(f"/v1/subjects/{boss}", headers=regulator, json={
        "version": 1, "name": "更名後的管理有限公司"})
    assert renamed.status_code == 200, renamed.text
    assert (await kept(FIRM))["managers"][0]["manager"]["name"] == "更名後的管理有限公司"

    number = resident_id(205)
    person = await practitioner(client, regulator, number, boss)
    staff = (await kept(MANAGER))["practitioners"]
    assert [s["practitioner"]["id"] for s in staff] == [person]
    [affiliation] = (await client.get(f"/v1/subjects/{person}", headers=regulator)
                     ).json()["affiliations"]
    left = await client.post(f"/v1/affiliations/{affiliation['id']}/end", headers=regulator,
                             json={"valid_to": "2026-02-28"})
    assert left.status_code == 200, left.text
    staff = (await kept(MANAGER))["practitioners"]
    assert staff[0]["affiliation"]["valid_to"] == "2026-02-28"
    moved = await client.patch(f"/v1/subjects/{person}", headers=regulator, json={
        "version": 1, "name": "李四改"})
    assert moved.status_code == 200, moved.text
    assert (await kept(MANAGER))["practitioners"][0]["practitioner"]["name"] == "李四改"


async def test_the_change_feed_carries_relations_and_its_replay_gives_the_profiles(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """Each version of a relation is an ``upsert`` under the firm; joined with the subject
    items the feed also carries (and the affiliations naming the manager), a replay gives
    the relation lists both profiles show."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    await practitioner(client, regulator, resident_id(206), boss)
    await practitioner(client, regulator, resident_id(207, born="20150505"), boss)
    relation = await named(client, regulator, firm, boss, "2024-01-01")
    ended = await client.post(f"/v1/fund-managers/{relation['id']}/end", headers=regulator,
                              json={"valid_to": "2025-12-31"})
    assert ended.status_code == 200, ended.text
    await wait_integrated(db)
    items, _ = await read_feed(client, bureau)
    ours = [i for i in items if i["object_type"] == "fund_manager"]
    assert [(i["op"], i["subject_id"], i["fund_manager"]["version"]) for i in ours] == [
        ("upsert", firm, 1), ("upsert", firm, 2)]

    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        latest[(item["object_type"], item["object_id"])] = item
    subjects = {k[1]: i["subject"] for k, i in latest.items() if k[0] == "subject"}
    relations = [i["fund_manager"] for k, i in latest.items() if k[0] == "fund_manager"]
    affiliations = [i["affiliation"] for k, i in latest.items() if k[0] == "affiliation"]
    firm_profile = (await profile(client, bureau, FIRM)).json()
    boss_profile = await profile_json(client, bureau, MANAGER)
    assert firm_profile["managers"] == [
        {"fund_manager": r, "manager": subjects[r["manager_id"]]}
        for r in relations if r["firm_id"] == firm]
    assert boss_profile["firms"] == [
        {"fund_manager": r, "firm": subjects[r["firm_id"]]}
        for r in relations if r["manager_id"] == boss]
    assert boss_profile["practitioners"] == [
        {"affiliation": a, "practitioner": subjects[a["practitioner_id"]]}
        for a in affiliations if a["organisation_id"] == boss]
    assert len(boss_profile["practitioners"]) == 1  # the minor: in neither


async def test_a_firms_public_items_show_its_manager_of_the_day(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """On the page of a firm's penalty: its manager on the day, by name and credit code;
    on a manager's: the firms it manages. Never a practitioner. Once the relation has
    ended, neither shows it."""
    firm = await organisation(client, regulator, FIRM)
    boss = await manager(client, regulator)
    await practitioner(client, regulator, resident_id(208), boss)
    relation = await named(client, regulator, firm, boss, "2024-01-01")
    firm_item = await record(client, regulator, penalty(firm, "寧罰〔2026〕101號"))
    boss_item = await record(client, regulator, penalty(boss, "寧罰〔2026〕102號"))

    page = (await client.get(f"/public/records/{firm_item['id']}")).text
    assert "关联机构" in page and "创业投资管理企业" in page
    assert f"青海高原創業投資管理有限公司（{credit_code(MANAGER)}）" in page
    page = (await client.get(f"/public/records/{boss_item['id']}")).text
    assert "受托管理的创业投资企业" in page and credit_code(FIRM) in page
    assert "李四" not in page and "630102" not in page

    ended = await client.post(f"/v1/fund-managers/{relation['id']}/end", headers=regulator,
                              json={"valid_to": "2026-03-02"})
    assert ended.status_code == 200, ended.text
    assert credit_code(MANAGER) in (await client.get(f"/public/records/{firm_item['id']}")).text
    clock.advance(days=1)  # the day after its last
    page = (await client.get(f"/public/records/{firm_item['id']}")).text
    assert "关联机构" not in page and credit_code(MANAGER) not in page
