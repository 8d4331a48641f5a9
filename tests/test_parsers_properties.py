"""Property tests for parsers of outside input not covered elsewhere: whatever arrives, the
answer is a 4xx problem (or a 200), never a 5xx, and the pure parsers raise only their
documented errors.

Already covered elsewhere: credit codes and document numbers (test_identifiers.py), tile
paths and bundles (test_tiles.py), signed notes round trips (test_notes.py), proofs
(test_merkle.py).
"""

from __future__ import annotations

import base64
import datetime
import urllib.parse
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.bureau.feed import decode_cursor as decode_feed_cursor
from registry.bureau.feed import encode_cursor as encode_feed_cursor
from registry.credit.common import decode_cursor, encode_cursor
from registry.errors import InvalidInput
from registry.tlog.note import (
    Checkpoint,
    NoteError,
    generate_signer_key,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)
from tests.credit_helpers import penalty, subject

Client = AsyncTestClient[Litestar]
PROBLEM = "application/problem+json"

# The app and its database are set up once per test function, then probed read-only (or
# with writes that cannot disturb other examples) by every example.
HTTP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PURE = settings(max_examples=200, deadline=None)
VERIFIER = parse_verifier_key(generate_signer_key("example.com/log")[1])

# Text that can travel in a URL query (no lone surrogates: they cannot be UTF-8 encoded).
query_text = st.text(st.characters(codec="utf-8"), max_size=80)
numberish = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "-0", "+1", "1e3", "0x10", " 1", "1 ", "1_0", "٣", "NaN", "9" * 40]),
    query_text,
)
huge_and_edge_ints = st.one_of(
    st.integers(0, 20), st.sampled_from([2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64]),
)


def check_answer(response: Any) -> None:
    """Never a 5xx; every error is RFC 9457 problem details."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.headers
        assert response.json()["status"] == response.status_code


# ---- pure parsers ----------------------------------------------------------------------


@PURE
@given(text=st.text(max_size=300))
def test_parse_checkpoint_raises_only_note_errors(text: str) -> None:
    """Any text either parses as a checkpoint or raises NoteError/ValueError."""
    try:
        checkpoint = parse_checkpoint(text)
    except (NoteError, ValueError):
        return
    assert checkpoint.size >= 0


checkpoint_lines = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.integers(-5, 2**65).map(str),
        st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode()),
    ),
    min_size=0,
    max_size=6,
)


@PURE
@given(lines=checkpoint_lines, newline=st.booleans())
def test_checkpoint_shaped_text_parses_strictly(lines: list[str], newline: bool) -> None:
    """Near-checkpoints reach every branch; what parses prints back to the same text."""
    text = "\n".join(lines) + ("\n" if newline else "")
    try:
        checkpoint = parse_checkpoint(text)
    except (NoteError, ValueError):
        return
    assert checkpoint.to_text() == text


@PURE
@given(origin=st.text(min_size=1, max_size=30), size=st.integers(0, 2**63),
       root=st.binary(min_size=32, max_size=32))
def test_checkpoint_round_trip(origin: str, size: int, root: bytes) -> None:
    try:
        checkpoint = Checkpoint(origin, size, root)
        text = checkpoint.to_text()
    except (NoteError, ValueError):
        return
    assert parse_checkpoint(text) == checkpoint


@PURE
@given(note=st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_open_note_raises_only_note_errors(note: str | bytes) -> None:
    """Any text or bytes either opens under the key or raises NoteError/ValueError."""
    try:
        open_note(note, [VERIFIER])
    except (NoteError, ValueError):
        return


@PURE
@given(vkey=st.text(max_size=200))
def test_parse_verifier_key_raises_only_note_errors(vkey: str) -> None:
    try:
        parse_verifier_key(vkey)
    except (NoteError, ValueError):
        return


@PURE
@given(cursor=st.text(max_size=200))
def test_listing_cursor_refuses_with_invalid_input(cursor: str) -> None:
    """Random cursors give InvalidInput naming ``cursor`` (or decode), never another error."""
    for kinds in ((), (uuid.UUID,), (int,), (datetime.date, uuid.UUID)):
        refused: InvalidInput | None = None
        try:
            decode_cursor(cursor, kinds)
        except InvalidInput as error:
            refused = error
        assert refused is None or refused.field == "cursor"


@PURE
@given(values=st.lists(st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=30)),
                       max_size=3))
def test_cursor_shaped_values_decode_or_refuse(values: list[Any]) -> None:
    """base64url JSON lists of anything: a tuple of the right types or InvalidInput."""
    raw = base64.urlsafe_b64encode(msgspec.json.encode([str(v) for v in values])).decode()
    for kinds in ((int,), (uuid.UUID,), (datetime.date, uuid.UUID)):
        try:
            decoded = decode_cursor(raw.rstrip("="), kinds)
        except InvalidInput:
            continue
        assert len(decoded) == len(kinds)
        assert all(isinstance(v, k) for v, k in zip(decoded, kinds, strict=True))


@PURE
@given(value=st.integers(0, 2**63 - 1))
def test_cursor_round_trips(value: int) -> None:
    assert decode_cursor(encode_cursor(value), (int,)) == (value,)
    assert decode_feed_cursor(encode_feed_cursor(value)) == value


@PURE
@given(cursor=st.text(max_size=100))
def test_feed_cursor_is_canonical_or_refused(cursor: str) -> None:
    """The bureau feed accepts only cursors it gave out: exactly one string per position."""
    try:
        position = decode_feed_cursor(cursor)
    except InvalidInput as error:
        refused = error
    else:
        assert encode_feed_cursor(position) == cursor
        return
    assert refused.field == "since"


# ---- through the HTTP app --------------------------------------------------------------


@pytest.fixture
async def seeded(client: Client, regulator: dict[str, str]) -> dict[str, str]:
    """A log with a few leaves (a token, two subjects), so proofs have something to prove."""
    await subject(client, regulator)
    await subject(client, regulator, kind="practitioner")
    return regulator


@HTTP
@given(index=numberish, size=numberish)
async def test_inclusion_proof_parameters_never_5xx(
    client: Client, seeded: dict[str, str], index: str, size: str
) -> None:
    check_answer(await client.get("/log/proof/inclusion", params={"index": index, "size": size}))


@HTTP
@given(index=huge_and_edge_ints, size=huge_and_edge_ints)
async def test_inclusion_proof_edge_integers_never_5xx(
    client: Client, seeded: dict[str, str], index: int, size: int
) -> None:
    response = await client.get("/log/proof/inclusion", params={"index": index, "size": size})
    check_answer(response)
    if response.status_code == 200:
        assert response.json()["index"] == index


@HTTP
@given(old=st.one_of(numberish, huge_and_edge_ints.map(str)),
       new=st.one_of(numberish, huge_and_edge_ints.map(str)))
async def test_consistency_proof_parameters_never_5xx(
    client: Client, seeded: dict[str, str], old: str, new: str
) -> None:
    check_answer(await client.get("/log/proof/consistency", params={"old": old, "new": new}))


@HTTP
@given(start=st.one_of(numberish, huge_and_edge_ints.map(str)),
       end=st.one_of(numberish, huge_and_edge_ints.map(str)))
async def test_entries_parameters_never_5xx(
    client: Client, seeded: dict[str, str], start: str, end: str
) -> None:
    check_answer(await client.get("/log/entries", params={"start": start, "end": end}))


@HTTP
@given(path=st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="?#"), max_size=60),
    st.lists(st.one_of(st.sampled_from(["entries", "0", "1", "x001", ".p", "255", "256"]),
                       st.integers(-3, 2**64).map(str)), max_size=6).map("/".join),
))
async def test_tile_paths_never_5xx(client: Client, seeded: dict[str, str], path: str) -> None:
    check_answer(await client.get("/log/tile/" + urllib.parse.quote(path, safe="/")))


cursor_text = st.one_of(
    query_text,
    # base64url JSON lists: get past the base64 and JSON layers into the typed checks.
    st.lists(st.one_of(st.text(max_size=20), st.integers(-(2**70), 2**70).map(str),
                       st.uuids().map(str), st.dates().map(str)), max_size=3)
    .map(lambda v: base64.urlsafe_b64encode(msgspec.json.encode(v)).decode().rstrip("=")),
)

REGULATOR_LISTINGS = [
    "/v1/subjects",
    "/v1/records",
    "/v1/blacklist",
    "/v1/objections",
    "/v1/repairs",
    "/v1/access-records",
]


@HTTP
@given(cursor=cursor_text, which=st.sampled_from(REGULATOR_LISTINGS))
async def test_listing_cursors_never_5xx(
    client: Client, seeded: dict[str, str], cursor: str, which: str
) -> None:
    """A random cursor on any listing is a 4xx naming ``cursor`` (or a page), never a 500."""
    response = await client.get(which, params={"cursor": cursor}, headers=seeded)
    check_answer(response)
    if response.status_code in (400, 422):
        assert "cursor" in response.text


@HTTP
@given(since=cursor_text, limit=numberish)
async def test_bureau_feed_cursor_never_5xx(
    client: Client, bureau: dict[str, str], seeded: dict[str, str], since: str, limit: str
) -> None:
    check_answer(
        await client.get("/v1/bureau/changes",
                         params={"since": since, "limit": limit, "purpose": "credit_assessment"},
                         headers=bureau)
    )


@HTTP
@given(before=numberish, limit=numberish, fmt=st.sampled_from(["json", "atom"]))
async def test_public_feed_paging_never_5xx(
    client: Client, seeded: dict[str, str], before: str, limit: str, fmt: str
) -> None:
    check_answer(await client.get(f"/public/feed.{fmt}", params={"before": before, "limit": limit}))


@HTTP
@given(prefix=query_text, kind=st.one_of(st.none(), query_text), limit=numberish)
async def test_subject_search_parameters_never_5xx(
    client: Client, seeded: dict[str, str], prefix: str, kind: str | None, limit: str
) -> None:
    params = {"name_prefix": prefix, "limit": limit, **({"kind": kind} if kind else {})}
    check_answer(await client.get("/v1/subjects", params=params, headers=seeded))


# Header values travel as latin-1; CR and LF cannot be sent at all.
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    min_size=0, max_size=260,
)


@HTTP
@given(key=header_text)
async def test_idempotency_key_header_never_5xx(
    client: Client, seeded: dict[str, str], key: str
) -> None:
    """Any Idempotency-Key on a record for a missing subject: a 4xx, and a retry the same."""
    body = penalty("00000000-0000-4000-8000-000000000000", number=f"寧罰〔2026〕{len(key)}號")
    headers: dict[str, Any] = {**seeded, "Idempotency-Key": key.encode("latin-1")}
    first = await client.post("/v1/records", json=body, headers=headers)
    check_answer(first)
    assert first.status_code >= 400
    again = await client.post("/v1/records", json=body, headers=headers)
    check_answer(again)
    if key.strip():
        assert again.status_code == first.status_code
