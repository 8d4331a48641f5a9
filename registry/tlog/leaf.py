"""The audit log's leaf format and the commitment to a stored object (pure).

A leaf is canonical JSON (sorted keys, no whitespace, UTF-8, integers only):

    {"action":…,"actor":…,"commitment":hex,"index":n,"object":"type/id","time":…,"v":1}

It carries no personal data, so the whole log can be public. ``commitment`` is
SHA-256(salt ‖ body) where ``body`` is the canonical JSON of the full stored
row and ``salt`` 16 random bytes kept beside it: the salt stops anyone from
confirming a guessed document number against the public log, while the stored
row stays bound to the leaf.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec

LEAF_VERSION = 1
SALT_BYTES = 16


class Leaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: int
    index: int
    time: str
    actor: str
    action: str
    object: str
    commitment: str


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact, UTF-8 (RFC 8785 style, no floats)."""
    return msgspec.json.encode(value, order="sorted")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one time format inside signed data."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audited data; use Decimal or integers")
    raise TypeError(f"couldn't encode {type(value).__name__} in an audited object")


# Columns added to an audited table after rows were already audited: left out of the
# body while NULL, so a row written before the column existed (its stored body has no
# such key) still equals its audited version, and ``registry log verify`` keeps holding
# on an upgraded database. A non-NULL value is committed like any other column.
LATE_COLUMNS: frozenset[str] = frozenset({
    "authority_code",  # api_tokens, schema/0008_authorities.sql
    "birth_date_cipher",  # subjects, schema/0011_practitioner_birth_dates.sql
})


# Columns derived from the record, never part of it: always left out of the body. They
# may be recomputed at will, without a leaf (set NULL and run `registry migrate`).
DERIVED_COLUMNS: frozenset[str] = frozenset({
    "search_text",  # subjects, schema/0013_subject_search.sql (registry/search.py)
    "search_number",  # credit_records, schema/0017_record_search.sql (registry/search.py)
})


def object_body(row: Any) -> bytes:
    """Canonical bytes of a stored row as the database returns it, less its ``log_index``
    and its derived columns.

    The leaf's own index binds the row's position in the log, so the body can be
    committed to before the index is known.
    """
    return canonical_json({
        k: _plain(v) for k, v in row.items()
        if k != "log_index" and k not in DERIVED_COLUMNS
        and not (v is None and k in LATE_COLUMNS)
    })


def commitment(salt: bytes, body: bytes) -> str:
    return hashlib.sha256(salt + body).hexdigest()


def encode_leaf(
    *, index: int, time: datetime, actor: str, action: str, object_ref: str, commit: str
) -> bytes:
    leaf = Leaf(
        v=LEAF_VERSION,
        index=index,
        time=format_time(time),
        actor=actor,
        action=action,
        object=object_ref,
        commitment=commit,
    )
    return canonical_json(leaf)


def decode_leaf(data: bytes) -> Leaf:
    leaf = msgspec.json.decode(data, type=Leaf)
    if canonical_json(leaf) != data:
        raise ValueError("leaf bytes are not in canonical form")
    return leaf
