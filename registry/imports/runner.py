"""Running an import: check each batch of rows, skip what is recorded, write the rest.

``run_import`` is the whole use case; the command line (``registry import``) parses
arguments and calls it, and a background job of the API can call it the same way
with its own progress callback and the regulator's principal as ``who``.

For each batch of ``Options.batch_size`` rows, in file order:

1. every row is read into the API's values (``rows``) and checked with the rules
   ``create_record`` applies, against the subjects and records as they are now;
   a refused row becomes problems in the tally and is not written;
2. rows whose decision number the authority has recorded already are skipped
   (counted): that is what makes a second run import nothing twice, and a run
   after an interruption resume where the committed batches end;
3. subjects the batch names that are not registered are registered first
   (``--create-subjects``), each by ``subjects.register``, in its own transaction;
4. the batch's records are written by ``record_batch.create_records`` (the rules of
   ``records.create_record``, a few statements for the whole batch), each its own
   leaf, all in one ``write_transaction`` (the sequence lock and the commit are paid
   once per batch). A row whose decision number was recorded meanwhile is not
   written and is reported. If the database refuses a value, the batch is rolled
   back to its start and written record by record, each in a savepoint of its own,
   so that only the refused row is lost and reported.

A dry run stops after step 2 of every batch: nothing is written.

While a batch is written (mostly waiting on PostgreSQL), the next one is read into the
API's values (the part of step 1 that asks the database nothing, and most of its
Python time); its lookups wait for the write to commit. Each time the import has added
as many records as ``credit_records`` held at its last ANALYZE, it ANALYZEs the table,
so the batch lookups keep the plans of the table as it now is.

Crash points (Ctrl-C, SIGKILL, the database gone): a batch is committed whole or not
at all; subjects registered for a batch whose records did not commit stay registered
(they are found, not registered again, by the next run). Running the same file again
skips every committed row and writes the rest. The tally is only counted up once a
batch has committed.

At the end the integrator is asked for a signed checkpoint that includes the last
leaf written, so on return every imported record is in the signed log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import asyncpg
import structlog

from registry import subjects
from registry.clock import today
from registry.credit import records
from registry.credit.ownership import Acting
from registry.credit.record_batch import create_records
from registry.db.writes import write_transaction
from registry.domain.publicity import Grade
from registry.errors import Conflict, InvalidInput, RegistryError
from registry.identifiers import validate_credit_code
from registry.imports import lookups
from registry.imports.problems import CannotImport, Problem, rule_reason_zh
from registry.imports.rows import (
    ByCode,
    ByDocument,
    ById,
    Candidate,
    candidate,
    check_record,
    subject_key,
    subject_to_register,
)
from registry.imports.template import ImportFile, Shape, SourceRow
from registry.search import fold
from registry.services import Services

log = structlog.get_logger(__name__)

DEFAULT_BATCH = 200
MAX_BATCH = 5000
# How long the end of an import waits for the checkpoint of its last leaf. A backlog of
# 100,000 leaves takes the integrator a few seconds (4096 leaves a transaction).
CHECKPOINT_PATIENCE = 300.0


@dataclass(frozen=True)
class Importer:
    """Who writes an import from the command line: the operator, acting for the deciding
    authority (``--authority``). The audit log names it ``import:cli@<authority code>``."""

    authority_code: str
    role: str = "regulator"
    system: bool = False

    @property
    def actor(self) -> str:
        return f"import:cli@{self.authority_code}"


@dataclass(frozen=True)
class Options:
    """How to import; checked when built (``CannotImport`` names the option)."""

    # For rows without 失信程度 (and JSONL bodies without grade): minor, general, serious.
    default_grade: str | None = None
    # Register the subjects a row names that are not registered yet (from its columns).
    create_subjects: bool = False
    # Check every row, write nothing.
    dry_run: bool = False
    # Rows per transaction.
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.default_grade is not None and self.default_grade not in Grade.__members__:
            raise CannotImport(f"--grade must be one of {', '.join(Grade.__members__)}, "
                               f"not {self.default_grade!r}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise CannotImport(f"--batch-size must be from 1 to {MAX_BATCH}, not {self.batch_size}")


@dataclass
class Tally:
    """Where an import stands; handed to the progress callback after every batch and
    returned at the end. Counts are rows of the file (blank rows are not counted)."""

    total: int | None  # rows in the file, if known (for an estimate of the time left)
    dry_run: bool
    done: int = 0  # rows checked and, unless a dry run, committed or refused
    imported: int = 0  # written (a dry run: would be written)
    skipped: int = 0  # recorded already (same authority and decision number)
    refused: int = 0  # rows with at least one problem
    subjects_registered: int = 0  # a dry run: subjects that would be registered
    # Masked (Problem.masked): safe to show, print and store.
    problems: list[Problem] = field(default_factory=list)
    last_index: int | None = None  # the newest leaf the import committed
    checkpoint: str | None = None  # a signed checkpoint including every leaf of the import


ProgressCallback = Callable[[Tally], Awaitable[None] | None]


async def importer_for(services: Services, code: str) -> Importer:
    """The importer acting for authority ``code``: it must be registered and active."""
    canonical, _ = await deciding(services, code)
    return Importer(canonical)


async def deciding(services: Services, code: str) -> tuple[str, str]:
    """(code, registered name) of the deciding authority; ``CannotImport`` if the code is not
    one, or names no active authority."""
    try:
        canonical = validate_credit_code(code, "authority")
    except InvalidInput as error:
        raise CannotImport(f"--authority {code}: {error.reason}") from None
    found = await lookups.authority(services.pool, canonical)
    if found is None:
        raise CannotImport(
            f"no authority with code {canonical}: see `registry authorities list`, or add it "
            "with `registry authorities add --code CODE --name NAME`"
        )
    name, active = found
    if not active:
        raise CannotImport(f"authority {canonical} ({name}) is deactivated: it records nothing")
    return canonical, name


@dataclass(frozen=True)
class _Found:
    """A registered subject a row names: its id, credit code and registered name (None: a
    JSONL row names it by id and carries no name)."""

    subject_id: uuid.UUID
    credit_code: str | None
    name: str | None


def _named(row: Candidate) -> str | None:
    """The subject's name as the row gives it (None: JSONL, by id)."""
    ref = row.subject
    return None if isinstance(ref, ById) else ref.new.get("name")


def _same_name(row: Candidate, known: _Found) -> bool:
    """Whether the row names the subject its code (or document) finds by the name it is
    registered under, as the search compares names (registry/search.py ``fold``: Simplified
    or Traditional, full- or half-width, case): a code mistyped into another firm's would
    otherwise record the penalty against that firm."""
    given = _named(row)
    return given is None or known.name is None or fold(given) == fold(known.name)


def _other_name(row: Candidate, known: _Found) -> Problem:
    return row.problem(
        "name",
        f"与该代码（或证件）登记的名称“{known.name}”不符：请核对代码，或先更正登记名称",
        f"name: the subject registered under this credit code (or document) is named "
        f"{known.name!r}; check the code, or correct the registered name first",
    )


@dataclass
class _Ready:
    """A row that passed every check, with its subject (None: registered before the write)."""

    row: Candidate
    number: str
    subject_id: uuid.UUID | None
    register: dict[str, Any] | None = None


@dataclass
class _Run:
    services: Services
    who: Acting
    options: Options
    authority: tuple[str, str]
    on: date
    tally: Tally
    # Decision number → the first row holding it: a later row with it is refused, in
    # every run, so a second run refuses what the first refused.
    seen: dict[str, int] = field(default_factory=dict)
    # Subjects a dry run would register (each counted once).
    planned: set[tuple[str, ...]] = field(default_factory=set)
    # Records written since credit_records' statistics were last brought up to date.
    since_analyze: int = 0
    # The table's rows when they were (pg_class.reltuples; None: not yet read).
    analyzed_rows: float | None = None

    def refuse(self, problems: list[Problem]) -> None:
        policy = self.services.policy
        self.tally.problems.extend(p.masked(policy) for p in problems)
        self.tally.refused += 1

    async def check(self, batch: list[Candidate | list[Problem]]) -> list[_Ready]:
        """Steps 1 and 2: of the batch's rows as read (``_read``), those to be written."""
        parsed: list[Candidate] = []
        for read in batch:
            if isinstance(read, list):
                self.refuse(read)
            else:
                parsed.append(read)
        found = await self._subjects(parsed)
        ready: list[_Ready] = []
        for row in parsed:
            known = found.get(subject_key(row.subject))
            subject_id, code = (known.subject_id, known.credit_code) if known else (None, None)
            register = None
            if known is not None and not _same_name(row, known):
                self.refuse([_other_name(row, known)])
                continue
            if subject_id is None:
                if not self.options.create_subjects or isinstance(row.subject, ById):
                    self.refuse([_unknown_subject(row)])
                    continue
                payload = subject_to_register(row, self.on)
                if isinstance(payload, Problem):
                    self.refuse([payload])
                    continue
                register = payload
                code = row.subject.credit_code if isinstance(row.subject, ByCode) else None
            values = check_record(row, self.authority, self.on, code)
            if isinstance(values, Problem):
                self.refuse([values])
                continue
            number: str = values["decision_number"]
            first = self.seen.setdefault(number, row.number)
            if first != row.number:
                self.refuse([row.problem(
                    "decision_number", f"与第 {first} 行的行政处罚决定书文号相同",
                    f"decision_number: the same as row {first}'s; a decision number is "
                    "recorded once per authority",
                )])
                continue
            ready.append(_Ready(row, number, subject_id, register))
        recorded = await lookups.recorded_numbers(
            self.services.pool, self.authority[0], [r.number for r in ready]
        )
        self.tally.skipped += sum(1 for r in ready if r.number in recorded)
        return [r for r in ready if r.number not in recorded]

    async def _subjects(self, rows: list[Candidate]) -> dict[tuple[str, ...], _Found]:
        """The registered subjects the rows name, by subject key."""
        pool, pii = self.services.pool, self.services.pii
        by_code = {r.subject.credit_code for r in rows if isinstance(r.subject, ByCode)}
        by_document = {(r.subject.document_type, r.subject.number)
                       for r in rows if isinstance(r.subject, ByDocument)}
        by_id = {r.subject.subject_id for r in rows if isinstance(r.subject, ById)}
        found: dict[tuple[str, ...], _Found] = {}
        if by_code:
            for code, (subject_id, name) in (
                await lookups.subjects_by_code(pool, sorted(by_code))
            ).items():
                found[("code", code)] = _Found(subject_id, code, name)
        if by_document:
            hashed = {(t, pii.lookup_hash(t, n)): (t, n) for t, n in by_document}
            for key, (subject_id, name) in (
                await lookups.subjects_by_document(pool, list(hashed))
            ).items():
                found[("document", *hashed[key])] = _Found(subject_id, None, name)
        if by_id:
            for subject_id, held in (await lookups.subjects_by_id(pool, list(by_id))).items():
                found[("id", str(subject_id))] = _Found(subject_id, held, None)
        return found

    async def write(self, ready: list[_Ready]) -> None:
        """Steps 3 and 4; the tally counts the batch once it has committed."""
        services, who = self.services, self.who
        await self._register(ready)
        ready = [r for r in ready if r.subject_id is not None]
        if not ready:
            return
        written = 0
        last: int | None = None
        async with write_transaction(services.pool, ambient=True) as conn:
            try:
                # A savepoint: a value the database refuses takes the whole batch back,
                # and the loop below then finds the row it was.
                async with conn.transaction():
                    outcomes = await create_records(
                        services, who, [(r.subject_id, r.row.fields) for r in ready
                                        if r.subject_id is not None], conn)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
                outcomes = None
            if outcomes is not None:
                for item, outcome in zip(ready, outcomes, strict=True):
                    if isinstance(outcome, RegistryError):
                        self.refuse([_written_problem(item.row, outcome)])
                        continue
                    written += 1
                    last = outcome.log_index
            else:
                written, last = await self._write_one_by_one(ready)
        # Committed.
        self.tally.imported += written
        if last is not None:
            self.tally.last_index = last
        await self._keep_statistics(written)

    async def _keep_statistics(self, written: int) -> None:
        """ANALYZE credit_records whenever the import has added as many records as the
        table held at the last ANALYZE (and at least ``ANALYZE_EVERY``): a few times per
        import, at most log2 of its growth. Without it the plans of the batch's lookups,
        made from statistics of the table before the import, read every record of the
        authority for each batch (the lookup grew from 1 ms to 35 ms over the first 10,000
        records; autovacuum comes too late for an import of minutes)."""
        self.since_analyze += written
        pool = self.services.pool
        if self.analyzed_rows is None:
            self.analyzed_rows = max(0.0, float(await pool.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = 'credit_records'::regclass")))
        if self.since_analyze < max(ANALYZE_EVERY, self.analyzed_rows):
            return
        # Only the table's owner may; anyone else gets a warning and autovacuum's pace.
        await pool.execute("ANALYZE credit_records")
        self.analyzed_rows += self.since_analyze
        self.since_analyze = 0

    async def _write_one_by_one(self, ready: list[_Ready]) -> tuple[int, int | None]:
        """Each record in a savepoint of its own, in the batch's write transaction: a row
        the database refuses is rolled back alone and reported, and the others stay.
        (How many were written, the last leaf.)"""
        services, who = self.services, self.who
        written = 0
        last: int | None = None
        for item in ready:
            assert item.subject_id is not None
            try:
                async with write_transaction(services.pool):
                    done = await records.create_record(
                        services, who, item.subject_id, item.row.fields
                    )
            except RegistryError as error:
                self.refuse([_written_problem(item.row, error)])
                continue
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
                # A value PostgreSQL refused for this row alone: the batch goes on.
                self.refuse([item.row.problem(
                    "", "数据库拒绝了该行", f"the database refused the row: {error.sqlstate}"
                )])
                continue
            written += 1
            last = done.log_index
        return written, last

    async def _register(self, ready: list[_Ready]) -> None:
        """Register the subjects the rows need, once each; a row whose subject cannot be
        registered is refused (its subject id stays None)."""
        made: dict[tuple[str, ...], uuid.UUID | Problem] = {}
        for item in ready:
            if item.register is None:
                continue
            key = subject_key(item.row.subject)
            if key not in made:
                made[key] = await self._register_one(item)
            outcome = made[key]
            if isinstance(outcome, Problem):
                self.refuse([replace(outcome, row=item.row.number)])
            else:
                item.subject_id = outcome

    async def _register_one(self, item: _Ready) -> uuid.UUID | Problem:
        assert item.register is not None
        try:
            registered = await subjects.register(self.services, self.who.actor, item.register)
        except Conflict as error:
            # Registered meanwhile (another import, the API): the subject is there now.
            existing = error.extra.get("existing_id")
            if existing is not None:
                return uuid.UUID(existing)
            return _written_problem(item.row, error)
        except RegistryError as error:
            return _written_problem(item.row, error)
        self.tally.subjects_registered += 1
        self.tally.last_index = max(self.tally.last_index or 0, registered.last_index)
        return uuid.UUID(str(registered.subject.row["id"]))


def _unknown_subject(row: Candidate) -> Problem:
    hint_zh = "" if isinstance(row.subject, ById) else "：请先登记，或导入时加 --create-subjects"
    hint_en = "" if isinstance(row.subject, ById) else (
        " (register it first, or import with --create-subjects)")
    if isinstance(row.subject, ByDocument):
        return row.problem("document_number", f"该自然人未登记{hint_zh}",
                           f"document_number: no practitioner with this document is "
                           f"registered{hint_en}")
    if isinstance(row.subject, ByCode):
        return row.problem("credit_code", f"行政相对人未登记{hint_zh}",
                           f"credit_code: no subject with this credit code is registered{hint_en}")
    return row.problem("subject_id", "行政相对人未登记", "subject_id: no such subject")


def _written_problem(row: Candidate, error: RegistryError) -> Problem:
    """A problem found while writing (the checks before could not see it)."""
    if isinstance(error, InvalidInput):
        return row.problem(error.field, rule_reason_zh(error.reason), error.detail)
    if isinstance(error, Conflict):
        name = error.extra.get("field") or ""
        return row.problem(name, "写入时发生冲突（可能已由他人同时登记）", f"{name}: {error.detail}")
    return row.problem("", "写入时被拒绝", error.detail)


# Records an import writes before it first brings credit_records' statistics up to date.
ANALYZE_EVERY = 1000


def _take(rows: Iterator[SourceRow], n: int) -> list[SourceRow]:
    return list(itertools.islice(rows, n))


# Rows read between two turns of the event loop: about a millisecond of work, so a batch
# being written meanwhile goes on as soon as PostgreSQL answers it (and a server running
# the import as a background job keeps serving).
_ROWS_PER_TURN = 8


async def _read(
    batch: list[SourceRow], shape: Shape, grade: str | None
) -> list[Candidate | list[Problem]]:
    """Each row read into the API's values, or its problems: the part of step 1 that needs
    nothing from the database, and most of its time. In the event loop, a few rows a turn:
    a thread would fight the writing batch for the interpreter lock."""
    read: list[Candidate | list[Problem]] = []
    for start in range(0, len(batch), _ROWS_PER_TURN):
        read.extend(candidate(row, shape, grade) for row in batch[start:start + _ROWS_PER_TURN])
        await asyncio.sleep(0)
    return read


async def _tell(progress: ProgressCallback | None, tally: Tally) -> None:
    if progress is None:
        return
    result = progress(tally)
    if inspect.isawaitable(result):
        await result


async def run_import(
    services: Services,
    who: Acting,
    source: ImportFile,
    options: Options,
    *,
    progress: ProgressCallback | None = None,
) -> Tally:
    """Import ``source`` in the name of ``who``'s authority (module docstring); returns the
    tally, with the signed checkpoint of the last leaf written. ``CannotImport`` if the
    authority is not an active one; any other exception stops the import with every
    batch before the current one committed (run it again to resume)."""
    if who.authority_code is None:
        raise CannotImport("an import records decisions: it needs an authority")
    authority = await deciding(services, who.authority_code)
    tally = Tally(total=source.total, dry_run=options.dry_run)
    run = _Run(services, who, options, authority, today(services.clock), tally)
    await _tell(progress, tally)
    rows = source.rows()
    # The batch being written while the next one is read: reading is mostly Python, the
    # write mostly waiting on PostgreSQL, so the two overlap. Everything that asks the
    # database (step 1's lookups, step 2) still runs after the previous batch committed.
    writing: asyncio.Task[None] | None = None
    written = 0
    try:
        while True:
            # Reading (openpyxl above all) is blocking work: off the event loop, which a
            # server running the import as a background job keeps serving.
            batch = await _read(await asyncio.to_thread(_take, rows, options.batch_size),
                                source.shape, options.default_grade)
            if writing is not None:
                await writing
                writing = None
                tally.done += written
                await _tell(progress, tally)
            if not batch:
                break
            ready = await run.check(batch)
            if options.dry_run:
                tally.imported += len(ready)
                new = {subject_key(r.row.subject) for r in ready if r.register is not None}
                tally.subjects_registered += len(new - run.planned)
                run.planned |= new
            elif ready:
                writing = asyncio.create_task(run.write(ready), name="import-batch-write")
                written = len(batch)
                continue
            tally.done += len(batch)
            await _tell(progress, tally)
    finally:
        if writing is not None:
            # Interrupted while a batch was being written: it commits whole or not at all.
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    if tally.last_index is not None:
        head = await services.integrator.wait_for(tally.last_index, CHECKPOINT_PATIENCE)
        tally.checkpoint = head.checkpoint
    log.info("import_finished", actor=who.actor, dry_run=options.dry_run, rows=tally.done,
             imported=tally.imported, skipped=tally.skipped, refused=tally.refused,
             subjects_registered=tally.subjects_registered, last_index=tally.last_index)
    return tally
