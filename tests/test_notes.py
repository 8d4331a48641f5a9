"""Signed notes and checkpoints: the shared vectors, round trips and every malformed input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.tlog.merkle import EMPTY_ROOT
from registry.tlog.note import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    NoteSigner,
    Verifier,
    generate_signer_key,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    verifier_key_string,
)
from tests import vectors

# Fixed seeds, so failures reproduce.
SIGNER = NoteSigner("example.com/log", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER = NoteSigner("example.com/other", Ed25519PrivateKey.from_private_bytes(bytes(32)))
ROOT = bytes(range(32))


# --- Vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", vectors.signed_notes(), ids=lambda c: c["desc"][:70])
def test_signed_note_vector(case: dict[str, Any]) -> None:
    verifiers = [
        parse_verifier_key(vkey) for vkey in [*case["vkeys"], *case.get("witness_vkeys", [])]
    ]
    if not case["want_ok"]:
        with pytest.raises(NoteError):
            open_note(case["note"], verifiers)
        return
    text, signers = open_note(case["note"], verifiers)
    assert signers == case["want_verified_signers"]
    assert case["note"].startswith(text + "\n\u2014 ")
    if case["is_checkpoint"]:
        checkpoint, _ = open_checkpoint(case["note"].encode(), verifiers)
        assert checkpoint.to_text() == text
        assert checkpoint.size == int(text.split("\n")[1])


def test_vector_vkeys_round_trip() -> None:
    """Every vkey in the vectors re-encodes to itself from its parsed parts."""
    for case in vectors.signed_notes():
        for vkey in [*case["vkeys"], *case.get("witness_vkeys", [])]:
            verifier = parse_verifier_key(vkey)
            assert verifier_key_string(verifier.name, verifier.public_key, verifier.alg) == vkey


def test_cosignature_key_is_type_4() -> None:
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    verifier = parse_verifier_key(vkey)
    assert verifier.alg == ALG_COSIGNATURE_V1
    assert verifier.key_id == key_id(verifier.name, verifier.public_key, ALG_COSIGNATURE_V1)


def test_witness_cosignature_alone_is_enough_to_open() -> None:
    """A note verified only by a known witness is still verified (policy is the caller's)."""
    case = next(c for c in vectors.signed_notes() if c.get("witness_vkeys") and c["want_ok"])
    witness = [parse_verifier_key(v) for v in case["witness_vkeys"]]
    _, signers = open_note(case["note"], witness)
    assert signers == ["remora.n621.de"]


# --- Keys -----------------------------------------------------------------------------------


def test_key_id_definition() -> None:
    import hashlib

    pub = SIGNER.public_key
    want = hashlib.sha256(b"example.com/log\n\x01" + pub).digest()[:4]
    assert key_id("example.com/log", pub) == want == SIGNER.key_id


def test_generated_key_signs_checkpoint_that_verifies_with_parsed_vkey() -> None:
    skey, vkey = generate_signer_key("registry.example/log")
    signer = parse_signer_key(skey)
    verifier = parse_verifier_key(vkey)
    assert verifier.name == signer.name == "registry.example/log"
    assert signer.verifier_key() == vkey
    note = sign_note(Checkpoint("registry.example/log", 42, ROOT).to_text(), [signer])
    checkpoint, signers = open_checkpoint(note, [verifier])
    assert checkpoint == Checkpoint("registry.example/log", 42, ROOT)
    assert signers == ["registry.example/log"]


def test_generated_keys_round_trip_even_with_plus_in_base64() -> None:
    """Base64 keys often contain '+', the field separator; only the leading '+'s split."""
    seen_plus = False
    for _ in range(20):
        skey, vkey = generate_signer_key("n")
        seen_plus |= "+" in skey.split("+", 4)[4] or "+" in vkey.split("+", 2)[2]
        signer = parse_signer_key(skey)
        assert signer.verifier_key() == vkey
        assert parse_verifier_key(vkey) == signer.verifier()
    assert seen_plus


def test_signer_key_string_round_trip_and_format() -> None:
    skey = SIGNER.private_key_string()
    assert skey.startswith(f"PRIVATE+KEY+example.com/log+{SIGNER.key_id.hex()}+")
    assert base64.b64decode(skey.rsplit("+", 1)[1]) == b"\x01" + bytes(range(32))
    again = parse_signer_key(skey)
    assert again.public_key == SIGNER.public_key
    assert repr(again) == f"NoteSigner(example.com/log+{SIGNER.key_id.hex()})"


@pytest.mark.parametrize(
    "skey",
    [
        "",
        "PRIVATE+KEY+name",
        "PRIVATE+KEY+name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),  # wrong id
        "PRIVATE+KEYS+n+00000000+AA==",
        "private+KEY+n+00000000+AA==",
        "PRIVATE+KEY+n+0000000+AA==",
        "PRIVATE+KEY+n+0000000g+AA==",
        "PRIVATE+KEY+n+00000000+!!!!",
        "PRIVATE+KEY+n+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
        "PRIVATE+KEY+n+00000000+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
        "PRIVATE+KEY+bad name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
    ],
)
def test_bad_signer_keys_are_rejected_without_echoing(skey: str) -> None:
    with pytest.raises(NoteError) as excinfo:
        parse_signer_key(skey)
    key_part = skey.rsplit("+", 1)[-1]
    if len(key_part) > 8:
        assert key_part not in str(excinfo.value)


def _vkey(name: str, raw: bytes, hex_id: str | None = None) -> str:
    if hex_id is None:
        hex_id = key_id(name, raw[1:], raw[0]).hex() if raw else "00000000"
    return f"{name}+{hex_id}+{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize(
    ("vkey", "match"),
    [
        ("", "form"),
        ("name+00000000", "form"),
        ("a+b+c+d", "8 hex"),
        (_vkey("", b"\x01" + bytes(32)), "empty"),
        (_vkey("sp ace", b"\x01" + bytes(32)), "spaces"),
        (_vkey("tab\tname", b"\x01" + bytes(32)), "spaces"),
        (_vkey("nbsp\u00a0name", b"\x01" + bytes(32)), "spaces"),
        (_vkey("n", b"\x01" + bytes(32), "0000000"), "8 hex"),
        (_vkey("n", b"\x01" + bytes(32), " 0000000"), "8 hex"),
        (_vkey("n", b"\x01" + bytes(32), "+0000000"), "8 hex"),
        (_vkey("n", b"\x01" + bytes(32), "00000000"), "does not match"),
        (_vkey("n", b""), "empty"),
        (_vkey("n", b"\x02" + bytes(32)), "not supported"),
        (_vkey("n", b"\x05" + bytes(32)), "not supported"),
        (_vkey("n", b"\x01" + bytes(31)), "31 bytes"),
        (_vkey("n", b"\x01" + bytes(33)), "33 bytes"),
        ("n+00000000+not base64!", "base64"),
    ],
)
def test_bad_verifier_keys_are_rejected(vkey: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        parse_verifier_key(vkey)


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\nb", "a\u2003b"])
def test_bad_signer_names_are_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        NoteSigner(name, Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        verifier_key_string(name, bytes(32))


def test_verifier_key_string_rejects_wrong_key_length() -> None:
    with pytest.raises(NoteError, match="31 bytes"):
        verifier_key_string("n", bytes(31))


# --- Notes ----------------------------------------------------------------------------------


def test_sign_note_format() -> None:
    note = sign_note("hello\n", [SIGNER])
    body, line = note.split("\n\n")
    assert body == "hello"
    assert line.startswith("\u2014 example.com/log ")
    assert line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == SIGNER.key_id
    assert len(raw) == 4 + 64


def test_open_note_with_several_signers_and_unknown_ones() -> None:
    note = sign_note("text\n\nwith a blank line\n", [SIGNER, OTHER])
    assert open_note(note, [SIGNER.verifier()]) == (
        "text\n\nwith a blank line\n",
        ["example.com/log"],
    )
    assert open_note(note, [SIGNER.verifier(), OTHER.verifier()])[1] == [
        "example.com/log",
        "example.com/other",
    ]


def test_unknown_key_sharing_name_or_id_is_ignored() -> None:
    """Same name, different key: that signature is unknown, not invalid (spec)."""
    impostor = NoteSigner("example.com/log", Ed25519PrivateKey.generate())
    note = sign_note("text\n", [impostor, SIGNER])
    assert open_note(note, [SIGNER.verifier()])[1] == ["example.com/log"]
    with pytest.raises(NoteError, match="no valid signature"):
        open_note(sign_note("text\n", [impostor]), [SIGNER.verifier()])


def test_bad_signature_from_known_key_rejects_whole_note() -> None:
    note = sign_note("text\n", [OTHER]) + SIGNER.signature_line("different\n")
    with pytest.raises(NoteError, match="invalid"):
        open_note(note, [SIGNER.verifier(), OTHER.verifier()])


def test_repeated_signature_counts_once() -> None:
    line = SIGNER.signature_line("text\n")
    assert open_note("text\n\n" + line + line, [SIGNER.verifier()])[1] == ["example.com/log"]


def test_conflicting_verifiers_are_refused() -> None:
    real = SIGNER.verifier()
    fake = Verifier(real.name, real.key_id, real.alg, bytes(32))
    with pytest.raises(NoteError, match="two different"):
        open_note(sign_note("text\n", [SIGNER]), [real, fake])


def _sig_line(name: str = "example.com/log", raw: bytes | None = None) -> str:
    if raw is None:
        raw = SIGNER.key_id + bytes(64)
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n"


@pytest.mark.parametrize(
    ("note", "match"),
    [
        ("", "blank line"),
        ("text\n", "blank line"),
        ("text\n\n", "end with a signature"),
        ("text\n\n" + _sig_line().rstrip("\n"), "end with a signature"),
        ("text\n\n- example.com/log AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014example.com/log AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 example.com/log\n", "no signature"),
        ("text\n\n\u2014 example.com/log \n", "too short"),
        ("text\n\n\u2014 example.com/log AAAA\n", "too short"),
        ("text\n\n\u2014 example.com/log not-base64!\n", "base64"),
        ("text\n\n\u2014 a+b AAAAAAA=\n", "'\\+'"),
        ("text\n\n\u2014  AAAAAAA=\n", "empty"),
        ("te\tx\n\n" + _sig_line(), "control"),
        ("te\rx\n\n" + _sig_line(), "control"),
        ("text\n\n" + _sig_line() + "\n", "end with a signature"),
        ("text\n\n" + _sig_line() * 101, "more than 100"),
        ("text\n\n" + _sig_line("unknown.example") + "trailing\n", "em dash"),
    ],
)
def test_malformed_notes_are_rejected(note: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        open_note(note, [SIGNER.verifier()])


def test_note_size_limit() -> None:
    big = "x" * (1 << 20) + "\n"
    with pytest.raises(NoteError, match="larger"):
        open_note(big + "\n" + SIGNER.signature_line(big), [SIGNER.verifier()])


def test_invalid_utf8_and_surrogates_are_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff\n\n" + _sig_line().encode(), [SIGNER.verifier()])
    with pytest.raises(NoteError, match="Unicode"):
        open_note("\ud800\n\n" + _sig_line(), [SIGNER.verifier()])
    with pytest.raises(NoteError, match="Unicode"):
        sign_note("\ud800\n", [SIGNER])


@pytest.mark.parametrize("text", ["", "no newline", "tab\there\n"])
def test_sign_note_rejects_bad_text(text: str) -> None:
    with pytest.raises(NoteError):
        sign_note(text, [SIGNER])


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError, match="at least one"):
        sign_note("text\n", [])


def test_cosignature_wrong_length_or_huge_timestamp_is_invalid() -> None:
    verifier = parse_verifier_key(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    )
    assert not verifier.verify(b"text\n", bytes(71))
    assert not verifier.verify(b"text\n", b"\xff" * 8 + bytes(64))
    plain = SIGNER.verifier()
    assert not plain.verify(b"text\n", bytes(63))


# --- Checkpoints ----------------------------------------------------------------------------


def test_checkpoint_text() -> None:
    checkpoint = Checkpoint("example.com/log", 0, EMPTY_ROOT)
    assert checkpoint.to_text() == (
        "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    with_ext = Checkpoint("o", 7, ROOT, ("ext one", "ext two"))
    assert with_ext.to_text().endswith("\next one\next two\n")
    assert parse_checkpoint(with_ext.to_text()) == with_ext


ROOT64 = base64.b64encode(ROOT).decode()
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Same 32 bytes, but the unused low bits of the last character set: decodes, not canonical.
ROOT64_LOOSE = ROOT64[:42] + _B64[_B64.index(ROOT64[42]) | 1] + "="


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"o\n1\n{ROOT64}", "newline"),
        ("o\n1\n", "lines"),
        (f"\n1\n{ROOT64}\n", "origin"),
        (f"o\n01\n{ROOT64}\n", "leading zeros"),
        (f"o\n00\n{ROOT64}\n", "leading zeros"),
        (f"o\n-1\n{ROOT64}\n", "decimal"),
        (f"o\n+1\n{ROOT64}\n", "decimal"),
        (f"o\n 1\n{ROOT64}\n", "decimal"),
        (f"o\n1.0\n{ROOT64}\n", "decimal"),
        (f"o\n\u0661\n{ROOT64}\n", "decimal"),  # Arabic-Indic digit one
        (f"o\n\n{ROOT64}\n", "decimal"),
        (f"o\n{1 << 64}\n{ROOT64}\n", "2\\^64"),
        (f"o\n{'9' * 5000}\n{ROOT64}\n", "decimal"),
        ("o\n1\nAAAA\n", "3 bytes"),
        (f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n", "33 bytes"),
        ("o\n1\nnot base64!\n", "base64"),
        (f"o\n1\n{ROOT64_LOOSE}\n", "canonical"),
        (f"o\n1\n{ROOT64}\n\n", "extension"),
        (f"o\n1\n{ROOT64}\next\n\n", "extension"),
    ],
)
def test_malformed_checkpoints_are_rejected(text: str, match: str) -> None:
    with pytest.raises(NoteError, match=match):
        parse_checkpoint(text)


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(NoteError, match="origin"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(NoteError, match="origin"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(NoteError, match="size"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(NoteError, match="31 bytes"):
        Checkpoint("o", 1, ROOT[:31])
    with pytest.raises(NoteError, match="extension"):
        Checkpoint("o", 1, ROOT, ("",))


def test_max_uint64_size_round_trips() -> None:
    checkpoint = Checkpoint("o", (1 << 64) - 1, ROOT)
    assert parse_checkpoint(checkpoint.to_text()) == checkpoint


# --- Properties -----------------------------------------------------------------------------

note_text = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters=[chr(c) for c in range(32) if c != 10]
    ),
    max_size=200,
).map(lambda s: s + "\n")


@settings(max_examples=100, deadline=None)
@given(text=note_text)
def test_sign_open_round_trip(text: str) -> None:
    note = sign_note(text, [SIGNER, OTHER])
    assert open_note(note, [SIGNER.verifier()]) == (text, ["example.com/log"])
    assert open_note(note.encode(), [OTHER.verifier()]) == (text, ["example.com/other"])


@settings(max_examples=100, deadline=None)
@given(text=note_text, data=st.data())
def test_changing_one_byte_of_text_fails(text: str, data: st.DataObject) -> None:
    note = sign_note(text, [SIGNER]).encode()
    text_len = len(text.encode())
    position = data.draw(st.integers(0, text_len - 1))
    delta = data.draw(st.integers(1, 255))
    mutated = bytearray(note)
    mutated[position] = (mutated[position] + delta) % 256
    with pytest.raises(NoteError):
        open_note(bytes(mutated), [SIGNER.verifier()])


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(0, (1 << 64) - 1),
    root=st.binary(min_size=32, max_size=32),
    origin=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(33)]),
        min_size=1,
        max_size=40,
    ),
)
def test_checkpoint_round_trip(size: int, root: bytes, origin: str) -> None:
    checkpoint = Checkpoint(origin, size, root)
    assert parse_checkpoint(checkpoint.to_text()) == checkpoint
