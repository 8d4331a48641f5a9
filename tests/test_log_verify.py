"""`registry log verify` and the start-up check: a sound log passes, each tampering is named."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.bootstrap import open_services
from registry.errors import LogIntegrityError
from registry.identifiers import uscc_check_character
from registry.keys import LogKey
from registry.settings import Settings
from registry.tlog import verify, verify_rows
from registry.tlog.ahead import Ahead
from registry.tlog.integrator import sign_checkpoint
from registry.tlog.leaf import object_body
from registry.tlog.merkle import EMPTY_ROOT, leaf_hash, new_complete_nodes, root_naive
from registry.tlog.note import generate_signer_key, parse_signer_key
from registry.tlog.verify import VerifyReport, _node_ranges, _Tree, verify_log, verify_log_cli
from registry.tlog.verify_rows import fast_body, plan_table
from tests.credit_helpers import penalty, record
from tests.logcheck import append_tokens, assert_log_consistent, ensure_log, integrate_all

Client = AsyncTestClient[Litestar]


def credit_code(n: int) -> str:
    first17 = f"91630100MA{n:07d}"
    return first17 + uscc_check_character(first17)


async def create_firm(client: Client, headers: dict[str, str], n: int) -> dict[str, object]:
    response = await client.post(
        "/v1/subjects",
        json={"kind": "vc_firm", "name": f"測試創投{n}有限公司", "credit_code": credit_code(n)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
async def populated(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, settings: Settings
) -> dict[str, object]:
    """Leaf 0: the regulator's authority; 1: its token; 2-4: firms; 5: an update; 6-9 tokens;
    all integrated."""
    firms = [await create_firm(client, regulator, n) for n in range(1, 4)]
    changed = await client.patch(
        f"/v1/subjects/{firms[0]['id']}",
        json={"name": "改名創投有限公司", "version": 1},
        headers=regulator,
    )
    assert changed.status_code == 200, changed.text
    await append_tokens(db, 4)
    key = await ensure_log(db, settings)
    assert await integrate_all(db, key, settings.log_origin) == 10
    return {"firm": firms[1], "key": key}


def test_node_ranges_cover_exactly_the_nodes_each_leaf_completes() -> None:
    """The per-chunk node query asks for exactly the nodes completed inside the chunk."""
    for start in range(0, 40):
        for end in range(start, 70):
            levels, lows, highs = _node_ranges(start, end)
            asked = {(lv, k) for lv, lo, hi in zip(levels, lows, highs, strict=True)
                     for k in range(lo, hi)}
            want = {(lv, k) for lv in range(8) for k in range(70)
                    if start <= ((k + 1) << lv) - 1 < end}
            assert asked == want, (start, end)


async def test_fresh_log_verifies(db: asyncpg.Pool, settings: Settings) -> None:
    """An empty, initialised log verifies, as does one with leaves not yet integrated."""
    key = await ensure_log(db, settings)
    report = await assert_log_consistent(db)
    assert (report.size, report.leaves, report.root) == (0, 0, EMPTY_ROOT)
    await append_tokens(db, 3)
    report = await assert_log_consistent(db)
    assert (report.size, report.leaves) == (0, 3)
    await integrate_all(db, key, settings.log_origin)
    await assert_log_consistent(db, integrated=True, min_size=3)


async def test_populated_log_verifies_everything(populated: dict[str, object], db: asyncpg.Pool) -> None:
    """Every leaf, node, checkpoint and audited row is counted as checked."""
    report = await assert_log_consistent(db, integrated=True, min_size=10)
    assert report.leaves == 10
    assert report.nodes == 10 + 5 + 2 + 1  # complete nodes of a 10-leaf tree
    assert report.checkpoints >= 2
    assert report.rows == 3 + 5 + 1  # 3 subjects, 5 tokens, 1 authority


async def test_small_chunks_give_the_same_answer(populated: dict[str, object], db: asyncpg.Pool) -> None:
    """Chunk boundaries (leaves, nodes, checkpoints, rows) change nothing."""
    whole = await verify_log(db)
    for chunk in (1, 2, 3, 7):
        report = await verify_log(db, chunk=chunk)
        assert report.ok, report.first_difference
        assert (report.nodes, report.checkpoints, report.rows, report.root) == (
            whole.nodes, whole.checkpoints, whole.rows, whole.root)


TAMPERING = {
    "subject row edited": (
        "UPDATE subjects SET name = 'forged' WHERE credit_code = '{code}'",
        r"^subject {id}: row differs from its audited version at log index 3$",
    ),
    "stored object body edited": (
        "UPDATE tlog_objects SET body = body || ' '::bytea WHERE log_index = 6",
        r"^leaf 6: commitment does not match its stored object token/",
    ),
    "leaf deleted with its object": (
        "DELETE FROM tlog_objects WHERE log_index = 5; DELETE FROM tlog_leaves WHERE idx = 5",
        r"^leaf 5 missing",
    ),
    "last leaf deleted": (
        "DELETE FROM tlog_objects WHERE log_index = 9; DELETE FROM tlog_leaves WHERE idx = 9",
        r"^leaf 9 missing",
    ),
    "two leaves swapped": (
        "UPDATE tlog_leaves SET leaf = CASE idx WHEN 6 THEN (SELECT leaf FROM tlog_leaves"
        " WHERE idx = 7) ELSE (SELECT leaf FROM tlog_leaves WHERE idx = 6) END"
        " WHERE idx IN (6, 7)",
        r"^leaf 6: its bytes say index 7",
    ),
    "stored node changed": (
        "UPDATE tlog_nodes SET hash = sha256(hash) WHERE level = 1 AND idx = 2",
        r"^node \(1, 2\) differs",
    ),
    "stored node deleted": (
        "DELETE FROM tlog_nodes WHERE level = 2 AND idx = 1",
        r"^node \(2, 1\) is missing",
    ),
    "extra node stored": (
        "INSERT INTO tlog_nodes VALUES (3, 1, sha256('x'))",
        r"^node \(3, 1\) is stored but lies beyond",
    ),
    "head root changed": (
        "UPDATE tlog_head SET root = sha256(root)",
        r"^the head checkpoint's root differs from tlog_head's root at size 10$",
    ),
    "old checkpoint root changed": (
        "UPDATE tlog_checkpoints SET root = sha256(root) WHERE size = 0",
        r"^checkpoint at size 0: its signed text disagrees",
    ),
    "token row deleted": (
        "DELETE FROM api_tokens WHERE log_index = 8",
        r"^token [0-9a-f-]+: audited at log index 8 but its row is missing from api_tokens$",
    ),
    "token row edited": (
        "UPDATE api_tokens SET role = 'admin' WHERE log_index = 7",
        r"^token [0-9a-f-]+: row differs from its audited version at log index 7$",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_tampering_is_caught_and_named(
    case: str, populated: dict[str, object], db: asyncpg.Pool
) -> None:
    """Each direct edit of the database is reported as the first difference, by name."""
    sql, pattern = TAMPERING[case]
    firm = populated["firm"]
    assert isinstance(firm, dict)
    await db.execute(sql.format(code=firm["credit_code"]))
    report = await verify_log(db)
    assert not report.ok
    assert report.first_difference is not None
    assert re.search(pattern.format(id=firm["id"]), report.first_difference), (
        report.first_difference
    )


async def test_row_reverted_to_its_older_audited_version_is_caught(
    client: Client, populated: dict[str, object], db: asyncpg.Pool, regulator: dict[str, str]
) -> None:
    """A row put back to an older audited version matches that version but is not the latest."""
    firm = await create_firm(client, regulator, 50)
    stored = await db.fetchrow("SELECT * FROM subjects WHERE id = $1", firm["id"])
    assert stored is not None
    first = dict(stored)
    changed = await client.patch(
        f"/v1/subjects/{firm['id']}", json={"name": "新名", "version": 1}, headers=regulator
    )
    assert changed.status_code == 200
    await assert_log_consistent(db)
    columns = [c for c in first if c != "id"]
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    await db.execute(f"UPDATE subjects SET {sets} WHERE id = $1",  # noqa: S608
                     first["id"], *[first[c] for c in columns])
    report = await verify_log(db)
    assert report.first_difference == (
        f"subject {firm['id']}: row is the version at log index {first['log_index']} but the "
        f"latest audited version is at log index {changed.json()['log_index']}"
    )


async def test_head_signed_by_an_unknown_key_is_caught(
    populated: dict[str, object], db: asyncpg.Pool, settings: Settings
) -> None:
    """An attacker re-signing a forged head with their own key does not get past verify."""
    forger = parse_signer_key(generate_signer_key(settings.log_origin)[0])
    head = await db.fetchrow("SELECT size, root FROM tlog_head")
    assert head is not None
    forged_key = LogKey(forger, forger.public_key, forger.verifier_key())
    note = sign_checkpoint(forged_key, settings.log_origin, head["size"], head["root"])
    await db.execute("UPDATE tlog_head SET checkpoint = $1", note)
    report = await verify_log(db)
    assert report.first_difference is not None
    assert report.first_difference.startswith("the head checkpoint does not verify")


async def test_verify_cli_exit_codes(
    populated: dict[str, object], db: asyncpg.Pool, settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """0 and a summary when all holds; 1 and the first difference otherwise."""
    assert await verify_log_cli(db, settings) == 0
    assert "log OK: size 10" in capsys.readouterr().out
    await db.execute("UPDATE tlog_nodes SET hash = sha256(hash) WHERE level = 0 AND idx = 3")
    assert await verify_log_cli(db, settings) == 1
    assert "log DAMAGED: node (0, 3) differs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE tlog_head SET root = sha256(root)",
        "UPDATE tlog_nodes SET hash = sha256(hash) WHERE level = 3 AND idx = 0",
        "UPDATE tlog_leaves SET leaf = leaf || ' '::bytea WHERE idx = 9",
        "DELETE FROM tlog_objects WHERE log_index = 9; DELETE FROM tlog_leaves WHERE idx = 9",
    ],
    ids=["head root", "frontier node", "last leaf bytes", "last leaf deleted"],
)
async def test_app_refuses_to_start_on_a_tampered_log(
    sql: str, populated: dict[str, object], db: asyncpg.Pool, settings: Settings,
    database_url: str,
) -> None:
    """The start-up cross-check raises LogIntegrityError instead of serving a damaged log."""
    await db.execute(sql)
    with pytest.raises(LogIntegrityError):
        await open_services(settings, url=database_url)


# ---- The fast verify (issue 17): the same answers, whichever way it runs ----------------


async def report_in(
    way: tuple[str, int], db: asyncpg.Pool, url: str, monkeypatch: pytest.MonkeyPatch
) -> VerifyReport:
    """``verify_log`` run one of the ways it can run: on a pool (check 5 beside checks 1-4
    on a second connection), in a second process, on one connection in turn, or inside
    a transaction the caller opened; ``way`` is (how, leaves per batch)."""
    mode, chunk = way
    # Units of check 5 as wide as a batch: tables with an index on log_index (credit
    # records) are then read in several ranges, by whichever worker comes free.
    monkeypatch.setattr(verify_rows, "UNIT", chunk)
    if mode == "pool":
        return await verify_log(db, chunk=chunk)
    if mode == "process":
        monkeypatch.setattr(verify, "PROCESS_FROM", 0)
        return await verify_log(db, chunk=chunk, dsn=url)
    conn = await asyncpg.connect(url)
    try:
        if mode == "connection":
            return await verify_log(conn, chunk=chunk)
        async with conn.transaction():
            return await verify_log(conn, chunk=chunk)
    finally:
        await conn.close()


def summary(report: VerifyReport) -> tuple[object, ...]:
    return (report.first_difference, report.size, report.leaves, report.nodes,
            report.checkpoints, report.rows, report.root if report.ok else None)


# Chunks of 1 and 3 leaves put damage at the first, middle and last leaf of a batch, and
# every tree level across batch boundaries.
WAYS = [("pool", 1), ("pool", 3), ("pool", verify.CHUNK), ("connection", 3),
        ("transaction", 4), ("process", 3)]


@pytest.mark.parametrize("case", ["sound", *TAMPERING])
async def test_every_way_and_batch_size_gives_the_same_report(
    case: str, populated: dict[str, object], db: asyncpg.Pool, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first difference, and what was counted before it, do not depend on where a
    batch starts or on which connection or process found the damage."""
    if case != "sound":
        firm = populated["firm"]
        assert isinstance(firm, dict)
        await db.execute(TAMPERING[case][0].format(code=firm["credit_code"]))
    reports = {way: summary(await report_in(way, db, database_url, monkeypatch))
               for way in WAYS}
    first = reports[WAYS[0]]
    assert (first[0] is None) == (case == "sound"), first
    assert all(report == first for report in reports.values()), reports


@pytest.fixture
async def recorded(
    client: Client, populated: dict[str, object], regulator: dict[str, str], db: asyncpg.Pool,
    settings: Settings,
) -> list[dict[str, object]]:
    """The populated log and 8 credit records (a table read in log_index ranges), all
    integrated."""
    firm = populated["firm"]
    assert isinstance(firm, dict)
    records = [await record(client, regulator, penalty(str(firm["id"]), f"寧發改罰〔2026〕{n}號"))
               for n in range(1, 9)]
    key = populated["key"]
    assert isinstance(key, LogKey)
    await integrate_all(db, key, settings.log_origin)
    return records


RECORD_TAMPERING = {
    "sound": None,
    "facts edited": "UPDATE credit_records SET facts = facts || '。' WHERE id = '{third}'",
    "time moved a microsecond": "UPDATE credit_records SET updated_at = updated_at"
                                " + interval '1 microsecond' WHERE id = '{fifth}'",
    "index of another object": "UPDATE credit_records SET log_index = 2 WHERE id = '{last}'",
    "index beyond the log": "UPDATE credit_records SET log_index = 10000 WHERE id = '{third}'",
    "row deleted": "DELETE FROM credit_records WHERE id = '{fifth}'",
    "two rows edited": "UPDATE credit_records SET remarks = 'x' WHERE id IN ('{third}', '{last}')",
}


@pytest.mark.parametrize("case", list(RECORD_TAMPERING))
async def test_rows_read_in_ranges_give_the_same_report(
    case: str, recorded: list[dict[str, object]], db: asyncpg.Pool, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Credit records are read in log_index ranges shared between the second process (or
    connection) and the first one: the same first difference and counts every way."""
    ids = [str(r["id"]) for r in recorded]
    sql = RECORD_TAMPERING[case]
    if sql is not None:
        await db.execute(sql.format(third=ids[2], fifth=ids[4], last=ids[-1]))
    reports = {way: summary(await report_in(way, db, database_url, monkeypatch))
               for way in (("pool", 1), ("pool", 3), ("process", 2), ("connection", 5),
                           ("pool", verify.CHUNK))}
    first = reports[("pool", 1)]
    assert (first[0] is None) == (sql is None), first
    if sql is not None:
        assert str(first[0]).startswith("credit_record "), first
    assert all(report == first for report in reports.values()), reports


async def test_damage_to_the_tree_is_reported_before_damage_to_a_row_found_earlier(
    populated: dict[str, object], db: asyncpg.Pool, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Check 5 runs beside checks 1-4 and finishes first on a damaged row, but the
    report is the sequential one: the damaged last leaf, with no row counted."""
    firm = populated["firm"]
    assert isinstance(firm, dict)
    await db.execute("UPDATE subjects SET name = 'forged' WHERE id = $1", firm["id"])
    await db.execute("UPDATE tlog_leaves SET leaf = leaf || ' '::bytea WHERE idx = 9")
    for way in (("pool", 2), ("process", 2), ("connection", 2)):
        report = await report_in(way, db, database_url, monkeypatch)
        assert report.first_difference is not None
        assert report.first_difference.startswith("leaf 9: bytes are not a valid leaf"), way
        assert (report.leaves, report.rows) == (9, 0), way


async def test_the_smallest_damaged_id_is_named_whatever_check_finds_it(
    client: Client, populated: dict[str, object], db: asyncpg.Pool, regulator: dict[str, str],
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows are read in no particular order; the one reported is the one the original scan
    in id order met first, with that row's own first failing check, and the rows
    before it are counted."""
    firms = [await create_firm(client, regulator, n) for n in range(10, 16)]
    changed = await client.patch(
        f"/v1/subjects/{firms[0]['id']}", json={"name": "新名", "version": 1}, headers=regulator
    )
    assert changed.status_code == 200
    ids = sorted(str(f["id"]) for f in firms)
    # The largest id: its body differs; the smallest but one: reverted to an old index.
    await db.execute("UPDATE subjects SET name = 'forged' WHERE id = $1::uuid", ids[-1])
    old = await db.fetchval("SELECT min(log_index) FROM tlog_objects WHERE object_id = $1",
                            str(firms[0]["id"]))
    await db.execute("UPDATE subjects SET log_index = $2 WHERE id = $1::uuid",
                     str(firms[0]["id"]), old)
    reports = {way: await report_in(way, db, database_url, monkeypatch)
               for way in (("pool", 2), ("process", 5), ("connection", 100))}
    smaller = sorted([str(firms[0]["id"]), ids[-1]])[0]
    for report in reports.values():
        assert report.first_difference is not None
        assert report.first_difference.startswith(f"subject {smaller}: ")
        assert report.rows == await db.fetchval(  # subjects are the first audited table
            "SELECT count(*) FROM subjects WHERE id < $1::uuid", smaller)
    assert len({summary(r) for r in reports.values()}) == 1


async def test_a_column_type_without_a_text_form_is_checked_the_exact_way(
    populated: dict[str, object], db: asyncpg.Pool,
) -> None:
    """A column no text form covers sends its table down the original path, with the same
    verdict: here a column added outside a migration makes every row differ from its
    audited version."""
    async with db.acquire() as conn:
        assert plan_table("authorities", "authority",
                          await verify_rows._columns(conn, "authorities")) is not None
        await conn.execute("ALTER TABLE authorities ADD COLUMN pause interval")
        assert plan_table("authorities", "authority",
                          await verify_rows._columns(conn, "authorities")) is None
    report = await verify_log(db)
    assert report.first_difference is not None
    assert re.match(r"^authority [0-9a-f-]+: row differs from its audited version at log "
                    r"index 0$", report.first_difference), report.first_difference


async def test_every_audited_table_is_read_the_fast_way(db: asyncpg.Pool) -> None:
    """Each audited table's column types have text forms (a new type would silently make
    `registry log verify` slow again)."""
    async with db.acquire() as conn:
        for table, object_type in verify_rows.AUDITED_TABLES.items():
            columns = await verify_rows._columns(conn, table)
            assert plan_table(table, object_type, columns) is not None, (table, columns)


async def test_rows_process_that_cannot_connect_is_an_error_not_damage(
    populated: dict[str, object], db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If check 5's process fails, verify fails loudly instead of reporting the log sound."""
    monkeypatch.setattr(verify, "PROCESS_FROM", 0)
    with pytest.raises(RuntimeError, match="couldn't check the audited rows"):
        await verify_log(db, dsn="postgresql://nobody@127.0.0.1:1/none")


async def test_verify_in_a_callers_transaction_leaves_its_settings(
    populated: dict[str, object], database_url: str,
) -> None:
    """The settings check 5 needs are put back in a transaction verify did not open."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL TimeZone = 'Asia/Shanghai'")
            report = await verify_log(conn)
            assert report.ok, report.first_difference
            assert await conn.fetchval("SHOW TimeZone") == "Asia/Shanghai"
    finally:
        await conn.close()


async def test_read_ahead_hands_batches_over_in_order_and_stops_between_them() -> None:
    """Batches read ahead arrive in order, an error of the reader is raised to the checker,
    and stop() lets the batch in flight finish (cancelling a query would abort the
    snapshot's transaction) instead of cancelling it."""
    events: list[str] = []

    async def source() -> AsyncGenerator[int, None]:
        for i in range(3):
            events.append(f"start {i}")
            await asyncio.sleep(0.01)
            events.append(f"end {i}")
            yield i
        raise ValueError("the stream broke")

    ahead = Ahead(source())
    assert [await ahead.__anext__() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="the stream broke"):
        await ahead.__anext__()
    events.clear()
    ahead = Ahead(source())
    assert await ahead.__anext__() == 0
    await asyncio.sleep(0.005)  # the next batch is in flight
    await ahead.stop()
    assert events[-1].startswith("end"), events
    assert len([e for e in events if e.startswith("start")]) == len(
        [e for e in events if e.startswith("end")]), events


# ---- The batch tree against the reference -------------------------------------------


def test_batch_tree_gives_every_node_and_root_of_the_reference() -> None:
    """Grown a batch at a time from any sizes, the tree creates exactly the nodes
    new_complete_nodes creates, and its root at every size is the RFC's MTH."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    for sizes in ([1] * 40, [3, 5, 7, 1, 16, 2], [64, 64, 1, 63], [300], [2, 1, 4, 9, 30, 17]):
        tree, done = _Tree(), 0
        nodes: dict[tuple[int, int], bytes] = {}
        for size in sizes:
            batch = hashes[done:done + size]
            levels = tree.grow(batch)

            def known_node(lv: int, ix: int, known: dict[tuple[int, int], bytes] = nodes) -> bytes:
                return known[lv, ix]

            want = new_complete_nodes(done, batch, known_node)
            got = [(lv, start + i, h) for lv, start, row in levels for i, h in enumerate(row)]
            assert sorted(got) == sorted(want), (sizes, done)
            nodes.update({(lv, ix): h for lv, ix, h in want})
            for end in range(done + 1, done + len(batch) + 1):
                assert tree.root_at(levels, end) == root_naive(hashes[:end])
            tree.commit(levels, done + len(batch))
            done += len(batch)


# ---- Text forms against leaf.object_body ------------------------------------------------

# One column per type with a text form, each with values that print plainly and values
# that do not (infinite, before year 1000, below 1e-6, quoted array elements…). An
# infinite timestamp is left out: object_body itself cannot write one (asyncpg returns
# it without a time zone).
FORM_VALUES: dict[str, tuple[str, list[str | None]]] = {
    "t": ("text", ["plain", "", 'quote " and \\ back', "tab\tline\nfeed", "\x01\x1f\x7f",
                   "中文\u2028", "NULL", None]),
    "v": ("varchar(40)", ["v", "ünï", None]),
    "s2": ("smallint", ["0", "-32768", "32767", None]),
    "n4": ("integer", ["7", "-1", None]),
    "n8": ("bigint", ["9223372036854775807", "-9223372036854775808", None]),
    "b": ("boolean", ["true", "false", None]),
    "d": ("date", ["2024-02-29", "0001-01-01", "0044-03-15", "9999-12-31", "infinity",
                   "-infinity", None]),
    "ts": ("timestamptz", ["2024-05-01 08:00:00+00", "2024-05-01 08:00:00.5+08",
                           "2024-05-01 08:00:00.000001+00", "1000-01-01 00:00:00+00",
                           "0999-12-31 23:59:59+00", "9999-12-31 23:59:59.999999+00", None]),
    "m": ("numeric(18, 6)", ["12.5", "0", "-1.25", "0.000001", "123456789012.000001", None]),
    "mx": ("numeric", ["0.0000001", "1e-7", "0.00000000", "100", "1e3", "NaN", "Infinity",
                       "-Infinity", "-0.5", None]),
    "by": ("bytea", ["\\x", "\\x00ff", "\\x" + "ab" * 40, None]),
    "ta": ("text[]", ["{}", "{a,b}", '{"a,b","c\\"d",NULL}', "{{a,b},{c,d}}", None]),
    "va": ("varchar[]", ["{x}", None]),
    "ua": ("uuid[]", ["{}", "{6f1c2e8a-4c8e-4b61-9d0e-2a4a7f5b7c10,NULL}", None]),
    "authority_code": ("text", ["late", None]),  # a LATE_COLUMNS name: left out while NULL
    "search_text": ("text", ["derived"]),  # a DERIVED_COLUMNS name: never in a body
}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
async def test_text_forms_never_pass_a_row_the_exact_rule_fails(
    zone: str, db: asyncpg.Pool,
) -> None:
    """For every pair of rows a, b: if the fast body of a equals a's stored body had it been
    b, so does leaf.object_body of a; and rows of plain values get equal bodies. With
    the session in another time zone, times fall back rather than pass wrongly."""
    names = list(FORM_VALUES)
    depth = max(len(values) for _, values in FORM_VALUES.values())
    async with db.acquire() as conn, conn.transaction():
        columns = ", ".join(f"{name} {kind}" for name, (kind, _) in FORM_VALUES.items())
        await conn.execute(f"CREATE TEMP TABLE forms (id uuid PRIMARY KEY, log_index bigint,"
                           f" {columns}) ON COMMIT DROP")
        for i in range(depth * 2):
            values = [FORM_VALUES[n][1][(i * (1 + j % 3)) % len(FORM_VALUES[n][1])]
                      for j, n in enumerate(names)]
            casts = ", ".join(f"${k + 2}::text::{FORM_VALUES[n][0]}" for k, n in enumerate(names))
            await conn.execute(
                f"INSERT INTO forms VALUES (gen_random_uuid(), $1, {casts})",  # noqa: S608
                i, *values)
        await verify_rows.set_session(conn)
        if zone != "UTC":
            await conn.execute(f"SET LOCAL TimeZone = '{zone}'")
        plan = plan_table("forms", "form", await verify_rows._columns(conn, "forms"))
        assert plan is not None
        fast: dict[str, bytes | None] = {}
        exact: dict[str, bytes] = {}
        for record in await conn.fetch(plan.sql, "form"):
            object_id = record[plan.id_at]
            try:
                fast[object_id] = fast_body(plan, record)
            except verify_rows._Inexact:
                fast[object_id] = None
            row = await conn.fetchrow("SELECT * FROM forms WHERE id = $1::uuid", object_id)
            exact[object_id] = object_body(row)
        plain = 0
        for a in fast:
            for b in exact:
                if fast[a] == exact[b]:
                    assert exact[a] == exact[b], (a, b)
            if fast[a] == exact[a]:
                plain += 1
        assert plain >= (len(fast) // 2 if zone == "UTC" else 0), plain
        if zone == "UTC":
            plain_rows = await conn.fetch(
                "SELECT id::text FROM forms WHERE (d IS NULL OR d BETWEEN '1000-01-01'"
                " AND '9999-12-31') AND (ts IS NULL OR (ts >= '1000-01-01 00:00:00+00'"
                " AND ts < 'infinity'))")
            for (object_id,) in plain_rows:
                assert fast[object_id] == exact[object_id], object_id
