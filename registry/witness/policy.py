"""For clients: which pinned witnesses cosigned a checkpoint, and is that a quorum. Pure.

A checkpoint signed by the log alone may be a view shown only to you. Cosigned by
K witnesses, it is the view those K witnesses also saw, and each of them refuses to
cosign any other history. The policy is a set of cosigner keys (type 0x04) and K.

As in c2sp.org/signed-note, the first signature line matching a witness's name and
key ID is the one checked; an invalid one is reported (it should reject the note).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registry.tlog.note import NoteError, Verifier
from registry.witness.cosignature import (
    cosignature_timestamp,
    parse_witness_key,
    signature_line_key,
    signature_line_payload,
    split_signed_note,
)


class PolicyError(ValueError):
    """The witness policy itself is wrong (a bad key, an impossible quorum)."""


@dataclass(frozen=True)
class WitnessPolicy:
    """Pinned witnesses and how many of them must cosign (default: all)."""

    witnesses: tuple[Verifier, ...]
    quorum: int

    @classmethod
    def parse(cls, vkeys: Sequence[str], quorum: int | None) -> WitnessPolicy:
        witnesses: list[Verifier] = []
        for vkey in vkeys:
            try:
                verifier = parse_witness_key(vkey)
            except NoteError as error:
                raise PolicyError(f"--witness: {error}") from None
            if any(w.name == verifier.name for w in witnesses):
                raise PolicyError(f"--witness {verifier.name} is given twice")
            witnesses.append(verifier)
        if quorum is None:
            quorum = len(witnesses)
        elif not witnesses:
            raise PolicyError("--quorum needs the witnesses it counts (--witness VKEY)")
        elif not 1 <= quorum <= len(witnesses):
            raise PolicyError(
                f"--quorum {quorum} must be between 1 and the {len(witnesses)} witnesses given"
            )
        return cls(tuple(witnesses), quorum)


@dataclass(frozen=True)
class Cosigned:
    """Who cosigned: (name, timestamp) of valid cosignatures, names missing and invalid."""

    signed: tuple[tuple[str, int], ...]
    missing: tuple[str, ...]
    invalid: tuple[str, ...]
    quorum: int

    @property
    def met(self) -> bool:
        return len(self.signed) >= self.quorum and not self.invalid


def check_cosignatures(note: str, policy: WitnessPolicy) -> Cosigned:
    """Check every pinned witness's cosignature on ``note`` (already opened by the log key)."""
    text, lines = split_signed_note(note)
    text_bytes = text.encode()
    first: dict[tuple[str, bytes], str] = {}
    for line in lines:
        key = signature_line_key(line)
        if key is not None:
            first.setdefault(key, line)
    signed: list[tuple[str, int]] = []
    missing: list[str] = []
    invalid: list[str] = []
    for witness in policy.witnesses:
        found = first.get((witness.name, witness.key_id))
        if found is None:
            missing.append(witness.name)
            continue
        payload = signature_line_payload(found)
        if witness.verify(text_bytes, payload[4:]):
            signed.append((witness.name, cosignature_timestamp(payload)))
        else:
            invalid.append(witness.name)
    return Cosigned(tuple(signed), tuple(missing), tuple(invalid), policy.quorum)
