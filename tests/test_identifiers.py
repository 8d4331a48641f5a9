"""USCC and document-number validation, and masking: examples, rejections, properties."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from registry.errors import InvalidInput
from registry.identifiers import (
    USCC_ALPHABET,
    DocumentType,
    birth_date_of_resident_id,
    is_minor,
    mask_document_number,
    normalise_identifier,
    resident_id_check_character,
    uscc_check_character,
    validate_credit_code,
    validate_document,
    validate_resident_id,
)

TODAY = date(2025, 6, 1)
DIGITS = "0123456789"


def with_id_check(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def with_uscc_check(first17: str) -> str:
    return first17 + uscc_check_character(first17)


def rejected(func: object, *args: object, **kwargs: object) -> InvalidInput:
    """Call ``func`` expecting InvalidInput with a reason and an accepted form."""
    assert callable(func)
    with pytest.raises(InvalidInput) as info:
        func(*args, **kwargs)
    error = info.value
    assert error.reason
    assert error.accepted
    return error


# --- USCC -------------------------------------------------------------------------


def test_uscc_alphabet_has_31_symbols_without_i_o_s_v_z() -> None:
    """The alphabet is the digits and the capitals except I, O, S, V, Z."""
    assert len(USCC_ALPHABET) == 31
    assert len(set(USCC_ALPHABET)) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


def test_uscc_check_character_hand_computed() -> None:
    """91350100M000100Y4 → 3, computed by hand.

    values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4, weights 1 3 9 27 19 26 16 17 20 29
    25 13 8 24 10 30 28: 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28;
    31 − 28 = 3 → "3".
    """
    assert uscc_check_character("91350100M000100Y4") == "3"


def test_uscc_check_character_31_becomes_0() -> None:
    """A sum divisible by 31 gives c = 31, written as the alphabet's 0th symbol."""
    assert uscc_check_character("0" * 17) == "0"


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L"])
def test_known_credit_codes_are_valid(code: str) -> None:
    """Published codes pass unchanged."""
    assert validate_credit_code(code) == code


@pytest.mark.parametrize(
    "raw",
    [" 91350100m000100y43\n", "９１３５０１００Ｍ０００１００Ｙ４３", "\t91350100M000100Y43 "],
)
def test_credit_code_is_normalised(raw: str) -> None:
    """Surrounding whitespace, lower case and full-width characters are normalised."""
    assert validate_credit_code(raw) == "91350100M000100Y43"


@pytest.mark.parametrize("bad", ["", "913501", "91350100M000100Y4", "91350100M000100Y433"])
def test_credit_code_of_wrong_length_is_rejected(bad: str) -> None:
    """The reason states the length found."""
    error = rejected(validate_credit_code, bad)
    assert error.field == "credit_code"
    assert f"got {len(bad)}" in error.reason


@pytest.mark.parametrize(("position", "char"), [(3, "I"), (9, "O"), (17, "Z"), (1, "-")])
def test_credit_code_character_outside_alphabet_is_named(position: int, char: str) -> None:
    """The reason names the offending character and its 1-based position."""
    code = "91350100M000100Y43"
    bad = code[: position - 1] + char + code[position:]
    error = rejected(validate_credit_code, bad, field="manager_code")
    assert error.field == "manager_code"
    assert f"'{char}'" in error.reason
    assert f"position {position}" in error.reason


def test_credit_code_unprintable_character_is_shown_as_code_point() -> None:
    """A control character in the middle is named by its code point."""
    error = rejected(validate_credit_code, "9135010\x000M000100Y43"[:18])
    assert "U+0000" in error.reason
    assert "position 8" in error.reason


def test_credit_code_wrong_check_character_does_not_reveal_the_right_one() -> None:
    """A wrong check character is rejected without naming the expected one."""
    error = rejected(validate_credit_code, "91350100M000100Y44")
    assert error.field == "credit_code"
    assert "check character" in error.reason
    assert "'3'" not in error.reason
    assert "91350100M000100Y43" not in str(error)


@pytest.mark.parametrize("bad", ["", "1234", "91350100M000100YI", "91350100m000100y4"])
def test_uscc_check_character_needs_17_alphabet_characters(bad: str) -> None:
    """The helper takes normalised input only."""
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_character(bad)


uscc_first17 = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(uscc_first17)
def test_every_generated_credit_code_is_valid(first17: str) -> None:
    """17 random alphabet characters plus the computed check character always pass."""
    code = with_uscc_check(first17)
    assert validate_credit_code(code) == code


replacement_chars = st.one_of(
    st.sampled_from(USCC_ALPHABET + "IOSVZ" + USCC_ALPHABET.lower() + " -*/"),
    st.characters(),
)


@given(uscc_first17, st.integers(0, 17), replacement_chars)
def test_any_single_character_change_breaks_a_credit_code(
    first17: str, index: int, char: str
) -> None:
    """Changing one character to anything that does not normalise back is rejected."""
    code = with_uscc_check(first17)
    mutated = code[:index] + char + code[index + 1 :]
    assume(normalise_identifier(mutated) != code)
    assert rejected(validate_credit_code, mutated).field == "credit_code"


# --- Resident ID ------------------------------------------------------------------


def test_resident_id_check_character_hand_computed() -> None:
    """11010519491231002 → X (the GB 11643-1999 example), computed by hand.

    7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2 → "10X98765432"[2] = X.
    """
    assert resident_id_check_character("11010519491231002") == "X"


@pytest.mark.parametrize("bad", ["", "1101051949123100", "1101051949123100X", "110105194912310021"])
def test_resident_id_check_character_needs_17_digits(bad: str) -> None:
    """The helper takes exactly 17 ASCII digits."""
    with pytest.raises(ValueError, match="17 ASCII digits"):
        resident_id_check_character(bad)


@pytest.mark.parametrize(
    "raw", ["11010519491231002X", "11010519491231002x", " 11010519491231002X "]
)
def test_known_resident_id_is_valid_and_normalised(raw: str) -> None:
    """The standard's example passes; a lower-case x becomes X."""
    assert validate_resident_id(raw, today=TODAY) == "11010519491231002X"


def test_resident_id_born_today_is_valid() -> None:
    """The birth date may be today."""
    number = with_id_check("630102" + TODAY.strftime("%Y%m%d") + "123")
    assert validate_resident_id(number, today=TODAY) == number


def _reject_id(number: str, **kwargs: object) -> InvalidInput:
    error = rejected(validate_resident_id, number, today=TODAY, **kwargs)
    assert error.field == kwargs.get("field", "document_number")
    # Personal data never goes into an error message.
    assert number not in str(error)
    assert number[6:14] not in str(error)
    return error


@pytest.mark.parametrize("bad", ["", "1101051949123100", "11010519491231002X1"])
def test_resident_id_of_wrong_length_is_rejected(bad: str) -> None:
    """The reason says 18 characters and what was found."""
    error = rejected(validate_resident_id, bad, today=TODAY)
    assert "18 characters" in error.reason
    assert f"got {len(bad)}" in error.reason


def test_resident_id_letter_in_body_is_named() -> None:
    """A non-digit before position 18 is named with its position."""
    error = _reject_id("1101A519491231002X")
    assert "'A'" in error.reason
    assert "position 5" in error.reason


def test_resident_id_bad_last_character_is_named() -> None:
    """The last character is a digit or X only."""
    error = _reject_id("11010519491231002Y")
    assert "position 18" in error.reason


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_resident_id_with_hmt_prefix_points_to_the_permit_type(prefix: str) -> None:
    """81/82/83 numbers are residence permits, a separate document type."""
    error = _reject_id(with_id_check(prefix + "19900101123"))
    assert "hmt_residence_permit" in error.reason


@pytest.mark.parametrize("first", ["0", "9"])
def test_resident_id_address_code_must_start_with_1_to_8(first: str) -> None:
    """Address codes start with 1–8."""
    error = _reject_id(with_id_check(first + "1010519900101123"))
    assert "address code" in error.reason


@pytest.mark.parametrize("birth", ["19900230", "19901301", "19900001", "20230229"])
def test_resident_id_birth_date_must_be_real(birth: str) -> None:
    """Positions 7–14 must be a calendar date."""
    error = _reject_id(with_id_check("630102" + birth + "123"))
    assert "real date" in error.reason


def test_resident_id_birth_before_1900_is_rejected() -> None:
    """1899 and earlier are rejected (the standard's own 1880 example among them)."""
    error = _reject_id("440524188001010014")
    assert "1900" in error.reason


def test_resident_id_birth_in_the_future_is_rejected() -> None:
    """A birth date after ``today`` is rejected."""
    error = _reject_id(with_id_check("630102" + "20250602" + "123"))
    assert "future" in error.reason


def test_resident_id_wrong_check_character_is_rejected() -> None:
    """A wrong check character is rejected without naming the expected one."""
    error = _reject_id("110105194912310021", field="legal_rep_id")
    assert "check character" in error.reason


def test_resident_id_default_today_is_the_real_clock() -> None:
    """Without ``today`` the clock is read; a 1990 birth is in the past."""
    assert validate_resident_id("11010519491231002X") == "11010519491231002X"


resident_first17 = st.builds(
    lambda area, born, seq: area + born.strftime("%Y%m%d") + seq,
    st.sampled_from("1234567").flatmap(
        lambda first: st.text(DIGITS, min_size=5, max_size=5).map(lambda rest: first + rest)
    ),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.text(DIGITS, min_size=3, max_size=3),
)


@given(resident_first17)
def test_every_generated_resident_id_is_valid(first17: str) -> None:
    """Valid area, date and sequence plus the computed check character always pass."""
    number = with_id_check(first17)
    assert validate_resident_id(number, today=TODAY) == number
    assert birth_date_of_resident_id(number).strftime("%Y%m%d") == first17[6:14]


@given(
    resident_first17,
    st.integers(0, 17),
    st.one_of(st.sampled_from(DIGITS + "Xx -*"), st.characters()),
)
def test_any_single_character_change_breaks_a_resident_id(
    first17: str, index: int, char: str
) -> None:
    """Changing one character to anything that does not normalise back is rejected."""
    number = with_id_check(first17)
    mutated = number[:index] + char + number[index + 1 :]
    assume(normalise_identifier(mutated) != number)
    assert rejected(validate_resident_id, mutated, today=TODAY).field == "document_number"


def test_birth_date_of_resident_id() -> None:
    """The date in positions 7–14."""
    assert birth_date_of_resident_id("11010519491231002X") == date(1949, 12, 31)


def test_birth_date_of_resident_id_reads_hmt_permits() -> None:
    """Residence permits share the layout, so their birth date is read too."""
    assert birth_date_of_resident_id(with_id_check("81000020010203123")) == date(2001, 2, 3)


def test_birth_date_of_resident_id_rejects_a_bad_check_character() -> None:
    """The number is checked before its date is trusted."""
    assert rejected(birth_date_of_resident_id, "110105194912310021").field == "document_number"


@pytest.mark.parametrize(
    ("born", "on", "minor"),
    [
        ("20070601", date(2025, 5, 31), True),  # the day before the 18th birthday
        ("20070601", date(2025, 6, 1), False),  # the 18th birthday
        ("20080229", date(2026, 2, 28), True),  # 29 February: not yet 18 on 28 February
        ("20080229", date(2026, 3, 1), False),  # … and 18 on 1 March
        ("20080229", date(2028, 2, 29), False),
        ("19491231", date(2025, 1, 1), False),
        ("20250101", date(2025, 1, 1), True),  # born that very day
    ],
)
def test_is_minor(born: str, on: date, minor: bool) -> None:
    """Under 18 means before the 18th birthday."""
    assert is_minor(with_id_check("630102" + born + "123"), on) is minor


def test_is_minor_rejects_birth_after_the_date() -> None:
    """Asking about a date before the birth is an error, not an answer."""
    error = rejected(is_minor, with_id_check("63010220250102123"), date(2025, 1, 1))
    assert error.field == "document_number"


# --- Document types ---------------------------------------------------------------


HMT_PERMIT = with_id_check("81000019900101123")
FOREIGN_NEW = with_id_check("93115619900101123")


@pytest.mark.parametrize(
    ("doc_type", "number", "expected"),
    [
        ("resident_id", "11010519491231002x", "11010519491231002X"),
        ("passport", " e12345678 ", "E12345678"),
        ("passport", "AB123", "AB123"),
        ("passport", "A" * 17, "A" * 17),
        ("hk_macao_permit", "h12345678", "H12345678"),
        ("hk_macao_permit", "M1234567890", "M1234567890"),
        ("taiwan_permit", "12345678", "12345678"),
        ("taiwan_permit", "1234567890", "1234567890"),
        ("hmt_residence_permit", HMT_PERMIT, HMT_PERMIT),
        ("hmt_residence_permit", with_id_check("83000019900101123"), None),
        ("foreign_permanent_residence", FOREIGN_NEW, FOREIGN_NEW),
        ("foreign_permanent_residence", "usa123456789012", "USA123456789012"),
        ("other", "ab-12", "AB-12"),
        ("other", "X" * 40, "X" * 40),
        (" PASSPORT ", "E12345678", "E12345678"),
    ],
)
def test_valid_documents_are_normalised(doc_type: str, number: str, expected: str | None) -> None:
    """Each type accepts its form and returns it normalised."""
    kind, value = validate_document(doc_type, number, today=TODAY)
    assert kind == doc_type.strip().lower()
    assert value == (expected if expected is not None else number)


@pytest.mark.parametrize(
    ("doc_type", "number"),
    [
        ("resident_id", "11010519491231002"),
        ("resident_id", HMT_PERMIT),
        ("passport", "E123"),
        ("passport", "E" * 18),
        ("passport", "E1234-678"),
        ("passport", ""),
        ("hk_macao_permit", "C12345678"),
        ("hk_macao_permit", "H123456789"),
        ("hk_macao_permit", "12345678"),
        ("taiwan_permit", "123456789"),
        ("taiwan_permit", "T12345678"),
        ("hmt_residence_permit", "11010519491231002X"),
        ("hmt_residence_permit", HMT_PERMIT[:17] + ("0" if HMT_PERMIT[17] != "0" else "1")),
        ("hmt_residence_permit", with_id_check("81000019000230123")),
        ("foreign_permanent_residence", "11010519491231002X"),
        (
            "foreign_permanent_residence",
            FOREIGN_NEW[:17] + ("0" if FOREIGN_NEW[17] != "0" else "1"),
        ),
        ("foreign_permanent_residence", "US1234567890123"),
        ("foreign_permanent_residence", "USA12345678901"),
        ("other", ""),
        ("other", "A" * 41),
        ("other", "AB_12"),
        ("other", "证件123"),
    ],
)
def test_invalid_document_numbers_are_rejected(doc_type: str, number: str) -> None:
    """Each type rejects what is not its form, naming document_number."""
    error = rejected(validate_document, doc_type, number, today=TODAY)
    assert error.field == "document_number"


MINOR_RESIDENT_ID = with_id_check("63010220150505123")


@pytest.mark.parametrize("number", ["11010519491231002X", MINOR_RESIDENT_ID, " 11010519491231002x "])
def test_a_resident_id_under_another_type_is_refused(number: str) -> None:
    """A valid resident ID number is recorded as resident_id only: under 'other' it is refused,
    naming document_number and the type to use, without echoing the number or birth date."""
    error = rejected(validate_document, "other", number, today=TODAY)
    assert error.field == "document_number"
    assert "resident_id" in error.reason
    normalised = normalise_identifier(number)
    message = f"{error.reason} {error.accepted}"
    assert normalised not in message
    assert normalised[6:14] not in message


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002",  # 17 characters
        "110105194912310021",  # the check character is X
        with_id_check("81000019900101123"),  # an HMT permit's layout, not a resident ID
        with_id_check("63010220300101123"),  # born after today: not a valid resident ID
    ],
)
def test_other_accepts_what_is_not_a_valid_resident_id(number: str) -> None:
    """Only numbers that pass the resident-ID check are refused under 'other'."""
    assert validate_document("other", number, today=TODAY) == (DocumentType.OTHER, number)


@given(
    address=st.text(DIGITS, min_size=6, max_size=6),
    born=st.dates(date(1890, 1, 1), date(2030, 12, 31)),
    sequence=st.text(DIGITS, min_size=3, max_size=3),
)
def test_other_refuses_exactly_the_valid_resident_ids(address: str, born: date, sequence: str) -> None:
    """For any 18-character GB 11643-shaped number (any address code, births before 1900 and
    after today among them): refused under 'other' iff resident_id takes it."""
    number = with_id_check(f"{address}{born:%Y%m%d}{sequence}")
    try:
        validate_resident_id(number, today=TODAY)
    except InvalidInput:
        assert validate_document("other", number, today=TODAY)[1] == number
    else:
        assert rejected(validate_document, "other", number, today=TODAY).field == "document_number"


def test_gb11643_types_keep_their_own_layouts() -> None:
    """HMT residence permits and 18-digit foreign permanent residence cards are GB 11643
    numbers by their own layout and stay accepted under their types."""
    assert validate_document("hmt_residence_permit", HMT_PERMIT, today=TODAY)[1] == HMT_PERMIT
    assert validate_document("foreign_permanent_residence", FOREIGN_NEW)[1] == FOREIGN_NEW


@pytest.mark.parametrize("doc_type", ["", "id_card", "resident id", "身份證"])
def test_unknown_document_type_lists_the_accepted_ones(doc_type: str) -> None:
    """An unknown type names document_type and lists every accepted type."""
    error = rejected(validate_document, doc_type, "E12345678")
    assert error.field == "document_type"
    assert error.accepted is not None
    for kind in DocumentType:
        assert kind.value in error.accepted


def test_document_type_values_and_labels() -> None:
    """The stored values are stable snake_case names; each has a Chinese label."""
    assert [t.value for t in DocumentType] == [
        "resident_id",
        "passport",
        "hk_macao_permit",
        "taiwan_permit",
        "hmt_residence_permit",
        "foreign_permanent_residence",
        "other",
    ]
    # People read their names from the one labels module (Simplified Chinese).
    from registry.publish.labels import DOCUMENT_TYPE_NAMES

    assert DOCUMENT_TYPE_NAMES[DocumentType.RESIDENT_ID] == "居民身份证"
    assert set(DOCUMENT_TYPE_NAMES) == set(DocumentType)


# --- Masking ----------------------------------------------------------------------


def test_mask_keeps_region_and_last_four() -> None:
    """The DOMAIN.md example."""
    assert mask_document_number("63010219900101123X") == "630102********123X"


@pytest.mark.parametrize(
    ("number", "kwargs", "masked"),
    [
        ("", {}, ""),
        ("A", {}, "*"),
        ("AB", {}, "*B"),
        ("ABCD", {}, "A**D"),
        ("ABCDEFGHIJ", {}, "ABC*****IJ"),
        ("ABCDEFGHIJK", {}, "ABCDEF*HIJK"),
        ("E12345678", {"keep_head": 1, "keep_tail": 2}, "E******78"),
        ("E12345678", {"keep_head": 0, "keep_tail": 0, "mask_char": "#"}, "#########"),
        ("ABCDEF", {"keep_head": 6, "keep_tail": 0}, "ABC***"),
        ("ABCDEF", {"keep_head": 0, "keep_tail": 6}, "***DEF"),
    ],
)
def test_mask_examples(number: str, kwargs: dict[str, object], masked: str) -> None:
    """Long values keep head and tail; short ones keep at most half."""
    assert mask_document_number(number, **kwargs) == masked  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"keep_head": -1}, {"keep_tail": -1}, {"mask_char": ""}, {"mask_char": "**"}],
)
def test_mask_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    """Negative counts and a mask that is not one character are programming errors."""
    with pytest.raises(ValueError, match="must"):
        mask_document_number("63010219900101123X", **kwargs)  # type: ignore[arg-type]


@given(
    st.text(alphabet=st.characters(blacklist_characters="*"), max_size=60),
    st.integers(0, 12),
    st.integers(0, 12),
)
def test_mask_never_reveals_too_much(number: str, head: int, tail: int) -> None:
    """Length is kept, at most head+tail are shown, short values hide at least half."""
    masked = mask_document_number(number, head, tail)
    assert len(masked) == len(number)
    hidden = masked.count("*")
    shown = len(number) - hidden
    assert shown <= head + tail
    if len(number) <= head + tail:
        assert 2 * hidden >= len(number)
    else:
        assert hidden == len(number) - head - tail
    if number:
        assert hidden >= 1
    # What is shown is the value's own head and tail, in place.
    first = masked.find("*")
    if first >= 0:
        shown_head = first
        assert masked[:shown_head] == number[:shown_head]
        assert masked[shown_head : shown_head + hidden] == "*" * hidden
        assert masked[shown_head + hidden :] == number[shown_head + hidden :]
        assert shown_head <= head
        assert len(number) - shown_head - hidden <= tail


# --- Canonical forms of typed identifiers (issue 15) ------------------------------


FULL_WIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ－",
)


@given(uscc_first17, st.booleans(), st.booleans(), st.sampled_from(["", " ", "\u3000", "\t"]))
def test_any_typed_form_of_a_credit_code_gives_the_canonical_code(
    first17: str, full_width: bool, lower: bool, space: str
) -> None:
    """Full-width, lower-case and surrounded by spaces (ideographic too): one canonical code."""
    code = with_uscc_check(first17)
    typed = code.lower() if lower else code
    typed = typed.translate(FULL_WIDTH) if full_width else typed
    assert validate_credit_code(f"{space}{typed}{space}") == code


@pytest.mark.parametrize(
    ("doc_type", "typed", "canonical"),
    [
        ("resident_id", "１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"),
        ("resident_id", "\u300011010519491231002x\u3000", "11010519491231002X"),
        ("passport", "ｅ１２３４５６７８", "E12345678"),
        ("hk_macao_permit", "ｈ１２３４５６７８", "H12345678"),
        ("other", "ａｂ－１２", "AB-12"),
    ],
)
def test_full_width_and_lower_case_document_numbers_are_canonical(
    doc_type: str, typed: str, canonical: str
) -> None:
    assert validate_document(doc_type, typed, today=TODAY)[1] == canonical


@pytest.mark.parametrize("typed", ["ＲＥＳＩＤＥＮＴ_ＩＤ", " Resident_Id ", "resident＿id"])
def test_document_type_names_are_read_in_any_width_and_case(typed: str) -> None:
    assert validate_document(typed, "11010519491231002X", today=TODAY)[0] is DocumentType.RESIDENT_ID


@pytest.mark.parametrize(
    ("char", "position"),
    [("\u200b", 9), ("\u202e", 1), ("\ufeff", 18), ("\u0301", 5), (" ", 9), ("\u3000", 9)],
)
def test_invisible_characters_inside_a_credit_code_are_named_not_dropped(
    char: str, position: int
) -> None:
    """A space or invisible character inside is refused by code point and position, even when
    it makes the length wrong: the caller is told what to remove."""
    code = "91350100M000100Y43"
    typed = code[: position - 1] + char + code[position - 1 :]
    error = rejected(validate_credit_code, typed)
    expected = " " if char in (" ", "\u3000") else char  # NFKC makes U+3000 a space
    assert f"U+{ord(expected):04X} at position {position}" in error.reason


@pytest.mark.parametrize("char", ["\x00", "\u200b", "\u202e", " "])
def test_invisible_characters_inside_a_document_number_are_named(char: str) -> None:
    number = "11010519491231002X"
    typed = number[:9] + char + number[9:]
    for doc_type in ("resident_id", "passport", "other"):
        error = rejected(validate_document, doc_type, typed, today=TODAY)
        assert error.field == "document_number"
        assert f"U+{ord(char):04X} at position 10" in error.reason
        assert number not in str(error) and number[6:14] not in str(error)
    assert f"U+{ord(char):04X}" in rejected(validate_resident_id, typed, today=TODAY).reason
