"""Check 5 of ``registry log verify``: each audited row is exactly its latest audited version.

The rule is ``leaf.object_body`` over the row as ``SELECT *`` returns it through
asyncpg (what writers commit to). Applied to every row of a large table it is
slow: asyncpg builds a UUID, a date, a datetime or a Decimal per column and
``_plain`` turns each back into text, about 60 µs a row. So a table is read
with a query that asks PostgreSQL for its columns in text forms (``_FORMS``),
beside each row its stored object's body and whether that object is the row's;
the body is built from the text forms (a msgspec struct with the keys in
canonical order: no per-column object, no dict, no sort) and compared.

Why that is the same check:

- a text form is taken as is only where it is what ``_plain`` writes for that
  value, and a converter accepts only text it knows (tests/test_log_verify.py
  checks both over edge values); anything else (a BC or infinite date, a year
  before 1000, a session time zone other than UTC) either raises ``_Inexact`` or
  can only differ, and that row is then checked the exact way;
- so every difference is confirmed the exact way (``_exact_problem``: the
  original per-row checks over ``SELECT *``) before it counts: the fast form can
  make a run slower, never report damage that is not there, nor miss any;
- that rows are their objects' latest versions and no object lost its row is
  one comparison of sums (``_latest_weight``), the join that names a difference
  only when the sums differ;
- a table with a column type missing from ``_FORMS`` is checked the exact way
  throughout (``_check_table_exact``, the original chunked scan).

The work is cut into units (``Tables.units``): a table, or a range of log
indexes of a table indexed on log_index, and the latest-version sums. verify.py
has them taken by a second process (``serve``) and by itself; ``finish`` then
gives each table's verdict in table order. The first difference is the original
one: within a table, the failing row of the smallest id (the original scan read
in id order), with its own first failing check; then the table's lost rows.
"""

from __future__ import annotations

import asyncio
import re
import sys
from base64 import b64encode
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Any

import asyncpg
import msgspec

from registry.db.audit import TABLE_OF
from registry.db.types import Conn
from registry.tlog.ahead import Ahead
from registry.tlog.leaf import DERIVED_COLUMNS, LATE_COLUMNS, canonical_json, object_body

# Audited table -> the ``object_type`` its leaves name. Every table listed here
# has a uuid ``id`` and a ``log_index`` column naming the leaf of its current
# version. A new audited table is one line in db/audit.py TABLE_OF.
AUDITED_TABLES: dict[str, str] = {table: object_type for object_type, table in TABLE_OF.items()}

Progress = Callable[[str, int, int], None]
Opener = Callable[[], Awaitable[Conn]]

# Set (SET LOCAL) for the transaction that runs these checks: the time zone and date
# style the text forms below assume; memory for hashes; index lookups priced as reads
# from memory, so that a small table is joined to tlog_objects by lookups instead of
# by reading all of it; no parallel workers, which on a small machine only take cores
# from the other stream verify reads meanwhile.
SESSION = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "work_mem": "64MB",
    "random_page_cost": "1.1",
    "max_parallel_workers_per_gather": "0",
}

# Rows checked between two turns of the event loop, so that a stream read on
# another connection keeps being received while this one computes.
YIELD_EVERY = 128


class RowDifference(Exception):
    """A row of an audited table differs from its audited version; the message says how."""


class _Inexact(ValueError):
    """A text form the fast path does not know: check this row the exact way."""


# DateStyle ISO in time zone UTC; years 1000-9999, for which format_time's %Y has 4 digits.
_TIME = re.compile(r"([1-9]\d{3}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00").fullmatch


def _utc_time(text: str) -> str:
    """``leaf.format_time`` of a timestamptz PostgreSQL printed in ISO, time zone UTC."""
    # Whole seconds, the common case: "2024-05-01 08:00:00+00" (22 characters only so).
    if len(text) == 22 and text[19:] == "+00" and text[0] != "0":
        return f"{text[:10]}T{text[11:19]}.000000Z"
    match = _TIME(text)
    if match is None:
        raise _Inexact(text)
    return f"{match[1]}T{match[2]}.{(match[3] or '').ljust(6, '0')}Z"


def _numeric(text: str) -> str:
    """``str(Decimal)`` of a numeric (asyncpg keeps the scale PostgreSQL prints).

    PostgreSQL prints plain digits; str(Decimal) prints the same digits except below
    1e-6 in magnitude (or a zero of more than 6 places), where it turns to exponents.
    """
    return str(Decimal(text)) if "0.000000" in text[:9] else text


def _base64(value: bytes) -> str:
    return b64encode(value).decode()


# Column type (regtype) -> (select-list expression, converter of what asyncpg returns
# for it into leaf._plain's form, None when it already is that: str, int, bool, lists
# of str). Types not listed make their table use the exact path.
_FORMS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "text": ("{0}", None),
    "character varying": ("{0}", None),
    "uuid": ("{0}::text", None),
    "smallint": ("{0}", None),
    "integer": ("{0}", None),
    "bigint": ("{0}", None),
    "boolean": ("{0}", None),
    # An AD date of years 1-9999 prints as date.isoformat() does; any other (BC,
    # infinite) is marked so that it can only differ, and is then checked the exact way.
    "date": ("CASE WHEN {0} BETWEEN '0001-01-01' AND '9999-12-31' THEN {0}::text"
             " ELSE '!' || {0}::text END", None),
    "timestamp with time zone": ("{0}::text", _utc_time),
    "numeric": ("{0}::text", _numeric),
    "bytea": ("{0}", _base64),
    "text[]": ("{0}", None),
    "character varying[]": ("{0}", None),
    "uuid[]": ("{0}::text[]", None),
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_type(keys: Sequence[str]) -> type[msgspec.Struct]:
    """A struct whose JSON is the object of ``keys`` in this order: positional fields
    f0, f1… renamed to the keys (any column name works). Encoding it skips the dict a
    body would otherwise be built in, and the sort; half the cost of a row."""
    fields = [f"f{i}" for i in range(len(keys))]
    return msgspec.defstruct("Body", fields, rename=dict(zip(fields, keys, strict=True)))


@dataclass(frozen=True)
class TablePlan:
    """How the fast path reads one audited table: its query and how to build the body."""

    table: str
    object_type: str
    sql: str
    keys: tuple[str, ...]  # body keys in canonical (sorted) order, as selected
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # by position in ``keys``
    late: tuple[int, ...]  # positions of LATE_COLUMNS: left out of the body while NULL
    id_at: int  # position of ``id``
    row: type[msgspec.Struct]
    # Row types without some late columns, made when first met.
    shorter: dict[tuple[int, ...], type[msgspec.Struct]] = field(default_factory=dict)


def plan_table(table: str, object_type: str, columns: list[tuple[str, str]]) -> TablePlan | None:
    """The fast plan for ``table`` with ``columns`` (name, regtype) as ``SELECT *`` returns
    them, or None if a column type has no text form here."""
    body = sorted(
        (name, kind) for name, kind in columns
        if name != "log_index" and name not in DERIVED_COLUMNS
    )
    if any(kind not in _FORMS for _, kind in body) or "id" not in dict(body):
        return None
    keys = tuple(name for name, _ in body)
    row = _row_type(keys)
    # The select list is in sorted key order, so the body is encoded in that order.
    # Holds only if canonical_json sorts these keys as sorted() does: checked here.
    probe = range(len(keys))
    if _ENCODE(row(*probe)) != canonical_json(dict(zip(keys, probe, strict=True))):
        return None
    exprs = ", ".join(_FORMS[kind][0].format(f"t.{_quote(name)}") for name, kind in body)
    # In no order: the first difference is the smallest failing id, whatever the order
    # rows come in, and the planner is free to merge join along both log_index indexes
    # (a large table) or look each object up (a small one).
    # ``mine``: the stored object is this row's (NULL when there is none); $1 is
    # ``object_type``. Anything else about a row that differs is read the exact way.
    sql = (
        f"SELECT {exprs}, t.log_index,"  # noqa: S608 - names from the catalog
        " o.object_type = $1 AND o.object_id = t.id::text AS mine, o.body"
        f" FROM {_quote(table)} t LEFT JOIN tlog_objects o ON o.log_index = t.log_index"
    )
    converters = tuple(
        (i, convert) for i, (_, kind) in enumerate(body) if (convert := _FORMS[kind][1])
    )
    late = tuple(i for i, name in enumerate(keys) if name in LATE_COLUMNS)
    return TablePlan(table, object_type, sql, keys, converters, late, keys.index("id"), row)


_ENCODE = msgspec.json.Encoder().encode


def fast_body(plan: TablePlan, record: Any) -> bytes:
    """The canonical body of ``record`` (a row of ``plan.sql``); ``_Inexact`` if a value
    is not in a known form."""
    values = list(record[: len(plan.keys)])
    for i, convert in plan.converters:
        value = values[i]
        if value is not None:
            values[i] = convert(value)
    if plan.late:
        left_out = tuple(i for i in plan.late if values[i] is None)
        if left_out:
            row = plan.shorter.get(left_out)
            if row is None:
                keys = [key for i, key in enumerate(plan.keys) if i not in left_out]
                row = plan.shorter[left_out] = _row_type(keys)
            return _ENCODE(row(*[v for i, v in enumerate(values) if i not in left_out]))
    return _ENCODE(plan.row(*values))


async def _columns(conn: Conn, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT attname, atttypid::regtype::text AS kind FROM pg_attribute"
        " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        table,
    )
    return [(r["attname"], r["kind"]) for r in rows]


def _problem(
    object_type: str,
    object_id: str,
    index: int,
    version: tuple[str, str] | None,
    same_body: bool,
    latest: int | None,
) -> str | None:
    """The original per-row checks, in their order; None if the row is its latest version."""
    name = f"{object_type} {object_id}"
    if version is None:
        return f"{name}: its log index {index} holds no stored object"
    if version != (object_type, object_id):
        return (
            f"{name}: log index {index} is the audited version of "
            f"{version[0]}/{version[1]}, not of this row"
        )
    if not same_body:
        return f"{name}: row differs from its audited version at log index {index}"
    if latest != index:
        return (
            f"{name}: row is the version at log index {index} but the latest "
            f"audited version is at log index {latest}"
        )
    return None


# Log indexes per unit of work in a table with an index on log_index: small enough
# that the two workers finish together, large enough that a query's start is noise.
UNIT = 65_536


@dataclass(frozen=True)
class Unit:
    """A share of check 5, done by whichever worker takes it first: the rows of one
    table with ``low <= log_index < high`` (None: unbounded), or with ``latest`` the
    weight of the table's objects' latest versions (``_latest_weight``)."""

    table: int  # position in AUDITED_TABLES
    low: int | None = None
    high: int | None = None
    latest: bool = False


@dataclass(frozen=True)
class Share:
    """What a unit found."""

    table: int
    done: int  # rows read; the exact path: rows before its first difference
    weight: int  # sum of (log_index + 1) over the rows that pass the first three checks
    first: tuple[str, str] | None  # (id, problem) of the smallest failing id
    latest: int | None = None  # a ``latest`` unit's weight


# An index (valid, not partial, on the column alone first) whose first column is $2.
_LEADING = (
    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a"
    " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
    " WHERE i.indrelid = $1::regclass AND a.attname = $2 AND i.indisvalid"
    " AND i.indexprs IS NULL AND i.indpred IS NULL{})"
)


@dataclass(frozen=True)
class Tables:
    """The audited tables as this snapshot has them: columns (regtype); whether an index
    leads with log_index (then a table is read in ranges); whether ``id`` is unique
    (``_latest_weight``; pg_index is read in the transaction's snapshot, so an index
    made after it does not count); and estimated row counts, for progress only."""

    columns: list[list[tuple[str, str]]]
    ranged: list[bool]
    unique: list[bool]
    totals: list[int]

    @classmethod
    async def read(cls, conn: Conn) -> Tables:
        columns, ranged, unique, totals = [], [], [], []
        for table in AUDITED_TABLES:
            name = _quote(table)
            columns.append(await _columns(conn, table))
            ranged.append(bool(await conn.fetchval(_LEADING.format(""), name, "log_index")))
            unique.append(bool(await conn.fetchval(
                _LEADING.format(" AND i.indisunique AND i.indnkeyatts = 1"), name, "id")))
            totals.append(max(0, int(await conn.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", name))))
        return cls(columns, ranged, unique, totals)

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "ranged": self.ranged, "unique": self.unique,
                "totals": self.totals}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tables:
        return cls(
            [[(name, kind) for name, kind in table] for table in data["columns"]],
            list(data["ranged"]),
            list(data["unique"]),
            list(data["totals"]),
        )

    def plans(self) -> list[TablePlan | None]:
        """Per table, its fast plan, or None: checked the exact way."""
        return [
            plan_table(table, object_type, columns)
            for (table, object_type), columns in zip(AUDITED_TABLES.items(), self.columns,
                                                     strict=True)
        ]

    def units(self, plans: list[TablePlan | None], leaves: int) -> list[Unit]:
        """The work: first the latest-version weights of the tables that have them, then
        the rows in table order, a ranged table in UNIT-wide ranges of log indexes (open
        at both ends, so that no row escapes whatever its index), any other whole."""
        units = [Unit(number, latest=True) for number, plan in enumerate(plans)
                 if plan is not None and self.unique[number]]
        for number, plan in enumerate(plans):
            cuts: list[int | None] = [None]
            if plan is not None and self.ranged[number]:
                cuts += list(range(UNIT, leaves, UNIT))
            cuts.append(None)
            units += [Unit(number, low, high) for low, high in pairwise(cuts)]
        return units


class Pending:
    """The units not yet taken, shared by the workers of one run (one event loop)."""

    def __init__(self, units: list[Unit]) -> None:
        self._units = list(reversed(units))

    def take(self) -> Unit | None:
        return self._units.pop() if self._units else None


async def work(
    conn: Conn,
    plans: list[TablePlan | None],
    pending: Pending,
    chunk: int,
    shares: list[Share],
    rows: Callable[[int, int], None],
    lookups: Opener | None = None,
) -> None:
    """Check units taken from ``pending`` until none is left; ``rows(table, n)`` after each
    batch of n rows. Given ``lookups``, which opens another connection in the same
    snapshot (once, when first needed), a table is read a batch ahead and single rows
    are looked up on that other connection."""
    opened: list[Conn] = []

    async def lookup() -> Conn:
        if lookups is None:
            return conn
        if not opened:
            opened.append(await lookups())
        return opened[0]

    while (unit := pending.take()) is not None:
        plan = plans[unit.table]
        if unit.latest:
            _, object_type = list(AUDITED_TABLES.items())[unit.table]
            shares.append(Share(unit.table, 0, 0, None, await _latest_weight(conn, object_type)))
        elif plan is None:
            table, object_type = list(AUDITED_TABLES.items())[unit.table]
            shares.append(await _check_table_exact(conn, unit.table, table, object_type, chunk,
                                                   rows))
        else:
            shares.append(await _check_unit(conn, plan, unit, chunk, rows, lookup,
                                            lookups is not None))


async def finish(
    conn: Conn, plans: list[TablePlan | None], shares: list[Share], count: list[int]
) -> None:
    """Once every unit is checked: each table's verdict, in table order; raises
    ``RowDifference`` at the first difference. ``count[0]`` is the number of rows
    checked, as the original scan counted them (rows of earlier tables, then this
    table's rows in id order before the first difference)."""
    for number, (table, object_type) in enumerate(AUDITED_TABLES.items()):
        mine = [share for share in shares if share.table == number]
        firsts = [share.first for share in mine if share.first is not None]
        first = min(firsts) if firsts else None
        done = sum(share.done for share in mine)
        if plans[number] is None:  # the exact scan: one unit, in id order
            if first is not None:
                count[0] += done
                raise RowDifference(first[1])
            count[0] += done
            await _check_orphans(conn, table, object_type)
            continue
        weight = sum(share.weight for share in mine)
        latests = [share.latest for share in mine if share.latest is not None]
        # Every row a version of its own object, ids unique, and the weights equal: every
        # row is its object's latest version and no object lost its row (_latest_weight).
        at_latest = None if first is not None or not latests else latests[0] == weight
        if at_latest:
            count[0] += done
            continue
        # Something differs: find the smallest id failing the latest-version check, or
        # the first object that lost its row, the way the original check named them.
        latest = await conn.fetchrow(
            # Canonical uuid text in byte order is uuid order (there is no min(uuid)).
            'SELECT min(t.id COLLATE "C") AS first,'  # noqa: S608 - name from TABLE_OF
            " count(*) FILTER (WHERE t.id IS NULL) AS orphans"
            " FROM (SELECT object_id, max(log_index) AS latest FROM tlog_objects"
            " WHERE object_type = $1 GROUP BY object_id) l"
            f" FULL JOIN (SELECT id::text AS id, log_index FROM {_quote(table)}) t"
            " ON t.id = l.object_id WHERE l.latest IS DISTINCT FROM t.log_index",
            object_type,
        )
        if latest is not None and latest["first"] is not None:
            object_id = str(latest["first"])
            if first is None or object_id < first[0]:
                problem = await _exact_problem(conn, table, object_type, object_id)
                if problem is None:
                    raise RuntimeError(f"couldn't find the difference found in {table} {object_id}")
                first = (object_id, problem)
        if first is not None:
            count[0] += int(await conn.fetchval(
                f"SELECT count(*) FROM {_quote(table)} WHERE id < $1::uuid", first[0]))  # noqa: S608
            raise RowDifference(first[1])
        count[0] += done
        if latest is not None and latest["orphans"]:
            await _check_orphans(conn, table, object_type)
        if at_latest is not None:  # the sums differed, yet nothing was found
            raise RuntimeError(f"couldn't name the difference found in {table}")


async def _batches(
    conn: Conn, sql: str, args: list[Any], chunk: int
) -> AsyncGenerator[list[Any], None]:
    cursor = await conn.cursor(sql, *args)
    while rows := await cursor.fetch(chunk):
        yield rows


async def _check_unit(
    conn: Conn,
    plan: TablePlan,
    unit: Unit,
    chunk: int,
    rows_done: Callable[[int, int], None],
    lookup: Callable[[], Awaitable[Conn]],
    ahead: bool,
) -> Share:
    """The first three checks for the rows of ``unit``; the fourth (latest version, no
    object without its row) is ``finish``'s, from the weights."""
    table, object_type = plan.table, plan.object_type
    first: tuple[str, str] | None = None
    weight = done = 0
    k = len(plan.keys)
    args: list[Any] = [object_type]
    where = []
    if unit.low is not None:
        args.append(unit.low)
        where.append(f"t.log_index >= ${len(args)}")
    if unit.high is not None:
        args.append(unit.high)
        where.append(f"t.log_index < ${len(args)}")
    sql = plan.sql + (" WHERE " + " AND ".join(where) if where else "")
    batches = _batches(conn, sql, args, chunk)
    source: Ahead[list[Any]] | AsyncGenerator[list[Any], None] = (
        Ahead(batches) if ahead else batches
    )
    try:
        async for rows in source:
            for part in range(0, len(rows), YIELD_EVERY):
                for record in rows[part:part + YIELD_EVERY]:
                    index, mine, stored = record[k:]
                    try:
                        same = mine and fast_body(plan, record) == stored
                    except _Inexact:
                        same = False
                    if same:
                        weight += index + 1
                        continue
                    object_id = record[plan.id_at]
                    if first is not None and object_id >= first[0]:
                        continue  # an earlier id already differs
                    problem = await _exact_problem(await lookup(), table, object_type, object_id)
                    if problem is None:  # a text form the fast path does not know
                        weight += index + 1
                    else:
                        first = (object_id, problem)
                await asyncio.sleep(0)  # let the next batch and the leaves be received
            done += len(rows)
            rows_done(unit.table, len(rows))
    finally:
        if isinstance(source, Ahead):
            await source.stop()
    return Share(unit.table, done, weight, first)


async def _latest_weight(conn: Conn, object_type: str) -> int:
    """The sum of (index + 1) over the latest versions of the objects of ``object_type``.

    With every row a version of its own object (the first three checks) and ids
    unique (Tables.unique), each row's index is at most its object's latest, so the
    rows' weight is at most this one, and equal only if every row is at the latest
    version and every object has a row (each term is at least 1). The sum replaces a
    join of the table with the latest versions, which took longer than reading the
    table; when the weights differ, ``finish`` does the join to name the difference.
    """
    weight = await conn.fetchval(
        "SELECT coalesce(sum(latest + 1), 0) FROM (SELECT max(log_index) AS latest"
        " FROM tlog_objects WHERE object_type = $1 GROUP BY object_id) l",
        object_type,
    )
    return int(weight)


async def _exact_problem(
    conn: Conn, table: str, object_type: str, object_id: str
) -> str | None:
    """The original checks of one row, read with ``SELECT *``: its problem, or None."""
    row = await conn.fetchrow(f"SELECT * FROM {_quote(table)} WHERE id = $1::uuid", object_id)  # noqa: S608
    if row is None:
        raise RuntimeError(f"couldn't read back {table} row {object_id}")
    index = row["log_index"]
    found = await conn.fetchrow(
        "SELECT object_type, object_id, body FROM tlog_objects WHERE log_index = $1", index
    )
    latest = await conn.fetchval(
        "SELECT max(log_index) FROM tlog_objects WHERE object_type = $1 AND object_id = $2",
        object_type,
        object_id,
    )
    version = None if found is None else (found["object_type"], found["object_id"])
    same = (
        found is not None and version == (object_type, object_id)
        and object_body(row) == bytes(found["body"])
    )
    return _problem(object_type, object_id, index, version, same, latest)


async def _check_orphans(conn: Conn, table: str, object_type: str) -> None:
    orphan = await conn.fetchrow(
        "SELECT o.object_id, max(o.log_index) AS idx FROM tlog_objects o"  # noqa: S608 - name from TABLE_OF
        f" WHERE o.object_type = $1 AND NOT EXISTS (SELECT 1 FROM {_quote(table)} t"
        " WHERE t.id::text = o.object_id) GROUP BY o.object_id ORDER BY idx LIMIT 1",
        object_type,
    )
    if orphan is not None:
        raise RowDifference(
            f"{object_type} {orphan['object_id']}: audited at log index {orphan['idx']} "
            f"but its row is missing from {table}"
        )


async def _check_table_exact(
    conn: Conn,
    number: int,
    table: str,
    object_type: str,
    chunk: int,
    rows_done: Callable[[int, int], None],
) -> Share:
    """The original scan: ``SELECT *`` in id order and ``object_body`` for every row, up
    to the first difference (the rows before it are ``done``)."""
    quoted = _quote(table)
    first_sql = f"SELECT * FROM {quoted} ORDER BY id LIMIT $1"  # noqa: S608
    next_sql = f"SELECT * FROM {quoted} WHERE id > $1 ORDER BY id LIMIT $2"  # noqa: S608
    last: Any = None
    done = 0
    while True:
        if last is None:
            rows = await conn.fetch(first_sql, chunk)
        else:
            rows = await conn.fetch(next_sql, last, chunk)
        if not rows:
            break
        last = rows[-1]["id"]
        ids = [str(r["id"]) for r in rows]
        stored = {
            r["log_index"]: r
            for r in await conn.fetch(
                "SELECT log_index, object_type, object_id, body FROM tlog_objects"
                " WHERE log_index = ANY($1::bigint[])",
                [r["log_index"] for r in rows],
            )
        }
        latest = {
            r["object_id"]: r["latest"]
            for r in await conn.fetch(
                "SELECT object_id, max(log_index) AS latest FROM tlog_objects"
                " WHERE object_type = $1 AND object_id = ANY($2::text[]) GROUP BY object_id",
                object_type,
                ids,
            )
        }
        for row, object_id in zip(rows, ids, strict=True):
            index = row["log_index"]
            found = stored.get(index)
            version = None if found is None else (found["object_type"], found["object_id"])
            same = (
                found is not None and version == (object_type, object_id)
                and object_body(row) == bytes(found["body"])
            )
            problem = _problem(object_type, object_id, index, version, same,
                               latest.get(object_id))
            if problem is not None:
                return Share(number, done, 0, (object_id, problem))
            done += 1
        rows_done(number, len(rows))
        await asyncio.sleep(0)
    return Share(number, done, 0, None)


async def set_session(conn: Conn, values: dict[str, str] = SESSION) -> None:
    """SET LOCAL ``values`` (by default SESSION) in the connection's open transaction."""
    for name, value in values.items():
        await conn.execute("SELECT set_config($1, $2, true)", name, value)


async def get_session(conn: Conn) -> dict[str, str]:
    """The current values of the SESSION settings, to put back with ``set_session``."""
    return {name: await conn.fetchval("SELECT current_setting($1)", name) for name in SESSION}


async def serve(request: dict[str, Any]) -> None:
    """Check 5's units in a process of its own (``python -m registry.tlog.verify_rows``),
    so that it computes on another core than checks 1-4.

    verify.py starts it once it has exported its snapshot and keeps that transaction
    open until this process is done: it reads in the same snapshot. It asks for a
    unit ({"want"}), checks it (saying {"rows": [table, n]} after each batch),
    answers {"share": …}, and again, until told {"stop"}.
    """
    tables = Tables.from_json(request["tables"])
    plans = tables.plans()
    chunk = int(request["chunk"])
    async with AsyncExitStack() as stack:

        async def connect() -> Conn:
            conn = await asyncpg.connect(request["dsn"])
            stack.push_async_callback(conn.close)
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
            # The first statement of the transaction; the parent checked the id's form.
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{request['snapshot']}'")
            await set_session(conn)
            return conn

        opened: list[Conn] = []

        async def lookups() -> Conn:  # one for all units, opened if ever needed
            if not opened:
                opened.append(await connect())
            return opened[0]

        conn = await connect()
        while True:
            _say({"want": True})
            answer = msgspec.json.decode(await asyncio.to_thread(sys.stdin.buffer.readline))
            if "unit" not in answer:
                break
            shares: list[Share] = []
            await work(conn, plans, Pending([Unit(*answer["unit"])]), chunk, shares,
                       lambda table, n: _say({"rows": [table, n]}), lookups)
            share = shares[0]
            _say({"share": [share.table, share.done, share.weight, share.first, share.latest]})
    _say({"done": True})


def _say(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(message) + b"\n")
    sys.stdout.flush()


def main() -> None:
    """Reads {"dsn", "snapshot", "chunk", "tables"} as the first JSON line on stdin (a URL
    may hold a password: never an argument), then answers as ``serve`` says; on an
    error, {"error": …} and exit status 1."""
    request = msgspec.json.decode(sys.stdin.buffer.readline())
    try:
        asyncio.run(serve(request))
    except Exception as error:  # the parent raises it
        _say({"error": f"{type(error).__name__}: {error}"})
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
