"""The SQL that reads bureau profiles: from the profile cache, or built on the spot.

One statement per lookup kind returns, for each subject found, its row (the
subject part is built in Python: practitioners' numbers are decrypted, age-checked
and masked there, never in SQL) and its three lists as UTF-8 JSON bytes. The lists come
from ``bureau_profile_cache`` when it holds them for the day of the read
(schema/0005_bureau_profile_cache.sql); otherwise PostgreSQL builds them with
``json_agg`` over the projected columns, and returns with them the generation it
saw and the first day they may change, for the cache fill
(registry/bureau/profile_cache.py). ``CASE`` keeps the building sub-selects from
running on a hit.

The JSON is what ``msgspec`` encodes for the structs in registry/bureau/views.py
(the OpenAPI schema): the columns are derived from those structs, and exact
amounts are cast to text as msgspec writes ``Decimal``.

An organisation's relations (``RELATED``: a firm's managers, a manager's firms and the
practitioners affiliated to it) are built on every read, never kept in the cache: each
item pairs the relation with the subject on its other side, whose number Python
decrypts, masks and age-checks (registry/bureau/views.py ``related_views``). Writes to
them still bump the profile's generation (schema/0020_fund_managers.sql), so a profile a
process keeps is confirmed by ``CURRENT`` as any other.

``CURRENT`` asks only whether a profile the process already sent is still
current (registry/bureau/profile_memo.py). The statements that store lists are here
too, beside the list SQL they share: ``FILL`` (a lookup's lists, written in the
background) and ``DUE``/``WARM`` (lists built ahead, registry/bureau/profile_warmer.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import get_args, get_type_hints

import msgspec

from registry.bureau.views import (
    BureauAffiliation,
    BureauFundManager,
    BureauListing,
    BureauRecord,
    BureauSubject,
)
from registry.domain.disclosure import LISTINGS, RECORDS


def _json_columns(struct: type[msgspec.Struct]) -> str:
    """The struct's fields as SQL columns, each written as msgspec writes its type."""
    hints = get_type_hints(struct)
    columns = []
    for name in struct.__struct_fields__:
        exact = hints[name] is Decimal or Decimal in get_args(hints[name])
        columns.append(f"{name}::text AS {name}" if exact else name)
    return ", ".join(columns)


def _json_list(struct: type[msgspec.Struct], source: str, order: str) -> str:
    items = f"(SELECT {_json_columns(struct)} FROM {source}) x"  # noqa: S608 - fixed names
    as_json = f"coalesce(json_agg(x ORDER BY {order}), '[]')::text"
    return f"(SELECT convert_to({as_json}, 'UTF8') FROM {items})"  # noqa: S608 - fixed names


# In publication on $1 (registry.domain.disclosure): the records and listings a profile shows.
_VISIBLE_RECORDS = f"credit_records WHERE subject_id = s.id AND {RECORDS.shown_sql('$1')}"
_VISIBLE_LISTINGS = f"blacklist_entries WHERE subject_id = s.id AND {LISTINGS.shown_sql('$1')}"
# The first day after $1 on which an item of the subject enters or leaves publication:
# lists computed for $1 hold until then (NULL: until a write changes them).
_NEXT_CHANGE = (
    "(SELECT min(d) FROM ("  # noqa: S608 - fixed text
    f" SELECT {RECORDS.change_day_sql('$1')} AS d FROM credit_records"
    f" WHERE subject_id = s.id AND {RECORDS.changes_after_sql('$1')}"
    " UNION ALL"
    f" SELECT {LISTINGS.change_day_sql('$1')} FROM blacklist_entries"
    f" WHERE subject_id = s.id AND {LISTINGS.changes_after_sql('$1')}) b)"
)
_LISTS = {
    "affiliations": _json_list(
        BureauAffiliation, "affiliations WHERE practitioner_id = s.id", "x.valid_from, x.id"
    ),
    "records": _json_list(BureauRecord, _VISIBLE_RECORDS, "x.decision_date DESC, x.id DESC"),
    "listings": _json_list(BureauListing, _VISIBLE_LISTINGS, "x.id"),
}
# The lists of subjects $2 on day $1, built on the spot: the change feed re-announces a
# person's profile with them (registry/bureau/feed.py), so they are the profile's own.
LISTS = (
    f"SELECT s.id, {_LISTS['affiliations']} AS affiliations, {_LISTS['records']} AS records,"  # noqa: S608 - fixed names
    f" {_LISTS['listings']} AS listings FROM unnest($2::uuid[]) AS q (id)"
    " JOIN subjects s ON s.id = q.id"
)


def _related(relation: type[msgspec.Struct], source: str, mine: str, other: str) -> str:
    """The JSON list of the rows ``r`` of ``source`` whose column ``mine`` names subject
    ``s``, oldest first, each ``{"relation": r's fields, "subject": the other side's row}``
    (``other``: its column in ``r``), that row with its bureau fields but the number, which
    only Python may decrypt, and the ciphers as base64 (as a stored body holds them)."""
    fields = [f for f in BureauSubject.__struct_fields__ if f != "document_number"]
    subject = ", ".join(
        [f"'{f}', o.{f}" for f in fields]
        + [f"'{c}', translate(encode(o.{c}, 'base64'), E'\\n', '')"
           for c in ("document_cipher", "birth_date_cipher")]
    )
    item = (
        "json_build_object('relation', json_build_object("
        + ", ".join(f"'{f}', r.{f}" for f in relation.__struct_fields__)
        + f"), 'subject', json_build_object({subject}))"
    )
    return (
        f"(SELECT convert_to(coalesce(json_agg({item} ORDER BY r.valid_from, r.id), '[]')::text,"  # noqa: S608 - fixed names
        f" 'UTF8') FROM {source} r JOIN subjects o ON o.id = r.{other}"
        f" WHERE r.{mine} = s.id)"
    )


# By list: the kind of subject that has it ('vc_firm', 'vc_manager': subjects.kind), and
# how it is built. Only a vc_manager's profile shows people.
RELATED = {
    "managers": ("vc_firm", _related(BureauFundManager, "fund_managers", "firm_id", "manager_id")),
    "firms": ("vc_manager", _related(BureauFundManager, "fund_managers", "manager_id", "firm_id")),
    "practitioners": (
        "vc_manager",
        _related(BureauAffiliation, "affiliations", "organisation_id", "practitioner_id"),
    ),
}
_HIT = "c.records IS NOT NULL AND c.as_of <= $1 AND (c.valid_until IS NULL OR $1 < c.valid_until)"
# What the subject part is built from (views.SubjectReader), and how answers are matched.
_SUBJECT = [
    f"s.{name}" for name in BureauSubject.__struct_fields__ if name != "document_number"
] + ["s.document_cipher", "s.document_lookup", "s.birth_date_cipher"]
_COLUMNS = ", ".join(
    [
        *_SUBJECT,
        "coalesce(c.generation, 0) AS lists_generation",
        "h.cache_hit",
        *(
            f"CASE WHEN h.cache_hit THEN c.{name} ELSE {built} END AS {name}_json"
            for name, built in _LISTS.items()
        ),
        "CASE WHEN h.cache_hit THEN c.as_of ELSE $1 END AS lists_as_of",
        f"CASE WHEN h.cache_hit THEN c.valid_until ELSE {_NEXT_CHANGE} END AS lists_valid_until",
        *(
            f"CASE WHEN s.kind = '{kind}' THEN {built} END AS {name}_json"
            for name, (kind, built) in RELATED.items()
        ),
    ]
)
_CACHE = " LEFT JOIN bureau_profile_cache c ON c.subject_id = s.id"


def _subjects(how: str, first: int) -> str:
    """FROM the subjects asked for, the identifiers' parameters numbered from ``first``.

    One identifier (every single-profile request) is asked with scalar parameters:
    PostgreSQL then settles on a generic plan after five runs of the prepared
    statement, while with arrays it plans every run, and planning the sub-selects
    costs more than running them.
    """
    a, b = f"${first}", f"${first + 1}"
    by_code = " JOIN subjects s ON s.credit_code = q.credit_code"
    by_document = (
        " JOIN subjects s ON s.document_type = q.document_type"
        " AND s.document_lookup = q.document_lookup"
    )
    return {
        "code": f" FROM (SELECT {a}::text AS credit_code) q{by_code}",
        "codes": f" FROM unnest({a}::text[]) AS q (credit_code){by_code}",
        "document": (
            f" FROM (SELECT {a}::text AS document_type, {b}::bytea AS document_lookup) q"
            f"{by_document}"
        ),
        "documents": (
            f" FROM unnest({a}::text[], {b}::bytea[]) AS q (document_type, document_lookup)"
            f"{by_document}"
        ),
    }[how]


HOW = ("code", "codes", "document", "documents")
# Whole profiles: $1 is the day of the read, then the identifiers.
PROFILES = {
    how: f"SELECT {_COLUMNS}{_subjects(how, 2)}{_CACHE}"
    f" CROSS JOIN LATERAL (SELECT coalesce({_HIT}, false) AS cache_hit) h"
    for how in HOW
}
# What a profile held by this process was built from, now: the subject's version and
# its lists' generation (registry/bureau/profile_memo.py). Two index probes and no
# sub-select, so a repeat costs PostgreSQL about what a point SELECT does; the
# statement above, even with its sub-selects skipped, costs twice that to start.
CURRENT = {
    how: "SELECT s.id, s.kind, s.credit_code, s.document_type, s.document_lookup, s.version,"
    f" coalesce(c.generation, 0) AS generation{_subjects(how, 1)}{_CACHE}"
    for how in HOW
}

# Building lists ahead of lookups (registry/bureau/profile_warmer.py). ``DUE``: up to $2
# subjects whose lists are missing or ran out by day $1 (two partial indexes,
# schema/0007_bureau_profile_warming.sql).
DUE = (
    "SELECT c.subject_id FROM bureau_profile_cache c"
    " WHERE (c.records IS NULL OR c.valid_until <= $1)"
    " AND EXISTS (SELECT 1 FROM subjects s WHERE s.id = c.subject_id) LIMIT $2"
)
_INTO_CACHE = (
    "INSERT INTO bureau_profile_cache AS c"
    " (subject_id, generation, as_of, valid_until, affiliations, records, listings)"
)
# Lists are stored only in a row whose generation is still the one the statement that
# built them read (schema/0005_bureau_profile_cache.sql, rule 2).
_IF_SAME_GENERATION = (
    " ON CONFLICT (subject_id) DO UPDATE SET as_of = excluded.as_of,"
    " valid_until = excluded.valid_until, affiliations = excluded.affiliations,"
    " records = excluded.records, listings = excluded.listings"
    " WHERE c.generation = excluded.generation"
)
# A lookup's fill (registry/bureau/profile_cache.py): lists built by ``PROFILES``, one
# array per column, one row per subject, in subject order.
FILL = (
    f"{_INTO_CACHE} SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::date[], $4::date[],"  # noqa: S608
    f" $5::bytea[], $6::bytea[], $7::bytea[]){_IF_SAME_GENERATION}"
)
# ``WARM``: the lists of subjects $2 for day $1, built and stored in one statement. A
# write that commits meanwhile bumps the generation (its trigger holds the row's lock
# until then), so the upsert, which waits for that lock, then finds a generation other
# than the one its snapshot read and stores nothing: lists built from before a write
# are never kept.
WARM = (
    f"{_INTO_CACHE} SELECT s.id, k.generation, $1, {_NEXT_CHANGE},"  # noqa: S608 - fixed names
    f" {_LISTS['affiliations']}, {_LISTS['records']}, {_LISTS['listings']}"
    " FROM unnest($2::uuid[]) AS q (id) JOIN subjects s ON s.id = q.id"
    f" JOIN bureau_profile_cache k ON k.subject_id = s.id ORDER BY s.id{_IF_SAME_GENERATION}"
)
