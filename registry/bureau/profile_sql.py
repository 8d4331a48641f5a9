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

Parameters: ``$1`` is the day of the read; then the identifiers, each with the
generation of the lists the process already holds for it (``known``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import get_args, get_type_hints

import msgspec

from registry.bureau.views import BureauAffiliation, BureauListing, BureauRecord, BureauSubject


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


# The visibility rules are views.record_visible and views.listing_visible, in SQL.
_VISIBLE_RECORDS = (
    "credit_records WHERE subject_id = s.id AND status = 'published'"
    " AND publicity_start <= $1 AND (publicity_end IS NULL OR publicity_end > $1)"
)
_VISIBLE_LISTINGS = (
    "blacklist_entries WHERE subject_id = s.id AND state = 'listed'"
    " AND (listed_on IS NULL OR listed_on <= $1)"
    " AND (planned_removal_on IS NULL OR planned_removal_on > $1)"
)
# The first day after $1 on which an item of the subject enters or leaves publicity:
# lists computed for $1 hold until then (NULL: until a write changes them).
_NEXT_CHANGE = (
    "(SELECT min(d) FROM ("
    " SELECT CASE WHEN publicity_start > $1 THEN publicity_start ELSE publicity_end END AS d"
    " FROM credit_records WHERE subject_id = s.id AND status = 'published'"
    " AND (publicity_start > $1 OR publicity_end > $1)"
    " UNION ALL"
    " SELECT CASE WHEN listed_on > $1 THEN listed_on ELSE planned_removal_on END"
    " FROM blacklist_entries WHERE subject_id = s.id AND state = 'listed'"
    " AND (listed_on > $1 OR planned_removal_on > $1)) b)"
)
_LISTS = {
    "affiliations": _json_list(
        BureauAffiliation, "affiliations WHERE practitioner_id = s.id", "x.valid_from, x.id"
    ),
    "records": _json_list(BureauRecord, _VISIBLE_RECORDS, "x.decision_date DESC, x.id DESC"),
    "listings": _json_list(BureauListing, _VISIBLE_LISTINGS, "x.id"),
}
_HIT = "c.records IS NOT NULL AND c.as_of <= $1 AND (c.valid_until IS NULL OR $1 < c.valid_until)"
# What the subject part is built from (views.SubjectReader), and how answers are matched.
_SUBJECT = [
    f"s.{name}" for name in BureauSubject.__struct_fields__ if name != "document_number"
] + ["s.document_cipher", "s.document_lookup"]
_COLUMNS = ", ".join(
    [
        *_SUBJECT,
        "coalesce(c.generation, 0) AS lists_generation",
        "h.cache_hit",
        "h.known",
        *(
            f"CASE WHEN h.known THEN NULL WHEN h.cache_hit THEN c.{name} ELSE {built} END"
            f" AS {name}_json"
            for name, built in _LISTS.items()
        ),
        "CASE WHEN h.cache_hit THEN c.as_of ELSE $1 END AS lists_as_of",
        "CASE WHEN h.known THEN NULL WHEN h.cache_hit THEN c.valid_until"
        f" ELSE {_NEXT_CHANGE} END AS lists_valid_until",
    ]
)
# ``q.known`` is the generation of the lists the asking process already holds
# (registry/bureau/profile_memo.py; -1 for none): if still current, no lists are sent.
_FROM = (
    " LEFT JOIN bureau_profile_cache c ON c.subject_id = s.id"
    f" CROSS JOIN LATERAL (SELECT coalesce({_HIT}, false) AS cache_hit,"
    " coalesce(c.generation, 0) = q.known AS known) h"
)

# One identifier (every single-profile request) is asked with scalar parameters:
# PostgreSQL then settles on a generic plan after five runs of the prepared
# statement, while with arrays it plans every run, and planning the sub-selects
# costs more than running them.
BY_CODE = (
    f"SELECT {_COLUMNS}"  # noqa: S608 - fixed names
    " FROM (SELECT $2::text AS credit_code, $3::bigint AS known) q"
    f" JOIN subjects s ON s.credit_code = q.credit_code{_FROM}"
)
BY_CODES = (
    f"SELECT {_COLUMNS}"  # noqa: S608 - fixed names
    " FROM unnest($2::text[], $3::bigint[]) AS q (credit_code, known)"
    f" JOIN subjects s ON s.credit_code = q.credit_code{_FROM}"
)
_DOCUMENT_JOIN = (
    " JOIN subjects s ON s.document_type = q.document_type"
    f" AND s.document_lookup = q.document_lookup{_FROM}"
)
BY_DOCUMENT = (
    f"SELECT {_COLUMNS}"  # noqa: S608 - fixed names
    " FROM (SELECT $2::text AS document_type, $3::bytea AS document_lookup,"
    f" $4::bigint AS known) q{_DOCUMENT_JOIN}"
)
BY_DOCUMENTS = (
    f"SELECT {_COLUMNS}"  # noqa: S608 - fixed names
    " FROM unnest($2::text[], $3::bytea[], $4::bigint[])"
    f" AS q (document_type, document_lookup, known){_DOCUMENT_JOIN}"
)
