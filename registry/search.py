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

The database side (``subjects.search_text``, schema/0013_subject_search.sql) holds the
folded text of a subject's name, credit code and its records' decision numbers, spelled
in ASCII (``search_key``). pg_trgm builds trigrams only from what the database's locale
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
from collections.abc import Callable, Iterable
from typing import Any

import opencc

from registry.db.like import literal as like_literal
from registry.identifiers import normalise_identifier

# The parts of a subject's search text (name, credit code, each decision number) are
# joined by a space: a spelled query holds only letters and digits, so it never matches
# across two parts.
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


def subject_search_text(
    name: str, credit_code: str | None, decision_numbers: Iterable[str | None] = ()
) -> str:
    """What ``subjects.search_text`` holds for a subject: its name, its credit code and the
    decision numbers of its records (each once, in a stable order), each spelled by
    ``search_key`` and separated by ``PART_SEPARATOR``. A practitioner's document number
    is never part of it (personal data is found only through the keyed lookup)."""
    numbers = sorted({n for n in decision_numbers if n})
    parts = [name, credit_code or "", *numbers]
    return PART_SEPARATOR.join(search_key(part) for part in parts)


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
    """The SQL condition that subject row ``alias`` matches ``query`` (its name, its credit
    code or the start of it, or a decision number of one of its records, folded), and its
    parameters, numbered from ``$first``.

    Indexed: ``search_text LIKE`` by the pg_trgm GIN index. A row not yet folded
    (``search_text IS NULL``: before ``registry migrate`` filled it, or written by
    something other than this code) is found through the partial index of those rows, by
    its name as typed or folded, or its credit code in canonical form, as before folding
    existed; by decision number only once folded (a subquery here would make the planner
    price every row as if it ran, and walk no search in order).
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
