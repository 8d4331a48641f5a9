"""The disclosure gate: who may see what, and the one rule "in publication on day D".

Every surface that discloses anything — the public page, feed and exports
(``registry/publish/``), bureau profiles and the change feed (``registry/bureau/``),
the expiry pass (``registry/credit/expiry.py``) — takes its rule from this module,
in the form it needs (SQL over any table alias, or Python over a row or a stored
version body). Nothing here does I/O. ``tests/test_disclosure_rule.py`` puts random
items through every form and through the pure domain functions
(``publicity.is_in_publication``, ``blacklist.is_listed``) and demands one answer.

Audiences
---------

The reference for who sees what (the README links here; ``AUDIENCES`` holds the
same as data):

- **public** (no token): records and listings in publication on D, with their
  双公示 items and objection marks; beside an item about a firm or a management
  enterprise, the organisations on the other side of its fund-manager relations on D
  (names and credit codes; never the practitioners); document numbers masked; nothing
  about a minor. Changes nothing. Through ``/public/`` (page, signed feed, exports).
- **bureau** (bureau token): what the public sees, plus subjects, affiliations,
  fund-manager relations, versions and log indexes; masked numbers; nothing about a
  minor (``not_found``,
  no feed item). Files objections and repair applications about what it sees
  (anything else is answered as missing). Only through ``/v1/bureau/…``: a
  practitioner query or change-feed page states a purpose, is recorded in
  ``bureau_access`` before the answer is sent, and is rate-limited.
- **regulator of the deciding authority**: everything about its own decisions —
  every state and version, proposals, notices, objections, minors; clear numbers
  on single reads. Records, corrects and revokes its decisions; proposes, lists and
  removes its entries.
- **other regulators**: read everything, as above; write only their own
  authority's decisions.
- **admin** (admin token): API tokens and authorities; no personal data at all.

"In publication on day D"
-------------------------

An item is in publication on D when its table's disclosed state holds and D is in
its half-open window ``[start, end)`` (``end`` NULL: no end; ``start`` NULL: not
yet, so never):

- a credit record: ``status = 'published' AND published AND publicity_start <= D
  AND (publicity_end IS NULL OR D < publicity_end)``;
- a blacklist entry: ``state = 'listed' AND listed_on <= D AND
  (planned_removal_on IS NULL OR D < planned_removal_on)``. A proposal, a notice
  or a withdrawn proposal is never disclosed.

The date test is part of the rule, so an item leaves at midnight of its end even
before the expiry pass records it; the pass then records what is *due*: still in
the disclosed state with its end reached (``due_sql``/``due``). ``RECORDS`` and
``LISTINGS`` state the rule as data (the column names); every form is derived:

- ``shown_sql``/``shown``: the rule itself;
- ``due_sql``/``due``: its complement through the end, what expiry writes down;
- ``change_day_sql``/``changes_after_sql``/``next_change``: the first day after D
  on which the answer may change (how long a computed answer holds);
- ``shown_on_or_after``: whether the item, as this version holds it, is in
  publication on some day on or after a given day (the change feed's "might a
  reader hold it?");
- ``withdrawn_sql``/``withdrawn``: the item's disclosure was ended by an audited
  change (expired, revoked, repaired; removed) after it had been shown on some day
  from ``first`` (the public feed's withdrawal events).

Minors
------

Nothing about a practitioner who is a minor on D reaches the public or a bureau.
A stored number counts if it is an 18-character GB 11643 number (a valid check
character and a real birth date: ``identifiers.birth_date_of_resident_id``),
*whatever its document type*, so a resident-ID number recorded under ``other``
protects its holder too; a birth date after D counts as a minor. For other numbers
the birth date recorded beside them counts (required when a practitioner is registered
with such a document; rows from before it was required have none and are taken as
adults). ``is_minor_on`` is that rule; ``adult_from`` the first day it
stops holding. That day the expiry pass writes ``subject.came_of_age``
(registry/coming_of_age.py), and the change feed then brings the person's whole
profile to bureaus (registry/bureau/feed.py).

Numbers in free text
--------------------

A practitioner's document number reaches an audience that sees numbers masked
(``Sight.numbers == "masked"``: the public and bureaus) only in the masked form
``masked_number`` (``Policy.mask_*``, e.g. ``630102********123X``). The same holds
for a GB 11643 number typed into free text (facts, penalty content, remarks, a
revocation reason …; ``FREE_TEXT`` names the columns per object type): stored and
shown to regulators as typed, it reaches a masking audience in the same masked form.
``mask_resident_ids`` is that rule: every public item is built through it
(registry/publish/selection.py), every bureau item too (registry/bureau/views.py),
and the regulator's write answer counts with it what will be masked
(``masked_on_publication``). ``may_hold_number`` rules a whole document out cheaply.

A number counts when it is a run of exactly 18 characters (17 digits, then a digit
or X; ASCII or full-width; not part of a longer run of digits) that is a GB 11643
number as the minors rule reads one: a valid check character and a real birth date
(``identifiers.birth_date_of_resident_id``; no clock, so the answer never changes
with the day). Resident IDs, Hong Kong/Macao/Taiwan residence permits and the new
foreign permanent residence cards all count. A number typed with spaces or dashes
inside, or run together with other digits, is not recognised.

Day D is always the registry's calendar day (Xining, UTC+8) of the moment asked.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Protocol

from registry.domain.policy import Policy
from registry.errors import InvalidInput
from registry.identifiers import birth_date_of_resident_id, mask_document_number

# --- Audiences --------------------------------------------------------------------


class Audience(StrEnum):
    PUBLIC = "public"
    BUREAU = "bureau"
    DECIDING_REGULATOR = "deciding_regulator"
    OTHER_REGULATOR = "other_regulator"
    ADMIN = "admin"


@dataclass(frozen=True)
class Sight:
    """What one audience may see and do (the table in the module docstring)."""

    sees: str
    # How a practitioner's document number reaches it: "masked", "clear" or "none".
    numbers: str
    # Whether anything about a minor reaches it (ids included).
    minors: bool
    may_change: str
    through: str


AUDIENCES: Final[Mapping[Audience, Sight]] = MappingProxyType({
    Audience.PUBLIC: Sight(
        sees="records and listings in publication on the day, with their 双公示 items and "
        "objection marks, and beside an item about an organisation the organisations its "
        "fund-manager relations name on the day",
        numbers="masked",
        minors=False,
        may_change="nothing",
        through="/public/ (page, signed feed, exports); no token",
    ),
    Audience.BUREAU: Sight(
        sees="what the public sees, plus subjects, affiliations, fund-manager relations, "
        "versions, log indexes",
        numbers="masked",
        minors=False,
        may_change="files objections and repair applications about what it sees",
        through="/v1/bureau/… only: practitioner queries and change-feed pages state a "
        "purpose, are recorded in bureau_access before the answer, and are rate-limited",
    ),
    Audience.DECIDING_REGULATOR: Sight(
        sees="everything about its own decisions: every state and version, proposals, "
        "notices, objections",
        numbers="clear",
        minors=True,
        may_change="records, corrects and revokes its decisions; proposes, lists and removes "
        "its entries; settles objections to them",
        through="/v1/… with a regulator token of that authority",
    ),
    Audience.OTHER_REGULATOR: Sight(
        sees="everything, read only",
        numbers="clear",
        minors=True,
        may_change="only their own authority's decisions",
        through="/v1/… with a regulator token of another authority",
    ),
    Audience.ADMIN: Sight(
        sees="API tokens and authorities; no personal data",
        numbers="none",
        minors=False,
        may_change="issues and revokes tokens, registers authorities",
        through="/v1/admin/…",
    ),
})


# --- Days -------------------------------------------------------------------------

XINING: Final = timedelta(hours=8)


def day_of(moment: datetime | str) -> date:
    """The registry's calendar day (UTC+8) of an aware moment, or of its RFC 3339 text
    (as a stored version body holds ``updated_at``)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError("day_of needs an aware moment")
    return (moment.astimezone(UTC) + XINING).date()


def day_of_sql(column: str) -> str:
    """``day_of`` in SQL, for a timestamptz column."""
    return f"(({column} AT TIME ZONE 'UTC') + interval '8 hours')::date"


def _date(value: Any) -> date | None:
    """A date column's value as a row holds it (date) or a stored body does (ISO text)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise TypeError(f"expected a date, ISO text or None, got {type(value).__name__}")


# --- The rule ---------------------------------------------------------------------


@dataclass(frozen=True)
class Publication:
    """When one kind of item is in publication on day D, stated over its columns.

    Every ``*_sql`` method returns a condition or expression for a WHERE or SELECT
    list: ``alias`` qualifies the columns (``"r"`` → ``r.status``; empty: unqualified)
    and ``day`` is the SQL of day D (a parameter such as ``$1``, or a column). The
    conditions are two-valued (never NULL) when the state and flag columns are NOT
    NULL, so they can be selected as well as filtered on. The Python forms take a
    mapping with the same column names: a database row, or a stored version body
    whose dates are ISO text.
    """

    object_type: str
    table: str
    state: str
    # The state value in which an item is disclosed.
    disclosed: str
    # States an audited change moves a disclosed item to when its disclosure ends.
    ended: tuple[str, ...]
    # A boolean column that must also hold (records: whether the window is published).
    flag: str | None
    start: str
    end: str
    # The day the audited change ended the disclosure.
    ended_on: str

    # --- SQL ---

    def _in_state(self, a: str, states: tuple[str, ...]) -> str:
        values = ", ".join(f"'{s}'" for s in states)
        state = f"{a}{self.state} = {values}" if len(states) == 1 else f"{a}{self.state} IN ({values})"
        return f"{state} AND {a}{self.flag}" if self.flag else state

    def disclosed_sql(self, alias: str = "") -> str:
        """In the disclosed state (and flagged published): the part of ``shown_sql`` that
        does not depend on the day, and the predicate of the partial indexes that serve
        the public search (schema/0015)."""
        return self._in_state(f"{alias}." if alias else "", (self.disclosed,))

    def shown_sql(self, day: str = "$1", alias: str = "") -> str:
        """In publication on ``day``."""
        a = f"{alias}." if alias else ""
        # Each ``IS NOT NULL`` keeps the condition two-valued where a day may be NULL.
        return (
            f"{self.disclosed_sql(alias)} AND {a}{self.start} IS NOT NULL"
            f" AND {a}{self.start} <= {day} AND ({a}{self.end} IS NULL OR {day} < {a}{self.end})"
        )

    def due_sql(self, day: str = "$1", alias: str = "") -> str:
        """Still in the disclosed state, its end reached on or before ``day``: what the expiry
        pass moves out. The state test is the predicate of the partial indexes
        ``credit_records_due`` and ``blacklist_due`` (schema/0002) that serve it; the flag is
        not part of it (an unpublished window ends all the same)."""
        a = f"{alias}." if alias else ""
        return (
            f"{a}{self.state} = '{self.disclosed}' AND {a}{self.end} IS NOT NULL"
            f" AND {a}{self.end} <= {day}"
        )

    def changes_after_sql(self, day: str = "$1", alias: str = "") -> str:
        """The answer of ``shown_sql`` changes on some day after ``day``."""
        a = f"{alias}." if alias else ""
        return (
            f"{self._in_state(a, (self.disclosed,))}"
            f" AND (({a}{self.start} IS NOT NULL AND {a}{self.start} > {day})"
            f" OR ({a}{self.end} IS NOT NULL AND {a}{self.end} > {day}))"
        )

    def change_day_sql(self, day: str = "$1", alias: str = "") -> str:
        """Where ``changes_after_sql`` holds: the first day after ``day`` the answer changes."""
        a = f"{alias}." if alias else ""
        return f"CASE WHEN {a}{self.start} > {day} THEN {a}{self.start} ELSE {a}{self.end} END"

    def withdrawn_sql(self, first: str, alias: str = "") -> str:
        """Its disclosure ended by an audited change, after it was shown on some day from
        ``first`` (the SQL of a day, e.g. the day the item was created) to the day it ended."""
        a = f"{alias}." if alias else ""
        shown_from = f"GREATEST({a}{self.start}, {first})"
        return (
            f"{self._in_state(a, self.ended)} AND {a}{self.start} IS NOT NULL"
            f" AND {a}{self.ended_on} IS NOT NULL AND {shown_from} <= {a}{self.ended_on}"
            f" AND ({a}{self.end} IS NULL OR {shown_from} < {a}{self.end})"
        )

    # --- Python ---

    def _holds(self, item: Mapping[str, Any], states: tuple[str, ...]) -> bool:
        return item[self.state] in states and (self.flag is None or bool(item[self.flag]))

    def shown(self, item: Mapping[str, Any], day: date) -> bool:
        """In publication on ``day`` (``shown_sql``)."""
        start, end = _date(item[self.start]), _date(item[self.end])
        return (
            self._holds(item, (self.disclosed,))
            and start is not None
            and start <= day
            and (end is None or day < end)
        )

    def due(self, item: Mapping[str, Any], day: date) -> bool:
        """``due_sql``."""
        end = _date(item[self.end])
        return item[self.state] == self.disclosed and end is not None and end <= day

    def next_change(self, item: Mapping[str, Any], day: date) -> date | None:
        """The first day after ``day`` on which ``shown`` may answer otherwise; None: never
        (``changes_after_sql``/``change_day_sql``)."""
        if not self._holds(item, (self.disclosed,)):
            return None
        start, end = _date(item[self.start]), _date(item[self.end])
        if start is not None and start > day:
            return start
        if end is not None and end > day:
            return end
        return None

    def shown_on_or_after(self, item: Mapping[str, Any], first: date) -> bool:
        """``shown`` holds on some day on or after ``first``."""
        start, end = _date(item[self.start]), _date(item[self.end])
        return (
            self._holds(item, (self.disclosed,))
            and start is not None
            and (end is None or max(start, first) < end)
        )

    def withdrawn(self, item: Mapping[str, Any], first: date) -> bool:
        """``withdrawn_sql``."""
        start, end = _date(item[self.start]), _date(item[self.end])
        ended_on = _date(item[self.ended_on])
        if not self._holds(item, self.ended) or start is None or ended_on is None:
            return False
        shown_from = max(start, first)
        return shown_from <= ended_on and (end is None or shown_from < end)


RECORDS: Final = Publication(
    object_type="credit_record",
    table="credit_records",
    state="status",
    disclosed="published",
    ended=("expired", "revoked", "repaired"),
    flag="published",
    start="publicity_start",
    end="publicity_end",
    ended_on="publication_ended_on",
)
LISTINGS: Final = Publication(
    object_type="blacklist_entry",
    table="blacklist_entries",
    state="state",
    disclosed="listed",
    ended=("removed",),
    flag=None,
    start="listed_on",
    end="planned_removal_on",
    ended_on="removed_on",
)
# By audited object type: the items that are disclosed only while in publication.
PUBLICATIONS: Final[Mapping[str, Publication]] = MappingProxyType(
    {p.object_type: p for p in (RECORDS, LISTINGS)}
)


# --- Minors -----------------------------------------------------------------------

ADULT_AGE: Final = 18


def adult_from(number: str | None, born: date | None = None) -> date | None:
    """The first day the holder of ``number`` is an adult (their 18th birthday; 1 March for
    someone born on 29 February), or None when neither the number nor ``born`` says.

    Whatever the document type the number was stored under: any 18-character GB 11643
    number counts, and its birth date wins. ``born`` is the birth date recorded beside a
    number that carries none (passports, permits, ``other``: registry/subjects.py).
    """
    if number is not None:
        with contextlib.suppress(InvalidInput):  # no GB 11643 number: ``born`` says
            born = birth_date_of_resident_id(number)
    if born is None:
        return None
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:  # 29 February, in a common year
        return date(born.year + ADULT_AGE, 3, 1)


def is_minor_on(number: str | None, day: date, born: date | None = None) -> bool:
    """Whether the holder of ``number`` (born on ``born``, when the number does not say) is a
    minor on ``day``; born after it counts too."""
    first = adult_from(number, born)
    return first is not None and day < first


# --- Numbers in free text ---------------------------------------------------------

# The audited columns of each object type that hold free text (typed by a regulator,
# no format checked) and may reach an audience that sees numbers masked.
FREE_TEXT: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "credit_record": (
        "violation_type", "facts", "legal_basis", "penalty_content", "licence_name",
        "licence_number", "remarks", "correction_note", "status_reason",
    ),
    "blacklist_entry": (
        "criterion", "legal_basis", "removal_reason", "withdrawal_reason",
    ),
    # A bureau reads back only what it filed; the regulator's answer may quote a number.
    "objection": ("grounds", "decision_note"),
    "repair": ("grounds", "decision_note"),
})

_DIGIT: Final = "0-9\uff10-\uff19"  # ASCII and full-width digits
_CHECK: Final = _DIGIT + "Xx\uff38\uff58"  # … and X, either width or case
# 18 characters, not inside a longer run: a candidate; birth_date_of_resident_id decides.
_CANDIDATE: Final = re.compile(f"(?<![{_DIGIT}])[{_DIGIT}]{{17}}[{_CHECK}](?![{_CHECK}])")
# A text shorter than this holds no number (the callers' cheapest test).
NUMBER_LENGTH: Final = 18

# ``may_hold_number``: every digit of either width becomes one "0" (a full-width digit is
# EF BC 90–99 in UTF-8: EF and BC are dropped, 90–99 kept), every other byte a ".", so 17
# digits in a row become 17 "0"s: never a false "no". Another character leaves at most two
# "0"s between "."s (only private-use characters U+F4xx–U+F67x leave two with no "." between):
# a false "maybe" only costs the caller a closer look.
_DIGIT_BYTES: Final = bytes(
    0x30 if 0x30 <= b <= 0x39 or 0x90 <= b <= 0x99 else 0x2E for b in range(256)
)
_DROPPED: Final = b"\xef\xbc"
_RUN: Final = b"0" * (NUMBER_LENGTH - 1)


def may_hold_number(utf8: bytes) -> bool:
    """False when UTF-8 text (a JSON document, say) holds nothing ``mask_resident_ids`` would
    mask: no 17 digits in a row. One pass at memory speed, so large documents without
    numbers (nearly all) need not be decoded to be checked."""
    return _RUN in utf8.translate(_DIGIT_BYTES, _DROPPED)


def masked_number(number: str, policy: Policy) -> str:
    """A document number as an audience that sees numbers masked sees it (``Policy.mask_*``)."""
    return mask_document_number(
        number, policy.mask_keep_head, policy.mask_keep_tail, policy.mask_char
    )


def _is_gb11643(candidate: str) -> bool:
    try:
        birth_date_of_resident_id(candidate, "text")
    except InvalidInput:
        return False
    return True


def mask_resident_ids(text: str, policy: Policy) -> tuple[str, int]:
    """``text`` with every GB 11643 number in it masked as ``masked_number`` masks one,
    and how many were masked. Everything else is kept exactly as typed."""
    if len(text) < NUMBER_LENGTH or _CANDIDATE.search(text) is None:  # nearly always
        return text, 0
    count = 0

    def replace(found: re.Match[str]) -> str:
        nonlocal count
        if not _is_gb11643(found.group()):
            return found.group()
        count += 1
        return masked_number(found.group(), policy)

    masked = _CANDIDATE.sub(replace, text)
    return masked, count


class Columns(Protocol):
    """A database row or a stored version body: values by column name."""

    def keys(self) -> Iterable[str]: ...
    def __getitem__(self, key: str, /) -> Any: ...


def mask_free_text(object_type: str, item: Columns, policy: Policy) -> dict[str, Any]:
    """``item`` (a row or a stored body) as a plain dict, its free-text columns
    (``FREE_TEXT``) passed through ``mask_resident_ids``."""
    # keys(): iterating an asyncpg.Record yields its values, not its column names.
    out = {key: item[key] for key in item.keys()}  # noqa: SIM118
    for column in FREE_TEXT[object_type]:
        value = out.get(column)
        if isinstance(value, str):
            out[column] = mask_resident_ids(value, policy)[0]
    return out


def numbers_in_free_text(object_type: str, item: Columns) -> list[tuple[str, int]]:
    """``(column, how many GB 11643 numbers)`` for each free-text column of ``item`` that
    holds any, in ``FREE_TEXT`` order: what a masking audience will see masked."""
    found = []
    present = set(item.keys())
    for column in FREE_TEXT[object_type]:
        value = item[column] if column in present else None
        if isinstance(value, str):
            count = mask_resident_ids(value, _COUNTING)[1]
            if count:
                found.append((column, count))
    return found


# Counting does not depend on how numbers are masked.
_COUNTING: Final = Policy()
