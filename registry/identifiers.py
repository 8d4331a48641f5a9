"""Is this USCC / document number valid, and how is it masked for the public.

Pure functions only: no I/O, no logging. The one clock read is the default of
``today`` in the resident-ID checks; pass ``today`` to keep them deterministic.

Normalisation (``normalise_identifier``) is NFKC, then stripping surrounding
whitespace, then upper case, so full-width input from a Chinese IME
(``６３０１０２…``), lower case (``ｘ``, ``x`` → ``X``) and surrounding spaces
(including U+3000) are accepted. Every validator returns the normalised value;
that is the canonical form to store, to hash and to look up by. Spaces and
invisible characters *inside* a number (zero-width, bidirectional, control,
combining) are refused by name (``U+200B at position 19``), never dropped:
what the caller sees is what is checked. Document type names are read the same
way (NFKC, trimmed, lower case).

Document numbers of natural persons are personal data: rejection reasons never
echo the number, its birth date or the expected check character. They may name
one offending character and its position, which is not enough to recover the
number.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import Final

from registry.errors import InvalidInput

__all__ = [
    "USCC_ALPHABET",
    "DocumentType",
    "birth_date_of_resident_id",
    "is_minor",
    "mask_document_number",
    "normalise_identifier",
    "parse_document_type",
    "resident_id_check_character",
    "uscc_check_character",
    "validate_credit_code",
    "validate_document",
    "validate_resident_id",
]


def normalise_identifier(value: str) -> str:
    """NFKC, strip surrounding whitespace, upper-case: the canonical input form."""
    return unicodedata.normalize("NFKC", value).strip().upper()


# Spaces, controls, format characters (zero-width, bidirectional) and combining marks:
# nothing to see, so a wrong length alone would not tell the caller what to fix.
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"})


def _refuse_hidden(value: str, field: str, accepted: str) -> None:
    """Name the first invisible character inside a normalised identifier, if any."""
    for position, char in enumerate(value, start=1):
        if unicodedata.category(char) in _HIDDEN_CATEGORIES:
            raise InvalidInput(
                field,
                f"character U+{ord(char):04X} at position {position} is a space or an "
                "invisible character; type the number without it",
                accepted,
            )


def _char_at(value: str, position: int) -> str:
    """Describe the character at a 1-based position for an error reason."""
    char = value[position - 1]
    if char.isprintable() and not char.isspace():
        return f"character '{char}' at position {position}"
    return f"character U+{ord(char):04X} at position {position}"


# --- Unified social credit code (GB 32100-2015) -------------------------------

USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE: Final = {char: index for index, char in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
_USCC_ACCEPTED: Final = (
    "18 characters: digits and capital letters except I, O, S, V, Z, "
    "the last being the GB 32100-2015 check character"
)


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code.

    Raises ``ValueError`` if ``first17`` is not 17 characters of the alphabet;
    it expects already-normalised input (use ``validate_credit_code`` for
    user input).
    """
    if len(first17) != 17 or any(char not in _USCC_VALUE for char in first17):
        raise ValueError("uscc_check_character needs 17 characters of the USCC alphabet")
    total = sum(
        _USCC_VALUE[char] * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    # c = 31 - (sum mod 31), with 31 written as 0.
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value: str, field: str = "credit_code") -> str:
    """Return the normalised unified social credit code or raise ``InvalidInput``.

    Checks length, alphabet and check character. The registration authority and
    category (positions 1–2) are only checked against the alphabet.
    """
    code = normalise_identifier(value)
    _refuse_hidden(code, field, _USCC_ACCEPTED)
    if len(code) != 18:
        raise InvalidInput(field, f"must be 18 characters long, got {len(code)}", _USCC_ACCEPTED)
    for position, char in enumerate(code, start=1):
        if char not in _USCC_VALUE:
            raise InvalidInput(
                field,
                f"{_char_at(code, position)} is not allowed in a unified social credit code",
                _USCC_ACCEPTED,
            )
    if uscc_check_character(code[:17]) != code[17]:
        raise InvalidInput(
            field,
            "the check character (position 18) does not match the first 17 characters; "
            "a character was probably mistyped",
            _USCC_ACCEPTED,
        )
    return code


# --- GB 11643-1999 numbers: resident ID and look-alikes -------------------------

_GB11643_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK: Final = "10X98765432"
_EARLIEST_BIRTH: Final = date(1900, 1, 1)
_HMT_PREFIXES: Final = ("810000", "820000", "830000")

_RESIDENT_ID_ACCEPTED: Final = (
    "18 characters: a 6-digit address code starting with 1–8 (not 81/82/83), "
    "an 8-digit birth date YYYYMMDD from 1900 to today, a 3-digit sequence and "
    "a check digit or X"
)
_HMT_ACCEPTED: Final = (
    "18 characters: 810000, 820000 or 830000, an 8-digit birth date YYYYMMDD "
    "from 1900 to today, a 3-digit sequence and a check digit or X"
)


def resident_id_check_character(first17: str) -> str:
    """The GB 11643-1999 check character (``0``–``9`` or ``X``) for 17 digits.

    Raises ``ValueError`` unless ``first17`` is exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not all("0" <= char <= "9" for char in first17):
        raise ValueError("resident_id_check_character needs 17 ASCII digits")
    total = sum(int(char) * weight for char, weight in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def _gb11643_shape(number: str, field: str, accepted: str) -> None:
    """18 characters, 17 digits, then a digit or X, with a matching check character."""
    if len(number) != 18:
        raise InvalidInput(field, f"must be 18 characters long, got {len(number)}", accepted)
    for position, char in enumerate(number[:17], start=1):
        if not "0" <= char <= "9":
            raise InvalidInput(
                field,
                f"{_char_at(number, position)} is not a digit (only the last may be X)",
                accepted,
            )
    last = number[17]
    if not ("0" <= last <= "9" or last == "X"):
        raise InvalidInput(field, f"{_char_at(number, 18)} is not a digit or X", accepted)


def _gb11643_check(number: str, field: str, accepted: str) -> None:
    if resident_id_check_character(number[:17]) != number[17]:
        raise InvalidInput(
            field,
            "the check character (position 18) does not match the first 17 digits; "
            "a digit was probably mistyped",
            accepted,
        )


def _gb11643_birth_date(number: str, field: str, accepted: str) -> date:
    """The real calendar date in positions 7–14, not before 1900 (not echoed on error)."""
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    try:
        born = date(year, month, day)
    except ValueError:
        raise InvalidInput(
            field, "positions 7–14 are not a real date in the form YYYYMMDD", accepted
        ) from None
    if born < _EARLIEST_BIRTH:
        raise InvalidInput(field, "the birth date (positions 7–14) is before 1900", accepted)
    return born


def _validate_gb11643_person(number: str, field: str, today: date | None, accepted: str) -> None:
    """Shape, birth date (not in the future) and check character, in that order."""
    _gb11643_shape(number, field, accepted)
    born = _gb11643_birth_date(number, field, accepted)
    if born > (today if today is not None else date.today()):
        raise InvalidInput(field, "the birth date (positions 7–14) is in the future", accepted)
    _gb11643_check(number, field, accepted)


def validate_resident_id(
    value: str, field: str = "document_number", today: date | None = None
) -> str:
    """Return the normalised resident ID number (GB 11643-1999) or raise ``InvalidInput``.

    Numbers starting 81/82/83 belong to Hong Kong/Macao/Taiwan residence permits,
    a separate document type (``hmt_residence_permit``), and are rejected here.
    """
    number = normalise_identifier(value)
    _refuse_hidden(number, field, _RESIDENT_ID_ACCEPTED)
    _gb11643_shape(number, field, _RESIDENT_ID_ACCEPTED)
    if number[:2] in {"81", "82", "83"}:
        raise InvalidInput(
            field,
            "an address code starting with 81, 82 or 83 marks a Hong Kong/Macao/Taiwan "
            f"residence permit; use document type {DocumentType.HMT_RESIDENCE_PERMIT.value}",
            _RESIDENT_ID_ACCEPTED,
        )
    if not "1" <= number[0] <= "8":
        raise InvalidInput(
            field,
            "the address code (positions 1–6) must start with a digit from 1 to 8",
            _RESIDENT_ID_ACCEPTED,
        )
    _validate_gb11643_person(number, field, today, _RESIDENT_ID_ACCEPTED)
    return number


def birth_date_of_resident_id(value: str, field: str = "document_number") -> date:
    """The birth date in an 18-character GB 11643 number.

    Works for resident IDs and for the numbers built the same way (Hong Kong/
    Macao/Taiwan residence permits, the 18-digit foreign permanent residence
    card). Checks shape, date and check character but not the address code, and
    reads no clock, so a future date is returned as is.
    """
    number = normalise_identifier(value)
    accepted = "an 18-character GB 11643 number with a real birth date in positions 7–14"
    _gb11643_shape(number, field, accepted)
    born = _gb11643_birth_date(number, field, accepted)
    _gb11643_check(number, field, accepted)
    return born


def is_minor(value: str, on: date, field: str = "document_number") -> bool:
    """Whether the holder of a GB 11643 number is under 18 on ``on``.

    Someone born on 29 February turns 18 on 1 March in a common year. Raises
    ``InvalidInput`` if the birth date is after ``on``.
    """
    born = birth_date_of_resident_id(value, field)
    if born > on:
        raise InvalidInput(
            field,
            "the birth date (positions 7–14) is after the date the age is asked for",
            "a number whose holder was born on or before that date",
        )
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age < 18


# --- Document types -------------------------------------------------------------


class DocumentType(StrEnum):
    """Identity documents a practitioner can be recorded with; stored beside the number."""

    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"
    HMT_RESIDENCE_PERMIT = "hmt_residence_permit"
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"
    OTHER = "other"


_DOCUMENT_TYPES_ACCEPTED: Final = ", ".join(t.value for t in DocumentType)

_PASSPORT = re.compile(r"[A-Z0-9]{5,17}")
_HK_MACAO = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TAIWAN = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_FOREIGN_OLD = re.compile(r"[A-Z]{3}[0-9]{12}")
_OTHER = re.compile(r"[A-Z0-9-]{1,40}")

_PASSPORT_ACCEPTED: Final = "5 to 17 capital letters or digits"
_HK_MACAO_ACCEPTED: Final = "H or M followed by 8 or 10 digits"
_TAIWAN_ACCEPTED: Final = "8 or 10 digits"
_FOREIGN_ACCEPTED: Final = (
    "the 18-character card number starting with 9 (GB 11643 check), "
    "or the old 15-character form of 3 letters and 12 digits"
)
_OTHER_ACCEPTED: Final = "1 to 40 capital letters, digits or hyphens"
_DOCUMENT_NUMBER_ACCEPTED: Final = (
    "the number as printed on the document: letters, digits (half- or full-width) and, "
    "for document_type other, hyphens; no spaces inside"
)


def _first_outside(number: str, allowed: str) -> str | None:
    """Describe the first character not in ``allowed``, or None."""
    for position, char in enumerate(number, start=1):
        if char not in allowed:
            return _char_at(number, position)
    return None


_LETTERS_DIGITS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _pattern(number: str, field: str, pattern: re.Pattern[str], allowed: str, accepted: str) -> str:
    if pattern.fullmatch(number):
        return number
    if not number:
        raise InvalidInput(field, "is empty", accepted)
    bad = _first_outside(number, allowed)
    if bad is not None:
        raise InvalidInput(field, f"{bad} is not allowed", accepted)
    raise InvalidInput(
        field, f"does not have the expected form ({len(number)} characters)", accepted
    )


def _validate_foreign_permanent_residence(number: str, field: str) -> str:
    if len(number) == 18:
        if number[0] != "9":
            raise InvalidInput(
                field, "an 18-character card number must start with 9", _FOREIGN_ACCEPTED
            )
        _gb11643_shape(number, field, _FOREIGN_ACCEPTED)
        _gb11643_check(number, field, _FOREIGN_ACCEPTED)
        return number
    if len(number) == 15:
        return _pattern(number, field, _FOREIGN_OLD, _LETTERS_DIGITS, _FOREIGN_ACCEPTED)
    raise InvalidInput(
        field, f"must be 18 or 15 characters long, got {len(number)}", _FOREIGN_ACCEPTED
    )


def _validate_hmt_residence_permit(number: str, field: str, today: date | None) -> str:
    _gb11643_shape(number, field, _HMT_ACCEPTED)
    if number[:6] not in _HMT_PREFIXES:
        raise InvalidInput(field, "must start with 810000, 820000 or 830000", _HMT_ACCEPTED)
    _validate_gb11643_person(number, field, today, _HMT_ACCEPTED)
    return number


# Types whose numbers are GB 11643 numbers by their own layout (validated as such above).
_OWN_GB11643_LAYOUT: Final = (
    DocumentType.RESIDENT_ID,
    DocumentType.HMT_RESIDENCE_PERMIT,
    DocumentType.FOREIGN_PERMANENT_RESIDENCE,
)


def _is_resident_id(number: str, today: date | None) -> bool:
    try:
        validate_resident_id(number, "document_number", today)
    except InvalidInput:
        return False
    return True


def parse_document_type(doc_type: str, field: str = "document_type") -> DocumentType:
    """The ``DocumentType`` named by ``doc_type`` (width, case and surrounding space ignored)."""
    try:
        return DocumentType(unicodedata.normalize("NFKC", doc_type).strip().lower())
    except ValueError:
        raise InvalidInput(
            field, "is not a known document type", _DOCUMENT_TYPES_ACCEPTED
        ) from None


def validate_document(
    doc_type: str, number: str, *, today: date | None = None
) -> tuple[DocumentType, str]:
    """Parse the document type and return it with the normalised, validated number.

    Raises ``InvalidInput`` naming ``document_type`` or ``document_number``.
    """
    kind = parse_document_type(doc_type)
    field = "document_number"
    value = normalise_identifier(number)
    _refuse_hidden(value, field, _DOCUMENT_NUMBER_ACCEPTED)
    if kind not in _OWN_GB11643_LAYOUT and _is_resident_id(value, today):
        # A resident ID filed under another type would still be read as one (its birth
        # date protects a minor: registry.domain.disclosure), but searching and matching
        # go by (type, number): one person, one way to record them.
        raise InvalidInput(
            field,
            "is a valid resident ID number; record it with document_type resident_id",
            f"a {kind.value} number that is not a resident ID number, "
            "or document_type resident_id with this number",
        )
    match kind:
        case DocumentType.RESIDENT_ID:
            return kind, validate_resident_id(value, field, today)
        case DocumentType.PASSPORT:
            return kind, _pattern(value, field, _PASSPORT, _LETTERS_DIGITS, _PASSPORT_ACCEPTED)
        case DocumentType.HK_MACAO_PERMIT:
            return kind, _pattern(value, field, _HK_MACAO, "HM0123456789", _HK_MACAO_ACCEPTED)
        case DocumentType.TAIWAN_PERMIT:
            return kind, _pattern(value, field, _TAIWAN, "0123456789", _TAIWAN_ACCEPTED)
        case DocumentType.HMT_RESIDENCE_PERMIT:
            return kind, _validate_hmt_residence_permit(value, field, today)
        case DocumentType.FOREIGN_PERMANENT_RESIDENCE:
            return kind, _validate_foreign_permanent_residence(value, field)
        case DocumentType.OTHER:
            return kind, _pattern(value, field, _OTHER, _LETTERS_DIGITS + "-", _OTHER_ACCEPTED)


# --- Masking --------------------------------------------------------------------


def mask_document_number(
    number: str, keep_head: int = 6, keep_tail: int = 4, mask_char: str = "*"
) -> str:
    """Replace the middle of ``number`` one-for-one with ``mask_char``.

    Keeps ``keep_head`` leading and ``keep_tail`` trailing characters, e.g.
    ``630102********123X``. A number no longer than ``keep_head + keep_tail``
    keeps at most half of its characters (split between head and tail in the
    same proportion), so a mask never shows a whole non-empty value.
    """
    if keep_head < 0 or keep_tail < 0:
        raise ValueError("keep_head and keep_tail must not be negative")
    if len(mask_char) != 1:
        raise ValueError("mask_char must be exactly one character")
    length = len(number)
    keep = keep_head + keep_tail
    if length > keep:
        head, tail = keep_head, keep_tail
    elif keep == 0:
        head = tail = 0
    else:
        # Reveal at most floor(length / 2); head gets its share rounded down,
        # which keeps head <= keep_head and tail <= keep_tail.
        budget = length // 2
        head = budget * keep_head // keep
        tail = budget - head
    return number[:head] + mask_char * (length - head - tail) + number[length - tail :]
