"""The repository's copy of the test vectors (tests/vectors/) is the team's shared set."""

from __future__ import annotations

from pathlib import Path

import pytest

COPY = Path(__file__).resolve().parent / "vectors"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_copy_in_the_repository_equals_the_shared_vectors() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"no shared vectors at {SHARED} to compare the copy with (a clone alone)")
    copy, shared = _files(COPY), _files(SHARED)
    assert sorted(copy) == sorted(shared), "files differ: copy ../shared/vectors to tests/vectors"
    changed = [name for name in copy if copy[name] != shared[name]]
    assert not changed, f"tests/vectors differs from ../shared/vectors in {changed[:5]}"


def test_the_copy_is_complete() -> None:
    """What the vector tests read is in the repository: a clone alone runs them."""
    names = _files(COPY)
    for needed in ("rfc6962-tree.json", "rfc6962-proofs.json", "signed-notes.json", "README.md"):
        assert needed in names
    assert sum(name.startswith("transparency-dev-merkle/") for name in names) >= 196
