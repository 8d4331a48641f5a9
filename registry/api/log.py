"""Public audit-log routes: checkpoints (witnessed too), keys, entries, proofs, C2SP tiles.
No token needed."""

from __future__ import annotations

import base64
from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from msgspec import Struct

from registry.api.openapi import problem_responses
from registry.db.cosignatures import head_with_cosignatures
from registry.db.tlog_store import read_head, read_leaves, verifier_keys
from registry.errors import InvalidInput, NotFound
from registry.services import Services
from registry.tlog.proofs import consistency_proof, entries_tile, hash_tile, inclusion_proof
from registry.tlog.tiles import TileState, parse_tile_path, tile_extent

MAX_ENTRIES_PAGE = 1000
_TEXT = "text/plain"  # Litestar adds the charset to text/* itself
_NO_CACHE = {"Cache-Control": "no-cache"}
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_BRIEF = {"Cache-Control": "public, max-age=5"}

# At most 2^53 - 1: the largest integer every JSON reader holds exactly (2^62 was written
# into the OpenAPI document as a float that rounds above it).
_LARGEST = 2**53 - 1
Index = Annotated[int, Parameter(ge=0, le=_LARGEST, description="0-based leaf index")]
Size = Annotated[int, Parameter(ge=0, le=_LARGEST, description="tree size")]


class Entry(Struct):
    index: int
    leaf: str


class Entries(Struct):
    entries: list[Entry]


class InclusionProof(Struct):
    index: int
    size: int
    hashes: list[str]


class ConsistencyProof(Struct):
    old: int
    new: int
    hashes: list[str]


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


async def _size(services: Services) -> int:
    head = await read_head(services.pool)
    return head.size if head else 0


@get(
    "/checkpoint",
    summary="The latest signed checkpoint (C2SP signed note), with its witnesses' cosignatures",
    description=(
        "The checkpoint the log signed last. Each cosignature (c2sp.org/tlog-cosignature) "
        "the configured witnesses returned for it so far is a further signature line of the "
        "note: a verifier that knows only the log's key ignores them, one that pins the "
        "witnesses counts them (`registry log check --witness VKEY --quorum K`). A checkpoint "
        "just signed may have none yet: `/log/checkpoint/witnessed` is the newest one that "
        "reached the quorum."
    ),
    media_type=_TEXT,
    cache=False,
)
async def checkpoint(services: NamedDependency[Services]) -> Response[str]:
    witnesses = services.settings.witnesses
    if not witnesses:
        head = await read_head(services.pool)
        if head is None:
            raise NotFound("the log is not initialised")
        return Response(head.checkpoint, media_type=_TEXT, headers=_NO_CACHE)
    cosigned = await head_with_cosignatures(services.pool, [w.verifier_key for w in witnesses])
    if cosigned is None:
        raise NotFound("the log is not initialised")
    return Response(cosigned.note(), media_type=_TEXT, headers=_NO_CACHE)


@get(
    "/checkpoint/witnessed",
    summary="The newest checkpoint a quorum of the witnesses cosigned, with their cosignatures",
    description=(
        "The largest checkpoint that at least REGISTRY_WITNESS_QUORUM of the configured "
        "credit bureaus' witnesses cosigned, as a signed note: the log's signature, then "
        "their cosignatures. It may be a little behind `/log/checkpoint` (it is what this "
        "server last learned, refreshed each time it asks the witnesses). 404 when no "
        "witnesses are configured, or no checkpoint has reached the quorum yet."
    ),
    media_type=_TEXT,
    responses=problem_responses(404),
    cache=False,
)
async def witnessed_checkpoint(services: NamedDependency[Services]) -> Response[str]:
    # From the witnessing part's memory, which every round refreshes from PostgreSQL: a
    # public route must not walk the cosignatures back through a long outage per request.
    witnessing = services.witnessing
    if witnessing is None:
        raise NotFound("this registry has no witnesses configured (REGISTRY_WITNESSES), so no "
                       "checkpoint is witnessed: use /log/checkpoint")
    witnessed = witnessing.witnessed
    if witnessed is None:
        raise NotFound(f"no checkpoint has been cosigned by {witnessing.quorum} of the "
                       f"{len(witnessing.witnesses)} witnesses yet; retry shortly, or see "
                       "/log/checkpoint")
    return Response(witnessed.note(), media_type=_TEXT, headers=_NO_CACHE)


@get(
    "/key",
    summary="Verifier keys (C2SP signed-note), current first, one per line",
    media_type=_TEXT,
)
async def key(services: NamedDependency[Services]) -> Response[str]:
    rows = await verifier_keys(services.pool)
    return Response(
        "".join(r["verifier_key"] + "\n" for r in rows), media_type=_TEXT, headers=_NO_CACHE
    )


class KeyInfo(Struct):
    verifier_key: str
    valid_from: str
    valid_until: str | None


@get("/keys", summary="Verifier keys with their validity windows, current first")
async def keys(services: NamedDependency[Services]) -> list[KeyInfo]:
    rows = await verifier_keys(services.pool)
    return [
        KeyInfo(
            verifier_key=r["verifier_key"],
            valid_from=r["valid_from"].isoformat(),
            valid_until=r["valid_until"].isoformat() if r["valid_until"] else None,
        )
        for r in rows
    ]


@get(
    "/entries",
    summary="Leaves start..end-1 (at most 1000), base64 of the exact bytes",
    responses=problem_responses(400, 422),
)
async def entries(services: NamedDependency[Services], start: Index, end: Index) -> Entries:
    size = await _size(services)
    if end <= start:
        raise InvalidInput(
            "end", f"must be greater than start ({start})", "start < end <= tree size"
        )
    if end > size:
        raise InvalidInput("end", f"is beyond the tree size {size}", f"end <= {size}")
    end = min(end, start + MAX_ENTRIES_PAGE)
    leaves = await read_leaves(services.pool, start, end)
    return Entries(
        entries=[
            Entry(index=start + i, leaf=base64.b64encode(leaf).decode())
            for i, leaf in enumerate(leaves)
        ]
    )


@get(
    "/proof/inclusion",
    summary="RFC 6962 §2.1.1 inclusion proof of leaf `index` in tree `size`",
    responses=problem_responses(400, 422),
)
async def proof_inclusion(services: NamedDependency[Services], index: Index,
                          size: Size) -> InclusionProof:
    current = await _size(services)
    if size > current:
        raise InvalidInput("size", f"is beyond the tree size {current}", f"1..{current}")
    if index >= size:
        raise InvalidInput("index", f"must be below size ({size})", "0 <= index < size")
    hashes = await inclusion_proof(services.pool, index, size)
    return InclusionProof(index=index, size=size, hashes=_b64(hashes))


@get(
    "/proof/consistency",
    summary="RFC 6962 §2.1.2 consistency proof between two tree sizes",
    responses=problem_responses(400, 422),
)
async def proof_consistency(services: NamedDependency[Services], old: Size,
                            new: Size) -> ConsistencyProof:
    current = await _size(services)
    if new > current:
        raise InvalidInput("new", f"is beyond the tree size {current}", f"old..{current}")
    if old > new:
        raise InvalidInput("old", f"must not exceed new ({new})", "0 <= old <= new")
    hashes = await consistency_proof(services.pool, old, new)
    return ConsistencyProof(old=old, new=new, hashes=_b64(hashes))


@get(
    "/tile/{tile_path:path}",
    summary="C2SP tlog-tiles hash tiles and entry bundles",
    media_type="application/octet-stream",
    responses=problem_responses(400, 404),
    cache=False,
)
async def tile(services: NamedDependency[Services], tile_path: FromPath[str]) -> Response[bytes]:
    try:
        ref = parse_tile_path("tile/" + tile_path.lstrip("/"))
    except ValueError as error:
        raise InvalidInput(
            "path", str(error), "tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]"
        ) from None
    size = await _size(services)
    extent = tile_extent(ref.level or 0, ref.index, size)
    if extent.state is TileState.BEYOND:
        raise NotFound("that tile is beyond the current tree")
    if ref.width is None and extent.state is TileState.PARTIAL:
        raise NotFound(f"that tile is only partial so far: ask for .p/{extent.width}")
    width = ref.width or extent.width
    if width > extent.width:
        raise NotFound(f"that tile has only {extent.width} entries so far")
    if ref.level is None:
        body = await entries_tile(services.pool, ref.index, width)
    else:
        body = await hash_tile(services.pool, ref.level, ref.index, width)
    headers = _IMMUTABLE if ref.width is None else _BRIEF
    return Response(body, media_type="application/octet-stream", headers=headers)


LOG_HANDLERS = [
    checkpoint, witnessed_checkpoint, key, keys, entries, proof_inclusion, proof_consistency,
    tile,
]
