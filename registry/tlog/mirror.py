"""``registry log mirror``: copy the public log into a directory any web server can serve.

DIR is laid out exactly as c2sp.org/tlog-tiles: ``checkpoint``, ``tile/<L>/<N>[.p/<W>]``
and ``tile/entries/<N>[.p/<W>]``. Served as static files at some ``<prefix>/``, it is a
complete read-only copy of the log. The mirror reads only the checkpoint and the tiles
(never the registry's proof endpoints), so a mirror can itself be mirrored.

What a reader of DIR can rely on:

- ``checkpoint`` verifies with a pinned key, and every tile and entry bundle it needs is
  on disk, fsynced with its directories, before the checkpoint is replaced (os.replace
  of an fsynced temporary file, the last write of a step);
- a checkpoint replaces the previous one only if the new tree's tiles prove it extends
  it (an RFC 6962 consistency proof computed from them): never a rollback, never a fork;
- every file was checked against the signed root before it was written: partial tiles
  by recomputing the root from them, full tiles against the hash their (already
  checked) parent tile holds for them, top-down, and entry bundles against their
  level-0 tile;
- full tiles and bundles are written once and never rewritten. A partial tile's width
  is in its path, so a wider one is a new file; the partial files of a tile that became
  full are deleted once the checkpoint that has the full tile is published (the spec
  lets a reader of an older checkpoint fall back to the full tile).

The key is pinned (``--log-key``, repeatable so a key rotation can be followed by
passing both keys); there is no trust on first use and no key stored in DIR: a key
fetched from the server being mirrored would prove nothing about that server, and a
stored key would be a second source of truth beside the command line.

A refusal found before the copy starts (signature, rollback, fork, root, consistency, a
full tile the proof reads) leaves DIR byte for byte as it was; one found while copying
leaves only files already checked. Crash points: a crash before the checkpoint is
replaced leaves the previous checkpoint published, with every tile it needs, plus some
new files already checked against a signed root (the next run finds them and does not
rewrite them). A crash while pruning leaves a few superseded partial files, which
nothing needs. One mirror per DIR, enforced with flock (so POSIX only).

Exit codes, as ``registry log check``: 0 done (or stopped by SIGINT/SIGTERM while
following); 1 the log's answers do not hold up (bad signature, rollback, fork, a tile
or bundle that does not match): its new checkpoint was not published; 2 usage,
network or disk problems (nothing could be concluded; a follower retries network
problems at the next poll).

Imports only the standard library, httpx and ``registry.tlog.{note,merkle,tiles,
tile_reader}``: a bureau installs the project with ``--no-deps`` plus cryptography
and httpx.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from registry.durable_files import replace_file, sync_directory
from registry.tlog.merkle import HASH_SIZE, ProofError, leaf_hash, verify_consistency
from registry.tlog.note import (
    MAX_NOTE_BYTES,
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    parse_verifier_key,
)
from registry.tlog.tile_reader import (
    TileError,
    TileSource,
    TreeTiles,
    full_tile_hash,
    tile_width,
)
from registry.tlog.tiles import (
    MAX_ENTRY_BYTES,
    TILE_HEIGHT,
    TILE_WIDTH,
    entries_path,
    entry_bundle,
    parse_entry_bundle,
    tile_path,
)

OK, INCONSISTENT, UNUSABLE = 0, 1, 2
TIMEOUT = 30.0
DEFAULT_INTERVAL = 10.0

CHECKPOINT = "checkpoint"
_TILE_BYTES = TILE_WIDTH * HASH_SIZE
_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_BYTES)


class MirrorUnusable(Exception):
    """Usage or disk problem: exit 2."""


class LogUnreachable(MirrorUnusable):
    """Network problem or a missing resource: exit 2, or retry at the next poll."""


class LogMisbehaved(Exception):
    """The log's answers do not hold up: exit 1."""


class _Stopped(Exception):
    """A signal asked to stop; the step was abandoned before its checkpoint."""


def log_prefix(url: str) -> str:
    """The tlog-tiles prefix of a registry URL: ``<url>/log`` unless it already ends so.

    The same rule as ``registry log check --url``; a mirror served at ``.../log/`` can
    be mirrored with its own URL.
    """
    base = url.rstrip("/")
    return base if base.endswith("/log") else base + "/log"


# ---- the remote log ---------------------------------------------------------------------


class RemoteLog:
    """A tlog-tiles server read over HTTP. Answers are sized, never trusted."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self.prefix = log_prefix(url)

    def _get(self, path: str, limit: int) -> bytes | None:
        """The body (at most ``limit`` + 1 bytes: longer is wrong anyway), or None on 404."""
        url = f"{self.prefix}/{path}"
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    detail = response.read()[:200].decode("utf-8", "replace")
                    raise LogUnreachable(
                        f"couldn't fetch {url}: HTTP {response.status_code}: {detail}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        break
                return bytes(body[: limit + 1])
        except httpx.HTTPError as error:
            raise LogUnreachable(f"couldn't fetch {url}: {error}") from None

    def _need(self, path: str, limit: int) -> bytes:
        body = self._get(path, limit)
        if body is None:
            raise LogUnreachable(f"couldn't fetch {self.prefix}/{path}: HTTP 404")
        return body

    def checkpoint(self) -> bytes:
        return self._need(CHECKPOINT, MAX_NOTE_BYTES)

    def hash_tile(self, level: int, index: int, width: int | None) -> bytes:
        data = self._get(tile_path(level, index, width), _TILE_BYTES)
        if data is None and width is not None:
            # A log may delete a partial tile once the full one exists (tlog-tiles):
            # the partial tile is the full tile's prefix.
            full = self._need(tile_path(level, index), _TILE_BYTES)
            return full[: width * HASH_SIZE] if len(full) == _TILE_BYTES else full
        if data is None:
            raise LogUnreachable(f"couldn't fetch {self.prefix}/{tile_path(level, index)}: 404")
        return data

    def entry_bundle(self, index: int, width: int | None) -> bytes:
        data = self._get(entries_path(index, width), _BUNDLE_BYTES)
        if data is None and width is not None:
            full = self._need(entries_path(index), _BUNDLE_BYTES)
            try:
                return entry_bundle(parse_entry_bundle(full)[:width])
            except ValueError:
                return full  # the caller's check says what is wrong with it
        if data is None:
            raise LogUnreachable(f"couldn't fetch {self.prefix}/{entries_path(index)}: 404")
        return data


# ---- the mirror directory ---------------------------------------------------------------


class MirrorDir:
    """DIR and the one guarantee its writes give: durable (file and directories fsynced)
    once ``sync`` returns, and atomic (a reader sees the old or the new file, whole)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirty: set[Path] = set()

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> bytes | None:
        try:
            return self.path(relative).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise MirrorUnusable(f"couldn't read {self.path(relative)}: {error}") from None

    def write_once(self, relative: str, data: bytes) -> bool:
        """Write a full tile or bundle unless it is there; True if written.

        An existing file is never rewritten. One that differs was checked against a
        checkpoint the log signed for an earlier, unfinished run, so the log signed two
        trees that disagree (or the disk was damaged): refuse rather than choose.
        """
        existing = self.read(relative)
        if existing is None:
            self._replace(relative, data)
            return True
        if existing != data:
            raise LogMisbehaved(
                f"{self.path(relative)} already holds a different full tile, and full tiles "
                "are never rewritten: the log signed another tree for an unfinished earlier "
                "run, or the file was damaged; move the directory aside and mirror afresh"
            )
        return False

    def write_partial(self, relative: str, data: bytes) -> bool:
        """Write a partial tile or bundle, replacing any copy atomically; True if written."""
        if self.read(relative) == data:
            return False
        self._replace(relative, data)
        return True

    def _replace(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Synced in ``sync``, once per directory for all the files of a step.
            replace_file(target, data, sync=False)
        except OSError as error:
            raise MirrorUnusable(f"couldn't write {target}: {error}") from None
        # The new name (and any new directory) is durable only once its parents are synced.
        parts = Path(relative).parent.parts
        for depth in range(len(parts) + 1):
            self._dirty.add(self.root.joinpath(*parts[:depth]))

    def sync(self) -> None:
        """Make every write so far durable: fsync the directories that gained names."""
        for folder in sorted(self._dirty, key=lambda p: len(p.parts), reverse=True):
            try:
                sync_directory(folder)
            except OSError as error:
                raise MirrorUnusable(f"couldn't sync {folder}: {error}") from None
        self._dirty.clear()

    def remove_partials(self, relative_partial: str) -> None:
        """Delete the ``<N>.p/`` directory holding ``relative_partial`` and its siblings."""
        folder = self.path(relative_partial).parent
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as error:
            # Only disk space is at stake: the published checkpoint needs none of them.
            print(f"registry log mirror: couldn't delete {folder}: {error}", file=sys.stderr)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One mirror per DIR: two would race, and the slower could publish an older
    checkpoint over a newer one (a rollback for readers). The lock is on DIR itself."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError as error:
        raise MirrorUnusable(f"couldn't open {root}: {error}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MirrorUnusable(f"another mirror is writing {root}") from None
        yield
    finally:
        os.close(fd)


def _prepare(root: Path) -> None:
    """Create DIR if needed; refuse a directory that holds something other than a mirror."""
    try:
        root.mkdir(exist_ok=True)
        names = {p.name for p in root.iterdir()}
    except OSError as error:
        raise MirrorUnusable(f"couldn't create or list {root}: {error}") from None
    if CHECKPOINT not in names and names - {"tile"}:
        shown = ", ".join(sorted(names)[:5])
        raise MirrorUnusable(
            f"refusing to mirror into {root}: it has no checkpoint but holds other files "
            f"({shown}); choose an empty or new directory"
        )


# ---- one step: verify, copy, publish ------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    size: int
    previous: int | None  # the size DIR published before; None if it had no checkpoint
    tiles_written: int
    bundles_written: int

    @property
    def changed(self) -> bool:
        return self.previous != self.size


def _open(note: bytes, verifiers: Sequence[Verifier], what: str) -> Checkpoint:
    try:
        checkpoint, signers = open_checkpoint(note, verifiers)
    except NoteError as error:
        raise LogMisbehaved(f"{what} does not verify with the pinned key: {error}") from None
    if checkpoint.origin not in signers:
        raise LogMisbehaved(
            f"{what} is for log {checkpoint.origin!r}, but it is signed only by "
            f"{', '.join(sorted(set(signers)))}"
        )
    return checkpoint


def _published(directory: MirrorDir, verifiers: Sequence[Verifier]) -> Checkpoint | None:
    note = directory.read(CHECKPOINT)
    if note is None:
        return None
    try:
        return _open(note, verifiers, f"{directory.path(CHECKPOINT)}")
    except LogMisbehaved as error:
        raise MirrorUnusable(
            f"{error}; pass the --log-key this mirror was started with (and the new one, "
            "after a key rotation)"
        ) from None


def _levels(size: int) -> range:
    """The tile levels a tree of ``size`` has (level L has size >> 8L hashes)."""
    top = 0
    while size >> (TILE_HEIGHT * (top + 1)):
        top += 1
    return range(top + 1 if size else 0)


def _full_tiles(level: int, size: int) -> int:
    """How many full tiles level ``level`` has in a tree of ``size``."""
    return (size >> (TILE_HEIGHT * level)) // TILE_WIDTH


def _new_tiles(level: int, old_size: int, new_size: int) -> range:
    """Tiles of the new tree that were not full in the old one: the only ones to copy."""
    hashes = new_size >> (TILE_HEIGHT * level)
    return range(_full_tiles(level, old_size), (hashes + TILE_WIDTH - 1) // TILE_WIDTH)


def _tile_source(
    remote: RemoteLog, directory: MirrorDir, published_size: int
) -> TileSource:
    def source(level: int, index: int, width: int | None) -> bytes:
        # A tile full in the published tree is on disk and was verified when written.
        if width is None and (index + 1) * TILE_WIDTH <= published_size >> (TILE_HEIGHT * level):
            data = directory.read(tile_path(level, index))
            if data is None:
                raise MirrorUnusable(
                    f"{directory.path(tile_path(level, index))} is missing, but the published "
                    "checkpoint needs it: the directory was changed by hand; mirror afresh"
                )
            return data
        return remote.hash_tile(level, index, width)

    return source


def _authenticate(
    tiles: TreeTiles, level: int, index: int, checked: set[tuple[int, int]]
) -> None:
    """Check a full tile against the hash its parent holds for it, the parent first.

    Partial tiles need no check here: the root, already compared with the signed one, is
    computed from all of them. So every chain of parents ends at a checked tile.
    """
    if (level, index) in checked or tile_width(level, index, tiles.size) is not None:
        return
    parent = (level + 1, index // TILE_WIDTH)
    _authenticate(tiles, *parent, checked)
    if full_tile_hash(tiles.tile(level, index)) != tiles.tile_hash(*parent, index % TILE_WIDTH):
        raise LogMisbehaved(
            f"{tile_path(level, index)} does not hash to the value its parent tile holds for it"
        )
    checked.add((level, index))


def _check_bundle(bundle: bytes, tile: bytes, index: int, width: int | None) -> None:
    count = width or TILE_WIDTH
    try:
        entries = parse_entry_bundle(bundle, count)
    except ValueError as error:
        raise LogMisbehaved(f"entry bundle {entries_path(index, width)}: {error}") from None
    for i, entry in enumerate(entries):
        if leaf_hash(entry) != tile[i * HASH_SIZE : (i + 1) * HASH_SIZE]:
            raise LogMisbehaved(
                f"entry {index * TILE_WIDTH + i} in {entries_path(index, width)} does not hash "
                "to the leaf hash its level-0 tile holds"
            )


def mirror_step(
    remote: RemoteLog,
    directory: MirrorDir,
    verifiers: Sequence[Verifier],
    stop: threading.Event,
) -> StepResult:
    """Bring DIR up to the log's current checkpoint, or raise without publishing it."""
    published = _published(directory, verifiers)
    note = remote.checkpoint()
    new = _open(note, verifiers, "the log's checkpoint")
    old_size = published.size if published else 0
    if published is not None:
        if new.origin != published.origin:
            raise MirrorUnusable(
                f"the log at {remote.prefix} is {new.origin!r}, but {directory.root} mirrors "
                f"{published.origin!r}"
            )
        if new.size < published.size:
            raise LogMisbehaved(
                f"the log shrank: it now signs size {new.size}, but it signed size "
                f"{published.size} before (rollback)"
            )
        if new.size == published.size:
            if new.root_hash != published.root_hash:
                raise LogMisbehaved(f"the log forked: two different roots signed at size {new.size}")
            return StepResult(new.size, published.size, 0, 0)

    # Phase 1, nothing written: the new tree's tiles hash to its signed root and extend
    # the published tree. A refusal here leaves DIR exactly as it was.
    tiles = TreeTiles(new.size, _tile_source(remote, directory, old_size))
    checked: set[tuple[int, int]] = set()
    try:
        if tiles.root() != new.root_hash:
            raise LogMisbehaved(
                f"the log's tiles for size {new.size} do not hash to the root it signed"
            )
        if published is not None and old_size:
            proof = tiles.consistency_proof(old_size)
            # A wrong full tile would fail the proof too; checking first says which it was.
            for level, index in tiles.kept():
                _authenticate(tiles, level, index, checked)
            verify_consistency(old_size, new.size, proof, published.root_hash, new.root_hash)
    except TileError as error:
        raise LogMisbehaved(f"the log served a malformed tile: {error}") from None
    except ProofError as error:
        raise LogMisbehaved(
            f"the log at size {new.size} does not extend the mirrored size {old_size}: {error}"
        ) from None

    # Phase 2: top-down, so each full tile is checked against its parent's hash before it
    # is written. Everything written is part of the tree the log signed; a refusal here
    # leaves the published checkpoint (and every tile it needs) as it was.
    tiles_written = bundles_written = 0
    try:
        for level in reversed(_levels(new.size)):
            for index in _new_tiles(level, old_size, new.size):
                if stop.is_set():
                    raise _Stopped
                width = tile_width(level, index, new.size)
                _authenticate(tiles, level, index, checked)
                data = tiles.tile(level, index)
                write = directory.write_once if width is None else directory.write_partial
                if level == 0:
                    bundle = remote.entry_bundle(index, width)
                    _check_bundle(bundle, data, index, width)
                    bundles_written += write(entries_path(index, width), bundle)
                    tiles.forget(0, index)  # level 0 is the bulk: keep only what is in flight
                tiles_written += write(tile_path(level, index, width), data)
    except TileError as error:
        raise LogMisbehaved(f"the log served a malformed tile: {error}") from None

    # Publish: the tiles are durable before the checkpoint names them.
    directory.sync()
    directory.write_partial(CHECKPOINT, note)
    directory.sync()
    _prune(directory, old_size, new.size)
    return StepResult(new.size, published.size if published else None, tiles_written,
                      bundles_written)


def _prune(directory: MirrorDir, old_size: int, new_size: int) -> None:
    """Delete the partial files of tiles that became full in this step.

    Each tile's partials go exactly once, in the step where it fills, so nothing is
    left behind without keeping any state. Partials of a tile still partial stay (at
    most 255 widths per level), so readers of an older checkpoint still find theirs.
    """
    for level in _levels(new_size):
        for index in range(_full_tiles(level, old_size), _full_tiles(level, new_size)):
            directory.remove_partials(tile_path(level, index, 1))
            if level == 0:
                directory.remove_partials(entries_path(index, 1))


# ---- the command ----------------------------------------------------------------------------


def _verifiers(log_keys: Sequence[str]) -> list[Verifier]:
    if not log_keys:
        raise MirrorUnusable("--log-key is required: the verifier key of the log to mirror")
    try:
        return [parse_verifier_key(key.strip()) for key in log_keys]
    except NoteError as error:
        raise MirrorUnusable(f"--log-key: {error}") from None


def _describe(result: StepResult, remote: RemoteLog, directory: MirrorDir) -> str:
    if not result.changed:
        return f"{directory.root} is up to date with {remote.prefix} at size {result.size}"
    since = "" if result.previous is None else f" (was {result.previous})"
    return (
        f"mirrored {remote.prefix} at size {result.size}{since} into {directory.root}: "
        f"{result.tiles_written} tiles and {result.bundles_written} entry bundles written"
    )


def _follow(
    remote: RemoteLog,
    directory: MirrorDir,
    verifiers: Sequence[Verifier],
    interval: float,
    stop: threading.Event,
) -> int:
    """Mirror every ``interval`` seconds until ``stop``; network trouble is retried."""
    first = True
    while not stop.is_set():
        try:
            result = mirror_step(remote, directory, verifiers, stop)
        except LogUnreachable as error:
            print(f"registry log mirror: {error}; retrying in {interval:g}s", file=sys.stderr,
                  flush=True)
        except _Stopped:
            break
        else:
            if first or result.changed:
                print(_describe(result, remote, directory), flush=True)
            first = False
        stop.wait(interval)
    print("registry log mirror: stopped", flush=True)
    return OK


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event | None) -> Iterator[threading.Event]:
    """``stop``, or an event set by the first SIGINT or SIGTERM (main thread only).

    The first signal asks the current step to stop between two tiles and restores the
    previous handlers, so a second one interrupts at once (Ctrl-C twice).
    """
    if stop is not None:
        yield stop
        return
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, frame: FrameType | None) -> None:
        event.set()
        restore()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield event
    finally:
        restore()


def mirror_log(
    url: str,
    to: str | os.PathLike[str],
    log_keys: Sequence[str],
    *,
    once: bool,
    interval: float = DEFAULT_INTERVAL,
    client: httpx.Client | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``registry log mirror``: mirror once, or follow until SIGINT/SIGTERM (or ``stop``)."""
    try:
        verifiers = _verifiers(log_keys)
        if not interval > 0:
            raise MirrorUnusable(f"--interval must be a positive number of seconds, not {interval}")
        root = Path(to)
        _prepare(root)
        with contextlib.ExitStack() as stack:
            stack.enter_context(_locked(root))
            if client is None:
                client = stack.enter_context(httpx.Client(timeout=TIMEOUT, follow_redirects=True))
            stopping = stack.enter_context(_stop_on_signals(stop))
            remote, directory = RemoteLog(client, url), MirrorDir(root)
            if not once:
                return _follow(remote, directory, verifiers, interval, stopping)
            try:
                result = mirror_step(remote, directory, verifiers, stopping)
            except _Stopped:
                raise MirrorUnusable(
                    "stopped before the new checkpoint was complete; the directory still "
                    "serves the previous one"
                ) from None
            print(_describe(result, remote, directory))
            return OK
    except LogMisbehaved as error:
        print(f"registry log mirror: FAILED: {error}", file=sys.stderr)
        return INCONSISTENT
    except MirrorUnusable as error:
        print(f"registry log mirror: {error}", file=sys.stderr)
        return UNUSABLE
