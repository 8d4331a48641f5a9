"""tlog-tiles paths, tile coverage and entry bundles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.tlog.merkle import leaf_hash, new_complete_nodes, node_hash, root_naive
from registry.tlog.tiles import (
    MAX_TILE_LEVEL,
    TILE_WIDTH,
    TileExtent,
    TileRef,
    TileState,
    encode_tile_index,
    entries_path,
    entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
    tile_extent,
    tile_node_range,
    tile_path,
)

MAX_INDEX = (1 << 64) - 1


@pytest.mark.parametrize(
    ("index", "want"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (1_000_000, "x001/x000/000"),
        (MAX_INDEX, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_encode_tile_index(index: int, want: str) -> None:
    assert encode_tile_index(index) == want


@pytest.mark.parametrize("index", [-1, 1 << 64])
def test_encode_tile_index_rejects_out_of_range(index: int) -> None:
    with pytest.raises(ValueError, match="tile index"):
        encode_tile_index(index)


def test_paths() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 0, 1) == "tile/2/000.p/1"
    assert tile_path(63, 5, 255) == "tile/63/005.p/255"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(3, 17) == "tile/entries/003.p/17"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tile_path(64, 0), "level"),
        (lambda: tile_path(-1, 0), "level"),
        (lambda: tile_path(0, 0, 0), "width"),
        (lambda: tile_path(0, 0, 256), "width"),
        (lambda: entries_path(0, 256), "width"),
        (lambda: entries_path(-1), "index"),
    ],
)
def test_path_builders_reject_bad_arguments(call: Callable[[], str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("tile/0/000", TileRef(0, 0)),
        ("tile/0/x001/x234/067", TileRef(0, 1234067)),
        ("tile/1/x001/x234/067.p/8", TileRef(1, 1234067, 8)),
        ("tile/63/999.p/255", TileRef(63, 999, 255)),
        ("tile/entries/000.p/1", TileRef(None, 0, 1)),
        ("tile/entries/x001/000", TileRef(None, 1000)),
        ("tile/0/x018/x446/x744/x073/x709/x551/615", TileRef(0, MAX_INDEX)),
    ],
)
def test_parse_tile_path(path: str, want: TileRef) -> None:
    assert parse_tile_path(path) == want
    assert want.path() == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "tile/0/000/",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/x/000",
        "tile/ 1/000",
        "tile/entry/000",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/x000",
        "tile/0/x001",
        "tile/0/001/002",
        "tile/0/x000/067",  # non-canonical 67
        "tile/0/x000/x001/000",
        "tile/0/X001/000",
        "tile/0/x01/000",
        "tile/0/xx01/000",
        "tile/0/\u0661\u0662\u0663",  # non-ASCII digits
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/01",
        "tile/0/000.p/+1",
        "tile/0/000.p/1/",
        "tile/0/000.q/1",
        "tile/0/.p/1",
        "tile/0/000p/1",
        "tile/0/x001.p/1/000",
        "tile/entries/000.p/256",
        "tile/entries",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2^64
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
        "tile/0/000\n",
        "tile/0/000?x=1",
    ],
)
def test_parse_tile_path_rejects(path: str) -> None:
    with pytest.raises(ValueError, match="tile"):
        parse_tile_path(path)


def test_tile_node_range() -> None:
    assert tile_node_range(0, 0, 3) == [(0, 0), (0, 1), (0, 2)]
    full = tile_node_range(2, 5)
    assert len(full) == TILE_WIDTH
    assert full[0] == (16, 5 * 256)
    assert full[-1] == (16, 5 * 256 + 255)
    for args in [(64, 0, 1), (0, 0, 0), (0, 0, 257), (0, -1, 1)]:
        with pytest.raises(ValueError, match="tile"):
            tile_node_range(*args)


def test_level_one_tile_hashes_are_level_eight_nodes() -> None:
    """A level-1 tile entry is the MTH of a full level-0 tile: merkle level 8."""
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(512)]
    nodes = {(lvl, idx): h for lvl, idx, h in new_complete_nodes(0, leaves, _no_fetch)}
    (first, second) = tile_node_range(1, 0, 2)
    assert nodes[first] == root_naive(leaves[:256])
    assert nodes[second] == root_naive(leaves[256:])
    assert node_hash(nodes[first], nodes[second]) == root_naive(leaves)


def _no_fetch(level: int, index: int) -> bytes:
    raise AssertionError((level, index))


def test_tile_extent_spec_example() -> None:
    """The spec's example: a tree of 70,000 has 273+1(112) / 1+1(17) / 0+1(1) tiles by level."""
    size = 70_000
    assert tile_extent(0, 272, size) == TileExtent(TileState.FULL, 256)
    assert tile_extent(0, 273, size) == TileExtent(TileState.PARTIAL, 112)
    assert tile_extent(0, 274, size) == TileExtent(TileState.BEYOND, 0)
    assert tile_extent(1, 0, size) == TileExtent(TileState.FULL, 256)
    assert tile_extent(1, 1, size) == TileExtent(TileState.PARTIAL, 17)
    assert tile_extent(2, 0, size) == TileExtent(TileState.PARTIAL, 1)
    assert tile_extent(3, 0, size) == TileExtent(TileState.BEYOND, 0)


def test_tile_extent_edges() -> None:
    assert tile_extent(0, 0, 0).state is TileState.BEYOND
    assert tile_extent(0, 0, 1) == TileExtent(TileState.PARTIAL, 1)
    assert tile_extent(0, 0, 256) == TileExtent(TileState.FULL, 256)
    # A tree of 256 also has a level-1 partial tile of width 1 (spec).
    assert tile_extent(1, 0, 256) == TileExtent(TileState.PARTIAL, 1)
    assert tile_extent(MAX_TILE_LEVEL, 0, MAX_INDEX).state is TileState.BEYOND
    with pytest.raises(ValueError, match="level"):
        tile_extent(64, 0, 1)
    with pytest.raises(ValueError, match="negative"):
        tile_extent(0, -1, 1)


def test_entry_bundle_format() -> None:
    assert entry_bundle([]) == b""
    assert entry_bundle([b"", b"ab"]) == b"\x00\x00\x00\x02ab"
    big = b"x" * 0xFFFF
    assert parse_entry_bundle(entry_bundle([big])) == [big]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00", "length"),
        (b"\x00\x02a", "inside entry"),
        (b"\x00\x00\x00", "length"),
        (b"\x00\x00" * 257, "more than 256"),
    ],
)
def test_parse_entry_bundle_rejects(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_entry_bundle(data)


def test_entry_bundle_limits() -> None:
    with pytest.raises(ValueError, match="65535"):
        entry_bundle([b"x" * 0x10000])
    with pytest.raises(ValueError, match="at most 256"):
        entry_bundle([b""] * 257)
    with pytest.raises(ValueError, match="want 3"):
        parse_entry_bundle(entry_bundle([b"a", b"b"]), count=3)
    assert parse_entry_bundle(entry_bundle([b"a"] * 256), count=256) == [b"a"] * 256


# --- Properties -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    level=st.none() | st.integers(0, MAX_TILE_LEVEL),
    index=st.integers(0, MAX_INDEX),
    width=st.none() | st.integers(1, TILE_WIDTH - 1),
)
def test_tile_path_round_trip(level: int | None, index: int, width: int | None) -> None:
    ref = TileRef(level, index, width)
    assert parse_tile_path(ref.path()) == ref


@settings(max_examples=200, deadline=None)
@given(path=st.text(alphabet="tile/entrs0123456789x.p", max_size=40))
def test_parse_tile_path_accepts_only_canonical(path: str) -> None:
    """Whatever parses must print back to exactly the same string: one path per resource."""
    try:
        ref = parse_tile_path(path)
    except ValueError:
        return
    assert ref.path() == path


@settings(max_examples=200, deadline=None)
@given(
    level=st.integers(0, MAX_TILE_LEVEL),
    index=st.integers(0, MAX_INDEX),
    width=st.integers(1, TILE_WIDTH - 1),
    position=st.integers(0, 200),
    char=st.sampled_from(["/", "0", "x", ".", "p", " ", "a"]),
)
def test_mutated_tile_path_is_rejected_or_different(
    level: int, index: int, width: int, position: int, char: str
) -> None:
    """Inserting one character never yields another spelling of the same tile."""
    path = tile_path(level, index, width)
    position %= len(path) + 1
    mutated = path[:position] + char + path[position:]
    try:
        ref = parse_tile_path(mutated)
    except ValueError:
        return
    assert ref != TileRef(level, index, width)
    assert ref.path() == mutated


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.binary(max_size=300), max_size=TILE_WIDTH))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    assert parse_entry_bundle(entry_bundle(entries), count=len(entries)) == entries


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 1 << 40), level=st.integers(0, 5), index=st.integers(0, 1 << 20))
def test_tile_extent_matches_spec_formula(size: int, level: int, index: int) -> None:
    extent = tile_extent(level, index, size)
    full_tiles, partial = divmod(size // TILE_WIDTH**level, TILE_WIDTH)
    if index < full_tiles:
        assert extent == TileExtent(TileState.FULL, TILE_WIDTH)
    elif index == full_tiles and partial:
        assert extent == TileExtent(TileState.PARTIAL, partial)
    else:
        assert extent == TileExtent(TileState.BEYOND, 0)
