"""Text from clients: trimmed, NFC, no hidden characters, never blank (registry/text.py).

Unit tests of the cleaner first, then the same rules through the real app: every refusal
is a 422 naming the field and the code point, and nothing is written.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry import subjects
from registry.credit.common import clean
from registry.errors import InvalidInput
from registry.text import _SPACES, clean_query, clean_text, is_visible
from tests.credit_helpers import penalty, subject

Client = AsyncTestClient[Litestar]
FIRM = {"kind": "vc_firm", "name": "西寧創新投資有限公司", "credit_code": "91630100MA752LKX1M"}


def refused(value: str | None, field: str = "name", **kwargs: Any) -> InvalidInput:
    """Clean ``value`` expecting InvalidInput naming ``field``, with an accepted form."""
    with pytest.raises(InvalidInput) as info:
        clean_text(value, field, **kwargs)
    assert info.value.field == field
    assert info.value.accepted
    return info.value


# --- refused characters -------------------------------------------------------------

CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))] + [
    "\u200e", "\u200f", "\u061c",
]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
NONCHARACTERS = ["\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff"]
HIDING = ["\u206a", "\u206f", "\ufff9", "\ufffb", "\U000e0001", "\U000e0041", "\U000e007f"]


@pytest.mark.parametrize("char", CONTROLS + BIDI + SURROGATES + NONCHARACTERS + HIDING)
@pytest.mark.parametrize("multiline", [False, True])
def test_each_refused_character_is_named_by_code_point_and_position(
    char: str, multiline: bool
) -> None:
    """Inside text, in one-line and multi-line fields alike, the first offending character
    is named as U+XXXX with its 1-based position in the value as sent."""
    error = refused(f"  西寧{char}創投", "remarks", multiline=multiline)
    assert f"U+{ord(char):04X}" in error.reason
    assert "position 5" in error.reason


@pytest.mark.parametrize("char", ["\x00", "\u202e", "\ufeff\x00"])
def test_a_refused_character_at_either_end_is_not_trimmed_away(char: str) -> None:
    """Only whitespace and zero-width characters are trimmed: NUL or an override at the end
    is refused, not silently dropped."""
    assert "U+" in refused(f"西寧{char}").reason
    assert "U+" in refused(f"{char}西寧").reason


def test_the_reason_says_what_kind_of_character_it_is() -> None:
    """People read the reason: it names the character and why it is refused."""
    assert "RIGHT-TO-LEFT OVERRIDE" in refused("甲\u202e乙").reason
    assert "bidirectional" in refused("甲\u202e乙").reason
    assert "NULL" in refused("甲\x00乙").reason
    assert "control" in refused("甲\x00乙").reason
    assert "surrogate" in refused("甲\ud800乙").reason
    assert "noncharacter" in refused("甲\ufffe乙").reason


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\u2028", "\u2029"])
def test_one_line_fields_refuse_line_breaks_and_tabs_inside(char: str) -> None:
    """Names and other one-line fields take no line break or tab inside."""
    error = refused(f"西寧{char}創投")
    assert f"U+{ord(char):04X}" in error.reason
    assert "line break or tab" in error.reason


def test_multiline_fields_keep_tabs_and_store_every_line_break_as_lf() -> None:
    """CR LF, CR, U+2028 and U+2029 become LF; tabs stay; NUL is still refused."""
    assert clean_text("一\r\n二\r三\u2028四\u2029五\t六", "facts", multiline=True) == (
        "一\n二\n三\n四\n五\t六"
    )
    assert "U+0000" in refused("一\n\x00", "facts", multiline=True).reason


# --- trimming, NFC, what is kept ----------------------------------------------------


def test_nfc_composes_combining_sequences() -> None:
    """e + U+0301 is stored as the precomposed é; Hangul jamo compose to a syllable."""
    assert clean_text("Cafe\u0301", "name") == "Café"
    assert clean_text("\u1112\u1161\u11ab", "name") == "\ud55c"


@pytest.mark.parametrize(
    "name",
    [
        "西寧創新投資有限公司",  # traditional
        "西宁创新投资有限公司",  # simplified
        "青海高原創業投資管理（有限合夥）",  # full-width brackets stay full-width
        "ＡＢＣ創投１號",  # NFC, not NFKC: full-width letters and digits stay
        "寧發改罰〔2024〕1號",  # a decision number is a legal identifier: as typed
        "𠀋𪚲",  # CJK extension B characters
        "John O'Neil-Smith",
    ],
)
def test_cjk_and_latin_names_are_accepted_unchanged(name: str) -> None:
    """Chinese in either script, full-width forms and supplementary characters pass as typed."""
    assert clean_text(name, "name") == name


@pytest.mark.parametrize(
    "kept",
    [
        "葛\U000e0100城",  # an ideographic variation selector picks a glyph of a rare character
        "\ue000氏",  # private use: rare name characters are still typed from private fonts
        "甲\u200d乙",  # zero-width joiner inside
        "👨\u200d👩\u200d👧",  # joins emoji
        "甲\u00ad乙",  # soft hyphen
    ],
)
def test_invisible_characters_inside_visible_text_are_kept(kept: str) -> None:
    assert clean_text(kept, "name") == kept


def test_surrounding_whitespace_and_zero_width_characters_are_trimmed() -> None:
    assert clean_text(" \t西寧\u3000\n", "name") == "西寧"
    assert clean_text("\ufeff\u200b西寧\u200b\u2060", "name") == "西寧"
    assert clean_text("\u00a0西 寧\u202f", "name") == "西 寧"


def test_the_space_list_is_unicodes() -> None:
    """The trimmed spaces are exactly Unicode's Zs characters."""
    zs = {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"}
    assert set(_SPACES) == zs


def test_the_position_counts_trimmed_characters_too() -> None:
    """The position is in the value as sent, leading spaces included."""
    assert "position 4" in refused("\u3000 甲\x00").reason


# --- blank --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blank",
    [
        "",
        "   ",
        "\u3000",
        "\u200b",
        "\u200b\u200c\u200d\u2060\ufeff",
        "\u0301",  # a combining mark alone
        "\ufe0f",  # a variation selector alone
        " \u00ad ",  # soft hyphen
        "\u3164",  # Hangul filler, drawn as nothing
        "\u2800",  # braille blank
        "\u200b\u0301\u200b",
    ],
)
def test_text_without_a_visible_character_is_blank(blank: str) -> None:
    """Blank is refused whether or not the field is required: a field given is meant."""
    assert "blank" in refused(blank).reason
    assert "blank" in refused(blank, required=True).reason


def test_none_is_none_unless_required() -> None:
    assert clean_text(None, "remarks") is None
    assert refused(None, "facts", required=True).reason == "is required"


def test_max_length_counts_the_cleaned_text() -> None:
    assert clean_text("  甲乙  ", "name", max_length=2) == "甲乙"
    assert "3 characters" in refused("甲乙丙", max_length=2).reason


def test_visible_means_drawn_by_itself() -> None:
    assert is_visible("甲") and is_visible("A") and is_visible("-") and is_visible("\ue000")
    assert not is_visible(" ") and not is_visible("\u200b") and not is_visible("\u0301")


# --- properties ---------------------------------------------------------------------


def outcome(value: str) -> str | InvalidInput:
    """The cleaned text, or the refusal."""
    try:
        return clean_text(value, "name", required=True)
    except InvalidInput as error:
        return error


@given(st.text())
def test_cleaning_any_text_refuses_or_yields_stable_nfc(value: str) -> None:
    """Any text: refused naming the field, or clean NFC text that cleans to itself."""
    cleaned = outcome(value)
    if isinstance(cleaned, InvalidInput):
        assert cleaned.field == "name"
        return
    assert unicodedata.is_normalized("NFC", cleaned)
    assert any(is_visible(c) for c in cleaned)
    assert cleaned == cleaned.strip()
    assert clean_text(cleaned, "name") == cleaned


# Unassigned code points (Cn) are left out: the noncharacters among them are refused.
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp", "Cn"))))
def test_nfc_text_of_ordinary_characters_is_kept_but_for_the_ends(value: str) -> None:
    """Text of letters, marks, symbols and spaces is only trimmed and composed."""
    cleaned = outcome(value)
    if isinstance(cleaned, InvalidInput):
        assert "blank" in cleaned.reason
        return
    assert cleaned == unicodedata.normalize("NFC", value.strip(_SPACES))


# --- search text --------------------------------------------------------------------


def test_queries_are_trimmed_composed_and_may_be_short() -> None:
    assert clean_query(None, "q") is None
    assert clean_query("", "q") is None
    assert clean_query(" \u200b ", "q") is None
    assert clean_query(" 西 ", "q") == "西"
    assert clean_query("Cafe\u0301", "q") == "Café"


@pytest.mark.parametrize("char", ["\x00", "\n", "\u202e", "\u2066", "\ufffe"])
def test_queries_refuse_control_and_bidi_characters(char: str) -> None:
    with pytest.raises(InvalidInput) as info:
        clean_query(f"西{char}寧", "name_prefix")
    assert info.value.field == "name_prefix"
    assert f"U+{ord(char):04X}" in info.value.reason


# --- the old cleaners delegate ------------------------------------------------------


def test_the_credit_cleaner_knows_which_fields_are_multi_line() -> None:
    """Facts, grounds, notes and reasons keep line breaks; numbers and names are one line."""
    for field in ("facts", "legal_basis", "penalty_content", "remarks", "note", "reason",
                  "grounds", "criterion"):
        assert clean("一\r\n二", field) == "一\n二"
    for field in ("decision_number", "violation_type", "licence_name", "source_name"):
        with pytest.raises(InvalidInput) as info:
            clean("一\n二", field)
        assert info.value.field == field
    assert clean(None, "remarks") is None
    with pytest.raises(InvalidInput):
        clean(None, "facts", required=True)
    with pytest.raises(InvalidInput, match="U\\+202E"):
        clean("甲\u202e", "facts")


def test_the_subject_cleaner_is_the_one_line_cleaner() -> None:
    assert subjects._clean(" Cafe\u0301 ", "name") == "Café"
    assert subjects._clean(None, "registered_region") is None
    with pytest.raises(InvalidInput) as info:
        subjects._clean("\u200b", "legal_representative")
    assert info.value.field == "legal_representative"


# --- through the app ----------------------------------------------------------------


async def counts(db: asyncpg.Pool) -> tuple[int, int]:
    """Subjects and log leaves: both unchanged after a refusal."""
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM subjects) AS s, (SELECT count(*) FROM tlog_leaves) AS l")
    assert row is not None
    return row["s"], row["l"]


async def refused_422(
    response: Any, field: str, code_point: str | None = None, *, statuses: tuple[int, ...] = (422,)
) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    assert "out of the range" not in body["detail"]
    if code_point is not None:
        assert code_point in body["reason"], body
    assert body["accepted"]
    return body


async def test_a_name_with_a_right_to_left_override_is_refused_and_nothing_written(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    before = await counts(db)
    response = await client.post(
        "/v1/subjects", headers=regulator, json={**FIRM, "name": "西寧\u202e司公限有"})
    await refused_422(response, "name", "U+202E")
    assert await counts(db) == before


async def test_a_name_of_only_zero_width_spaces_is_blank(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    before = await counts(db)
    response = await client.post(
        "/v1/subjects", headers=regulator, json={**FIRM, "name": "\u200b\u200b"})
    body = await refused_422(response, "name")
    assert "blank" in body["reason"]
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("name", {**FIRM, "name": "西寧\x00創投"}),
        ("registered_region", {**FIRM, "registered_region": "630104\x00"}),
        ("filing_number", {**FIRM, "filing_number": "P\x001"}),
        ("legal_representative", {**FIRM, "legal_representative": "張\x00三"}),
        ("credit_code", {**FIRM, "credit_code": "91630100MA752LKX\x00M"}),
        ("name", {"kind": "practitioner", "name": "李\x00四", "document_type": "resident_id",
                  "document_number": "630102199003071231"}),
        ("document_number", {"kind": "practitioner", "name": "李四", "document_type": "passport",
                             "document_number": "E1234\x005678", "birth_date": "1990-01-01"}),
    ],
)
async def test_nul_in_a_subject_field_is_a_422_naming_the_field(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, field: str, body: dict[str, Any]
) -> None:
    """Not a 500, not the database's vague out-of-range answer: the field and U+0000."""
    before = await counts(db)
    response = await client.post("/v1/subjects", headers=regulator, json=body)
    await refused_422(response, field, "U+0000")
    assert await counts(db) == before


async def test_a_rename_is_cleaned_like_a_new_name(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    created = (await client.post("/v1/subjects", headers=regulator, json=FIRM)).json()
    url = f"/v1/subjects/{created['id']}"
    bad = await client.patch(url, headers=regulator, json={"version": 1, "name": "甲\u2067乙"})
    await refused_422(bad, "name", "U+2067")
    ok = await client.patch(url, headers=regulator, json={"version": 1, "name": " Cafe\u0301 "})
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Café"
    assert await db.fetchval("SELECT name FROM subjects WHERE id = $1", ok.json()["id"]) == (
        "Caf\u00e9")


async def test_a_decomposed_name_is_stored_composed_and_found_by_either_form(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    created = await client.post("/v1/subjects", headers=regulator,
                                json={**FIRM, "name": "Cafe\u0301 Capital"})
    assert created.status_code == 201, created.text
    stored = await db.fetchval("SELECT name FROM subjects")
    assert stored == "Caf\u00e9 Capital"
    for prefix in ("Cafe\u0301", "Caf\u00e9", " Caf"):
        page = await client.get("/v1/subjects", headers=regulator, params={"name_prefix": prefix})
        assert page.status_code == 200, page.text
        assert [s["id"] for s in page.json()["items"]] == [created.json()["id"]]


async def test_a_search_prefix_with_nul_or_an_override_is_refused(
    client: Client, regulator: dict[str, str]
) -> None:
    # A control character in any query parameter may be refused earlier, by the request
    # screen (registry/api/body_guard.py: 400 naming the parameter); either way it is named.
    for char in ("\x00", "\u202e", "\u2066"):
        response = await client.get(
            "/v1/subjects", headers=regulator, params={"name_prefix": f"西{char}"})
        await refused_422(response, "name_prefix", f"U+{ord(char):04X}", statuses=(400, 422))
    bidi = await client.get("/v1/subjects", headers=regulator, params={"name_prefix": "\u202e西"})
    await refused_422(bidi, "name_prefix", "U+202E")


async def test_a_full_width_lower_case_credit_code_is_stored_canonical(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Ｆｕｌｌ-width, lower case, surrounded by an ideographic space: one code, stored once."""
    typed = "\u3000９１６３０１００ｍａ７５２ｌｋｘ１ｍ "
    created = await client.post(
        "/v1/subjects", headers=regulator, json={**FIRM, "credit_code": typed})
    assert created.status_code == 201, created.text
    assert created.json()["credit_code"] == FIRM["credit_code"]
    assert await db.fetchval("SELECT credit_code FROM subjects") == FIRM["credit_code"]
    again = await client.post("/v1/subjects", headers=regulator,
                              json={**FIRM, "kind": "vc_manager", "credit_code": "91630100ma752lkx1m"})
    assert again.status_code == 409
    assert again.json()["field"] == "credit_code"


async def test_a_zero_width_space_inside_a_credit_code_is_named(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    before = await counts(db)
    response = await client.post(
        "/v1/subjects", headers=regulator,
        json={**FIRM, "credit_code": "91630100\u200bMA752LKX1M"})
    body = await refused_422(response, "credit_code", "U+200B")
    assert "position 9" in body["reason"]
    assert await counts(db) == before


async def test_a_full_width_resident_id_with_a_small_x_is_found_in_canonical_form(
    client: Client, regulator: dict[str, str]
) -> None:
    number = "11010519491231002X"
    typed = "１１０１０５１９４９１２３１００２ｘ"
    created = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "王五", "document_type": "ＲＥＳＩＤＥＮＴ_ID",
        "document_number": typed})
    assert created.status_code == 201, created.text
    assert created.json()["document_number"] == number
    assert created.json()["document_type"] == "resident_id"
    found = await client.post("/v1/subjects/lookup", headers=regulator,
                              json={"document_type": "resident_id", "document_number": number})
    assert found.status_code == 200, found.text
    assert found.json()["id"] == created.json()["id"]


async def test_an_affiliation_role_is_cleaned(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    firm = (await client.post("/v1/subjects", headers=regulator, json=FIRM)).json()
    person = (await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "李四", "document_type": "resident_id",
        "document_number": "630102199003071231"})).json()
    url = f"/v1/subjects/{person['id']}/affiliations"
    before = await counts(db)
    bad = await client.post(url, headers=regulator, json={
        "organisation_id": firm["id"], "role": "投資\x00經理", "valid_from": "2020-01-01"})
    await refused_422(bad, "role", "U+0000")
    assert await counts(db) == before
    ok = await client.post(url, headers=regulator, json={
        "organisation_id": firm["id"], "role": " 投資經理\u200b", "valid_from": "2020-01-01"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["affiliation"]["role"] == "投資經理"


async def test_credit_record_text_goes_through_the_cleaner(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Facts keep their lines (CR LF stored as LF); NUL or an override is named, not stored."""
    sid = await subject(client, regulator)
    records_before = await db.fetchval("SELECT count(*) FROM credit_records")
    nul = await client.post("/v1/records", headers=regulator,
                            json=penalty(sid, facts="未按規定\x00報送"))
    await refused_422(nul, "facts", "U+0000")
    bidi = await client.post("/v1/records", headers=regulator,
                             json=penalty(sid, decision_number="寧發改罰〔2026〕\u202e1號"))
    await refused_422(bidi, "decision_number", "U+202E")
    assert await db.fetchval("SELECT count(*) FROM credit_records") == records_before
    ok = await client.post("/v1/records", headers=regulator,
                           json=penalty(sid, facts="一、未報送年度報告；\r\n二、未備案。"))
    assert ok.status_code == 201, ok.text
    assert ok.json()["facts"] == "一、未報送年度報告；\n二、未備案。"


async def test_token_and_authority_names_are_cleaned(
    client: Client, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    leaves = await db.fetchval("SELECT count(*) FROM tlog_leaves")
    token = await client.post("/v1/admin/tokens", headers=admin,
                              json={"role": "bureau", "name": "征信\x00甲"})
    await refused_422(token, "name", "U+0000")
    token = await client.post("/v1/admin/tokens", headers=admin,
                              json={"role": "bureau", "name": "\u200b"})
    await refused_422(token, "name")
    authority = await client.post("/v1/admin/authorities", headers=admin,
                                  json={"code": "11630100MB0000000T", "name": "機關\u202e"})
    await refused_422(authority, "name", "U+202E")
    code = await client.post("/v1/admin/tokens", headers=admin, json={
        "role": "regulator", "name": "desk", "authority_code": "11630100MB\x000000000T"})
    await refused_422(code, "authority_code", "U+0000")
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == leaves
    named = await client.post("/v1/admin/tokens", headers=admin,
                              json={"role": "bureau", "name": " Cafe\u0301 征信 "})
    assert named.status_code == 201, named.text
    assert named.json()["info"]["name"] == "Café 征信"
