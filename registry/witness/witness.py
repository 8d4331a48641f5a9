"""The witness: judge an add-checkpoint request, persist, cosign; one request at a time.

Invariants, for each log followed:
- the in-memory latest checkpoint is the one on disk (``store.py``), or the witness
  has stopped answering for that log;
- a cosignature leaves only after the checkpoint it covers is durable on disk, so a
  crash never lets a client hold a cosignature the witness forgot (and could then
  contradict by cosigning another history);
- the check against the latest checkpoint and the update of it happen under one lock,
  so two racing requests can never roll the log back (the race in tlog-witness);
- cosignature timestamps never go backwards for a log, even if the clock does: a
  cosignature says "as of this time, this is the largest tree I saw".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from registry.tlog.note import Checkpoint, NoteError, Verifier, open_note, parse_checkpoint
from registry.witness.cosignature import (
    CosignatureSigner,
    cosignature_timestamp,
    signature_line_key,
    signature_line_payload,
    split_signed_note,
)
from registry.witness.evidence import Evidence, format_evidence
from registry.witness.protocol import (
    Conflict,
    Inconsistent,
    Refused,
    check_extends,
    open_submitted,
    parse_request,
)
from registry.witness.store import StateDir, origin_hash

LOGGER = logging.getLogger("registry.witness")


class WitnessStartError(Exception):
    """The witness cannot start on this state; the message says what to do."""


@dataclass(frozen=True)
class Answer:
    """What to send back: an HTTP status, a text body and its content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class _Latest:
    checkpoint: Checkpoint
    note: str
    timestamp: int


def _event(level: int, event: str, **fields: object) -> None:
    LOGGER.log(level, event, extra={"fields": fields})


class Witness:
    """Cosigns checkpoints of the logs in ``logs`` (origin -> trusted log keys)."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[Verifier]],
        state: StateDir,
        *,
        clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        for origin, verifiers in logs.items():
            for verifier in verifiers:
                if verifier.public_key == signer.public_key:
                    # The same Ed25519 key as log key and cosigner would let either
                    # statement stand in for the other.
                    raise WitnessStartError(
                        f"the witness key is also a key of log {origin!r}: "
                        "use a key of its own (`registry witness keygen`)"
                    )
        self.signer = signer
        self._logs = {origin: tuple(verifiers) for origin, verifiers in logs.items()}
        self._state = state
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, _Latest] = {}
        # Logs whose state could not be read back after a failed write: not cosigned
        # until a restart has checked the file again.
        self._stopped: set[str] = set()
        for origin in self._logs:
            latest = self._load(origin)
            if latest is not None:
                self._latest[origin] = latest

    def _load(self, origin: str) -> _Latest | None:
        """The stored checkpoint of ``origin``, checked whole and signed, or None if none."""
        path = self._state.latest_path(origin)
        try:
            note = self._state.load_latest(origin)
        except (OSError, UnicodeDecodeError) as error:
            raise WitnessStartError(f"couldn't read {path}: {error}") from None
        if note is None:
            return None
        try:
            # Our own cosignature, or a key of the log's, vouches that the file is whole.
            text, _ = open_note(note, [self.signer.verifier(), *self._logs[origin]])
            checkpoint = parse_checkpoint(text)
        except NoteError as error:
            raise WitnessStartError(
                f"{path} is not a verified checkpoint of {origin!r}: {error}. Restore it from "
                "a backup; deleting it would make the witness forget what it cosigned"
            ) from None
        if checkpoint.origin != origin:
            raise WitnessStartError(f"{path} holds a checkpoint of {checkpoint.origin!r}")
        return _Latest(checkpoint, note, self._own_timestamp(note))

    def _own_timestamp(self, note: str) -> int:
        _, lines = split_signed_note(note)
        for line in lines:
            if signature_line_key(line) == (self.signer.name, self.signer.key_id):
                return cosignature_timestamp(signature_line_payload(line))
        return 0

    def latest_note(self, hashed_origin: str) -> str | None:
        """The note last cosigned for the log whose origin hashes to ``hashed_origin``."""
        with self._lock:
            for origin, latest in self._latest.items():
                if origin_hash(origin) == hashed_origin:
                    return latest.note
        return None

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one add-checkpoint request body as c2sp.org/tlog-witness says."""
        try:
            request = parse_request(body)
            checkpoint, text = open_submitted(request.note, self._logs)
        except Refused as refusal:
            _event(logging.INFO, "checkpoint_refused", status=refusal.status,
                   reason=refusal.message)
            return Answer(refusal.status, refusal.message + "\n")
        origin = checkpoint.origin
        with self._lock:
            if origin in self._stopped:
                return Answer(500, f"the witness's state of {origin!r} is unreadable: it does "
                              "not cosign for this log until it is restarted\n")
            latest = self._latest.get(origin)
            try:
                check_extends(
                    request.old_size,
                    request.proof,
                    checkpoint,
                    latest.checkpoint if latest is not None else None,
                )
            except Conflict as conflict:
                _event(logging.INFO, "checkpoint_conflict", origin=origin,
                       old=request.old_size, known=conflict.known_size)
                return Answer(409, f"{conflict.known_size}\n", "text/x.tlog.size")
            except Inconsistent as refusal:
                if refusal.fork and latest is not None:
                    self._keep_evidence(origin, refusal.message, request.old_size,
                                        request.proof, latest.note, request.note)
                _event(logging.WARNING, "checkpoint_refused", origin=origin, status=422,
                       size=checkpoint.size, reason=refusal.message)
                return Answer(422, refusal.message + "\n")
            except Refused as refusal:
                _event(logging.INFO, "checkpoint_refused", origin=origin,
                       status=refusal.status, reason=refusal.message)
                return Answer(refusal.status, refusal.message + "\n")
            timestamp = max(self._clock(), latest.timestamp if latest is not None else 1, 1)
            cosignature = self.signer.cosign(text, timestamp)
            note = text + "\n" + "".join(self._log_signatures(origin, request.note))
            note += cosignature
            try:
                self._state.save_latest(origin, note)
            except OSError as error:
                return self._failed_to_save(origin, error)
            self._latest[origin] = _Latest(checkpoint, note, timestamp)
        _event(logging.INFO, "checkpoint_cosigned", origin=origin, size=checkpoint.size,
               old=request.old_size, timestamp=timestamp)
        return Answer(200, cosignature)

    def _log_signatures(self, origin: str, submitted: bytes) -> list[str]:
        """The submitted note's signature lines by the log's keys: the ones ``open_note``
        verified (the first per key), without anyone else's."""
        _, lines = split_signed_note(submitted.decode("utf-8"))
        wanted = {(v.name, v.key_id) for v in self._logs[origin]}
        kept: list[str] = []
        for line in lines:
            key = signature_line_key(line)
            if key in wanted:
                wanted.discard(key)
                kept.append(line + "\n")
        return kept

    def _failed_to_save(self, origin: str, error: OSError) -> Answer:
        # The write may have landed or not: read back what the disk holds, so memory and
        # disk agree again. No cosignature was given either way.
        _event(logging.ERROR, "state_write_failed", origin=origin, error=str(error))
        try:
            latest = self._load(origin)
        except WitnessStartError as reload_error:
            # Neither old nor new is readable: stop cosigning for this log until restarted.
            self._stopped.add(origin)
            _event(logging.CRITICAL, "state_unreadable", origin=origin, error=str(reload_error))
        else:
            if latest is None:
                self._latest.pop(origin, None)
            else:
                self._latest[origin] = latest
        return Answer(500, f"couldn't store the checkpoint, so it was not cosigned: {error}\n")

    def _keep_evidence(
        self, origin: str, reason: str, old_size: int, proof: Sequence[bytes],
        stored: str, offered: bytes,
    ) -> None:
        now = self._clock()
        evidence = Evidence(origin, reason, now, old_size, tuple(proof), stored,
                            offered.decode("utf-8"))
        try:
            size = parse_checkpoint(split_signed_note(evidence.offered_note)[0]).size
            path = self._state.keep_evidence(format_evidence(evidence), now, size)
        except (OSError, NoteError) as error:
            _event(logging.CRITICAL, "fork_evidence_not_kept", origin=origin, reason=reason,
                   error=str(error))
            return
        _event(logging.ERROR, "fork_evidence_kept", origin=origin, reason=reason,
               path=str(path))
