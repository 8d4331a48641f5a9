"""C2SP tlog-tiles (c2sp.org/tlog-tiles): tile paths, tile coverage and entry bundles. Pure.

A hash tile (L, N) holds up to 256 consecutive Merkle hashes at tree level
8*L, starting at node index N*256. A tile is *full* at 256 hashes; the
rightmost tile of each level is usually *partial* (1..255 hashes, path suffix
``.p/<W>``). Partial tiles are never hashed into the level above.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from registry.tlog.merkle import NodeID

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF

# Indexes come from uint64 tree sizes; capping the digits also bounds the parser's work.
_MAX_INDEX = (1 << 64) - 1
_ELEMENT_RE = re.compile(r"x?[0-9]{3}")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,2}")


def encode_tile_index(index: int) -> str:
    """3-digit path elements, all but the last prefixed with x: 1234067 -> x001/x234/067."""
    if not 0 <= index <= _MAX_INDEX:
        raise ValueError(f"tile index {index} must be between 0 and 2^64-1")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _check_width(width: int | None) -> None:
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise ValueError(f"partial tile width {width} must be between 1 and {TILE_WIDTH - 1}")


def _suffix(width: int | None) -> str:
    return "" if width is None else f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>`` for a full tile, ``tile/<L>/<N>.p/<W>`` for a partial one."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} must be between 0 and {MAX_TILE_LEVEL}")
    _check_width(width)
    return f"tile/{level}/{encode_tile_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """``tile/entries/<N>`` for a full entry bundle, ``…/<N>.p/<W>`` for a partial one."""
    _check_width(width)
    return f"tile/entries/{encode_tile_index(index)}{_suffix(width)}"


@dataclass(frozen=True)
class TileRef:
    """A parsed tile path: ``level`` is None for an entry bundle, ``width`` None when full."""

    level: int | None
    index: int
    width: int | None = None

    def path(self) -> str:
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


def parse_tile_path(path: str) -> TileRef:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` (no leading slash).

    Only the canonical spelling is accepted, so every resource has one path:
    no leading zeros in L or W, no ``x000`` leading element, W in 1..255, L in 0..63.
    """
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise ValueError(f"tile path {path[:80]!r} must start with tile/<level>/ or tile/entries/")
    level_part, rest = parts[1], parts[2:]
    level: int | None
    if level_part == "entries":
        level = None
    elif _DECIMAL_RE.fullmatch(level_part) and int(level_part) <= MAX_TILE_LEVEL:
        level = int(level_part)
    else:
        raise ValueError(
            f"tile level {level_part[:10]!r} must be a decimal 0..{MAX_TILE_LEVEL} "
            "without leading zeros"
        )
    width: int | None = None
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_part = rest[-1]
        if not _DECIMAL_RE.fullmatch(width_part) or not 1 <= int(width_part) < TILE_WIDTH:
            raise ValueError(
                f"partial tile width {width_part[:10]!r} must be a decimal 1..{TILE_WIDTH - 1} "
                "without leading zeros"
            )
        width = int(width_part)
        rest = [*rest[:-2], rest[-2][:-2]]
    index = _parse_index(rest, path)
    return TileRef(level, index, width)


def _parse_index(elements: list[str], path: str) -> int:
    problem = f"tile index in {path[:80]!r} must be 3-digit elements, all but the last x-prefixed"
    if len(elements) > len(encode_tile_index(_MAX_INDEX).split("/")):
        raise ValueError(problem)
    index = 0
    for i, element in enumerate(elements):
        last = i == len(elements) - 1
        if not _ELEMENT_RE.fullmatch(element) or element.startswith("x") == last:
            raise ValueError(problem)
        index = index * 1000 + int(element.removeprefix("x"))
    if index > _MAX_INDEX or encode_tile_index(index).split("/") != elements:
        # e.g. x000/067: a non-canonical spelling of 67
        raise ValueError(f"tile index in {path[:80]!r} is not in canonical form")
    return index


def tile_node_range(level: int, index: int, width: int = TILE_WIDTH) -> list[NodeID]:
    """The Merkle nodes a hash tile holds, in order: level 8*L, indexes N*256 .. N*256+W-1."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} must be between 0 and {MAX_TILE_LEVEL}")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} must be between 1 and {TILE_WIDTH}")
    if index < 0:
        raise ValueError(f"tile index {index} must not be negative")
    start = index * TILE_WIDTH
    return [(level * TILE_HEIGHT, start + i) for i in range(width)]


class TileState(enum.Enum):
    FULL = "full"
    PARTIAL = "partial"
    BEYOND = "beyond"  # not part of this tree at all: must not be served


@dataclass(frozen=True)
class TileExtent:
    """How much of tile (L, N) a tree has: ``width`` is 256, 1..255, or 0 when BEYOND."""

    state: TileState
    width: int


def tile_extent(level: int, index: int, tree_size: int) -> TileExtent:
    """Whether tile (L, N) (entry bundle N: level 0) is full, partial or beyond ``tree_size``.

    Level L has floor(size / 256^L) hashes; tile N holds hashes N*256 .. N*256+255 of them.
    """
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} must be between 0 and {MAX_TILE_LEVEL}")
    if index < 0 or tree_size < 0:
        raise ValueError(f"tile index {index} and tree size {tree_size} must not be negative")
    hashes = tree_size >> (TILE_HEIGHT * level)
    have = hashes - index * TILE_WIDTH
    if have >= TILE_WIDTH:
        return TileExtent(TileState.FULL, TILE_WIDTH)
    if have > 0:
        return TileExtent(TileState.PARTIAL, have)
    return TileExtent(TileState.BEYOND, 0)


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as big-endian uint16 length prefixes followed by the bytes."""
    if len(entries) > TILE_WIDTH:
        raise ValueError(f"an entry bundle holds at most {TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_BYTES:
            raise ValueError(f"entry {i} is {len(entry)} bytes; bundles allow at most 65535")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes, count: int | None = None) -> list[bytes]:
    """Split an entry bundle; with ``count`` given, it must hold exactly that many entries."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise ValueError(f"entry bundle ends inside the length of entry {len(entries)}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if len(data) - offset < length:
            raise ValueError(f"entry bundle ends inside entry {len(entries)}")
        entries.append(bytes(data[offset : offset + length]))
        offset += length
        if len(entries) > TILE_WIDTH:
            raise ValueError(f"entry bundle holds more than {TILE_WIDTH} entries")
    if count is not None and len(entries) != count:
        raise ValueError(f"entry bundle holds {len(entries)} entries, want {count}")
    return entries
