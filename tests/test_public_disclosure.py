"""Public disclosure: what is shown, when, masked how, signed how, cached how."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import timedelta

import asyncpg
import pytest

import registry.subjects
from registry.clock import ManualClock
from registry.identifiers import DocumentType
from registry.publish.labels import PENALTY_COLUMNS
from registry.tlog.leaf import canonical_json
from registry.tlog.note import parse_verifier_key
from tests.public_helpers import (
    ADULT_ID,
    ADULT_MASKED,
    FIRM_NAME,
    MINOR_ID,
    MINOR_NAME,
    PERSON_NAME,
    Client,
    at,
    firm,
    listing,
    person,
    record,
    surfaces,
)


async def _detail(client: Client, record_id: str) -> int:
    return (await client.get(f"/public/records/{record_id}")).status_code


async def test_window_edges_hide_without_expiry_job(client: Client, regulator: dict[str, str],
                                                   clock: ManualClock) -> None:
    """Shown from publicity_start up to the day before publicity_end; gone on that day with no job run."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕1號")
    end = rec["publicity_end"]
    assert rec["status"] == "published"
    assert end is not None
    shown = await surfaces(client)
    for path in ("/public/feed.json", "/public/penalties", "/public/exports/penalties.csv"):
        assert "寧發改罰〔2026〕1號" in shown[path], path
    assert await _detail(client, rec["id"]) == 200

    last_day = at(end) - timedelta(days=1)
    clock.set(last_day.replace(hour=15, minute=59))  # 23:59 in Xining on the last day
    assert "寧發改罰〔2026〕1號" in (await client.get("/public/exports/penalties.csv")).text
    assert await _detail(client, rec["id"]) == 200

    clock.set(at(end).replace(hour=0) - timedelta(hours=8))  # 00:00 Xining on publicity_end
    gone = await surfaces(client)
    for path, body in gone.items():
        assert "寧發改罰〔2026〕1號" not in body, path
        assert rec["id"] not in body, path
    assert await _detail(client, rec["id"]) == 404


async def test_decision_before_today_starts_at_decision(client: Client, regulator: dict[str, str],
                                                       clock: ManualClock) -> None:
    """A record decided earlier is public from its decision day; one whose period passed is never."""
    sid = await firm(client, regulator)
    old = await record(client, regulator, sid, "寧發改罰〔2024〕7號", grade="minor",
                       decision_date="2025-01-02", valid_until="2025-04-01")
    fresh = await record(client, regulator, sid, "寧發改罰〔2026〕8號")
    body = (await client.get("/public/feed.json")).text
    assert fresh["id"] in body
    assert old["id"] not in body


async def test_masking_on_every_surface(client: Client, regulator: dict[str, str],
                                        clock: ManualClock) -> None:
    """The clear document number appears nowhere public; the masked form does; no representative number."""
    pid = await person(client, regulator)
    rec = await record(client, regulator, pid, "寧發改罰〔2026〕2號")
    await listing(client, regulator, clock, pid)
    bodies = await surfaces(client)
    bodies["detail"] = (await client.get(f"/public/records/{rec['id']}")).text
    for path, body in bodies.items():
        assert ADULT_ID not in body, path
        assert "19900307" not in body, path
        assert "document_cipher" not in body, path
        assert "document_lookup" not in body, path
    for path in ("/public/feed.json", "/public/exports/penalties.csv",
                 "/public/exports/penalties.json", "/public/exports/blacklist.csv", "detail"):
        assert ADULT_MASKED in bodies[path], path
    assert PERSON_NAME in bodies["/public/blacklist"]


async def test_minors_absent_everywhere(client: Client, regulator: dict[str, str],
                                        clock: ManualClock) -> None:
    """A practitioner under 18 today has nothing on any public surface, not even by id."""
    minor = await person(client, regulator, MINOR_ID, MINOR_NAME)
    rec = await record(client, regulator, minor, "寧發改罰〔2026〕3號")
    await listing(client, regulator, clock, minor)
    adult = await firm(client, regulator, name="可見公司")
    await record(client, regulator, adult, "寧發改罰〔2026〕4號")
    bodies = await surfaces(client)
    for path, body in bodies.items():
        assert MINOR_NAME not in body, path
        assert MINOR_ID[:6] + "*" not in body, path
        assert rec["id"] not in body, path
    assert "可見公司" in bodies["/public/penalties"]
    assert await _detail(client, rec["id"]) == 404
    searched = await client.get("/public/", params={"q": "張小明"})
    assert MINOR_NAME not in searched.text


async def test_a_minor_under_another_document_type_is_absent(
    client: Client, regulator: dict[str, str], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A minor's resident-ID number stored under document_type 'other' (as accepted before
    such numbers were refused) hides its holder on every public surface all the same."""
    with monkeypatch.context() as patched:
        patched.setattr(registry.subjects, "validate_document",
                        lambda doc_type, value, **_: (DocumentType.OTHER, value))
        response = await client.post("/v1/subjects", headers=regulator, json={
            "kind": "practitioner", "name": MINOR_NAME, "document_type": "other",
            "document_number": MINOR_ID})
    assert response.status_code == 201, response.text
    minor = response.json()["id"]
    rec = await record(client, regulator, minor, "寧發改罰〔2026〕5號")
    await listing(client, regulator, clock, minor)
    adult = await firm(client, regulator, name="可見公司")
    await record(client, regulator, adult, "寧發改罰〔2026〕6號")
    bodies = await surfaces(client)
    for path, body in bodies.items():
        assert MINOR_NAME not in body, path
        assert MINOR_ID[:6] + "*" not in body, path
        assert rec["id"] not in body, path
    assert "可見公司" in bodies["/public/penalties"]
    assert await _detail(client, rec["id"]) == 404


async def _verifier(client: Client) -> object:
    key_line = (await client.get("/log/key")).text.splitlines()[0]
    return parse_verifier_key(key_line)


async def test_feed_signatures_verify_with_log_key(client: Client, regulator: dict[str, str],
                                                   clock: ManualClock) -> None:
    """Each entry verifies over its canonical bytes with the key at /log/key; one changed byte fails."""
    sid = await firm(client, regulator)
    await record(client, regulator, sid, "寧發改罰〔2026〕5號")
    await listing(client, regulator, clock, sid)
    verifier = parse_verifier_key((await client.get("/log/key")).text.splitlines()[0])
    feed = (await client.get("/public/feed.json")).json()
    assert feed["verifier_key"] == verifier.name + "+" + verifier.key_id.hex() + feed["verifier_key"][
        len(verifier.name) + 9:]
    assert len(feed["entries"]) >= 2
    for entry in feed["entries"]:
        signature = base64.b64decode(entry.pop("signature"))
        message = canonical_json(entry)
        assert verifier.verify(message, signature)
        tampered = bytearray(message)
        tampered[len(tampered) // 2] ^= 0x01
        assert not verifier.verify(bytes(tampered), signature)
        bad_sig = bytearray(signature)
        bad_sig[0] ^= 0x01
        assert not verifier.verify(message, bytes(bad_sig))

    atom = (await client.get("/public/feed.atom")).text
    import xml.etree.ElementTree as ET

    ns = {"a": "http://www.w3.org/2005/Atom", "reg": "https://registry.example/ns/public-feed"}
    root = ET.fromstring(atom)  # noqa: S314 - our own server's output under test
    entries = root.findall("a:entry", ns)
    assert entries
    for element in entries:
        content = element.find("a:content", ns)
        sig = element.find("reg:signature", ns)
        assert content is not None
        assert content.text
        assert sig is not None
        assert sig.text
        assert verifier.verify(content.text.encode(), base64.b64decode(sig.text))


async def test_feed_order_pagination_and_withdrawals(client: Client, regulator: dict[str, str],
                                                     db: asyncpg.Pool) -> None:
    """Newest first by log index; stable `before` links; a revocation becomes a withdrawal entry."""
    sid = await firm(client, regulator)
    made = [await record(client, regulator, sid, f"寧發改罰〔2026〕{n}號") for n in range(10, 15)]
    revoked = await client.post(f"/v1/records/{made[0]['id']}/revoke", headers=regulator,
                                json={"version": made[0]["version"], "reason": "決定被撤銷"})
    assert revoked.status_code == 200, revoked.text
    first = (await client.get("/public/feed.json", params={"limit": 2})).json()
    seqs = [e["seq"] for e in first["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(seqs) == 2
    top = first["entries"][0]
    assert top["event"] == "withdrawal"
    assert top["object"] == f"credit_record/{made[0]['id']}"
    assert "items" not in top
    assert top["reason"] == "決定被撤銷"
    collected = list(first["entries"])
    url = first["next_url"]
    while url:
        page = (await client.get(url)).json()
        collected += page["entries"]
        url = page["next_url"]
    objects = [e["object"] for e in collected]
    assert len(objects) == len(set(objects)) == 5
    assert all(e["seq"] == e["log_index"] for e in collected)
    publication = next(e for e in collected if e["event"] == "publication")
    assert set(publication["items"]) == {k for k, _ in PENALTY_COLUMNS}
    assert await _detail(client, made[0]["id"]) == 404


async def test_objection_mark_shown(client: Client, regulator: dict[str, str]) -> None:
    """A record under objection carries 异议处理中 on the page, the feed and the exports."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕20號")
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "事實認定有誤"})
    assert filed.status_code == 201, filed.text
    feed = (await client.get("/public/feed.json")).json()
    entry = next(e for e in feed["entries"] if e["object"] == f"credit_record/{rec['id']}")
    assert entry["under_objection"] is True
    assert entry["objection_mark"] == "异议处理中"
    assert "异议处理中" in (await client.get(f"/public/records/{rec['id']}")).text
    assert "异议处理中" in (await client.get("/public/penalties")).text
    assert "异议处理中" in (await client.get("/public/exports/penalties.csv")).text


async def test_conditional_get(client: Client, regulator: dict[str, str]) -> None:
    """ETag and Last-Modified give 304; a new write changes the ETag."""
    sid = await firm(client, regulator)
    await record(client, regulator, sid, "寧發改罰〔2026〕30號")
    for path in ("/public/feed.json", "/public/feed.atom"):
        first = await client.get(path)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert "max-age" in first.headers["cache-control"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert (await client.get(path, headers={"If-Modified-Since": modified})).status_code == 304
        assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200
        assert (await client.get(path, headers={
            "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})).status_code == 200
    before = (await client.get("/public/feed.json")).headers["etag"]
    await record(client, regulator, sid, "寧發改罰〔2026〕31號")
    after = await client.get("/public/feed.json", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["etag"] != before


async def test_csv_export_shape_and_as_of(client: Client, regulator: dict[str, str],
                                          clock: ManualClock) -> None:
    """CSV with BOM and the 雙公示 header; as_of excludes later items; a future as_of is refused."""
    sid = await firm(client, regulator)
    await record(client, regulator, sid, "寧發改罰〔2026〕40號")
    moment = clock.now()
    clock.advance(hours=1)
    await record(client, regulator, sid, "寧發改罰〔2026〕41號")
    response = await client.get("/public/exports/penalties.csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [title for _, title in PENALTY_COLUMNS]
    assert len(rows) == 3
    assert rows[1][0] == FIRM_NAME
    assert rows[1][2] == "91630100MA752LKX1M"
    assert rows[1][8] == "王五"
    assert rows[1][10] == ""  # the legal representative's document number never leaves
    older = await client.get("/public/exports/penalties.csv",
                             params={"as_of": moment.isoformat()})
    assert "40號" in older.text
    assert "41號" not in older.text
    items = json.loads((await client.get("/public/exports/penalties.json",
                                         params={"as_of": moment.isoformat()})).content)
    assert [i["items"]["cf_wsh"] for i in items] == ["寧發改罰〔2026〕40號"]
    future = await client.get("/public/exports/penalties.csv",
                              params={"as_of": (clock.now() + timedelta(days=1)).isoformat()})
    assert future.status_code == 422
    assert future.json()["field"] == "as_of"
    assert (await client.get("/public/exports/nothing.csv")).status_code == 404
    empty = await client.get("/public/exports/blacklist.json")
    assert json.loads(empty.content) == []


async def test_page_escapes_and_is_mobile_ready(client: Client, regulator: dict[str, str],
                                                clock: ManualClock) -> None:
    """Names are escaped; viewport meta; search by name and by credit code; blacklist shown."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕50號")
    await listing(client, regulator, clock, sid)
    page = await client.get("/public/")
    assert page.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport"' in page.text
    assert "<script" not in page.text
    assert "<b>創新</b>" not in page.text
    assert "&lt;b&gt;創新&lt;/b&gt;" in page.text
    by_code = await client.get("/public/", params={"q": "91630100ma752lkx1m"})
    assert "寧發改罰〔2026〕50號" in by_code.text
    assert "严重失信主体名单" in by_code.text
    by_name = await client.get("/public/", params={"q": "創新"})
    assert "寧發改罰〔2026〕50號" in by_name.text
    nothing = await client.get("/public/", params={"q": "%"})
    assert "寧發改罰" not in nothing.text
    detail = (await client.get(f"/public/records/{rec['id']}")).text
    assert f"/log/proof/inclusion?index={rec['log_index']}&amp;size=" in detail
    assert "/log/checkpoint" in detail
    assert "行政处罚决定书文号" in detail


async def test_robots_and_cache_headers(client: Client) -> None:
    robots = await client.get("/robots.txt")
    assert robots.status_code == 200
    assert "Disallow: /v1/" in robots.text
    for path in ("/public/", "/public/exports/penalties.csv", "/public/feed.json"):
        assert "public" in (await client.get(path)).headers["cache-control"], path
