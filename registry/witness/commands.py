"""``registry witness keygen`` and ``registry witness serve``: options in, exit code out.

Exit codes: 0 done (serve: stopped by SIGTERM or SIGINT); 2 the witness could not
start (usage, key, state directory or address), with the reason on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from registry.tlog.note import ALG_ED25519, NoteError, Verifier, parse_verifier_key
from registry.witness.cosignature import generate_cosigner
from registry.witness.keyfile import KeyFileError, read_key, readable_by_others, write_new_key
from registry.witness.server import make_server
from registry.witness.store import StateDir, StateError
from registry.witness.witness import LOGGER, Witness, WitnessStartError

OK, UNUSABLE = 0, 2


class _JsonLines(logging.Formatter):
    """One JSON object a line: time, level, the event's constant name, its fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _fail(message: str) -> int:
    print(f"registry witness: {message}", file=sys.stderr)
    return UNUSABLE


def keygen(name: str, out: Path) -> int:
    """Create the key file ``out`` (0600, never overwritten); print the verifier key."""
    try:
        signer = generate_cosigner(name)
        write_new_key(out, signer)
    except (NoteError, KeyFileError) as error:
        return _fail(str(error))
    print(signer.verifier_key)
    return OK


def log_verifiers(log_keys: Sequence[str], log_origin: str | None) -> dict[str, list[Verifier]]:
    """Origin -> trusted keys. With ``log_origin``, every key is a key of that one log
    (several during a key rotation); without it, each key's name is its log's origin."""
    logs: dict[str, list[Verifier]] = {}
    for vkey in log_keys:
        verifier = parse_verifier_key(vkey.strip())
        if verifier.alg != ALG_ED25519:
            raise NoteError(
                f"--log-key {verifier.name}: type 0x{verifier.alg:02x} is not a log key "
                "(want 0x01, Ed25519)"
            )
        logs.setdefault(log_origin or verifier.name, []).append(verifier)
    return logs


def serve(
    key_file: Path,
    log_keys: Sequence[str],
    log_origin: str | None,
    state_dir: Path,
    host: str,
    port: int,
) -> int:
    """Run the witness until SIGTERM or SIGINT."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
    try:
        return _serve(key_file, log_keys, log_origin, state_dir, host, port)
    finally:
        LOGGER.removeHandler(handler)


def _serve(
    key_file: Path,
    log_keys: Sequence[str],
    log_origin: str | None,
    state_dir: Path,
    host: str,
    port: int,
) -> int:
    try:
        signer = read_key(key_file)
        logs = log_verifiers(log_keys, log_origin)
    except (KeyFileError, NoteError) as error:
        return _fail(str(error))
    if readable_by_others(key_file):
        LOGGER.warning("key_file_readable_by_others", extra={"fields": {
            "path": str(key_file), "fix": f"chmod 600 {key_file}"}})
    try:
        state = StateDir.open(state_dir)
    except StateError as error:
        return _fail(str(error))
    try:
        try:
            witness = Witness(signer, logs, state)
            server = make_server(witness, host, port)
        except WitnessStartError as error:
            return _fail(str(error))
        except OSError as error:
            return _fail(f"couldn't listen on {host}:{port}: {error}")
        bound_port = server.server_port

        def stop(signum: int, _frame: FrameType | None) -> None:
            # shutdown() waits for serve_forever() to return: never call it on its thread.
            LOGGER.info("witness_stopping", extra={"fields": {"signal": signum}})
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        LOGGER.info("witness_started", extra={"fields": {
            "verifier_key": signer.verifier_key, "logs": sorted(logs),
            "state": str(state_dir), "address": f"{host}:{bound_port}"}})
        print(f"witness {signer.verifier_key} listening on http://{host}:{bound_port}",
              flush=True)
        with server:
            server.serve_forever()
        LOGGER.info("witness_stopped", extra={"fields": {}})
        return OK
    finally:
        state.close()
