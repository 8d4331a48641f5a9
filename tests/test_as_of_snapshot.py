"""Exports ``as_of`` a moment are a snapshot of that moment, rebuilt from the stored versions."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from registry.clock import ManualClock
from registry.credit.expiry import expire_once
from registry.credit.history import versions_as_of_sql
from registry.db.audit import TABLE_OF
from registry.settings import Settings
from registry.tlog.leaf import DERIVED_COLUMNS
from tests.public_helpers import (
    ADULT_ID,
    ADULT_MASKED,
    Client,
    firm,
    listing,
    person,
    record,
)
from tests.test_expiry import one_pass_services


async def _json(client: Client, name: str, as_of: datetime | None) -> list[dict[str, Any]]:
    params = {"as_of": as_of.isoformat()} if as_of is not None else {}
    response = await client.get(f"/public/exports/{name}.json", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = json.loads(response.content)
    return data


async def _csv(client: Client, name: str, as_of: datetime | None) -> list[list[str]]:
    params = {"as_of": as_of.isoformat()} if as_of is not None else {}
    response = await client.get(f"/public/exports/{name}.csv", params=params)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def _items(body: bytes, fmt: str) -> list[bytes]:
    """An export's items as their bytes, sorted (the CSV header stays first)."""
    if fmt == "csv":
        header, *rows = body.split(b"\r\n")
        return [header, *sorted(rows)]
    return sorted(json.dumps(item, sort_keys=True).encode() for item in json.loads(body))


def _by_decision(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["items"]["cf_wsh"]: e for e in entries}


async def test_a_grade_corrected_after_the_moment_shows_as_it_was(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """Grade, facts, window and log index of the version current at ``as_of``."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕80號", grade="general")
    moment = clock.now()
    clock.advance(minutes=30)
    corrected = await client.post(
        f"/v1/records/{rec['id']}/correct", headers=regulator,
        json={"version": rec["version"], "note": "複核改為嚴重", "grade": "serious",
              "facts": "更正後的違法事實"})
    assert corrected.status_code == 200, corrected.text
    now = corrected.json()

    then = _by_decision(await _json(client, "penalties", moment))["寧發改罰〔2026〕80號"]
    assert then["grade"] == "general"
    assert then["items"]["cf_sy"] == rec["facts"]
    assert then["withdraw_on"] == rec["publicity_end"]
    assert then["log_index"] == rec["log_index"]
    today = _by_decision(await _json(client, "penalties", None))["寧發改罰〔2026〕80號"]
    assert today["grade"] == "serious"
    assert today["items"]["cf_sy"] == "更正後的違法事實"
    assert today["log_index"] == now["log_index"]
    rows = await _csv(client, "penalties", moment)
    assert [r[15] for r in rows[1:]] == [rec["facts"]]  # 違法事實
    assert [r[15] for r in (await _csv(client, "penalties", None))[1:]] == ["更正後的違法事實"]


async def test_items_that_left_publication_since_are_in_and_later_ones_out(
    client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool,
    settings: Settings,
) -> None:
    """Revoked, expired (with the expiry pass run) or repaired after ``as_of``: still in the
    snapshot; recorded after it: not, even on the same day."""
    sid = await firm(client, regulator)
    revoked = await record(client, regulator, sid, "寧發改罰〔2026〕81號")
    short = await record(client, regulator, sid, "寧發改罰〔2026〕82號", grade="minor",
                         decision_date="2026-01-05", valid_until="2026-12-31")
    kept = await record(client, regulator, sid, "寧發改罰〔2026〕83號")
    assert short["status"] == "published"
    moment = clock.now()
    clock.advance(minutes=5)
    later = await record(client, regulator, sid, "寧發改罰〔2026〕84號")
    response = await client.post(f"/v1/records/{revoked['id']}/revoke", headers=regulator,
                                 json={"version": revoked["version"], "reason": "決定被撤銷"})
    assert response.status_code == 200, response.text
    clock.set(clock.now() + timedelta(days=60))  # the minor record's 3 months are over
    assert (await expire_once(one_pass_services(settings, db, clock))).records == 1

    current = {e["items"]["cf_wsh"] for e in await _json(client, "penalties", None)}
    assert current == {"寧發改罰〔2026〕83號", "寧發改罰〔2026〕84號"}
    then = await _json(client, "penalties", moment)
    assert {e["items"]["cf_wsh"] for e in then} == {
        "寧發改罰〔2026〕81號", "寧發改罰〔2026〕82號", "寧發改罰〔2026〕83號"}
    ids = {e["object"] for e in then}
    assert f"credit_record/{later['id']}" not in ids
    assert f"credit_record/{kept['id']}" in ids
    rows = await _csv(client, "penalties", moment)
    assert sorted(r[13] for r in rows[1:]) == [
        "寧發改罰〔2026〕81號", "寧發改罰〔2026〕82號", "寧發改罰〔2026〕83號"]
    # An hour before the first write nothing existed yet.
    assert await _json(client, "penalties", moment - timedelta(hours=1)) == []


async def test_a_listing_removed_since_and_a_renamed_subject(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """The blacklist as of a moment holds an entry removed after it; the subject's name and
    masked number are the ones it had then."""
    sid = await person(client, regulator)
    entry = await listing(client, regulator, clock, sid)
    moment = clock.now()
    clock.advance(minutes=5)
    removed = await client.post(f"/v1/blacklist/{entry['id']}/remove", headers=regulator,
                                json={"reason": "credit_repair_approved",
                                      "version": entry["version"]})
    assert removed.status_code == 200, removed.text
    subject = await client.get(f"/v1/subjects/{sid}", headers=regulator)
    assert subject.status_code == 200, subject.text
    renamed = await client.patch(f"/v1/subjects/{sid}", headers=regulator,
                                 json={"version": subject.json()["version"], "name": "李四改名"})
    assert renamed.status_code == 200, renamed.text

    assert await _json(client, "blacklist", None) == []
    (then,) = await _json(client, "blacklist", moment)
    assert then["object"] == f"blacklist_entry/{entry['id']}"
    assert then["items"]["zt_mc"] == "李四"
    assert then["items"]["zt_zjhm"] == ADULT_MASKED
    penalties = await _json(client, "penalties", None)
    assert {e["items"]["cf_xdr_mc"] for e in penalties} == {"李四改名"}
    assert {e["items"]["cf_xdr_mc"] for e in await _json(client, "penalties", moment)} == {"李四"}
    text = (await client.get("/public/exports/blacklist.csv",
                             params={"as_of": moment.isoformat()})).text
    assert ADULT_ID not in text
    assert ADULT_MASKED in text


async def test_a_snapshot_of_now_is_the_current_export(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """The two forms of the selection (current rows; versions rebuilt from the log) give the
    same items, byte for byte, for the same moment, whatever the items went through (an
    export's order is not specified)."""
    org = await firm(client, regulator)
    pid = await person(client, regulator)
    recs = [await record(client, regulator, org, f"寧發改罰〔2026〕{n}號") for n in range(90, 94)]
    await record(client, regulator, pid, "寧發改罰〔2026〕94號",
                 fine_amount="3.25", penalty_types=["fine", "confiscation"],
                 confiscation_amount="1.5", licence_name="經營許可證", licence_number="A-1")
    await listing(client, regulator, clock, pid)
    clock.advance(minutes=1)
    await client.post(f"/v1/records/{recs[0]['id']}/revoke", headers=regulator,
                      json={"version": recs[0]["version"], "reason": "撤銷"})
    await client.post(f"/v1/records/{recs[1]['id']}/correct", headers=regulator,
                      json={"version": recs[1]["version"], "note": "更正", "grade": "serious"})
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": recs[2]["id"], "grounds": "事實有誤"})
    assert filed.status_code == 201, filed.text
    clock.advance(minutes=1)
    moment = clock.now()
    for name in ("penalties", "blacklist"):
        for fmt in ("csv", "json"):
            now = await client.get(f"/public/exports/{name}.{fmt}")
            snapshot = await client.get(f"/public/exports/{name}.{fmt}",
                                        params={"as_of": moment.isoformat()})
            assert now.status_code == snapshot.status_code == 200
            assert _items(now.content, fmt) == _items(snapshot.content, fmt), (name, fmt)
    assert len(await _json(client, "penalties", moment)) == 5  # 90–94 and 99, less 90


async def test_versions_as_of_a_moment_are_the_rows_as_they_were(
    client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool
) -> None:
    """Every column of every table the snapshots read, as of a moment, equals the rows as
    they were then (types, binary columns and NULLs included): unchanged rows as stored,
    changed ones rebuilt from their stored versions, later ones absent."""
    pid = await person(client, regulator)
    org = await firm(client, regulator)
    rec = await record(client, regulator, pid, "寧發改罰〔2026〕95號")
    other = await record(client, regulator, org, "寧發改罰〔2026〕96號")
    entry = await listing(client, regulator, clock, pid)
    tables = {t: TABLE_OF[t] for t in ("subject", "credit_record", "blacklist_entry")}

    async def rows_of(moment: datetime | None) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for object_type, table in tables.items():
            if moment is None:
                rows = await db.fetch(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            else:
                rows = await db.fetch(
                    f"SELECT * FROM {versions_as_of_sql(object_type, '$1')} x ORDER BY id",  # noqa: S608 - fixed names
                    moment)
            # Derived columns (the folded search text) are not part of a version: stored
            # bodies leave them out, so a rebuilt row cannot carry them.
            out[object_type] = [{k: v for k, v in dict(r).items() if k not in DERIVED_COLUMNS}
                                for r in rows]
        return out

    then = await rows_of(None)
    moment = clock.now()
    clock.advance(minutes=10)
    await client.post(f"/v1/records/{rec['id']}/correct", headers=regulator,
                      json={"version": rec["version"], "note": "更正", "remarks": "備註",
                            "grade": "serious"})
    await client.post(f"/v1/records/{other['id']}/revoke", headers=regulator,
                      json={"version": other["version"], "reason": "撤銷"})
    await client.post(f"/v1/blacklist/{entry['id']}/remove", headers=regulator,
                      json={"reason": "credit_repair_approved", "version": entry["version"]})
    subject = (await client.get(f"/v1/subjects/{pid}", headers=regulator)).json()
    renamed = await client.patch(f"/v1/subjects/{pid}", headers=regulator,
                                 json={"version": subject["version"], "name": "改名"})
    assert renamed.status_code == 200, renamed.text
    await record(client, regulator, org, "寧發改罰〔2026〕97號")

    assert await rows_of(moment) == then
    now = await rows_of(None)
    assert await rows_of(clock.now()) == now
    assert now != then


async def test_published_means_in_publication_now(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """The regulator's `published` is the disclosure rule today (what the public sees);
    `publishable` is whether the rules allow publication at all."""
    sid = await firm(client, regulator)
    shown = await record(client, regulator, sid, "寧發改罰〔2026〕96號")
    assert (shown["published"], shown["publishable"]) == (True, True)
    revoked = await client.post(f"/v1/records/{shown['id']}/revoke", headers=regulator,
                                json={"version": shown["version"], "reason": "撤銷"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert (revoked.json()["published"], revoked.json()["publishable"]) == (False, True)
    warning = await record(client, regulator, sid, "寧發改罰〔2026〕97號",
                           penalty_types=["warning"], fine_amount=None)
    assert warning["status"] == "not_published"
    assert (warning["published"], warning["publishable"]) == (False, False)
    ending = await record(client, regulator, sid, "寧發改罰〔2026〕98號")

    # Past the end of its window, before the expiry pass: status still says published.
    clock.set(clock.now() + timedelta(days=400))
    read = (await client.get(f"/v1/records/{ending['id']}", headers=regulator)).json()
    assert read["status"] == "published"
    assert (read["published"], read["publishable"]) == (False, True)
    assert ending["id"] not in (await client.get("/public/exports/penalties.json")).text
    listed = (await client.get("/v1/records", headers=regulator)).json()["items"]
    assert {r["id"]: r["published"] for r in listed} == {
        shown["id"]: False, warning["id"]: False, ending["id"]: False}
