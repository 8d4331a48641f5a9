"""`registry log mirror`: the log copied into a directory laid out as C2SP tlog-tiles, served
by a plain static HTTP server and verified from that server alone; a log whose answers do not
hold up is refused and the published checkpoint stays as it was."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.keys import LogKey
from registry.settings import Settings
from registry.tlog.merkle import (
    consistency_proof_naive,
    inclusion_proof_naive,
    leaf_hash,
    root_naive,
    verify_consistency,
    verify_inclusion,
)
from registry.tlog.mirror import log_prefix, mirror_log
from registry.tlog.note import (
    Checkpoint,
    NoteSigner,
    Verifier,
    generate_signer_key,
    open_checkpoint,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)
from registry.tlog.tile_reader import TreeTiles, full_tile_hash
from registry.tlog.tiles import (
    TILE_WIDTH,
    TileState,
    entries_path,
    entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    tile_extent,
    tile_path,
)
from tests.logcheck import append_tokens, ensure_log, integrate_all
from tests.test_tile_reader import leaves_of, naive_tile

Client = AsyncTestClient[Litestar]
REGISTRY = "http://registry.test"
ROOT = Path(__file__).resolve().parents[1]

# path (as requested, e.g. /log/tile/0/000) and body -> the body to answer instead
Tamper = Callable[[str, bytes], bytes]


# ---- the logs being mirrored --------------------------------------------------------------


def app_http(client: Client, loop: asyncio.AbstractEventLoop, tamper: Tamper | None = None
             ) -> httpx.Client:
    """A sync httpx client (for the mirror, in a thread) answered by the app under test,
    with its answers optionally altered on the way."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        answer = asyncio.run_coroutine_threadsafe(client.get(path), loop).result(timeout=30)
        body = answer.content
        if tamper is not None and answer.status_code == 200:
            body = tamper(path, body)
        return httpx.Response(answer.status_code, content=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


class FakeLog:
    """A tlog-tiles server built from the spec's definitions over a list of leaves, signing
    a checkpoint at ``size`` (default: all of them). With ``drop_filled_partials``, the
    partial tiles of tiles now full are gone, as the spec allows a log to do."""

    def __init__(self, leaves: Sequence[bytes], signer: NoteSigner, *, size: int | None = None,
                 drop_filled_partials: bool = False) -> None:
        self.leaves = list(leaves)
        self.level_zero = [leaf_hash(x) for x in self.leaves]
        self.size = len(self.leaves) if size is None else size
        root = root_naive(self.level_zero[: self.size])
        self.checkpoint = sign_note(Checkpoint(signer.name, self.size, root).to_text(), [signer])
        self.drop_filled_partials = drop_filled_partials
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/log/")
        self.requests.append(path)
        if path == "checkpoint":
            return httpx.Response(200, text=self.checkpoint)
        try:
            ref = parse_tile_path(path)
        except ValueError:
            return httpx.Response(400)
        extent = tile_extent(ref.level or 0, ref.index, len(self.leaves))
        if extent.state is TileState.BEYOND or (ref.width or TILE_WIDTH) > extent.width:
            return httpx.Response(404)
        if ref.width and extent.state is TileState.FULL and self.drop_filled_partials:
            return httpx.Response(404)
        width = ref.width or TILE_WIDTH
        if ref.level is None:
            start = ref.index * TILE_WIDTH
            return httpx.Response(200, content=entry_bundle(self.leaves[start : start + width]))
        return httpx.Response(200, content=naive_tile(self.level_zero, ref.level, ref.index, width))

    def http(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner("mirror.test/log", Ed25519PrivateKey.generate())


def run_mirror(to: Path, vkey: str | Sequence[str], http: httpx.Client, **options: Any) -> int:
    keys = [vkey] if isinstance(vkey, str) else list(vkey)
    return mirror_log(REGISTRY, to, keys, once=True, client=http, **options)


# ---- what a reader of the directory sees --------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``root``: its bytes, inode and modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            info = path.stat()
            found[str(path.relative_to(root))] = (path.read_bytes(), info.st_ino, info.st_mtime_ns)
    return found


def tile_indexes(size: int) -> Iterator[tuple[int, int, int | None]]:
    """(level, index, width or None when full) of every tile a tree of ``size`` has."""
    level = 0
    while hashes := size >> (8 * level):
        for index in range((hashes + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, hashes - index * TILE_WIDTH)
            yield level, index, None if width == TILE_WIDTH else width
        level += 1


def assert_mirror_complete(root: Path, verifier: Verifier) -> Checkpoint:
    """The directory's checkpoint verifies, and every tile and bundle it needs is on disk and
    agrees with it: the root, each full tile against its parent, each bundle against its
    level-0 tile. No temporary file is left."""
    checkpoint, _ = open_checkpoint((root / "checkpoint").read_bytes(), [verifier])
    tiles = TreeTiles(
        checkpoint.size, lambda level, index, width: (root / tile_path(level, index, width)).read_bytes()
    )
    assert tiles.root() == checkpoint.root_hash
    for level, index, width in tile_indexes(checkpoint.size):
        data = tiles.tile(level, index)
        if width is None:
            assert full_tile_hash(data) == tiles.tile_hash(level + 1, index // 256, index % 256)
        if level == 0:
            bundle = (root / entries_path(index, width)).read_bytes()
            entries = parse_entry_bundle(bundle, width or TILE_WIDTH)
            assert b"".join(leaf_hash(e) for e in entries) == data
    assert not [p for p in root.rglob(".*")], "temporary files left behind"
    return checkpoint


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(root: Path) -> Iterator[str]:
    """A plain static file server for ``root`` on a free port; its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class StaticReader:
    """A verifier that knows only a static server's URL and the log key: checkpoint, tiles
    and entries come from the server; proofs are computed from the tiles."""

    def __init__(self, base: str, verifier: Verifier) -> None:
        self.http = httpx.Client(base_url=log_prefix(base) + "/")
        self.verifier = verifier

    def _get(self, path: str) -> bytes | None:
        response = self.http.get(path)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, (path, response.status_code)
        return response.content

    def _tile_or_prefix(self, path: str, full_path: str) -> bytes:
        # A partial tile may be gone once the full one exists: the spec's fallback.
        data = self._get(path)
        if data is None:
            data = self._get(full_path)
        assert data is not None, path
        return data

    def checkpoint(self) -> Checkpoint:
        note = self._get("checkpoint")
        assert note is not None
        checkpoint, signers = open_checkpoint(note, [self.verifier])
        assert signers == [self.verifier.name]
        return checkpoint

    def tiles(self, size: int) -> TreeTiles:
        def source(level: int, index: int, width: int | None) -> bytes:
            data = self._tile_or_prefix(tile_path(level, index, width), tile_path(level, index))
            return data[: (width or TILE_WIDTH) * 32]

        return TreeTiles(size, source)

    def entry(self, index: int, size: int) -> bytes:
        tile = index // TILE_WIDTH
        extent = tile_extent(0, tile, size)
        width = None if extent.state is TileState.FULL else extent.width
        bundle = self._tile_or_prefix(entries_path(tile, width), entries_path(tile))
        return parse_entry_bundle(bundle)[index % TILE_WIDTH]


# ---- the real registry ----------------------------------------------------------------------


async def grow(db: asyncpg.Pool, key: LogKey, settings: Settings, count: int) -> int:
    """Append ``count`` leaves and integrate them all; the signed size after."""
    await append_tokens(db, count)
    return await integrate_all(db, key, settings.log_origin)


async def test_mirror_serves_a_log_anyone_can_verify(
    client: Client, db: asyncpg.Pool, settings: Settings, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Mirror 300 entries, serve the directory statically and verify from it alone: the
    checkpoint, inclusion and consistency proofs from the tiles. Mirror again after 300
    more: full tiles untouched, the filled tile's partials gone, the new ones present."""
    key = await ensure_log(db, settings)
    verifier = parse_verifier_key(key.verifier)
    assert await grow(db, key, settings, 300) == 300
    site = tmp_path / "site"
    site.mkdir()
    mirrored = site / "log"
    http = app_http(client, asyncio.get_running_loop())

    assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 0
    assert "at size 300 into" in capsys.readouterr().out
    first = assert_mirror_complete(mirrored, verifier)
    first_note = (mirrored / "checkpoint").read_bytes()
    assert first.size == 300
    assert {p for p in snapshot(mirrored)} == {
        "checkpoint", "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1",
        "tile/entries/000", "tile/entries/001.p/44",
    }
    before = snapshot(mirrored)

    with static_server(site) as base:
        reader = StaticReader(base, verifier)
        head = reader.checkpoint()
        assert head == first
        tiles = reader.tiles(head.size)
        assert tiles.root() == head.root_hash
        entries = [reader.entry(i, head.size) for i in range(head.size)]
        level_zero = [leaf_hash(e) for e in entries]
        for index in (0, 123, 255, 256, 299):
            proof = tiles.inclusion_proof(index)
            assert proof == inclusion_proof_naive(index, level_zero)
            verify_inclusion(leaf_hash(entries[index]), index, head.size, proof, head.root_hash)

        assert await grow(db, key, settings, 300) == 600
        assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 0
        assert "at size 600 (was 300)" in capsys.readouterr().out
        after = snapshot(mirrored)
        for full in ("tile/0/000", "tile/entries/000"):
            assert after[full] == before[full], f"{full} was rewritten"
        assert "tile/0/001.p/44" not in after and "tile/entries/001.p/44" not in after
        assert not (mirrored / "tile/0/001.p").exists()
        for new in ("tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2", "tile/entries/001",
                    "tile/entries/002.p/88"):
            assert new in after, new
        assert after["tile/1/000.p/1"] == before["tile/1/000.p/1"]  # its tile is still partial
        assert after["checkpoint"][1] != before["checkpoint"][1]  # replaced, not edited
        assert_mirror_complete(mirrored, verifier)

        # From the static server alone: the new head extends the first, and any size in
        # between has a root (from the tiles) that the new head extends as well.
        head = reader.checkpoint()
        assert head.size == 600
        tiles = reader.tiles(head.size)
        assert tiles.root() == head.root_hash
        old, _ = open_checkpoint(first_note, [verifier])
        verify_consistency(old.size, head.size, tiles.consistency_proof(old.size),
                           old.root_hash, head.root_hash)
        entries = [reader.entry(i, head.size) for i in range(head.size)]
        level_zero = [leaf_hash(e) for e in entries]
        assert entries[:300] == [reader.entry(i, 300) for i in range(300)]
        middle = reader.tiles(257)  # tile/0/001.p/1 is not served: read from the full tile
        assert middle.root() == root_naive(level_zero[:257])
        proof = tiles.consistency_proof(257)
        assert proof == consistency_proof_naive(257, level_zero)
        verify_consistency(257, 600, proof, middle.root(), head.root_hash)
        verify_inclusion(level_zero[599], 599, 600, tiles.inclusion_proof(599), head.root_hash)

    unchanged = snapshot(mirrored)
    assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 0
    assert "is up to date" in capsys.readouterr().out
    assert snapshot(mirrored) == unchanged
    http.close()


def flip_last(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 1])


def only(target: str, change: Callable[[bytes], bytes]) -> Tamper:
    """Alter the answer to ``target``, pass every other one through."""
    return lambda path, body: change(body) if path == target else body


async def test_a_log_that_does_not_hold_up_is_refused(
    client: Client, db: asyncpg.Pool, settings: Settings, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checkpoint that does not verify, or tiles and bundles that do not match it: exit 1,
    the published checkpoint and every tile it needs stay; refusals before the copy leave
    the directory exactly as it was, and nothing that failed a check is ever written."""
    key = await ensure_log(db, settings)
    verifier = parse_verifier_key(key.verifier)
    await grow(db, key, settings, 300)
    mirrored = tmp_path / "log"
    loop = asyncio.get_running_loop()
    with app_http(client, loop) as http:
        assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 0
    # 900: tile 0/001 fills (the consistency proof from 300 reads it), 0/002 is full and
    # read by nothing but the copy, 0/003 is partial.
    assert await grow(db, key, settings, 600) == 900
    other = parse_signer_key(generate_signer_key(settings.log_origin)[0])

    def resigned(body: bytes) -> bytes:
        return sign_note(body.decode().split("\n\n")[0] + "\n", [other]).encode()

    def sig_changed(body: bytes) -> bytes:
        text, _, line = body.decode().rpartition("\u2014 ")
        name, _, sig = line.partition(" ")
        changed = ("A" if sig[0] != "A" else "B") + sig[1:]
        return f"{text}\u2014 {name} {changed}".encode()

    before = snapshot(mirrored)
    for target, change, message in [
        ("/log/checkpoint", sig_changed, "does not verify with the pinned key"),
        ("/log/checkpoint", resigned, "does not verify with the pinned key"),
        ("/log/tile/0/003.p/132", flip_last, "do not hash to the root it signed"),
        ("/log/tile/1/000.p/3", flip_last, "do not hash to the root it signed"),
        ("/log/tile/0/003.p/132", lambda body: body[:-32], "malformed tile"),
        ("/log/tile/0/001", flip_last, "does not hash to the value its parent tile holds"),
    ]:
        with app_http(client, loop, only(target, change)) as http:
            assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 1, target
        err = capsys.readouterr().err
        assert "FAILED" in err and message in err, (target, err)
        assert snapshot(mirrored) == before, f"{target}: the directory changed"

    # Found while copying: files already checked may stay (they are the signed tree's, and
    # an earlier case here may have written this very file, genuine), a tampered one is
    # never written, the published checkpoint and its tiles stay.
    for target, message in [
        ("/log/tile/0/002", "does not hash to the value its parent tile holds"),
        ("/log/tile/entries/001", "does not hash to the leaf hash"),
        ("/log/tile/entries/003.p/132", "does not hash to the leaf hash"),
    ]:
        with app_http(client, loop, only(target, flip_last)) as http:
            assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 1, target
        err = capsys.readouterr().err
        assert message in err, (target, err)
        written = mirrored / target.removeprefix("/log/")
        genuine = (await client.get(target)).content
        assert not written.exists() or written.read_bytes() == genuine, f"{target} was written"
        assert (mirrored / "checkpoint").read_bytes() == before["checkpoint"][0]
        assert assert_mirror_complete(mirrored, verifier).size == 300
        for path, (_, inode, mtime) in before.items():
            info = (mirrored / path).stat()
            assert (info.st_ino, info.st_mtime_ns) == (inode, mtime), path

    with app_http(client, loop) as http:
        assert await asyncio.to_thread(run_mirror, mirrored, key.verifier, http) == 0
    assert assert_mirror_complete(mirrored, verifier).size == 900


async def test_follow_mode_tracks_the_log_until_stopped(
    client: Client, db: asyncpg.Pool, settings: Settings, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --once the mirror polls, publishes each new size, and stops on request."""
    key = await ensure_log(db, settings)
    verifier = parse_verifier_key(key.verifier)
    await grow(db, key, settings, 5)
    mirrored = tmp_path / "log"
    stop = threading.Event()
    with app_http(client, asyncio.get_running_loop()) as http:
        follower = asyncio.create_task(asyncio.to_thread(
            mirror_log, REGISTRY, mirrored, [key.verifier], once=False, interval=0.05,
            client=http, stop=stop,
        ))
        try:
            for want in (5, 270):
                if want > 5:
                    await grow(db, key, settings, want - 5)
                deadline = time.monotonic() + 30
                while not (mirrored / "checkpoint").exists() or open_checkpoint(
                    (mirrored / "checkpoint").read_bytes(), [verifier]
                )[0].size < want:
                    assert not follower.done(), capsys.readouterr()
                    assert time.monotonic() < deadline, f"size {want} not mirrored in 30s"
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            code = await follower
    assert code == 0
    assert assert_mirror_complete(mirrored, verifier).size == 270
    out = capsys.readouterr().out
    # The app integrates in batches too, so sizes between 5 and 270 may be mirrored on the way.
    assert "at size 5 into" in out and re.search(r"at size 270 \(was \d+\)", out), out
    assert out.rstrip().endswith("registry log mirror: stopped")


# ---- without the registry: fake logs, usage, crashes --------------------------------------


def test_rollback_and_forks_are_refused(
    signer: NoteSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validly signed, self-consistent trees that do not extend the mirrored one: exit 1,
    the directory as it was."""
    leaves = leaves_of(300)
    mirrored = tmp_path / "log"
    with FakeLog(leaves, signer).http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 0
    before = snapshot(mirrored)
    for log, message in [
        (FakeLog(leaves[:299], signer), "the log shrank"),
        (FakeLog(leaves_of(300, "other"), signer), "the log forked"),
        (FakeLog([*leaves[:299], b"changed", *leaves_of(100, "more")], signer),
         "does not extend the mirrored size 300"),
        (FakeLog(leaves_of(600, "other"), signer), "does not extend the mirrored size 300"),
    ]:
        with log.http() as http:
            assert run_mirror(mirrored, signer.verifier_key(), http) == 1
        assert message in capsys.readouterr().err
        assert snapshot(mirrored) == before


def test_partials_deleted_by_the_log_are_read_from_the_full_tile(
    signer: NoteSigner, tmp_path: Path
) -> None:
    """A log that grew past its checkpoint and dropped the narrower partial tiles still
    mirrors: the partial tile and bundle are the full ones' prefixes (tlog-tiles)."""
    log = FakeLog(leaves_of(600), signer, size=300, drop_filled_partials=True)
    with log.http() as http:
        assert run_mirror(tmp_path / "log", signer.verifier_key(), http) == 0
    assert "tile/0/001.p/44" in log.requests and "tile/0/001" in log.requests
    assert "tile/entries/001" in log.requests
    assert assert_mirror_complete(tmp_path / "log", signer.verifier()).size == 300


def test_the_origin_must_be_the_signing_key_and_the_mirrored_log(
    signer: NoteSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint for another origin, even signed by a pinned key, is refused (1); a
    directory mirroring one log is not filled with another (2)."""
    mirrored = tmp_path / "log"
    leaves = leaves_of(5)
    other_origin = FakeLog(leaves, signer)
    other_origin.checkpoint = sign_note(
        Checkpoint("elsewhere.test/log", 5, root_naive(other_origin.level_zero)).to_text(),
        [signer],
    )
    with other_origin.http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 1
    assert "is for log 'elsewhere.test/log', but it is signed only by mirror.test/log" in (
        capsys.readouterr().err
    )
    assert not (mirrored / "checkpoint").exists()

    second = NoteSigner("second.test/log", Ed25519PrivateKey.generate())
    both = [signer.verifier_key(), second.verifier_key()]
    with FakeLog(leaves, signer).http() as http:
        assert run_mirror(mirrored, both, http) == 0
    before = snapshot(mirrored)
    with FakeLog(leaves_of(9), second).http() as http:
        assert run_mirror(mirrored, both, http) == 2
    assert f"mirrors {signer.name!r}" in capsys.readouterr().err
    assert snapshot(mirrored) == before


def test_following_retries_network_failures(
    signer: NoteSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While following, an unreachable log is reported and tried again at the next poll."""
    log = FakeLog(leaves_of(40), signer)
    failures = [3]

    def flaky(request: httpx.Request) -> httpx.Response:
        if failures[0]:
            failures[0] -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return log.handle(request)

    mirrored = tmp_path / "log"
    stop = threading.Event()
    with httpx.Client(transport=httpx.MockTransport(flaky)) as http:
        follower = threading.Thread(target=lambda: mirror_log(
            REGISTRY, mirrored, [signer.verifier_key()], once=False, interval=0.01,
            client=http, stop=stop,
        ))
        follower.start()
        deadline = time.monotonic() + 30
        while not (mirrored / "checkpoint").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        follower.join()
    assert assert_mirror_complete(mirrored, signer.verifier()).size == 40
    assert capsys.readouterr().err.count("connection refused; retrying in 0.01s") == 3


def test_a_key_rotation_is_followed_with_both_keys(signer: NoteSigner, tmp_path: Path) -> None:
    """Pinning the old and the new key, a mirror follows the log across a rotation; with
    the new key alone it refuses the directory's old checkpoint (exit 2: which key?)."""
    leaves = leaves_of(20)
    new = NoteSigner(signer.name, Ed25519PrivateKey.generate())
    mirrored = tmp_path / "log"
    with FakeLog(leaves[:10], signer).http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 0
    with FakeLog(leaves, new).http() as http:
        assert run_mirror(mirrored, new.verifier_key(), http) == 2
        assert run_mirror(mirrored, [signer.verifier_key(), new.verifier_key()], http) == 0
    assert assert_mirror_complete(mirrored, new.verifier()).size == 20


@pytest.mark.parametrize("landed", [False, True], ids=["nothing-written", "write-landed"])
def test_a_failed_checkpoint_write_publishes_nothing_half_done(
    signer: NoteSigner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, landed: bool,
) -> None:
    """The checkpoint's replace fails (before or after it lands): exit 2, and the directory
    serves one complete checkpoint; the next run finishes without rewriting full tiles."""
    leaves = leaves_of(600)
    mirrored = tmp_path / "log"
    with FakeLog(leaves[:300], signer).http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 0
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "checkpoint":
            if landed:
                real_replace(src, dst)
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with FakeLog(leaves, signer).http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 2
    published = assert_mirror_complete(mirrored, signer.verifier())
    assert published.size == (600 if landed else 300)
    written = snapshot(mirrored)
    monkeypatch.setattr(os, "replace", real_replace)
    with FakeLog(leaves, signer).http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 0
    assert assert_mirror_complete(mirrored, signer.verifier()).size == 600
    after = snapshot(mirrored)
    for path in ("tile/0/001", "tile/entries/001", "tile/0/002.p/88"):
        assert after[path] == written[path], f"{path} was rewritten"


def test_a_network_failure_mid_copy_is_exit_2_and_the_next_run_finishes(
    signer: NoteSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = FakeLog(leaves_of(600), signer)

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tile/entries/002.p/88"):
            raise httpx.ConnectError("connection reset", request=request)
        return log.handle(request)

    mirrored = tmp_path / "log"
    with httpx.Client(transport=httpx.MockTransport(flaky)) as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 2
    assert "couldn't fetch http://registry.test/log/tile/entries/002.p/88" in capsys.readouterr().err
    assert not (mirrored / "checkpoint").exists()
    assert (mirrored / "tile/0/000").exists()  # verified against the signed root: kept
    with log.http() as http:
        assert run_mirror(mirrored, signer.verifier_key(), http) == 0
    assert assert_mirror_complete(mirrored, signer.verifier()).size == 600


def test_usage_problems_are_exit_2(
    signer: NoteSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad key, a bad interval, a directory of other files, a locked directory, an
    unreachable log: exit 2 with the reason, nothing written."""
    vkey = signer.verifier_key()
    with FakeLog(leaves_of(3), signer).http() as http:
        assert run_mirror(tmp_path / "a", "not a key", http) == 2
        assert "--log-key" in capsys.readouterr().err
        assert run_mirror(tmp_path / "a", [], http) == 2
        assert "--log-key is required" in capsys.readouterr().err
        assert mirror_log(REGISTRY, tmp_path / "a", [vkey], once=False, interval=0, client=http) == 2
        assert "--interval" in capsys.readouterr().err
        assert not (tmp_path / "a").exists()

        (tmp_path / "home").mkdir()
        (tmp_path / "home" / "notes.txt").write_text("mine")
        assert run_mirror(tmp_path / "home", vkey, http) == 2
        assert "holds other files (notes.txt)" in capsys.readouterr().err
        assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["notes.txt"]

        (tmp_path / "locked").mkdir()
        fd = os.open(tmp_path / "locked", os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            assert run_mirror(tmp_path / "locked", vkey, http) == 2
            assert "another mirror is writing" in capsys.readouterr().err
        finally:
            os.close(fd)
        assert list((tmp_path / "locked").iterdir()) == []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        assert run_mirror(tmp_path / "b", vkey, http) == 2
    assert "couldn't fetch http://registry.test/log/checkpoint" in capsys.readouterr().err
    assert list((tmp_path / "b").iterdir()) == []


def test_the_mirror_needs_only_httpx_and_cryptography() -> None:
    """A bureau installs the project with --no-deps plus cryptography and httpx: importing
    the mirror loads no other part of the registry and none of its other dependencies."""
    code = (
        "import sys, registry.tlog.mirror; "
        "print('\\n'.join(sorted(m for m in sys.modules if '.' not in m)))"
        "; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('registry.'))))"
    )
    loaded = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    ours = {m for m in loaded if m.startswith("registry.")}
    assert ours == {f"registry.tlog.{m}" for m in ("mirror", "tile_reader", "note", "merkle",
                                                   "tiles")} | {"registry.tlog",
                                                                "registry.durable_files"}
    # (click and rich may appear: httpx loads its own command line when they are installed.)
    for package in ("asyncpg", "litestar", "msgspec", "structlog"):
        assert package not in loaded, f"importing the mirror loads {package}"


def test_the_log_prefix_rule() -> None:
    assert log_prefix("https://registry.example") == "https://registry.example/log"
    assert log_prefix("https://registry.example/") == "https://registry.example/log"
    assert log_prefix("https://mirror.example/log/") == "https://mirror.example/log"


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_command_mirrors_a_mirror_and_stops_on_a_signal(
    signer: NoteSigner, tmp_path: Path, sent: signal.Signals
) -> None:
    """`registry log mirror` following a static mirror (a mirror of a mirror) copies it
    file for file, then exits 0 on SIGTERM or SIGINT."""
    site = tmp_path / "site"
    site.mkdir()
    with FakeLog(leaves_of(300), signer).http() as http:
        assert run_mirror(site / "log", signer.verifier_key(), http) == 0
    second = tmp_path / "second"
    with static_server(site) as base:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "registry", "log", "mirror", "--url", base, "--to",
             str(second), "--log-key", signer.verifier_key(), "--interval", "0.1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (second / "checkpoint").exists():
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the mirror wrote no checkpoint in 60s"
                time.sleep(0.05)
            process.send_signal(sent)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err
    assert "at size 300 into" in out and out.rstrip().endswith("stopped"), out
    assert {p: v[0] for p, v in snapshot(second).items()} == {
        p: v[0] for p, v in snapshot(site / "log").items()
    }
