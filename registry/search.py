"""Search text: how what people type is compared with what is stored (pure).

People search in either script and with full-width characters (西宁/西寧, ＸＩＮＩＮＧ,
a lower-case credit code). ``fold`` is the one rule: NFKC (full-width to half-width,
compatibility ideographs to unified ones), case folding, then Traditional to
Simplified with OpenCC's ``t2s`` tables. Both sides of every comparison go through it;
the stored names and decision numbers never do (a decision number is a legal
identifier: it is kept as typed, DOMAIN.md).

The Chinese conversion is applied one character at a time, never by phrase, so that
folding commutes with taking a substring: a query is part of a name, and a phrase rule
(乾隆 stays 乾隆, 乾 alone becomes 干) would fold the same characters one way inside the
name and another way in the query, and the query would miss.

The database side holds the folded text spelled in ASCII (``search_key``): a subject's
name and credit code in ``subjects.search_text`` (schema/0013_subject_search.sql), each
record's decision number in ``credit_records.search_number`` (schema/0017_record_search.sql),
each with a pg_trgm GIN index, so that writing a record spells its one number and never
re-indexes its subject. pg_trgm builds trigrams only from what the database's locale
calls letters and digits: under ``LC_CTYPE=C`` (a common cluster setting) Chinese
characters make none, and a two-character query has no complete trigram in any locale,
so a plain folded column would be scanned for most Chinese queries. Spelled, a folded
ASCII letter or digit stays itself (so a trigram of a credit code or a decision number's
digits is three of its characters, as selective as pg_trgm gets), and every other
character becomes five upper-case letters, in every locale: one Chinese character already
yields three trigrams, two yield eight, and the pg_trgm GIN index narrows every query but
one of fewer than three letters and digits (which matches too many subjects to be worth
narrowing anyway).

The spelling is self-synchronising: a spelled character starts with one of V–Z, which
says how long it is (V–Y five letters, Z six), and goes on with A–U; a kept letter or
digit is lower case or a digit. So a spelled query found in a spelled text always starts
and ends at character boundaries: it occurs there exactly when the folded query occurs
in the folded text.
"""

from __future__ import annotations

import functools
import string
import unicodedata
from collections.abc import Callable
from typing import Any, Literal

import opencc

from registry.db.like import literal as like_literal
from registry.identifiers import normalise_identifier

# The parts of a subject's search text (name, credit code) are joined by a space: a
# spelled query holds only letters and digits, so it never matches across two parts (and
# schema/0017_record_search.sql relies on a spelled part holding no space).
PART_SEPARATOR = " "
_KEPT = frozenset(string.ascii_lowercase + string.digits)  # folded text has no upper case
_BODY = string.ascii_uppercase[:21]  # A–U
_SHORT = 4 * 21**4  # 777,924 five-letter spellings (V–Y, then four of A–U): up to U+BDEC3
# Code points below _SHORT are scattered over the five-letter spellings by an invertible
# multiplication (the factor is prime to _SHORT), so neighbouring characters (one block of
# Chinese) share few letters and each trigram tells more characters apart.
_SCATTER = 1_000_003


@functools.cache
def _t2s() -> opencc.OpenCC:
    # Loaded once per process: a pure function of the installed OpenCC tables, shared
    # by every caller and never stale, so it is not application state.
    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=65536)
def _simplified(char: str) -> str:
    converted: str = _t2s().convert(char)
    return converted


def fold(text: str) -> str:
    """``text`` as it is compared: NFKC, case-folded, Traditional → Simplified per character.

    ``fold("西寧 ＸＩＮＩＮＧ")`` is ``"西宁 xining"``; ``fold`` of a folded text is itself.
    """
    plain = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(_simplified(char) if ord(char) >= 0x2E80 else char for char in plain)


def _letters(value: int, count: int) -> str:
    digits = []
    for _ in range(count):
        value, digit = divmod(value, len(_BODY))
        digits.append(_BODY[digit])
    return "".join(reversed(digits))


@functools.lru_cache(maxsize=65536)
def _spell(char: str) -> str:
    if char in _KEPT:
        return char
    point = ord(char)
    if point >= _SHORT:  # planes 12–16: private use, tags; six letters
        return "Z" + _letters(point, 5)
    lead, body = divmod(point * _SCATTER % _SHORT, 21**4)
    return "VWXY"[lead] + _letters(body, 4)


def search_key(text: str) -> str:
    """The folded ``text`` spelled in ASCII: letters and digits as they are, every other
    character as five (or six) upper-case letters (see above)."""
    return "".join(_spell(char) for char in fold(text))


def subject_search_text(name: str, credit_code: str | None) -> str:
    """What ``subjects.search_text`` holds for a subject: its name and its credit code, each
    spelled by ``search_key`` and separated by ``PART_SEPARATOR``. A practitioner's document
    number is never part of it (personal data is found only through the keyed lookup), nor
    are its records' decision numbers (each record holds its own: ``record_search_number``)."""
    return PART_SEPARATOR.join(search_key(part) for part in (name, credit_code or ""))


def record_search_number(decision_number: str | None) -> str:
    """What ``credit_records.search_number`` holds for a record: its decision number spelled
    by ``search_key``; empty for a record without one (NULL is left to mean "not folded
    yet")."""
    return search_key(decision_number) if decision_number else ""


def like_pattern(query: str) -> str:
    """The LIKE pattern on ``subjects.search_text`` that finds ``query`` anywhere in it.

    The spelled text holds only ASCII letters and digits (and the parts' spaces), so a
    ``%`` or ``_`` the user typed is spelled like any other character and is searched as
    typed.
    """
    return "%" + search_key(query) + "%"


def contains(text: str | None, query: str) -> bool:
    """Whether folded ``query`` occurs in folded ``text`` (the same rule as the column)."""
    return text is not None and fold(query) in fold(text)


def matcher(query: str) -> Callable[[str | None], bool]:
    """``contains(text, query)`` as a function of ``text``, with ``query`` folded once."""
    wanted = fold(query)
    return lambda text: text is not None and wanted in fold(text)


def subject_condition(alias: str, first: int, query: str) -> tuple[str, list[Any]]:
    """The SQL condition that subject row ``alias`` matches ``query`` by its name or its
    credit code (or the start of it), folded, and its parameters, numbered from ``$first``.
    A subject is also found by the decision number of any of its records: that is
    ``record_condition`` on the records, which the caller joins as the statement needs
    (registry/subjects.py ``list_subjects``, registry/publish/page.py).

    Indexed: ``search_text LIKE`` by the pg_trgm GIN index. A row not yet folded
    (``search_text IS NULL``: before ``registry migrate`` filled it, or written by
    something other than this code) is found through the partial index of those rows, by
    its name as typed or folded, or its credit code in canonical form, as before folding
    existed.
    """
    n = [f"${first + i}" for i in range(4)]
    sql = (
        f"({alias}.search_text LIKE {n[0]} OR ({alias}.search_text IS NULL"
        f" AND ({alias}.name LIKE {n[1]} OR {alias}.name LIKE {n[2]}"
        f" OR {alias}.credit_code LIKE {n[3]})))"
    )
    return sql, [
        like_pattern(query),
        "%" + like_literal(query) + "%",
        "%" + like_literal(fold(query)) + "%",
        "%" + like_literal(normalise_identifier(query)) + "%",
    ]


def record_condition(
    alias: str, first: int, *, unfolded: Literal["typed", "kept", "left"] = "typed"
) -> str:
    """The SQL condition that credit record row ``alias`` matches the query by its own
    decision number, folded, over the parameters of ``subject_condition(…, first, query)``
    (the same ``$first`` onwards: one statement may hold both).

    Indexed: ``search_number LIKE`` by the pg_trgm GIN index (schema/0017_record_search.sql).
    A record not yet folded (``search_number IS NULL``) is, by ``unfolded``:
    ``typed``, found by its number as typed or folded, as before folding existed (through
    the partial index of those rows); ``kept``, passed, for a statement that reads only
    ``search_number`` (from an index that holds it), whose caller checks the rows with
    ``matcher``; ``left`` out, for a statement that finds those rows in a part of its own.
    """
    folded = f"{alias}.search_number LIKE ${first}"
    if unfolded == "left":
        return f"({folded})"
    if unfolded == "kept":
        return f"({folded} OR {alias}.search_number IS NULL)"
    return (
        f"({folded} OR ({alias}.search_number IS NULL AND ({alias}.decision_number LIKE"
        f" ${first + 1} OR {alias}.decision_number LIKE ${first + 2})))"
    )
