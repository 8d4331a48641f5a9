"""cosignature/v1 (c2sp.org/tlog-cosignature): a real witness's cosignature, the spec's own
example, a fixed signing vector checked byte by byte, the key strings, and the client's
quorum check."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.tlog.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteSigner,
    cosignature_message,
    open_note,
    parse_verifier_key,
    sign_note,
)
from registry.witness.cosignature import (
    CosignatureSigner,
    cosignature_timestamp,
    generate_cosigner,
    parse_cosigner_key,
)
from registry.witness.policy import PolicyError, WitnessPolicy, check_cosignatures
from tests import vectors

# RFC 8032 §7.1 TEST 1's secret key, and the checkpoint of the tlog-cosignature example.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
SPEC_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_TIME = 1679315147
NAME = "witness.example/w1"
SIGNER = CosignatureSigner(NAME, Ed25519PrivateKey.from_private_bytes(RFC8032_SEED))
# Computed once with this module and checked byte by byte below (Ed25519 is deterministic).
FIXED_LINE = (
    "\u2014 witness.example/w1 63YswgAAAABkGFDL+TPmh4BYuAjsYRoqMJCWb/gWJaeRF/kmm5tlCr9sJ57DLErur7"
    "K0yDXc2ArN+TIuotuB/HbuL3AJsp3bv/aNCQ==\n"
)
FIXED_VKEY = "witness.example/w1+eb762cc2+BNdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"
REMORA = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


def real_cosigned_checkpoint(want_ok: bool = True) -> dict[str, Any]:
    return next(
        case for case in vectors.signed_notes()
        if REMORA in case.get("witness_vkeys", []) and case["want_ok"] is want_ok
        and "arche2025h1" in case["note"] and "1432088532" in case["note"]
    )


# ---- against independent material ---------------------------------------------------------


def test_a_real_witness_cosignature_verifies_through_the_quorum_check() -> None:
    """remora.n621.de's cosignature on a real static-CT checkpoint (tests/vectors): the
    message and payload layout we verify with is the one a deployed witness signs."""
    case = real_cosigned_checkpoint()
    policy = WitnessPolicy.parse([REMORA], None)
    cosigned = check_cosignatures(case["note"], policy)
    assert cosigned.met
    assert cosigned.signed == (("remora.n621.de", 1779573024),)


def test_the_altered_timestamp_vector_fails() -> None:
    """The same cosignature with one bit of its timestamp changed no longer verifies."""
    case = next(c for c in vectors.signed_notes()
                if REMORA in c.get("witness_vkeys", []) and not c["want_ok"]
                and "timestamp" in c["desc"])
    cosigned = check_cosignatures(case["note"], WitnessPolicy.parse([REMORA], None))
    assert cosigned.invalid == ("remora.n621.de",)
    assert not cosigned.met


def test_the_spec_examples_payload_layout() -> None:
    """tlog-cosignature's example line: key ID, then the big-endian time of its example
    message (1679315147), then 64 bytes of signature."""
    payload = base64.b64decode(
        "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
        "mbIUBkBIfZ+qnA=="
    )
    assert len(payload) == 4 + 8 + 64
    assert cosignature_timestamp(payload) == SPEC_TIME
    # transparency-dev/formats note_cosigv1_test.go: this signature's time is 1727964367.
    other = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFi"
        "EBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(other) == 1727964367


def test_fixed_vector_byte_by_byte() -> None:
    """The signed message is the spec's example message; the payload is key ID ‖ u64 time ‖
    Ed25519 signature; the key ID is SHA-256(name ‖ \\n ‖ 0x04 ‖ public key)[:4]."""
    line = SIGNER.cosign(SPEC_TEXT, SPEC_TIME)
    assert line == FIXED_LINE
    assert SIGNER.public_key == RFC8032_PUBLIC
    name, payload64 = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    assert name == NAME
    payload = base64.b64decode(payload64)
    want_id = hashlib.sha256(NAME.encode() + b"\n\x04" + RFC8032_PUBLIC).digest()[:4]
    assert payload[:4] == want_id == bytes.fromhex("eb762cc2")
    assert payload[4:12] == bytes.fromhex("000000006418 50cb".replace(" ", ""))
    message = (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert cosignature_message(SPEC_TIME, SPEC_TEXT.encode()) == message
    Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(payload[12:], message)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(payload[12:], message[15:])


def test_fixed_key_strings() -> None:
    """vkey: name+hex(key ID)+base64(0x04 ‖ key); skey: PRIVATE+KEY+…+base64(0x04 ‖ seed)."""
    assert SIGNER.verifier_key == FIXED_VKEY
    raw = base64.b64decode(FIXED_VKEY.split("+", 2)[2])
    assert raw == b"\x04" + RFC8032_PUBLIC
    assert parse_verifier_key(FIXED_VKEY) == SIGNER.verifier()
    assert SIGNER.private_key_string() == (
        "PRIVATE+KEY+witness.example/w1+eb762cc2+" + base64.b64encode(b"\x04" + RFC8032_SEED).decode()
    )


# ---- signer and keys ---------------------------------------------------------------------


def test_round_trip_through_open_note() -> None:
    """A cosigned note opens with the witness's vkey, alone or beside the log's."""
    log = NoteSigner("example.com/behind-the-sofa", Ed25519PrivateKey.generate())
    witness = generate_cosigner("bureau.example/w")
    note = sign_note(SPEC_TEXT, [log]) + witness.cosign(SPEC_TEXT, 1_700_000_000)
    vkey = parse_verifier_key(witness.verifier_key)
    assert vkey.alg == ALG_COSIGNATURE_V1
    assert open_note(note, [vkey])[1] == ["bureau.example/w"]
    assert sorted(open_note(note, [vkey, log.verifier()])[1]) == sorted(
        ["bureau.example/w", "example.com/behind-the-sofa"]
    )


def test_a_cosignature_and_a_note_signature_never_stand_in_for_each_other() -> None:
    """Same Ed25519 key, other type byte: other key ID, other message."""
    key = Ed25519PrivateKey.generate()
    as_log, as_witness = NoteSigner("k", key), CosignatureSigner("k", key)
    assert as_log.key_id != as_witness.key_id
    cosigned = sign_note(SPEC_TEXT, [as_log]).replace(
        as_log.signature_line(SPEC_TEXT), as_witness.cosign(SPEC_TEXT, 5)
    )
    with pytest.raises(NoteError):
        open_note(cosigned, [as_log.verifier()])
    # The cosignature's bytes under the log key's ID: invalid, the whole note refused.
    payload = base64.b64decode(as_witness.cosign(SPEC_TEXT, 5).split(" ")[-1])
    forged = SPEC_TEXT + "\n\u2014 k " + base64.b64encode(as_log.key_id + payload[4:]).decode()
    with pytest.raises(NoteError, match="invalid"):
        open_note(forged + "\n", [as_log.verifier()])


@pytest.mark.parametrize("timestamp", [0, -1, 1 << 63])
def test_timestamps_out_of_range_are_refused(timestamp: int) -> None:
    """0 means "no statement about time", which the witness protocol forbids."""
    with pytest.raises(NoteError, match="timestamp"):
        SIGNER.cosign(SPEC_TEXT, timestamp)


def test_largest_timestamp_is_fine() -> None:
    line = SIGNER.cosign(SPEC_TEXT, (1 << 63) - 1)
    assert open_note(SPEC_TEXT + "\n" + line, [SIGNER.verifier()])


def test_private_key_string_round_trips_and_repr_hides_it() -> None:
    signer = generate_cosigner("bureau.example/w")
    again = parse_cosigner_key(signer.private_key_string() + "\n")
    assert again.verifier_key == signer.verifier_key
    # The key material is everything after the fourth "+": base64 may itself hold a "+",
    # so splitting on every "+" could leave an empty (trivially contained) last piece.
    key_material = signer.private_key_string().split("+", 4)[4]
    assert len(key_material) == 44
    assert key_material not in repr(signer)
    assert repr(signer) == f"CosignatureSigner(bureau.example/w+{signer.key_id.hex()})"


def _skey(alg: int = 4, seed: bytes = RFC8032_SEED, kid: str = "eb762cc2",
          name: str = NAME) -> str:
    return f"PRIVATE+KEY+{name}+{kid}+" + base64.b64encode(bytes([alg]) + seed).decode()


@pytest.mark.parametrize(
    ("skey", "match"),
    [
        ("", "must have the form"),
        ("PRIVATE+KEY+only+three", "must have the form"),
        ("PUBLIC+KEY+a+eb762cc2+AAAA", "must have the form"),
        (_skey(kid="eb76"), "8 hex digits"),
        (_skey(kid="zzzzzzzz"), "8 hex digits"),
        (_skey(kid="00000000"), "does not match"),
        (_skey(alg=1), "type 0x04"),
        (_skey(seed=RFC8032_SEED[:31]), "32-byte"),
        (_skey(seed=RFC8032_SEED + b"\x00"), "32-byte"),
        (_skey()[:-3] + "!!!", "base64"),
        (_skey(name="has space"), "spaces"),
        (_skey(name=""), "empty"),
    ],
)
def test_bad_cosigner_keys_are_refused_without_echoing_the_seed(skey: str, match: str) -> None:
    with pytest.raises(NoteError, match=match) as raised:
        parse_cosigner_key(skey)
    assert base64.b64encode(b"\x04" + RFC8032_SEED).decode() not in str(raised.value)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there"])
def test_bad_cosigner_names_are_refused(name: str) -> None:
    with pytest.raises(NoteError):
        generate_cosigner(name)


@pytest.mark.parametrize("length", [0, 75, 77])
def test_cosignature_payload_of_wrong_length(length: int) -> None:
    with pytest.raises(NoteError, match="76 bytes"):
        cosignature_timestamp(bytes(length))


# ---- the client's policy -----------------------------------------------------------------


WITNESSES = [generate_cosigner(f"bureau{i}.example/w") for i in range(3)]
LOG = NoteSigner("example.com/behind-the-sofa", Ed25519PrivateKey.generate())


def cosigned_by(*signers: CosignatureSigner) -> str:
    return sign_note(SPEC_TEXT, [LOG]) + "".join(s.cosign(SPEC_TEXT, 100 + i)
                                                 for i, s in enumerate(signers))


def test_quorum_counts_valid_cosignatures_of_pinned_witnesses() -> None:
    policy = WitnessPolicy.parse([w.verifier_key for w in WITNESSES], 2)
    two = check_cosignatures(cosigned_by(WITNESSES[0], WITNESSES[2]), policy)
    assert two.met
    assert two.signed == ((WITNESSES[0].name, 100), (WITNESSES[2].name, 101))
    assert two.missing == (WITNESSES[1].name,)
    one = check_cosignatures(cosigned_by(WITNESSES[1]), policy)
    assert not one.met and len(one.signed) == 1
    # A witness that is not pinned counts for nothing.
    stranger = generate_cosigner("stranger.example/w")
    assert not check_cosignatures(cosigned_by(WITNESSES[1], stranger), policy).met
    # Repeated lines by one witness count once.
    note = cosigned_by(WITNESSES[1]) + WITNESSES[1].cosign(SPEC_TEXT, 7)
    assert len(check_cosignatures(note, policy).signed) == 1


def test_an_invalid_cosignature_by_a_pinned_witness_fails_the_policy() -> None:
    policy = WitnessPolicy.parse([w.verifier_key for w in WITNESSES], 1)
    other_text = SPEC_TEXT.replace("20852163", "20852164")
    note = cosigned_by(WITNESSES[0]) + WITNESSES[1].cosign(other_text, 5)
    cosigned = check_cosignatures(note, policy)
    assert cosigned.invalid == (WITNESSES[1].name,)
    assert len(cosigned.signed) == 1
    assert not cosigned.met


def test_default_quorum_is_every_witness() -> None:
    policy = WitnessPolicy.parse([w.verifier_key for w in WITNESSES], None)
    assert policy.quorum == 3
    assert WitnessPolicy.parse([], None) == WitnessPolicy((), 0)


@pytest.mark.parametrize(
    ("vkeys", "quorum", "match"),
    [
        ([WITNESSES[0].verifier_key], 0, "between 1 and the 1"),
        ([WITNESSES[0].verifier_key], 2, "between 1 and the 1"),
        ([], 1, "needs the witnesses"),
        (["not a key"], None, "--witness"),
        ([LOG.verifier_key()], None, "type 0x01 signs notes"),
        ([WITNESSES[0].verifier_key, WITNESSES[0].verifier_key], None, "twice"),
    ],
)
def test_impossible_policies_are_refused(
    vkeys: list[str], quorum: int | None, match: str
) -> None:
    with pytest.raises(PolicyError, match=match):
        WitnessPolicy.parse(vkeys, quorum)
