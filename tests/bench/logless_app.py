"""An ablation for bench_writes.py: the registry with its audit log taken out. Never a product.

Run with ``uvicorn tests.bench.logless_app:create_app --factory``, like the registry.

Everything ``POST /v1/subjects`` does stays (token check, validation, the use case, the
answer), except the log: the subject is one plain autocommit INSERT of the row the
registry would store (``log_index`` -1: no leaf, no stored body, no index taken under
the sequence lock), and the receipt does not wait for a checkpoint (it carries the
current one, which does not include the write). Its rate is therefore the most any
design of the audit log could give the registry on this machine: the gap between it and
the bare app is the rest of the request path, the gap between it and the registry is
what the log costs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from litestar import Litestar

import registry.db.writes as writes
from registry.api.app import create_app as create_registry_app
from registry.db.audit import TABLE_OF, Appended
from registry.db.types import Conn
from registry.services import Receipt, Services

# Marks the rows this app wrote, so the benchmark counts them apart.
NO_LEAF = -1


async def _insert_without_leaf(
    conn: Conn, *, time: datetime, actor: str, action: str, object_type: str,
    stored: dict[str, Any],
) -> Appended:
    table = TABLE_OF[object_type]
    columns = list(stored)
    row = await conn.fetchrow(
        f"INSERT INTO {table} ({', '.join(columns)}, log_index)"  # noqa: S608 - catalog names
        f" VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))}, {NO_LEAF})"
        " RETURNING *",
        *stored.values(),
    )
    return Appended(index=NO_LEAF, leaf=b"", row=row)


async def _receipt_without_wait(self: Services, log_index: int) -> Receipt:
    head = self.integrator.head
    return Receipt(log_index=log_index, checkpoint=head.checkpoint if head else "")


def take_the_log_out() -> Callable[[], None]:
    """Patch the running process's registry as the module docstring says; returns the
    function that puts the log back (bench_records.py measures both in one process)."""
    saved = writes.insert_with_leaf, Services.receipt  # type: ignore[attr-defined]
    writes.insert_with_leaf = _insert_without_leaf  # type: ignore[attr-defined]
    Services.receipt = _receipt_without_wait  # type: ignore[method-assign]

    def put_back() -> None:
        writes.insert_with_leaf, Services.receipt = saved  # type: ignore[attr-defined, method-assign]

    return put_back


def create_app() -> Litestar:
    take_the_log_out()
    return create_registry_app()
