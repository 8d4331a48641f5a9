"""`registry log verify` and the start-up check: a sound log passes, each tampering is named."""

from __future__ import annotations

import re

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.bootstrap import open_services
from registry.errors import LogIntegrityError
from registry.identifiers import uscc_check_character
from registry.keys import LogKey
from registry.settings import Settings
from registry.tlog.integrator import sign_checkpoint
from registry.tlog.merkle import EMPTY_ROOT
from registry.tlog.note import generate_signer_key, parse_signer_key
from registry.tlog.verify import _node_ranges, verify_log, verify_log_cli
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
    first = dict(await db.fetchrow("SELECT * FROM subjects WHERE id = $1", firm["id"]))
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
