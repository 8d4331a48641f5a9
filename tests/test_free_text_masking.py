"""Resident-ID numbers typed into free text: stored as typed, published masked.

The rule is ``registry.domain.disclosure.mask_resident_ids``; these tests put numbers
into every free-text field that reaches the public or a bureau and look for them on
every surface.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from registry.clock import ManualClock
from registry.domain.disclosure import (
    FREE_TEXT,
    mask_free_text,
    mask_resident_ids,
    masked_number,
    may_hold_number,
    numbers_in_free_text,
)
from registry.domain.policy import Policy
from registry.identifiers import mask_document_number, resident_id_check_character
from registry.publish.selection import (
    SubjectView,
    listing_entry,
    listing_values,
    record_entry,
    record_values,
    withdrawal_entry,
)
from tests.bureau_helpers import (
    credit_code,
    normalised,
    organisation,
    read_feed,
    replay,
    wait_integrated,
)
from tests.credit_helpers import penalty
from tests.public_helpers import Client, firm, record, surfaces


def _gb11643(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


# Two adults' numbers, neither of them a subject of the registry.
NUMBER = _gb11643("63010219850615123")
OTHER = _gb11643("63012119720229004")  # 29 Feb 1972: a real date
MASKED = NUMBER[:6] + "*" * 8 + NUMBER[-4:]
OTHER_MASKED = OTHER[:6] + "*" * 8 + OTHER[-4:]
POLICY = Policy()


def _wrong_check(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


# --- The rule ---------------------------------------------------------------------


def test_a_number_in_text_is_masked_as_a_practitioners_number() -> None:
    """The same form as a practitioner's document number, the rest of the text as typed."""
    text = f"當事人張三(身份證號{NUMBER})未按規定報送年度報告。"
    masked, count = mask_resident_ids(text, POLICY)
    assert count == 1
    assert masked == f"當事人張三(身份證號{MASKED})未按規定報送年度報告。"
    assert masked_number(NUMBER, POLICY) == mask_document_number(NUMBER) == MASKED


def test_every_number_is_masked_and_counted() -> None:
    masked, count = mask_resident_ids(f"{NUMBER}、{OTHER};{NUMBER}", POLICY)
    assert (masked, count) == (f"{MASKED}、{OTHER_MASKED};{MASKED}", 3)


@pytest.mark.parametrize(
    "text",
    [
        "未按規定報送年度報告",
        "",
        _wrong_check(NUMBER),  # check character does not match
        "63010219851315123" + resident_id_check_character("63010219851315123"),  # month 13
        "1" + NUMBER,  # inside a longer run of digits
        NUMBER + "7",
        NUMBER[:-1],  # 17 digits
        "寧發改罰〔2026〕1號",
    ],
)
def test_text_without_a_valid_number_is_unchanged(text: str) -> None:
    assert mask_resident_ids(text, POLICY) == (text, 0)


def test_lower_case_x_and_full_width_digits_are_numbers_too() -> None:
    """A number typed with a Chinese IME (full width) or a lower-case x is recognised,
    and masked keeping the characters as typed."""
    first17 = next(
        f"63010219900101{n:03d}" for n in range(1000)
        if resident_id_check_character(f"63010219900101{n:03d}") == "X"
    )
    lower = first17 + "x"
    assert mask_resident_ids(f"號碼{lower}。", POLICY) == (
        f"號碼{lower[:6]}********{lower[-4:]}。", 1)
    full_width = NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    masked, count = mask_resident_ids(f"證件{full_width}", POLICY)
    assert count == 1
    assert masked == f"證件{full_width[:6]}{'*' * 8}{full_width[-4:]}"
    assert may_hold_number(full_width.encode())


def test_the_mask_follows_the_policy() -> None:
    policy = Policy(mask_keep_head=3, mask_keep_tail=2, mask_char="#")
    assert mask_resident_ids(NUMBER, policy) == (NUMBER[:3] + "#" * 13 + NUMBER[-2:], 1)


def test_the_cheap_byte_test_never_misses_a_number() -> None:
    """``may_hold_number`` holds for any text that has something to mask, and not for
    ordinary text (CJK characters whose UTF-8 bytes look like full-width digits included)."""
    for text in (NUMBER, f"甲{NUMBER}乙", OTHER, f'{{"facts":"{NUMBER}"}}'):
        assert mask_resident_ids(text, POLICY)[1] == 1
        assert may_hold_number(text.encode())
    assert not may_hold_number("未按規定報送年度報告,罰款12.5萬元".encode())
    common = "".join(chr(c) for c in range(0x4E00, 0x9FA6))  # every CJK unified ideograph
    assert not may_hold_number(common.encode())
    assert not may_hold_number("，：（）".join(["１２３４５６７８"] * 5).encode())
    assert may_hold_number(("1234567８９０１２３４５６７" + "8").encode())


def test_only_free_text_columns_are_masked() -> None:
    """Identifiers with a format of their own (decision number, codes) are never touched."""
    row = {column: f"見{NUMBER}" for column in FREE_TEXT["credit_record"]}
    row["decision_number"] = NUMBER
    masked = mask_free_text("credit_record", row, POLICY)
    assert masked["decision_number"] == NUMBER
    assert all(masked[c] == f"見{MASKED}" for c in FREE_TEXT["credit_record"])
    assert numbers_in_free_text("credit_record", row) == [
        (c, 1) for c in FREE_TEXT["credit_record"]
    ]
    assert numbers_in_free_text("credit_record", {"facts": "無", "remarks": None}) == []


def _row(object_type: str) -> dict[str, Any]:
    """A row as the public queries return it (organisation subject), with a number in each
    of its free-text columns and its status that of a withdrawn item."""
    common = {
        "id": uuid.uuid4(), "subject_id": uuid.uuid4(), "log_index": 7, "under_objection": True,
        "subject_kind": "vc_firm", "subject_name": "西寧創新投資有限公司",
        "subject_credit_code": "91630100MA752LKX1M", "subject_legal_representative": "王五",
        "subject_document_type": None, "subject_document_cipher": None,
        "subject_birth_date_cipher": None,
    }
    if object_type == "credit_record":
        common.update({
            "record_kind": "penalty", "grade": "general", "decision_number": "寧發改罰〔2026〕1號",
            "penalty_types": ["fine"], "fine_amount": Decimal("12.5"), "confiscation_amount": None,
            "decision_date": date(2026, 3, 2), "valid_until": None,
            "publicity_deadline": None, "authority_name": "西寧市發展和改革委員會",
            "authority_code": "11630100MB1234567J", "source_name": "西寧市發展和改革委員會",
            "source_code": "11630100MB1234567J", "publicity_start": date(2026, 3, 2),
            "publicity_end": None, "status": "revoked", "publication_ended_on": date(2026, 3, 3),
        })
    else:
        common.update({"listed_on": date(2026, 3, 2), "planned_removal_on": None,
                       "removed_on": date(2026, 3, 3)})
    return {**common, **{column: f"見{NUMBER}號" for column in FREE_TEXT[object_type]}}


def test_every_public_item_masks_every_free_text_column() -> None:
    """Whatever free-text column a public item shows (feed, page, exports, withdrawals), it
    shows it through the masking."""
    subjects = SubjectView(SimpleNamespace(policy=POLICY), date(2026, 3, 4))  # type: ignore[arg-type] # only .policy is read for organisations
    record, entry = _row("credit_record"), _row("blacklist_entry")
    built = [
        record_values(record, subjects),  # type: ignore[arg-type] # a dict stands in for a row
        record_entry(record, subjects),  # type: ignore[arg-type]
        withdrawal_entry(record, "credit_record", POLICY),  # type: ignore[arg-type]
        listing_values(entry, subjects),  # type: ignore[arg-type]
        listing_entry(entry, subjects),  # type: ignore[arg-type]
        withdrawal_entry(entry, "blacklist_entry", POLICY),  # type: ignore[arg-type]
    ]
    text = json.dumps(built, ensure_ascii=False, default=str)
    assert NUMBER not in text
    assert MASKED in text
    assert text.count(MASKED) >= 7 + 1 + 7 + 2 + 2 + 1  # the columns the items show


# --- Through the API -----------------------------------------------------------------


def _with_numbers(subject_id: str, decision: str, **overrides: Any) -> dict[str, Any]:
    return penalty(
        subject_id,
        decision,
        facts=f"當事人(身份證號{NUMBER})代持份額,另涉{OTHER}",
        penalty_content=f"對{NUMBER}罰款人民幣十二萬五千元",
        remarks=f"聯繫人證件{OTHER}",
        **overrides,
    )


async def _create(client: Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/records", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_the_write_answer_says_what_will_be_masked(
    client: Client, regulator: dict[str, str]
) -> None:
    """Create and correct answer ``masked_on_publication``; the regulator reads the text as typed."""
    sid = await firm(client, regulator)
    plain = await record(client, regulator, sid, "寧發改罰〔2026〕70號")
    assert plain["masked_on_publication"] == []

    created = await _create(client, regulator, _with_numbers(sid, "寧發改罰〔2026〕71號"))
    assert created["masked_on_publication"] == [
        {"field": "facts", "count": 2},
        {"field": "penalty_content", "count": 1},
        {"field": "remarks", "count": 1},
    ]
    assert NUMBER in created["facts"]
    read = (await client.get(f"/v1/records/{created['id']}", headers=regulator)).json()
    assert read["facts"] == created["facts"]
    assert read["masked_on_publication"] == created["masked_on_publication"]

    corrected = await client.post(
        f"/v1/records/{plain['id']}/correct", headers=regulator,
        json={"version": plain["version"], "note": f"更正:當事人證件{NUMBER}",
              "legal_basis": f"依據{OTHER}號文件"})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["masked_on_publication"] == [
        {"field": "legal_basis", "count": 1},
        {"field": "correction_note", "count": 1},
    ]
    listed = (await client.get("/v1/records", headers=regulator)).json()["items"]
    by_id = {item["id"]: item for item in listed}
    assert by_id[created["id"]]["masked_on_publication"] == created["masked_on_publication"]


async def test_no_public_surface_shows_a_number_from_free_text(
    client: Client, regulator: dict[str, str], clock: ManualClock
) -> None:
    """Feed (JSON and Atom), page, detail page and every export show the numbers masked."""
    sid = await firm(client, regulator)
    rec = await _create(client, regulator, _with_numbers(sid, "寧發改罰〔2026〕72號",
                                                         grade="serious"))
    proposed = await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": f"拒不履行(責任人{NUMBER})",
        "legal_basis": f"國辦發〔2020〕49號;{OTHER}", "record_ids": [rec["id"]]})
    assert proposed.status_code == 201, proposed.text
    eid = proposed.json()["id"]
    assert (await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator,
                              json={"channel": "registered_mail"})).status_code == 200
    clock.advance(days=11)
    assert (await client.post(f"/v1/blacklist/{eid}/list", json={},
                              headers=regulator)).status_code == 200

    bodies = await surfaces(client)
    bodies["record detail"] = (await client.get(f"/public/records/{rec['id']}")).text
    bodies["listing detail"] = (await client.get(f"/public/blacklist/{eid}")).text
    for path, body in bodies.items():
        assert NUMBER not in body, path
        assert OTHER not in body, path
    for path in ("/public/feed.json", "/public/feed.atom", "/public/exports/penalties.csv",
                 "/public/exports/penalties.json", "/public/exports/blacklist.csv",
                 "/public/exports/blacklist.json", "record detail", "listing detail"):
        assert MASKED in bodies[path], path
        assert OTHER_MASKED in bodies[path], path


async def test_a_revocation_reason_is_withdrawn_masked(
    client: Client, regulator: dict[str, str]
) -> None:
    """The feed's withdrawal carries the reason, with its numbers masked."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕73號")
    revoked = await client.post(f"/v1/records/{rec['id']}/revoke", headers=regulator,
                                json={"version": rec["version"], "reason": f"誤將{NUMBER}記入"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["masked_on_publication"] == [{"field": "status_reason", "count": 1}]
    feed = (await client.get("/public/feed.json")).json()
    withdrawal = next(e for e in feed["entries"] if e["object"] == f"credit_record/{rec['id']}")
    assert withdrawal["event"] == "withdrawal"
    assert withdrawal["reason"] == f"誤將{MASKED}記入"
    assert NUMBER not in (await client.get("/public/feed.atom")).text


async def test_bureaus_see_numbers_in_free_text_masked(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """Profiles (built, then from the cache) and the change feed mask alike, and a replayed
    feed still equals the profile."""
    org = await organisation(client, regulator, 31)
    rec = await _create(client, regulator, _with_numbers(org, "寧罰〔2026〕74號"))
    corrected = await client.post(
        f"/v1/records/{rec['id']}/correct", headers=regulator,
        json={"version": rec["version"], "note": f"更正{OTHER}", "remarks": f"另見{NUMBER}"})
    assert corrected.status_code == 200, corrected.text

    for _ in range(2):  # built on the spot, then read from the profile cache
        response = await client.get(f"/v1/bureau/profiles/{credit_code(31)}", headers=bureau)
        assert response.status_code == 200, response.text
        assert NUMBER not in response.text
        assert OTHER not in response.text
        profile = response.json()
        (item,) = profile["records"]
        assert item["facts"] == f"當事人(身份證號{MASKED})代持份額,另涉{OTHER_MASKED}"
        assert item["remarks"] == f"另見{MASKED}"
        assert item["correction_note"] == f"更正{OTHER_MASKED}"
        assert item["decision_number"] == "寧罰〔2026〕74號"

    await wait_integrated(db)
    items, _ = await read_feed(client, bureau)
    for feed_item in items:
        text = str(feed_item)
        assert NUMBER not in text
        assert OTHER not in text
    replayed = replay(items)[org]
    assert normalised(replayed) == normalised(profile)


async def test_a_bureau_reads_its_objection_back_masked(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """What a bureau filed, and the regulator's answer to it, come back with numbers masked;
    the regulator reads them as typed."""
    org = await organisation(client, regulator, 32)
    rec = await _create(client, regulator, _with_numbers(org, "寧罰〔2026〕75號"))
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"],
        "grounds": f"委托人身份证号{NUMBER}有误"})
    assert filed.status_code == 201, filed.text
    objection_id = filed.json()["objection"]["id"]
    decided = await client.post(f"/v1/objections/{objection_id}/decide", headers=regulator,
                                json={"outcome": "rejected", "note": f"经核{OTHER}无误"})
    assert decided.status_code == 200, decided.text
    as_bureau = (await client.get(f"/v1/objections/{objection_id}", headers=bureau)).json()
    assert as_bureau["grounds"] == f"委托人身份证号{MASKED}有误"
    assert as_bureau["decision_note"] == f"经核{OTHER_MASKED}无误"
    as_regulator = (await client.get(f"/v1/objections/{objection_id}", headers=regulator)).json()
    assert as_regulator["grounds"] == f"委托人身份证号{NUMBER}有误"
