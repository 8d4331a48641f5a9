"""The public log over HTTP through the real app: checkpoints, proofs, entries, tiles, receipts,
and `registry log check` against those answers."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.keys import load_log_key
from registry.settings import Settings
from registry.tlog.check import check_remote
from registry.tlog.integrator import sign_checkpoint
from registry.tlog.leaf import decode_leaf
from registry.tlog.merkle import leaf_hash, root_naive, verify_consistency, verify_inclusion
from registry.tlog.note import Checkpoint, Verifier, open_checkpoint, parse_verifier_key
from registry.tlog.tiles import parse_entry_bundle
from tests.logcheck import append_tokens, assert_log_consistent, ensure_log, integrate_all
from tests.test_log_verify import create_firm

Client = AsyncTestClient[Litestar]


async def log_verifier(client: Client) -> Verifier:
    response = await client.get("/log/key")
    assert response.status_code == 200
    return parse_verifier_key(response.text.splitlines()[0])


async def signed_head(client: Client) -> Checkpoint:
    response = await client.get("/log/checkpoint")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    checkpoint, signers = open_checkpoint(response.text, [await log_verifier(client)])
    assert signers
    return checkpoint


async def all_leaves(client: Client, size: int) -> list[bytes]:
    leaves: list[bytes] = []
    while len(leaves) < size:
        response = await client.get(f"/log/entries?start={len(leaves)}&end={size}")
        assert response.status_code == 200, response.text
        for entry in response.json()["entries"]:
            assert entry["index"] == len(leaves)
            leaves.append(base64.b64decode(entry["leaf"]))
    return leaves


def hashes(body: dict[str, object]) -> list[bytes]:
    items = body["hashes"]
    assert isinstance(items, list)
    return [base64.b64decode(h) for h in items]


async def test_proofs_for_every_leaf_and_checkpoint(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Every inclusion proof and every consistency proof between signed sizes verifies."""
    receipts = [await create_firm(client, regulator, n) for n in range(1, 8)]
    head = await signed_head(client)
    assert head.size == 9  # the authority, its regulator token, 7 firms
    leaves = await all_leaves(client, head.size)
    for i, leaf in enumerate(leaves):
        assert decode_leaf(leaf).index == i
        stored = await db.fetchval("SELECT hash FROM tlog_nodes WHERE level = 0 AND idx = $1", i)
        assert leaf_hash(leaf) == stored
    assert root_naive([leaf_hash(x) for x in leaves]) == head.root_hash
    for size in range(1, head.size + 1):
        root = root_naive([leaf_hash(x) for x in leaves[:size]])
        for i in range(size):
            response = await client.get(f"/log/proof/inclusion?index={i}&size={size}")
            assert response.status_code == 200, response.text
            verify_inclusion(leaf_hash(leaves[i]), i, size, hashes(response.json()), root)
    verifier = await log_verifier(client)
    signed = {}
    for row in await db.fetch("SELECT size, checkpoint FROM tlog_checkpoints ORDER BY size"):
        checkpoint, _ = open_checkpoint(row["checkpoint"], [verifier])
        signed[checkpoint.size] = checkpoint.root_hash
    assert len(signed) >= 2
    for old, old_root in signed.items():
        for new, new_root in signed.items():
            if 0 < old <= new:
                response = await client.get(f"/log/proof/consistency?old={old}&new={new}")
                assert response.status_code == 200, response.text
                verify_consistency(old, new, hashes(response.json()), old_root, new_root)
    # Receipts: each write's checkpoint verifies and includes its leaf.
    for body in receipts:
        receipt = body["receipt"]
        assert isinstance(receipt, dict)
        index = receipt["log_index"]
        checkpoint, _ = open_checkpoint(receipt["checkpoint"], [verifier])
        assert index < checkpoint.size
        response = await client.get(f"/log/proof/inclusion?index={index}&size={checkpoint.size}")
        verify_inclusion(
            leaf_hash(leaves[index]), index, checkpoint.size, hashes(response.json()),
            checkpoint.root_hash,
        )
    await assert_log_consistent(db, integrated=True)


async def test_keys_endpoint_lists_the_current_key(client: Client) -> None:
    """/log/keys and /log/key agree on the one current key."""
    vkey = (await client.get("/log/key")).text.strip()
    keys = (await client.get("/log/keys")).json()
    assert [k["verifier_key"] for k in keys] == [vkey]
    assert keys[0]["valid_until"] is None


async def test_tiles_match_the_tree(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, settings: Settings
) -> None:
    """Full and partial hash tiles and entry bundles hold exactly the tree's hashes and leaves."""
    await append_tokens(db, 298)
    await create_firm(client, regulator, 1)  # a write through the app integrates everything
    head = await signed_head(client)
    assert head.size == 301  # authority + regulator token + 298 + firm
    leaves = await all_leaves(client, head.size)
    level0 = [leaf_hash(x) for x in leaves]

    full = await client.get("/log/tile/0/000")
    assert full.status_code == 200
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.content == b"".join(level0[:256])
    partial = await client.get("/log/tile/0/001.p/45")
    assert partial.status_code == 200
    assert partial.headers["cache-control"] == "public, max-age=5"
    assert partial.content == b"".join(level0[256:301])
    shorter = await client.get("/log/tile/0/001.p/3")  # a smaller width of the partial tile
    assert shorter.content == b"".join(level0[256:259])
    upper = await client.get("/log/tile/1/000.p/1")
    assert upper.content == root_naive(level0[:256])

    bundle = await client.get("/log/tile/entries/000")
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert parse_entry_bundle(bundle.content, 256) == leaves[:256]
    tail = await client.get("/log/tile/entries/001.p/45")
    assert parse_entry_bundle(tail.content, 45) == leaves[256:]

    for path, status in [
        ("/log/tile/0/001", 404),  # only partial so far
        ("/log/tile/0/001.p/46", 404),  # wider than the tree
        ("/log/tile/0/002", 404),  # beyond the tree
        ("/log/tile/1/000", 404),
        ("/log/tile/entries/002.p/1", 404),
        ("/log/tile/0/1", 422),  # not 3 digits
        ("/log/tile/00/000", 422),
        ("/log/tile/0/000.p/0", 422),
        ("/log/tile/0/000.p/256", 422),
        ("/log/tile/64/000", 422),
        ("/log/tile/x/000", 422),
        ("/log/tile/0/x000/001", 422),
    ]:
        response = await client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), path
    await assert_log_consistent(db, integrated=True)


@pytest.mark.parametrize(
    "path",
    [
        "/log/proof/inclusion?index=3&size=3",
        "/log/proof/inclusion?index=0&size=99",
        "/log/proof/inclusion?index=-1&size=2",
        "/log/proof/inclusion?index=0&size=0",
        "/log/proof/inclusion?index=x&size=2",
        "/log/proof/inclusion?index=0",
        "/log/proof/inclusion?index=0&size=99999999999999999999999",
        "/log/proof/consistency?old=3&new=2",
        "/log/proof/consistency?old=0&new=99",
        "/log/proof/consistency?old=-1&new=2",
        "/log/proof/consistency?old=1.5&new=2",
        "/log/proof/consistency?new=2",
        "/log/entries?start=2&end=2",
        "/log/entries?start=0&end=99",
        "/log/entries?start=-5&end=1",
        "/log/entries?start=0",
        "/log/entries?start=a&end=b",
    ],
)
async def test_bad_parameters_are_problem_details(
    path: str, client: Client, regulator: dict[str, str]
) -> None:
    """Out-of-range and malformed parameters get a 4xx problem+json, never a 500."""
    await create_firm(client, regulator, 1)  # tree size 2
    response = await client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_valid_edge_parameters(client: Client, regulator: dict[str, str]) -> None:
    """Same-size consistency and size-0 proofs are empty; entries pages are capped."""
    await create_firm(client, regulator, 1)
    for path in ["/log/proof/consistency?old=2&new=2", "/log/proof/consistency?old=0&new=2"]:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["hashes"] == []
    assert len((await client.get("/log/entries?start=1&end=2")).json()["entries"]) == 1


# ---- registry log check ----------------------------------------------------------------


def proxy_to(client: Client, loop: asyncio.AbstractEventLoop) -> httpx.Client:
    """A sync httpx client (for check_remote in a thread) answered by the app under test."""

    def handle(request: httpx.Request) -> httpx.Response:
        future = asyncio.run_coroutine_threadsafe(
            client.get(request.url.raw_path.decode()), loop
        )
        answer = future.result(timeout=30)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://registry.test")


async def test_log_check_follows_a_growing_log(
    client: Client, regulator: dict[str, str], settings: Settings, tmp_path: Path,
    db: asyncpg.Pool, capsys: pytest.CaptureFixture[str],
) -> None:
    """First run records the checkpoint; later runs prove consistency and update the file."""
    vkey = (await client.get("/log/key")).text.splitlines()[0]
    since = tmp_path / "seen" / "checkpoint"
    since.parent.mkdir()
    http = proxy_to(client, asyncio.get_running_loop())

    async def check(key: str = vkey, url: str = "http://registry.test") -> int:
        return await asyncio.to_thread(check_remote, url, key, since, client=http)

    assert await check() == 0
    first = since.read_text()
    assert open_checkpoint(first, [parse_verifier_key(vkey)])[0].size == 0
    assert await check() == 0  # same size, same root
    for n in range(1, 4):
        await create_firm(client, regulator, n)
        assert await check() == 0
    assert "consistent with the saved checkpoint at size 4" in capsys.readouterr().out
    assert open_checkpoint(since.read_text(), [parse_verifier_key(vkey)])[0].size == 5

    key = load_log_key(settings)
    head = await signed_head(client)
    # A fork: the same key signed another root at a size we already saw.
    assert head.size == 5  # the authority, its regulator token, then 3 firms
    since.write_text(sign_checkpoint(key, settings.log_origin, 2, b"\x07" * 32))
    assert await check() == 1
    assert "does not extend" in capsys.readouterr().err
    since.write_text(sign_checkpoint(key, settings.log_origin, head.size, b"\x07" * 32))
    assert await check() == 1
    assert "forked" in capsys.readouterr().err
    since.write_text(sign_checkpoint(key, settings.log_origin, head.size + 5, b"\x07" * 32))
    assert await check() == 1
    assert "shrank" in capsys.readouterr().err
    # The file is only replaced after a successful check.
    assert open_checkpoint(since.read_text(), [key.signer.verifier()])[0].size == head.size + 5

    since.unlink()
    other = parse_verifier_key(load_other_vkey(settings))
    assert await check(key=f"{other.name}+{other.key_id.hex()}+"
                            + base64.b64encode(b"\x01" + other.public_key).decode()) == 1
    assert "does not verify with the pinned key" in capsys.readouterr().err
    assert not since.exists()
    assert await check(key="not a key") == 2
    http.close()
    await assert_log_consistent(db)


def load_other_vkey(settings: Settings) -> str:
    from registry.tlog.note import generate_signer_key

    return generate_signer_key(settings.log_origin)[1]


def test_log_check_network_failure_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """An unreachable registry is a usage/network error (2), and the since file is untouched."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    from registry.tlog.note import generate_signer_key

    vkey = generate_signer_key(settings.log_origin)[1]
    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        assert check_remote("http://nowhere.test", vkey, tmp_path / "cp", client=http) == 2
    assert "couldn't fetch http://nowhere.test/log/checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "cp").exists()
    assert check_remote("http://127.0.0.1:9", vkey, None) == 2


async def test_integration_of_db_written_leaves_shows_over_http(
    client: Client, db: asyncpg.Pool, settings: Settings
) -> None:
    """Leaves appended and integrated outside the app are served by it at once."""
    key = await ensure_log(db, settings)
    await append_tokens(db, 4)
    await integrate_all(db, key, settings.log_origin)
    head = await signed_head(client)
    assert head.size == 4
    await assert_log_consistent(db, integrated=True)
