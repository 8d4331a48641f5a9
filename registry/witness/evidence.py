"""How a witness writes down a refused, conflicting pair of signed checkpoints. Pure.

When a log offers a checkpoint that does not extend the one the witness last
cosigned (another root at the same size, or a consistency proof that fails), the
witness keeps both signed notes: with the log's signatures on each, anyone holding
the log's public key can check the conflict without trusting the witness
(``registry log check --evidence DIR``). A file reads:

    registry witness evidence v1
    origin <the log's origin>
    reason <one line for people>
    time <POSIX seconds when refused>
    old <the old size in the request>
    proof <number of proof lines>
    <base64 hash, one per line>
    stored <byte length>
    <the checkpoint last cosigned, as stored, with its signatures>
    offered <byte length>
    <the refused checkpoint, as offered, with its signatures>

Notes are framed by their UTF-8 byte length, so no text inside a note can be
mistaken for a field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

MAGIC = "registry witness evidence v1"


class EvidenceError(ValueError):
    """An evidence file is malformed; the message says where."""


@dataclass(frozen=True)
class Evidence:
    origin: str
    reason: str
    time: int
    old_size: int
    proof: tuple[bytes, ...]
    stored_note: str
    offered_note: str


def format_evidence(evidence: Evidence) -> bytes:
    for field in (evidence.origin, evidence.reason):
        if "\n" in field:
            raise EvidenceError(f"{field[:40]!r} must be one line")
    head = [
        MAGIC,
        f"origin {evidence.origin}",
        f"reason {evidence.reason}",
        f"time {evidence.time}",
        f"old {evidence.old_size}",
        f"proof {len(evidence.proof)}",
        *(base64.b64encode(node).decode() for node in evidence.proof),
    ]
    out = ("\n".join(head) + "\n").encode()
    for label, note in (("stored", evidence.stored_note), ("offered", evidence.offered_note)):
        data = note.encode()
        out += f"{label} {len(data)}\n".encode() + data
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def line(self, what: str) -> str:
        end = self._data.find(b"\n", self._at)
        if end < 0:
            raise EvidenceError(f"the file ends before its {what} line")
        raw, self._at = self._data[self._at : end], end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EvidenceError(f"the {what} line is not valid UTF-8") from None

    def field(self, name: str) -> str:
        line = self.line(name)
        label, sep, value = line.partition(" ")
        if label != name or not sep:
            raise EvidenceError(f"want a {name!r} line, got {line[:60]!r}")
        return value

    def number(self, name: str) -> int:
        value = self.field(name)
        if not value.isascii() or not value.isdigit():
            raise EvidenceError(f"{name} must be a decimal number, got {value[:30]!r}")
        return int(value)

    def blob(self, name: str) -> str:
        length = self.number(name)
        raw = self._data[self._at : self._at + length]
        if len(raw) != length:
            raise EvidenceError(f"the {name} note is cut short")
        self._at += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EvidenceError(f"the {name} note is not valid UTF-8") from None

    def at_end(self) -> bool:
        return self._at == len(self._data)


def parse_evidence(data: bytes) -> Evidence:
    reader = _Reader(data)
    if reader.line("first") != MAGIC:
        raise EvidenceError(f"the first line must be {MAGIC!r}")
    origin = reader.field("origin")
    reason = reader.field("reason")
    time = reader.number("time")
    old_size = reader.number("old")
    proof = []
    for number in range(reader.number("proof")):
        line = reader.line(f"proof {number + 1}")
        try:
            proof.append(base64.b64decode(line, validate=True))
        except (binascii.Error, ValueError):
            raise EvidenceError(f"proof line {number + 1} is not base64") from None
    stored = reader.blob("stored")
    offered = reader.blob("offered")
    if not reader.at_end():
        raise EvidenceError("the file goes on after the offered note")
    return Evidence(origin, reason, time, old_size, tuple(proof), stored, offered)
