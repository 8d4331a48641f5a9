"""``registry log check``: what a bureau runs against the registry's public log.

Fetch the latest checkpoint, verify it with a pinned verifier key, and prove it
extends the last checkpoint this client saw (``--since`` file) with a
consistency proof. Only then is the new checkpoint saved, atomically, so the
file always holds a checkpoint that was verified. The first run with a missing
``--since`` file trusts what it sees (trust on first use) and records it.

Exit codes: 0 consistent; 1 bad signature, rollback or fork (the log lied);
2 usage or network problems (nothing could be concluded).
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from registry.tlog.merkle import ProofError, verify_consistency
from registry.tlog.note import Checkpoint, NoteError, Verifier, open_checkpoint, parse_verifier_key

OK, INCONSISTENT, UNUSABLE = 0, 1, 2
TIMEOUT = 10.0


class _Unusable(Exception):
    """Usage or network problem: exit 2."""


class _Inconsistent(Exception):
    """The log's answers do not hold up: exit 1."""


def _log_url(url: str, path: str) -> str:
    base = url.rstrip("/")
    if not base.endswith("/log"):
        base += "/log"
    return f"{base}/{path}"


def _get(client: httpx.Client, url: str, **params: int) -> httpx.Response:
    try:
        response = client.get(url, params=params or None)
    except httpx.HTTPError as error:
        raise _Unusable(f"couldn't fetch {url}: {error}") from None
    if response.status_code != 200:
        raise _Unusable(f"couldn't fetch {url}: HTTP {response.status_code}: {response.text[:200]}")
    return response


def _open(note: str, verifier: Verifier, what: str) -> Checkpoint:
    try:
        checkpoint, _ = open_checkpoint(note, [verifier])
    except NoteError as error:
        raise _Inconsistent(f"{what} does not verify with the pinned key: {error}") from None
    if checkpoint.origin != verifier.name:
        raise _Inconsistent(
            f"{what} is for log {checkpoint.origin!r}, but the pinned key is {verifier.name!r}"
        )
    return checkpoint


def _proof(body: Any, old: int, new: int) -> list[bytes]:
    try:
        if body["old"] != old or body["new"] != new:
            raise _Inconsistent(f"asked for a proof from {old} to {new}, got {body!r:.200}")
        return [base64.b64decode(h, validate=True) for h in body["hashes"]]
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise _Inconsistent(f"the consistency proof is malformed: {body!r:.200}") from None


def _save(path: Path, note: str) -> None:
    """Replace ``path`` with ``note`` atomically: a crash leaves the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check(url: str, pinned_key: str, since: Path | None, client: httpx.Client) -> str:
    try:
        verifier = parse_verifier_key(pinned_key.strip())
    except NoteError as error:
        raise _Unusable(f"--key: {error}") from None
    old_note: str | None = None
    if since is not None and since.exists():
        try:
            old_note = since.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _Unusable(f"couldn't read {since}: {error}") from None

    new_note = _get(client, _log_url(url, "checkpoint")).text
    new = _open(new_note, verifier, "the log's checkpoint")
    message = f"checkpoint verified: size {new.size}"
    if old_note is not None:
        old = _open(old_note, verifier, f"the saved checkpoint in {since}")
        if old.size > new.size:
            raise _Inconsistent(
                f"the log shrank: it now shows size {new.size}, but it signed size {old.size} "
                "before (rollback)"
            )
        if old.size == new.size:
            if old.root_hash != new.root_hash:
                raise _Inconsistent(
                    f"the log forked: two different roots signed at size {new.size}"
                )
        elif old.size > 0:
            response = _get(client, _log_url(url, "proof/consistency"), old=old.size, new=new.size)
            try:
                body = response.json()
            except ValueError:
                raise _Inconsistent("the consistency proof is not JSON") from None
            try:
                verify_consistency(
                    old.size,
                    new.size,
                    _proof(body, old.size, new.size),
                    old.root_hash,
                    new.root_hash,
                )
            except ProofError as error:
                raise _Inconsistent(
                    f"the log at size {new.size} does not extend the saved checkpoint at size "
                    f"{old.size}: {error}"
                ) from None
        message += f", consistent with the saved checkpoint at size {old.size}"
    if since is not None:
        try:
            _save(since, new_note)
        except OSError as error:
            raise _Unusable(f"couldn't save the checkpoint to {since}: {error}") from None
        message += f"; saved to {since}"
    return message


def check_remote(
    url: str,
    pinned_key: str,
    since_file: str | os.PathLike[str] | None,
    *,
    client: httpx.Client | None = None,
) -> int:
    """Verify the remote log's checkpoint and its consistency with ``since_file``; exit code."""
    since = Path(since_file) if since_file else None
    try:
        if client is not None:
            message = _check(url, pinned_key, since, client)
        else:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as own:
                message = _check(url, pinned_key, since, own)
    except _Inconsistent as error:
        print(f"registry log check: FAILED: {error}", file=sys.stderr)
        return INCONSISTENT
    except _Unusable as error:
        print(f"registry log check: {error}", file=sys.stderr)
        return UNUSABLE
    print(message)
    return OK
