"""``registry log check``: what a bureau runs against the registry's public log.

Fetch the latest checkpoint, verify it with a pinned verifier key, and prove it
extends the last checkpoint this client saw (``--since`` file) with a
consistency proof. Only then is the new checkpoint saved, atomically, so the
file always holds a checkpoint that was verified. The first run with a missing
``--since`` file trusts what it sees (trust on first use) and records it.

With ``--witness VKEY`` (repeated) the checkpoint must also carry valid
cosignatures (c2sp.org/tlog-cosignature) of at least ``--quorum K`` of those
witnesses (default: all), or it is neither trusted nor saved: a view the witnesses
did not see may be a view shown to this client alone.

With ``--evidence DIR`` (a witness's evidence folder, registry/witness/evidence.py)
each refused pair of checkpoints that both verify under the pinned key is judged:
two roots at one size is a fork; two sizes are a fork if the log cannot prove the
larger extends the smaller (asked at ``--url``, if given).

Exit codes: 0 consistent; 1 bad signature, rollback, fork or no witness quorum
(the log lied, or could not show that it did not); 2 usage or network problems
(nothing could be concluded).
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from registry.durable_files import replace_file
from registry.tlog.merkle import EMPTY_ROOT, ProofError, verify_consistency
from registry.tlog.note import Checkpoint, NoteError, Verifier, open_checkpoint, parse_verifier_key
from registry.witness.evidence import EvidenceError, parse_evidence
from registry.witness.policy import PolicyError, WitnessPolicy, check_cosignatures

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


def _consistency_proof(client: httpx.Client, url: str, old: Checkpoint, new: Checkpoint) -> None:
    """Ask the log for a proof that ``new`` extends ``old``; raise _Inconsistent if none holds."""
    response = _get(client, _log_url(url, "proof/consistency"), old=old.size, new=new.size)
    try:
        body = response.json()
    except ValueError:
        raise _Inconsistent("the consistency proof is not JSON") from None
    try:
        verify_consistency(
            old.size, new.size, _proof(body, old.size, new.size), old.root_hash, new.root_hash
        )
    except ProofError as error:
        raise _Inconsistent(
            f"the log at size {new.size} does not extend the saved checkpoint at size "
            f"{old.size}: {error}"
        ) from None


def _when(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _require_quorum(note: str, policy: WitnessPolicy) -> str:
    """Raise _Inconsistent unless a quorum of pinned witnesses validly cosigned ``note``."""
    cosigned = check_cosignatures(note, policy)
    signed = ", ".join(f"{name} (at {_when(ts)})" for name, ts in cosigned.signed) or "none"
    missing = ", ".join(cosigned.missing) or "none"
    if cosigned.invalid:
        raise _Inconsistent(
            f"the checkpoint carries an invalid cosignature by pinned witness "
            f"{', '.join(cosigned.invalid)} (valid: {signed})"
        )
    if not cosigned.met:
        raise _Inconsistent(
            f"only {len(cosigned.signed)} of the {len(policy.witnesses)} pinned witnesses "
            f"cosigned the checkpoint, {policy.quorum} required; cosigned by: {signed}; "
            f"not by: {missing}"
        )
    return (
        f"cosigned by {len(cosigned.signed)} of {len(policy.witnesses)} witnesses "
        f"(quorum {policy.quorum}): {signed}"
        + (f"; not by {missing}" if cosigned.missing else "")
    )


def _save(path: Path, note: str) -> None:
    """Replace ``path`` with ``note`` atomically and durably: a crash leaves the old or the
    new file (registry/durable_files.py)."""
    replace_file(path, note.encode("utf-8"), mode=0o600)


def _check(
    url: str, verifier: Verifier, policy: WitnessPolicy, since: Path | None,
    client: httpx.Client,
) -> str:
    old_note: str | None = None
    if since is not None and since.exists():
        try:
            old_note = since.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _Unusable(f"couldn't read {since}: {error}") from None

    new_note = _get(client, _log_url(url, "checkpoint")).text
    new = _open(new_note, verifier, "the log's checkpoint")
    message = f"checkpoint verified: size {new.size}"
    if policy.witnesses:
        message += ", " + _require_quorum(new_note, policy)
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
            _consistency_proof(client, url, old, new)
        message += f", consistent with the saved checkpoint at size {old.size}"
    if since is not None:
        try:
            _save(since, new_note)
        except OSError as error:
            raise _Unusable(f"couldn't save the checkpoint to {since}: {error}") from None
        message += f"; saved to {since}"
    return message


def _judge_pair(
    stored: Checkpoint, offered: Checkpoint, url: str | None, client: httpx.Client
) -> tuple[int, str]:
    """(exit code, verdict) for two checkpoints of one log that both verify."""
    small, large = sorted((stored, offered), key=lambda c: c.size)
    if small.size == large.size:
        if small.root_hash == large.root_hash:
            return OK, f"no conflict: the same root at size {small.size}"
        return INCONSISTENT, (
            f"FORK: the log signed two different roots at size {small.size}: "
            f"{base64.b64encode(stored.root_hash).decode()} (cosigned by the witness) and "
            f"{base64.b64encode(offered.root_hash).decode()} (refused)"
        )
    if small.size == 0:
        if small.root_hash == EMPTY_ROOT:
            return OK, "no conflict: the empty tree is a prefix of every tree"
        return INCONSISTENT, "FORK: the log signed a size-0 checkpoint with a non-empty root"
    if url is None:
        return UNUSABLE, (
            f"unresolved: sizes {small.size} and {large.size} conflict only if the log cannot "
            "prove one extends the other; run again with --url to ask it"
        )
    try:
        _consistency_proof(client, url, small, large)
    except _Inconsistent as error:
        return INCONSISTENT, f"FORK: {error}"
    except _Unusable as error:
        return UNUSABLE, f"unresolved: {error}"
    return OK, (
        f"no conflict: the log proves size {large.size} extends size {small.size} "
        "(the witness was sent a wrong proof)"
    )


def _review_evidence(
    directory: Path, verifier: Verifier, url: str | None, client: httpx.Client
) -> int:
    """Judge every evidence file in ``directory`` that concerns the pinned log; exit code."""
    if not directory.is_dir():
        print(f"registry log check: --evidence {directory} is not a directory", file=sys.stderr)
        return UNUSABLE
    worst = OK
    counts = {OK: 0, INCONSISTENT: 0, UNUSABLE: 0}
    for path in sorted(directory.glob("*.txt")):
        try:
            evidence = parse_evidence(path.read_bytes())
        except (OSError, EvidenceError) as error:
            print(f"registry log check: couldn't read evidence {path}: {error}", file=sys.stderr)
            counts[UNUSABLE] += 1
            worst = worst or UNUSABLE
            continue
        if evidence.origin != verifier.name:
            print(f"{path}: about log {evidence.origin!r}, not {verifier.name!r}: skipped")
            continue
        try:
            stored = _open(evidence.stored_note, verifier, "the checkpoint the witness held")
            offered = _open(evidence.offered_note, verifier, "the checkpoint it refused")
        except _Inconsistent as error:
            # Anyone can write a file; only the log's own signatures make it evidence.
            print(f"{path}: not evidence against this log: {error}")
            continue
        code, verdict = _judge_pair(stored, offered, url, client)
        counts[code] += 1
        if code == INCONSISTENT:
            print(f"registry log check: FAILED: {verdict} (evidence {path}, refused by the "
                  f"witness at {_when(evidence.time)})", file=sys.stderr)
            worst = INCONSISTENT
        elif code == UNUSABLE:
            print(f"registry log check: {path}: {verdict}", file=sys.stderr)
            worst = worst or UNUSABLE
        else:
            print(f"{path}: {verdict}")
    print(
        f"evidence in {directory}: {counts[INCONSISTENT]} fork(s), {counts[UNUSABLE]} "
        f"unresolved, {counts[OK]} without conflict"
    )
    return worst


def check_remote(
    url: str | None,
    pinned_key: str,
    since_file: str | os.PathLike[str] | None,
    *,
    witnesses: Sequence[str] = (),
    quorum: int | None = None,
    evidence_dir: str | os.PathLike[str] | None = None,
    client: httpx.Client | None = None,
) -> int:
    """Verify the remote log's checkpoint, its witness quorum and its consistency with
    ``since_file``, then judge any evidence in ``evidence_dir``; the exit code."""
    since = Path(since_file) if since_file else None
    try:
        try:
            verifier = parse_verifier_key(pinned_key.strip())
        except NoteError as error:
            raise _Unusable(f"--key: {error}") from None
        try:
            policy = WitnessPolicy.parse(witnesses, quorum)
        except PolicyError as error:
            raise _Unusable(str(error)) from None
        if url is None and evidence_dir is None:
            raise _Unusable("--url is required (unless --evidence DIR is given)")
    except _Unusable as error:
        print(f"registry log check: {error}", file=sys.stderr)
        return UNUSABLE
    if client is not None:
        return _check_and_review(url, verifier, policy, since, evidence_dir, client)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as own:
        return _check_and_review(url, verifier, policy, since, evidence_dir, own)


def _check_and_review(
    url: str | None,
    verifier: Verifier,
    policy: WitnessPolicy,
    since: Path | None,
    evidence_dir: str | os.PathLike[str] | None,
    client: httpx.Client,
) -> int:
    code = OK
    if url is not None:
        try:
            print(_check(url, verifier, policy, since, client))
        except _Inconsistent as error:
            print(f"registry log check: FAILED: {error}", file=sys.stderr)
            code = INCONSISTENT
        except _Unusable as error:
            print(f"registry log check: {error}", file=sys.stderr)
            code = UNUSABLE
    if evidence_dir is not None:
        reviewed = _review_evidence(Path(evidence_dir), verifier, url, client)
        # A proven lie outranks "nothing could be concluded".
        code = INCONSISTENT if INCONSISTENT in (code, reviewed) else code or reviewed
    return code
