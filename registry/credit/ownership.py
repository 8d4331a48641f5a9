"""Who answers for a decision: the authority that made it, and no one else.

Several authorities share the registry (registry/authorities.py). The deciding
authority of a credit record is the authority of the regulator token that recorded
it (``credit_records.authority_code``); a blacklist entry belongs to the authority
of the records it rests on (all of one authority, checked when it is proposed).
Only that authority may correct or revoke the record, take the entry through its
steps, and decide objections and repair applications about either. Subjects are
shared master data: any regulator may create and change them, and the log's actor
names the authority that did.

Every credit use case takes an ``Acting`` (a request's ``Principal``, or ``SYSTEM``
for background jobs such as expiry, which act on every authority's decisions as the
rules require) and calls ``require_decider`` before it changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from registry.authorities import authority_name
from registry.clock import today
from registry.db.types import Conn
from registry.domain import disclosure
from registry.errors import Forbidden
from registry.services import Services
from registry.subjects import birth_date_of

_NO_AUTHORITY = (
    "this token belongs to no authority, so it can record or change no decision; "
    "an admin issues regulator tokens with an authority "
    "(`registry keys issue --role regulator --name NAME --authority CODE`)"
)


class Acting(Protocol):
    """Who makes a change: the audit log's actor and, for a regulator, its authority."""

    @property
    def actor(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def authority_code(self) -> str | None: ...

    @property
    def system(self) -> bool: ...


@dataclass(frozen=True)
class SystemActor:
    """A background job of the registry itself (``system:expiry``)."""

    actor: str
    role: str = "system"
    authority_code: str | None = None
    system: bool = True


def deciding_authority(who: Acting) -> str:
    """The authority in whose name ``who`` records a new decision; 403 if none."""
    if who.authority_code is None:
        raise Forbidden(_NO_AUTHORITY)
    return who.authority_code


async def _named(source: Conn | asyncpg.Pool, code: str) -> str:
    name = await authority_name(source, code)
    return f"{name} ({code})" if name else code


async def require_decider(
    source: Conn | asyncpg.Pool, who: Acting, owners: Iterable[str], what: str
) -> None:
    """Pass if ``who`` is the system or acts for the authority that owns ``what``; else
    403 saying whose decision it is and whom the token acts for."""
    if who.system:
        return
    mine = deciding_authority(who)
    for owner in sorted(set(owners)):
        if owner != mine:
            raise Forbidden(
                f"{what} is a decision of {await _named(source, owner)}; only that authority "
                f"may change it or decide about it. This token acts for {await _named(source, mine)}",
                owner=owner,
                acting_for=mine,
            )


async def disclosed_to_bureaus(services: Services, target_type: str, target: asyncpg.Record,
                               conn: Conn | asyncpg.Pool) -> bool:
    """Whether a bureau may know of ``target`` (a credit record or blacklist entry) today: in
    publication (registry/domain/disclosure.py) and not about a minor. A bureau files
    objections and repair applications only about what it can see; anything else is answered
    as missing, so a filing cannot probe for proposals, withdrawn records or minors."""
    day = today(services.clock)
    if not disclosure.PUBLICATIONS[target_type].shown(dict(target), day):
        return False
    person = await conn.fetchrow(
        "SELECT document_type, document_cipher, birth_date_cipher FROM subjects"
        " WHERE id = $1 AND kind = 'practitioner'",
        target["subject_id"],
    )
    if person is None:
        return True
    number = services.pii.decrypt(person["document_type"], bytes(person["document_cipher"]))
    return not disclosure.is_minor_on(number, day, birth_date_of(services, person))


async def entry_owners(source: Conn | asyncpg.Pool, record_ids: list[object]) -> list[str]:
    """The authorities of the records a blacklist entry rests on."""
    rows = await source.fetch(
        "SELECT DISTINCT authority_code FROM credit_records WHERE id = ANY($1::uuid[])",
        record_ids,
    )
    return [r["authority_code"] for r in rows]
