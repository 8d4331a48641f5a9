"""The baseline for bench_writes.py: a bare Litestar + asyncpg app that checks, signs, INSERTs.

Run with ``uvicorn tests.bench.bare_write_app:create_app --factory`` and ``DATABASE_URL`` set.

``POST /subjects`` takes ``{"kind": "vc_firm", "name": ..., "credit_code": ...}`` (decoded
by msgspec into a Struct), checks the credit code with the registry's own validator
(422 when it is wrong), Ed25519-signs the row's canonical JSON (msgspec, keys sorted;
the key is generated at start-up) and INSERTs the row with its signature into its own
table ``bare_subjects`` (created at start-up if missing), one autocommit statement with
PostgreSQL's default synchronous commit, and answers 201 with the row. No audit log,
no receipt: what every write of the registry does at the least.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT
from msgspec import Meta, Struct

from registry.errors import InvalidInput
from registry.identifiers import validate_credit_code
from registry.settings import Settings

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bare_subjects (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL,
    name        text NOT NULL,
    credit_code text NOT NULL UNIQUE,
    signature   bytea NOT NULL,
    created_at  timestamptz NOT NULL
)
"""
INSERT = (
    "INSERT INTO bare_subjects (id, kind, name, credit_code, signature, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


class SubjectIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["vc_firm", "vc_manager"]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    credit_code: Annotated[str, Meta(min_length=1, max_length=40)]


class SubjectOut(Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    name: str
    credit_code: str
    created_at: datetime
    signature: bytes  # base64 in JSON


@post("/subjects", status_code=HTTP_201_CREATED)
async def create_subject(data: SubjectIn, state: State) -> SubjectOut:
    try:
        code = validate_credit_code(data.credit_code)
    except InvalidInput as error:
        raise HTTPException(status_code=422, detail=f"credit_code: {error.reason}") from None
    subject_id, now = uuid.uuid4(), datetime.now(UTC)
    row = {"id": subject_id, "kind": data.kind, "name": data.name, "credit_code": code,
           "created_at": now}  # fmt: skip
    signature = state.key.sign(msgspec.json.encode(row, order="sorted"))
    try:
        await state.pool.execute(INSERT, subject_id, data.kind, data.name, code, signature, now)
    except asyncpg.UniqueViolationError:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail="credit_code exists") from None
    return SubjectOut(id=subject_id, kind=data.kind, name=data.name, credit_code=code,
                      created_at=now, signature=signature)  # fmt: skip


def create_app() -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The registry's pool sizes (its defaults unless REGISTRY_POOL_MIN/MAX are set).
        pool_min = int(os.environ.get("REGISTRY_POOL_MIN", Settings.pool_min))
        pool_max = int(os.environ.get("REGISTRY_POOL_MAX", Settings.pool_max))
        app.state.key = Ed25519PrivateKey.generate()
        app.state.pool = await asyncpg.create_pool(
            os.environ["DATABASE_URL"], min_size=pool_min, max_size=pool_max
        )
        try:
            await app.state.pool.execute(CREATE_TABLE)
            yield
        finally:
            await app.state.pool.close()

    return Litestar(route_handlers=[create_subject], lifespan=[lifespan], logging_config=None)
