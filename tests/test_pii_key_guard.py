"""The personal-data key is never replaced silently: the database remembers its fingerprint.

Through the real start-up (open_services), the real key checks (open_pii_cipher) and the
real `registry` command against a fresh copy of the migrated database. Each test has a home
of its own (its own key file); the template database has no fingerprint, so every fresh
copy records one on first use, as a new deployment does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from registry.bootstrap import close_services, open_services
from registry.keys import PII_PURPOSE, KeyError_, PiiKey, open_pii_cipher
from registry.pii import generate_master_key, master_key_fingerprint
from registry.settings import Settings
from registry.subjects import create_subject

NUMBER = "11010519491231002X"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def own(settings: Settings, home: Path) -> Settings:
    """The suite's settings with this test's home: its own key files."""
    return replace(settings, home=home)


def file_key(settings: Settings) -> bytes:
    return base64.b64decode(settings.pii_key_path.read_bytes().strip())


def put_key(settings: Settings, master: bytes) -> None:
    settings.pii_key_path.parent.mkdir(parents=True, exist_ok=True)
    settings.pii_key_path.write_bytes(base64.b64encode(master) + b"\n")


async def start_and_stop(settings: Settings, url: str) -> None:
    services = await open_services(settings, url=url)
    await close_services(services)


async def stored_fingerprints(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT purpose, fingerprint, key_fingerprints::text AS line"
                                " FROM key_fingerprints")
    finally:
        await conn.close()


async def add_practitioner(settings: Settings, url: str) -> None:
    """One encrypted number, written the way the API writes it, under ``settings``' key."""
    services = await open_services(settings, url=url)
    try:
        await create_subject(services, "admin:test", {
            "kind": "practitioner", "name": "張三", "document_type": "resident_id",
            "document_number": NUMBER,
        })
    finally:
        await close_services(services)


async def forget_fingerprints(url: str) -> None:
    """A database as it was before fingerprints were kept."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM key_fingerprints")
    finally:
        await conn.close()


# --- the fingerprint itself ----------------------------------------------------------


def test_fingerprint_is_truncated_hmac_over_its_label() -> None:
    """32 hex digits of HMAC-SHA256(master, label): pinned, it is what databases store."""
    master = bytes(range(32))
    expected = hmac.new(master, b"xining-vc-registry/pii/fingerprint/v1", hashlib.sha256)
    assert master_key_fingerprint(master) == expected.hexdigest()[:32]
    assert master_key_fingerprint(master) != master_key_fingerprint(bytes(32))


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_fingerprint_of_a_key_of_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match=f"master key must be 32 bytes long, got {length}"):
        master_key_fingerprint(bytes(length))


# --- start-up ----------------------------------------------------------------------


async def test_first_start_creates_the_key_and_stores_only_its_fingerprint(
    own: Settings, database_url: str
) -> None:
    """An empty database and no key file (development keys): a key is made, its fingerprint
    stored, and nothing in the table is the key or any encoding of it."""
    assert not own.pii_key_path.exists()
    await start_and_stop(own, database_url)
    master = file_key(own)
    rows = await stored_fingerprints(database_url)
    assert [(r["purpose"], r["fingerprint"]) for r in rows] == [
        (PII_PURPOSE, master_key_fingerprint(master))
    ]
    line = rows[0]["line"].lower()
    for encoding in (master.hex(), base64.b64encode(master).decode().lower(),
                     master.decode("latin-1").lower()):
        assert encoding not in line


async def test_restart_with_the_same_key_works(own: Settings, database_url: str) -> None:
    await start_and_stop(own, database_url)
    first = await stored_fingerprints(database_url)
    await start_and_stop(own, database_url)
    assert await stored_fingerprints(database_url) == first


@pytest.mark.parametrize("dev_keys", [True, False])
async def test_another_key_in_the_environment_is_refused_naming_both(
    own: Settings, database_url: str, dev_keys: bool
) -> None:
    """REGISTRY_PII_KEY wins over the file; a key other than the recorded one is refused,
    also with development keys on, and the message says what to restore."""
    await start_and_stop(own, database_url)
    stored = master_key_fingerprint(file_key(own))
    other = generate_master_key()
    wrong = replace(own, pii_master_key=other, dev_keys=dev_keys)
    with pytest.raises(KeyError_) as refused:
        await open_services(wrong, url=database_url)
    message = str(refused.value)
    assert stored in message and master_key_fingerprint(other) in message
    assert "REGISTRY_PII_KEY" in message
    assert [r["fingerprint"] for r in await stored_fingerprints(database_url)] == [stored]


async def test_a_replaced_key_file_is_refused_naming_both(
    own: Settings, database_url: str
) -> None:
    await start_and_stop(own, database_url)
    stored = master_key_fingerprint(file_key(own))
    other = generate_master_key()
    put_key(own, other)
    with pytest.raises(KeyError_) as refused:
        await open_services(own, url=database_url)
    message = str(refused.value)
    assert stored in message and master_key_fingerprint(other) in message
    assert f"back at {own.pii_key_path}" in message


async def test_a_deleted_key_file_is_refused_not_regenerated(
    own: Settings, database_url: str
) -> None:
    """Development keys on: the old behaviour wrote a fresh key here; now the start fails,
    names the fingerprint and the path, and leaves no file behind."""
    assert own.dev_keys
    await start_and_stop(own, database_url)
    stored = master_key_fingerprint(file_key(own))
    own.pii_key_path.unlink()
    with pytest.raises(KeyError_) as refused:
        await open_services(own, url=database_url)
    message = str(refused.value)
    assert stored in message and str(own.pii_key_path) in message
    assert not own.pii_key_path.exists()


async def test_without_development_keys_a_missing_key_is_not_created(
    own: Settings, database_url: str
) -> None:
    with pytest.raises(KeyError_, match="registry keys generate"):
        await open_services(replace(own, dev_keys=False), url=database_url)
    assert not own.pii_key_path.exists()
    assert await stored_fingerprints(database_url) == []


# --- databases from before the fingerprints ------------------------------------------


async def test_upgrade_records_the_key_that_decrypts_the_stored_numbers(
    own: Settings, database_url: str
) -> None:
    await add_practitioner(own, database_url)
    await forget_fingerprints(database_url)
    await start_and_stop(own, database_url)
    assert [r["fingerprint"] for r in await stored_fingerprints(database_url)] == [
        master_key_fingerprint(file_key(own))
    ]


async def test_upgrade_with_a_key_that_does_not_decrypt_is_refused(
    own: Settings, database_url: str
) -> None:
    await add_practitioner(own, database_url)
    await forget_fingerprints(database_url)
    other = generate_master_key()
    with pytest.raises(KeyError_, match="does not decrypt") as refused:
        await open_services(replace(own, pii_master_key=other), url=database_url)
    assert master_key_fingerprint(other) in str(refused.value)
    assert await stored_fingerprints(database_url) == []


async def test_upgrade_with_no_key_is_refused_not_generated(
    own: Settings, database_url: str
) -> None:
    """Numbers stored, no fingerprint, no key file: generating one would orphan them."""
    await add_practitioner(own, database_url)
    await forget_fingerprints(database_url)
    own.pii_key_path.unlink()
    with pytest.raises(KeyError_, match="holds encrypted document numbers"):
        await open_services(own, url=database_url)
    assert not own.pii_key_path.exists()
    assert await stored_fingerprints(database_url) == []


# --- two processes starting at once ----------------------------------------------------


async def open_twice(first: Settings, second: Settings, url: str) -> list[PiiKey | BaseException]:
    one, two = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        return list(await asyncio.gather(
            open_pii_cipher(one, first, create=True),
            open_pii_cipher(two, second, create=True),
            return_exceptions=True,
        ))
    finally:
        await one.close()
        await two.close()


async def test_two_starts_on_one_key_path_share_one_new_key(
    own: Settings, database_url: str
) -> None:
    results = await open_twice(own, own, database_url)
    assert all(isinstance(r, PiiKey) for r in results), results
    opened = [r for r in results if isinstance(r, PiiKey)]
    assert sum(r.created is not None for r in opened) == 1
    assert {r.fingerprint for r in opened} == {master_key_fingerprint(file_key(own))}


async def test_two_starts_on_two_key_paths_leave_one_key(
    own: Settings, tmp_path: Path, database_url: str
) -> None:
    """Each may create a key; one fingerprint is stored, the other start refuses and
    removes the key it created, under which nothing was ever encrypted."""
    elsewhere = replace(own, home=tmp_path / "elsewhere")
    results = await open_twice(own, elsewhere, database_url)
    won = [r for r in results if isinstance(r, PiiKey)]
    lost = [r for r in results if isinstance(r, KeyError_)]
    assert len(won) == 1 and len(lost) == 1, results
    stored = [r["fingerprint"] for r in await stored_fingerprints(database_url)]
    assert stored == [won[0].fingerprint]
    assert stored[0] in str(lost[0])
    assert [own.pii_key_path.exists(), elsewhere.pii_key_path.exists()].count(True) == 1


# --- the command line ----------------------------------------------------------------


def run(args: list[str], home: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {name: value for name, value in os.environ.items() if name != "REGISTRY_PII_KEY"}
    full.update(REGISTRY_HOME=str(home), DATABASE_URL=url, REGISTRY_LOG_FORMAT="json", **env)
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", *args], env=full, capture_output=True, text=True,
        timeout=60, check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "command",
    [["keys", "list"], ["migrate"], ["expire"], ["log", "verify"], ["serve", "--port", "PORT"]],
    ids=["keys list", "migrate", "expire", "log verify", "serve"],
)
async def test_every_command_refuses_another_key_without_a_traceback(
    home: Path, database_url: str, command: list[str]
) -> None:
    """With development keys on (the default). `serve` refuses before it listens: were it
    to start, the run would time out instead."""
    master = generate_master_key()
    put_key(Settings.from_env({"REGISTRY_HOME": str(home)}), master)
    # The first use that records the key (migrate and the token commands only check).
    first = run(["keys", "generate"], home, database_url)
    assert first.returncode == 0, first.stderr
    stored = master_key_fingerprint(master)
    other = generate_master_key()
    args = [str(free_port()) if a == "PORT" else a for a in command]
    refused = run(args, home, database_url, REGISTRY_PII_KEY=base64.b64encode(other).decode())
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("registry: couldn't use the personal-data key"), refused.stderr
    assert stored in refused.stderr and master_key_fingerprint(other) in refused.stderr


async def test_keys_generate_makes_the_key_only_for_an_empty_database(
    home: Path, database_url: str
) -> None:
    """Production settings (no development keys): `keys generate` creates the key for an
    empty database; once it is recorded, a lost key file is refused, not made again."""
    generated = run(["keys", "generate"], home, database_url, REGISTRY_DEV_KEYS="0")
    assert generated.returncode == 0, generated.stderr
    key_path = home / "keys/pii-master.key"
    stored = master_key_fingerprint(base64.b64decode(key_path.read_bytes()))
    assert f"created the personal-data key {key_path} (fingerprint {stored})" in generated.stderr
    listed = run(["keys", "list"], home, database_url, REGISTRY_DEV_KEYS="0")
    assert listed.returncode == 0, listed.stderr
    key_path.unlink()
    (home / "keys/log-signing.pem").rename(home / "keys/log-signing.pem.kept")
    again = run(["keys", "generate"], home, database_url, REGISTRY_DEV_KEYS="0")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert stored in again.stderr and str(key_path) in again.stderr
    assert not key_path.exists()


async def test_a_lost_key_stops_serve_and_expire_but_not_token_commands(
    home: Path, database_url: str
) -> None:
    """Development keys on, the key file gone from a set-up database: what needs the key
    refuses and makes none; what never reads document numbers goes on without it."""
    put_key(Settings.from_env({"REGISTRY_HOME": str(home)}), master := generate_master_key())
    assert run(["keys", "generate"], home, database_url).returncode == 0
    key_path = home / "keys/pii-master.key"
    key_path.unlink()
    for command in (["serve", "--port", str(free_port())], ["expire"]):
        refused = run(command, home, database_url)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        assert master_key_fingerprint(master) in refused.stderr and str(key_path) in refused.stderr
        assert not key_path.exists()
    listed = run(["keys", "list"], home, database_url)
    assert listed.returncode == 0, listed.stderr
    assert not key_path.exists()


async def test_a_command_that_only_checks_records_no_key(home: Path, database_url: str) -> None:
    """A stray key beside `migrate` or `keys list` on a new database is not made the
    database's key: the first `serve` (here `expire`, which opens the service) records
    the real one."""
    put_key(Settings.from_env({"REGISTRY_HOME": str(home)}), generate_master_key())
    for command in (["migrate"], ["keys", "list"]):
        assert run(command, home, database_url).returncode == 0
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM key_fingerprints") == 0
    finally:
        await conn.close()
    real = generate_master_key()
    started = run(["expire"], home, database_url, REGISTRY_PII_KEY=base64.b64encode(real).decode())
    assert started.returncode == 0, started.stderr
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT fingerprint FROM key_fingerprints") == (
            master_key_fingerprint(real))
    finally:
        await conn.close()
