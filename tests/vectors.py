"""Loader for the shared test vectors (data files, never edited by tests).

They live in ``tests/vectors/``, a copy of the project's shared vectors (``../shared/vectors``
beside the checkout, where the team keeps them; ``test_vectors_copy.py`` checks the copy
is still equal to them wherever they are present), so a clone alone runs its tests.
``REGISTRY_VECTORS_DIR`` points elsewhere. A missing directory is an error, not a skip:
these tests are the proof that the log's hashing matches everyone else's.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


def vectors_dir() -> Path:
    override = os.environ.get("REGISTRY_VECTORS_DIR")
    path = (
        Path(override) if override else Path(__file__).resolve().parent / "vectors"
    )
    if not path.is_dir():
        raise FileNotFoundError(
            f"test vectors not found at {path}; set REGISTRY_VECTORS_DIR to the vectors directory"
        )
    return path


@cache
def load_json(name: str) -> Any:
    return json.loads((vectors_dir() / name).read_text(encoding="utf-8"))


def tree() -> dict[str, Any]:
    """rfc6962-tree.json: leaf inputs, complete-subtree hashes, roots for sizes 0..8."""
    data: dict[str, Any] = load_json("rfc6962-tree.json")
    return data


def proofs() -> dict[str, Any]:
    """rfc6962-proofs.json: explicit inclusion and consistency proofs over that tree."""
    data: dict[str, Any] = load_json("rfc6962-proofs.json")
    return data


def signed_notes() -> list[dict[str, Any]]:
    """signed-notes.json: notes with their verifier keys and expected outcome."""
    notes: list[dict[str, Any]] = load_json("signed-notes.json")["notes"]
    return notes


@dataclass(frozen=True)
class Probe:
    """One transparency-dev/merkle probe file: ``kind`` is inclusion or consistency."""

    id: str
    kind: str
    data: dict[str, Any]

    @property
    def want_err(self) -> bool:
        return bool(self.data["wantErr"])

    def b64(self, key: str) -> bytes:
        return base64.b64decode(self.data[key])

    def proof(self) -> list[bytes]:
        return [base64.b64decode(item) for item in self.data["proof"] or []]


def merkle_probes(kind: str) -> list[Probe]:
    """Every ``transparency-dev-merkle/<kind>/**.json``, id = path below <kind>."""
    base = vectors_dir() / "transparency-dev-merkle" / kind
    return [
        Probe(str(path.relative_to(base)), kind, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(base.rglob("*.json"))
    ]
