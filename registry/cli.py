"""The ``registry`` command: serve, migrate, keys, log verification.

Every command works on ``$REGISTRY_HOME`` (default ./var) or ``DATABASE_URL``;
with the embedded database, commands attach to the server ``serve`` runs there
rather than starting a second one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

# Only the server's commands need the server's libraries: ``registry log check``,
# ``log mirror`` and ``witness`` run from a ``pip install --no-deps`` plus cryptography
# and httpx (a bureau's verifier), so nothing here imports asyncpg, msgspec or the
# settings at module level; each command imports what it uses.
if TYPE_CHECKING:
    import asyncpg

    from registry.settings import Settings

CLI_ACTOR = "admin:cli"
T = TypeVar("T")


def _settings() -> Settings:
    from registry.settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as error:
        raise SystemExit(f"registry: configuration error: {error}") from None


# What a command needs of the personal-data key (_with_db).
PiiKeyUse = Literal["check", "need", "create"]


async def _with_db(
    settings: Settings,
    work: Callable[[asyncpg.Pool], Awaitable[int]],
    *,
    pii_key: PiiKeyUse = "check",
) -> int:
    """Migrate, check the personal-data key against the database, then ``work``.

    A key is never replaced silently (registry/keys.py open_pii_cipher). ``pii_key``:
    - "check", commands that never read document numbers: a key given (REGISTRY_PII_KEY or
      the key file) is checked as `serve` checks it, so a wrong one is refused here rather
      than found later by a write; with none given the command goes on and makes none (a
      token administrator needs no access to personal data);
    - "need", serve's check before it starts: the database's key or a refusal; a missing
      one is made only for an empty database, and only with development keys;
    - "create", `registry keys generate`: as "need", whatever REGISTRY_DEV_KEYS says.
    """
    from registry.db.embedded import database_url
    from registry.db.migrate import migrate
    from registry.db.pool import create_pool
    from registry.keys import open_pii_cipher, pii_key_given

    create = pii_key == "create" or (pii_key == "need" and settings.dev_keys)
    pool = await create_pool(
        database_url(settings.home, settings.database_url), min_size=1, max_size=4
    )
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            opened = None
            if pii_key != "check" or pii_key_given(settings):
                # A refusal (KeyError_) reaches main(), which prints it without a traceback.
                # "check" compares with a stored fingerprint and never records one.
                opened = await open_pii_cipher(
                    conn, settings, create=create, record=pii_key != "check"
                )
        # stderr: stdout stays what the command prints (a token is its last line).
        if opened and opened.created:
            print(
                f"registry: created the personal-data key {opened.created} (fingerprint "
                f"{opened.fingerprint}); back it up apart from the database",
                file=sys.stderr,
            )
        if opened and opened.recorded:
            print(
                f"registry: recorded the personal-data key's fingerprint {opened.fingerprint}",
                file=sys.stderr,
            )
        return await work(pool)
    finally:
        await pool.close()


async def _nothing(_: asyncpg.Pool) -> int:
    return 0


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


# ---- serve / migrate -------------------------------------------------------------


SERVER_LOOP = "asyncio"


def _stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM end the process like Ctrl-C does: through the exit-time clean-up.

    uvicorn catches SIGTERM and SIGINT, shuts down gracefully, then restores the handlers
    it found and raises the signal again. SIGINT's default handler raises
    KeyboardInterrupt, so Python unwinds and the exit-time clean-up stops the embedded
    PostgreSQL (registry/db/embedded.py); SIGTERM's default ends the process at once and
    left PostgreSQL running. What systemd, Docker and most supervisors send must stop it
    too, so SIGTERM's handler, the one uvicorn restores, exits the same way.
    """

    def exit_after_shutdown(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, exit_after_shutdown)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..65535")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from registry.api.app import create_app
    from registry.db.embedded import database_url

    settings = _settings()
    if args.metrics_port is not None:
        settings = replace(settings, metrics_port=args.metrics_port)
    url = database_url(settings.home, settings.database_url)
    # _with_db checks the personal-data key first: a refusal is one line here, not a
    # traceback from the server's start-up (open_services checks again there).
    if settings.dev_keys:
        _run(_with_db(settings, lambda pool: _dev_regulator_token(settings, pool), pii_key="need"))
    else:
        _run(_with_db(settings, _nothing, pii_key="need"))
    app = create_app(settings, database_url=url)
    _stop_cleanly_on_sigterm()
    _announce(args.host, args.port, settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        # X-Forwarded-For/-Proto only from the proxies named in REGISTRY_TRUSTED_PROXIES
        # (uvicorn would otherwise believe any process on this machine).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or "",
        # The standard library's event loop, not uvloop: with the CPU saturated (a
        # repeated profile needs no database, so requests never wait), uvloop served
        # some of 128 keep-alive connections ~1 s late (p99 0.9-1.2 s) where asyncio
        # kept p99 at 40-120 ms for the same throughput (docs/benchmarks.md).
        loop=SERVER_LOOP,
    )
    return 0


def _announce(host: str, port: int, settings: Settings) -> None:
    """One line at start: where the service listens, where its documentation and public
    page are, and which database it uses (never a password)."""
    import structlog

    from registry.db.embedded import shown

    address = f"[{host}]" if ":" in host else host
    base = f"http://{address}:{port}"
    if settings.database_url:
        database = shown(settings.database_url)
    else:
        database = f"embedded PostgreSQL in {settings.home / 'pgdata'}"
    metrics = (f"http://127.0.0.1:{settings.metrics_port}/metrics" if settings.metrics_port
               else f"{base}/metrics (admin token)")
    structlog.get_logger("registry.serve").info(
        "serving", url=f"{base}/", api_docs=f"{base}/schema", public_page=f"{base}/public/",
        console=f"{base}/console/",
        health=f"{base}/readyz", metrics=metrics, database=database,
    )


async def _dev_regulator_token(settings: Settings, pool: asyncpg.Pool) -> int:
    """On a database with no token at all: a development authority and a regulator token of
    it, printed once. Any token, live or revoked, means set-up happened: a revoked
    development token is never minted again."""
    from registry.authorities import DEVELOPMENT_AUTHORITY, add_authority
    from registry.clock import SystemClock
    from registry.errors import Conflict
    from registry.keys import load_log_key
    from registry.tlog.integrator import initialise_log, integrate_once
    from registry.tlog.startup import check_log_at_start
    from registry.tokens import issue_token

    if await pool.fetchval("SELECT EXISTS (SELECT 1 FROM api_tokens)"):
        print(
            "Tokens exist already (the development token is printed only on a database "
            "with none); issue another with "
            "`registry keys issue --role regulator --name NAME --authority CODE`.",
            flush=True,
        )
        return 0
    key = load_log_key(settings, create_dev=True)
    async with pool.acquire() as conn:
        await initialise_log(conn, key, settings.log_origin)
        # The start-up cross-check before the first write: never append to a damaged log
        # (serve would refuse it a moment later, but the token's leaf would be written).
        await check_log_at_start(conn, key, settings.log_origin)
    code, name = DEVELOPMENT_AUTHORITY
    clock = SystemClock()
    if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM authorities WHERE code = $1)", code):
        # Two first starts at once: the other one registered it meanwhile, which is fine.
        with contextlib.suppress(Conflict):
            await add_authority(pool, clock, code=code, name=name, actor=CLI_ACTOR)
    token, _ = await issue_token(
        pool, clock, role="regulator", name="development regulator", actor=CLI_ACTOR,
        authority_code=code,
    )
    async with pool.acquire() as conn:
        await integrate_once(conn, key, settings.log_origin)
    print(f"Development authority {code} ({name}); its regulator token (shown once):\n{token}",
          flush=True)
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from rich.console import Console

    from registry.db.migrate import migrate
    from registry.keys import load_log_key
    from registry.tlog.integrator import initialise_log

    settings = _settings()
    console = Console(stderr=True)

    async def work(pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn:
            applied = await migrate(conn, progress=lambda m: console.print(f"applied {m.name}"))
            if not applied:
                console.print("schema is up to date")
            key = load_log_key(settings, create_dev=True)
            if await initialise_log(conn, key, settings.log_origin):
                console.print(f"created the empty log {settings.log_origin}")
        return 0

    return _run(_with_db(settings, work))


# ---- keys ------------------------------------------------------------------------


def cmd_keys_generate(_: argparse.Namespace) -> int:
    from registry.keys import KeyError_, generate_log_key

    settings = _settings()
    try:
        key = generate_log_key(settings)
    except KeyError_ as error:
        print(f"registry: {error}", file=sys.stderr)
        return 1
    # The personal-data key only for a database without one (_with_db says so if it made it);
    # a database whose key is missing is refused, never given a new one.
    _run(_with_db(settings, _nothing, pii_key="create"))
    print(f"log signing key written to {settings.log_key_path}")
    print(key.verifier)
    return 0


def cmd_keys_rotate(_: argparse.Namespace) -> int:
    from registry.clock import SystemClock
    from registry.keys import load_log_key
    from registry.tlog.rotation import rotate

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        old = load_log_key(settings)
        new, index = await rotate(pool, SystemClock(), settings, old, actor=CLI_ACTOR)
        print(f"retired {old.verifier}")
        print(f"rotation recorded as log entry {index}")
        print(new.verifier)
        return 0

    return _run(_with_db(settings, work))


async def _write_and_integrate(
    settings: Settings, pool: asyncpg.Pool, write: Callable[[], Awaitable[T]]
) -> T | None:
    """One audited write from the command line, integrated at once so its leaf is in a signed
    checkpoint even with no server running; None (reported on stderr) when it is refused."""
    from registry.errors import RegistryError
    from registry.keys import load_log_key
    from registry.tlog.integrator import initialise_log, integrate_once

    key = load_log_key(settings, create_dev=True)
    async with pool.acquire() as conn:
        await initialise_log(conn, key, settings.log_origin)
    try:
        result = await write()
    except RegistryError as error:
        print(f"registry: {error.detail}", file=sys.stderr)
        return None
    async with pool.acquire() as conn:
        await integrate_once(conn, key, settings.log_origin)
    return result


def cmd_keys_issue(args: argparse.Namespace) -> int:
    from registry.clock import SystemClock
    from registry.tokens import issue_token

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        issued = await _write_and_integrate(settings, pool, lambda: issue_token(
            pool, SystemClock(), role=args.role, name=args.name, actor=CLI_ACTOR,
            authority_code=args.authority,
        ))
        if issued is None:
            return 2
        token, written = issued
        of = f" of authority {args.authority}" if args.authority else ""
        print(
            f"issued {args.role} token {written.row['id']} for {args.name!r}{of} "
            f"(log entry {written.log_index}); it is shown once:"
        )
        print(token)
        return 0

    return _run(_with_db(settings, work))


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from registry.clock import SystemClock
    from registry.errors import RegistryError
    from registry.tokens import revoke_token

    settings = _settings()
    try:
        token_id = uuid.UUID(args.token_id)
    except ValueError:
        print("registry: token id must be a UUID (see `registry keys list`)", file=sys.stderr)
        return 2

    async def work(pool: asyncpg.Pool) -> int:
        try:
            written = await revoke_token(pool, SystemClock(), token_id=token_id, actor=CLI_ACTOR)
        except RegistryError as error:
            print(f"registry: {error.detail}", file=sys.stderr)
            return 2
        print(f"revoked token {token_id} (log entry {written.log_index})")
        return 0

    return _run(_with_db(settings, work))


def cmd_keys_list(_: argparse.Namespace) -> int:
    from registry.tokens import list_tokens

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        for row in await list_tokens(pool):
            state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
            authority = row["authority_code"] or "-"
            print(f"{row['id']}  {row['role']:<9}  {row['prefix']}…  {state:<18}  "
                  f"{authority:<18}  {row['name']}")
        return 0

    return _run(_with_db(settings, work))


# ---- authorities -----------------------------------------------------------------


def cmd_authorities_add(args: argparse.Namespace) -> int:
    from registry.authorities import add_authority
    from registry.clock import SystemClock

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        written = await _write_and_integrate(settings, pool, lambda: add_authority(
            pool, SystemClock(), code=args.code, name=args.name, actor=CLI_ACTOR
        ))
        if written is None:
            return 2
        print(f"added authority {written.row['code']} {written.row['name']} "
              f"(log entry {written.log_index})")
        return 0

    return _run(_with_db(settings, work))


def cmd_authorities_deactivate(args: argparse.Namespace) -> int:
    from registry.authorities import deactivate_authority
    from registry.clock import SystemClock

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        done = await _write_and_integrate(settings, pool, lambda: deactivate_authority(
            pool, SystemClock(), code=args.code, actor=CLI_ACTOR
        ))
        if done is None:
            return 2
        written, refused = done
        print(f"deactivated authority {written.row['code']} (log entry {written.log_index}); "
              f"{len(refused)} regulator token(s) refused from now on")
        return 0

    return _run(_with_db(settings, work))


def cmd_authorities_list(_: argparse.Namespace) -> int:
    from registry.authorities import list_authorities

    settings = _settings()

    async def work(pool: asyncpg.Pool) -> int:
        for row in await list_authorities(pool):
            state = "active" if row["active"] else "deactivated"
            print(f"{row['code']}  {state:<11}  {row['live_tokens']:>3} tokens  {row['name']}")
        return 0

    return _run(_with_db(settings, work))


# ---- log -------------------------------------------------------------------------


def cmd_log_verify(_: argparse.Namespace) -> int:
    from registry.tlog.verify import verify_log_cli

    settings = _settings()
    return _run(_with_db(settings, lambda pool: verify_log_cli(pool, settings)))


def cmd_log_check(args: argparse.Namespace) -> int:
    from registry.tlog.check import check_remote

    code: int = check_remote(
        args.url, args.key, args.since, witnesses=args.witness, quorum=args.quorum,
        evidence_dir=args.evidence,
    )
    return code


def cmd_log_mirror(args: argparse.Namespace) -> int:
    from registry.tlog.mirror import mirror_log

    code: int = mirror_log(
        args.url, args.to, args.log_key, once=args.once, interval=args.interval
    )
    return code


# ---- witness (a credit bureau's C2SP witness) --------------------------------------


def cmd_witness_keygen(args: argparse.Namespace) -> int:
    from registry.witness.commands import keygen

    return keygen(args.name, args.out)


def cmd_witness_serve(args: argparse.Namespace) -> int:
    from registry.witness.commands import serve

    return serve(args.key, args.log_key, args.log_origin, args.state, args.host, args.port)


def cmd_expire(_: argparse.Namespace) -> int:
    from registry.bootstrap import close_services, open_services
    from registry.credit.expiry import expire_once

    # One pass and out: the serving processes run the background tasks.
    settings = replace(_settings(), expiry_interval_ms=0, profile_warm_interval_ms=0)

    async def work() -> int:
        services = await open_services(settings)
        try:
            result = await expire_once(services, actor=CLI_ACTOR)
        finally:
            await close_services(services)
        print(f"expired {result.records} records and removed {result.listings} listings")
        return 0

    return _run(work())


# ---- import ----------------------------------------------------------------------


class _ImportBar:
    """rows done of the file's rows, rows per second and the time left, on stderr."""

    def __init__(self) -> None:
        import time

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._clock = time.monotonic
        self._started = self._clock()
        self._bar = Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task: Any = None

    def update(self, done: int, total: int | None) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("import", total=total, rate="-")
        rate = done / max(self._clock() - self._started, 1e-9)
        self._bar.update(self._task, completed=done, rate=f"{rate:,.0f}")

    def stop(self) -> None:
        self._bar.stop()


def cmd_import(args: argparse.Namespace) -> int:
    import asyncpg

    from registry.bootstrap import close_services, open_services
    from registry.errors import LogIntegrityError, RegistryError
    from registry.imports.problems import CannotImport
    from registry.imports.report import write_report
    from registry.imports.runner import Options, Tally, importer_for, run_import
    from registry.imports.template import format_of, open_file
    from registry.logging import configure_logging

    # One pass and out: the serving processes run the background tasks.
    settings = replace(_settings(), expiry_interval_ms=0, profile_warm_interval_ms=0)
    configure_logging(settings.log_format)  # logs on stderr: stdout is the summary
    try:
        options = Options(default_grade=args.grade, create_subjects=args.create_subjects,
                          dry_run=args.dry_run, batch_size=args.batch_size)
        source = open_file(args.file, format_of(args.file, args.format))
        if args.report is not None and not args.report.parent.is_dir():
            raise CannotImport(f"couldn't write the report {args.report}: no such folder")
    except CannotImport as error:
        print(f"registry: {error}", file=sys.stderr)
        return 2
    bar = _ImportBar() if sys.stderr.isatty() else None
    latest: list[Tally] = []

    def progress(tally: Tally) -> None:
        latest[:] = [tally]
        if bar is not None:
            bar.update(tally.done, tally.total)

    async def work() -> Tally:
        services = await open_services(settings)
        try:
            who = await importer_for(services, args.authority)
            return await run_import(services, who, source, options, progress=progress)
        finally:
            await close_services(services)

    def report() -> None:
        if args.report is not None and latest:
            write_report(args.report, latest[0].problems)

    try:
        tally = asyncio.run(work())
    except CannotImport as error:
        print(f"registry: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        report()
        done = latest[0] if latest else None
        print(f"registry: interrupted; {done.imported if done else 0} rows were imported in "
              "committed batches, which stay: run the same command again to resume",
              file=sys.stderr)
        return 130
    except (RegistryError, LogIntegrityError, asyncpg.PostgresError, OSError) as error:
        report()
        done = latest[0] if latest else None
        print(f"registry: couldn't finish the import: {error}; "
              f"{done.imported if done else 0} rows were imported in committed batches: "
              "run the same command again to resume", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.stop()
    report()
    for problem in tally.problems[:10]:  # values left out: the report has them, masked
        where = f", {problem.column}" if problem.column else ""
        print(f"row {problem.row}{where}: {problem.en}", file=sys.stderr)
    if len(tally.problems) > 10:
        more = "in the report" if args.report else "(write them all with --report FILE)"
        print(f"… and {len(tally.problems) - 10} more problems {more}", file=sys.stderr)
    if tally.checkpoint is not None:
        size = tally.checkpoint.splitlines()[1]
        print(f"log entries up to {tally.last_index} are in the signed checkpoint of size {size}",
              file=sys.stderr)
    registered = (f" (registered {tally.subjects_registered} subjects)"
                  if tally.subjects_registered else "")
    if options.dry_run:
        registered = registered.replace("registered", "would register")
        print(f"dry run, nothing written: would import {tally.imported}, skipped {tally.skipped}, "
              f"refused {tally.refused}{registered}")
    else:
        print(f"imported {tally.imported}, skipped {tally.skipped}, refused {tally.refused}"
              f"{registered}")
    return 1 if tally.refused else 0


def cmd_backup(args: argparse.Namespace) -> int:
    from registry.backup import backup

    async def work(url: str, _: Settings) -> str:
        saved = await backup(url, args.to)
        return (f"backed up to {saved.folder}: {saved.dump_bytes} bytes, log of at least "
                f"{saved.log_size} entries (checkpoint.txt, manifest.json)")

    return _backup_step(work)


def cmd_restore(args: argparse.Namespace) -> int:
    from registry.backup import restore

    async def work(url: str, settings: Settings) -> str:
        done = await restore(url, args.source, settings.log_origin)
        return (f"restored from {args.source}: the log verifies ({done.log_size} entries) "
                f"and holds the saved checkpoint at size {done.saved_size}")

    return _backup_step(work)


def _backup_step(work: Callable[[str, Settings], Coroutine[Any, Any, str]]) -> int:
    """Run a backup or restore on the configured database: its line on stdout and 0, or
    the reason on stderr and 1."""
    from registry.backup import BackupError
    from registry.db.embedded import database_url

    settings = _settings()
    try:
        said = asyncio.run(work(database_url(settings.home, settings.database_url), settings))
    except BackupError as error:
        print(f"registry: {error}", file=sys.stderr)
        return 1
    print(said)
    return 0


def cmd_db_stop(_: argparse.Namespace) -> int:
    """Stop the embedded database (``registry serve`` stops it on exit already; this is for
    one left running, e.g. after a SIGKILL). Exit 0 stopped or not running, 1 in use."""
    from registry.db.embedded import InUse, stop_embedded

    settings = _settings()
    if settings.database_url:
        print("registry: DATABASE_URL names the database: it is not the embedded one, "
              "nothing to stop", file=sys.stderr)
        return 1
    try:
        stopped = stop_embedded(settings.home)
    except InUse as busy:
        print(f"registry: the embedded PostgreSQL under {settings.home} is {busy}: stop that "
              "first (its exit stops the database)", file=sys.stderr)
        return 1
    where = settings.home / "pgdata"
    print(f"stopped the embedded PostgreSQL in {where}" if stopped
          else f"the embedded PostgreSQL in {where} is not running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry",
        description=(
            "Xining venture-investment credit registry. State lives under $REGISTRY_HOME "
            "(default ./var) or in the PostgreSQL named by DATABASE_URL."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="migrate, check the log, and serve HTTP",
        description="Apply migrations, cross-check the audit log, start HTTP. "
        "With development keys allowed, prints a regulator token on first start.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--metrics-port", type=_port, default=None, metavar="PORT",
        help="also serve the metrics without a token on 127.0.0.1:PORT "
        "(default: REGISTRY_METRICS_PORT; 0 or unset: only GET /metrics with an admin token)",
    )
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply pending schema migrations and create the empty log")
    mig.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="log signing keys and API tokens")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = ksub.add_parser("generate", help="create the log signing key (and the PII key) if absent")
    gen.set_defaults(func=cmd_keys_generate)
    rot = ksub.add_parser(
        "rotate", help="retire the signing key, publish a new one, log the rotation"
    )
    rot.set_defaults(func=cmd_keys_rotate)
    iss = ksub.add_parser("issue", help="issue an API token; the token is the last line printed")
    iss.add_argument("--role", required=True, choices=["regulator", "bureau", "admin"])
    iss.add_argument("--name", required=True,
                     help="the holder, for people (unique among live tokens of the role)")
    iss.add_argument("--authority", metavar="CODE",
                     help="for a regulator (required): the code of the active authority it "
                     "records decisions for (see `registry authorities list`)")
    iss.set_defaults(func=cmd_keys_issue)
    rev = ksub.add_parser("revoke", help="revoke an API token at once")
    rev.add_argument("token_id", help="the token's id (see `registry keys list`)")
    rev.set_defaults(func=cmd_keys_revoke)
    lst = ksub.add_parser("list", help="list API tokens (never their secrets)")
    lst.set_defaults(func=cmd_keys_list)

    auth = sub.add_parser("authorities", help="the public bodies that record decisions")
    asub = auth.add_subparsers(dest="authorities_command", required=True, metavar="ACTION")
    add = asub.add_parser("add", help="register an authority")
    add.add_argument("--code", required=True,
                     help="its unified social credit code (a government body's starts with 11)")
    add.add_argument("--name", required=True, help="its official name")
    add.set_defaults(func=cmd_authorities_add)
    alst = asub.add_parser("list", help="list authorities and their live tokens")
    alst.set_defaults(func=cmd_authorities_list)
    deact = asub.add_parser("deactivate", help="deactivate an authority: its tokens are refused")
    deact.add_argument("--code", required=True)
    deact.set_defaults(func=cmd_authorities_deactivate)

    exp = sub.add_parser("expire", help="one expiry pass: end the publicity of what reached its end",
                         description="Records past their publicity end leave publication and "
                         "listings past their planned removal are removed (period_ended), each "
                         "as a logged change. The service also does this every "
                         "REGISTRY_EXPIRY_INTERVAL_MS.")
    exp.set_defaults(func=cmd_expire)

    imp = sub.add_parser(
        "import", help="load administrative-penalty records from a 双公示 template file",
        description="Load administrative-penalty records of one authority from the national "
        "双公示 template (CSV or XLSX: the template's simplified column names in order, "
        "optionally followed by 失信程度) or from JSONL (one POST /v1/records body per line). "
        "Every row is checked as the API checks a request; rows already recorded (same "
        "authority and decision number) are skipped, so running a file again, also after an "
        "interruption, imports each row once. Exit 0: no row refused; 1: some refused; "
        "2: the import could not start.",
    )
    imp.add_argument("file", type=Path, help="the file to import")
    imp.add_argument("--authority", required=True, metavar="CODE",
                     help="the deciding authority's credit code (see `registry authorities "
                     "list`); rows naming another authority are refused")
    imp.add_argument("--format", choices=["csv", "xlsx", "jsonl"],
                     help="the file's format (default: from its suffix)")
    imp.add_argument("--grade", choices=["minor", "general", "serious"],
                     help="the dishonesty grade of rows without 失信程度")
    imp.add_argument("--create-subjects", action="store_true",
                     help="register subjects that are not registered yet, from the row's columns")
    imp.add_argument("--dry-run", action="store_true",
                     help="check every row and report, write nothing")
    imp.add_argument("--report", type=Path, metavar="FILE",
                     help="write the refused rows to FILE (CSV, UTF-8 with BOM)")
    imp.add_argument("--batch-size", type=int, default=200, metavar="N",
                     help="rows per transaction (default 200)")
    imp.set_defaults(func=cmd_import)

    bak = sub.add_parser(
        "backup", help="dump the database with its latest checkpoint and key fingerprints")
    bak.add_argument("--to", required=True, type=Path, metavar="DIR",
                     help="a new (or empty) folder")
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser(
        "restore", help="restore a backup into an empty database and verify the log")
    res.add_argument("--from", required=True, type=Path, metavar="DIR", dest="source",
                     help="a folder `registry backup` wrote")
    res.set_defaults(func=cmd_restore)

    db = sub.add_parser("db", help="the embedded PostgreSQL under $REGISTRY_HOME")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dstop = dsub.add_parser(
        "stop", help="stop the embedded PostgreSQL, unless a running process still uses it"
    )
    dstop.set_defaults(func=cmd_db_stop)

    log = sub.add_parser("log", help="verify the audit log")
    lsub = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")
    ver = lsub.add_parser(
        "verify", help="recompute the whole tree and every commitment; exit 0 only if all hold"
    )
    ver.set_defaults(func=cmd_log_verify)
    chk = lsub.add_parser(
        "check", help="what a bureau runs: verify a remote checkpoint and its consistency"
    )
    chk.add_argument("--url", help="the registry's base URL (required unless --evidence)")
    chk.add_argument("--log-key", "--key", dest="key", required=True, metavar="VKEY",
                     help="the pinned verifier key string (--key: the older spelling)")
    chk.add_argument("--since", help="file holding the last checkpoint seen; updated on success")
    chk.add_argument("--witness", action="append", default=[], metavar="VKEY",
                     help="a witness's cosigner key (type 0x04); repeat for each witness")
    chk.add_argument("--quorum", type=int, metavar="K",
                     help="valid cosignatures required of those witnesses (default: all)")
    chk.add_argument("--evidence", type=Path, metavar="DIR",
                     help="a witness's evidence folder: report each fork it holds proof of")
    chk.set_defaults(func=cmd_log_check)
    mir = lsub.add_parser(
        "mirror",
        help="copy the public log, verified, into a directory laid out as C2SP tlog-tiles",
    )
    mir.add_argument("--url", required=True, help="the registry's base URL (or a mirror's)")
    mir.add_argument("--to", required=True, metavar="DIR", help="the directory to serve")
    mir.add_argument(
        "--log-key", required=True, action="append", metavar="VKEY",
        help="the pinned verifier key; repeat it to follow a key rotation",
    )
    mir.add_argument("--once", action="store_true", help="mirror once and exit (default: follow)")
    mir.add_argument(
        "--interval", type=float, default=10.0, metavar="SECONDS",
        help="seconds between polls when following (default 10)",
    )
    mir.set_defaults(func=cmd_log_mirror)

    wit = sub.add_parser(
        "witness", help="a C2SP witness that cosigns the registry's checkpoints (for bureaus)",
        description="c2sp.org/tlog-witness with Ed25519 cosignature/v1: cosign a checkpoint "
        "only if it extends the last one cosigned; keep evidence of forks.",
    )
    wsub = wit.add_subparsers(dest="witness_command", required=True, metavar="ACTION")
    wkey = wsub.add_parser("keygen", help="create the witness key file; prints its verifier key")
    wkey.add_argument("--name", required=True,
                      help="the witness's name, a schema-less URL such as bureau.example/witness")
    wkey.add_argument("--out", required=True, type=Path, metavar="FILE",
                      help="the private key file to create (mode 0600; never overwritten)")
    wkey.set_defaults(func=cmd_witness_keygen)
    wsrv = wsub.add_parser("serve", help="serve POST /add-checkpoint until SIGTERM")
    wsrv.add_argument("--key", required=True, type=Path, metavar="FILE",
                      help="the key file `registry witness keygen` wrote")
    wsrv.add_argument("--log-key", required=True, action="append", metavar="VKEY",
                      help="a log's verifier key (repeatable); its name is the log's origin "
                      "unless --log-origin")
    wsrv.add_argument("--log-origin", metavar="ORIGIN",
                      help="the one log's origin, when it differs from the key name")
    wsrv.add_argument("--state", required=True, type=Path, metavar="DIR",
                      help="an existing directory for the checkpoints cosigned and evidence")
    wsrv.add_argument("--host", default="127.0.0.1")
    wsrv.add_argument("--port", type=int, default=7380, help="default 7380 (0: any free port)")
    wsrv.set_defaults(func=cmd_witness_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except Exception as error:
        # A missing or refused key is the operator's to fix: its message, not a traceback.
        # Only a command that imported registry.keys can raise one (and the verifier's
        # commands must not import it: it needs the server's libraries).
        keys = sys.modules.get("registry.keys")
        if keys is not None and isinstance(error, keys.KeyError_):
            raise SystemExit(f"registry: {error}") from None
        raise


if __name__ == "__main__":
    sys.exit(main())
