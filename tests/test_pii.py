"""Document numbers at rest: AES-256-GCM blobs and HMAC lookup hashes."""

from __future__ import annotations

import hashlib
import hmac
import pickle

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import InvalidInput
from registry.identifiers import DocumentType
from registry.pii import KEY_SIZE, PiiCipher, PiiDecryptError, generate_master_key

ENC_KEY = bytes(range(32))
INDEX_KEY = bytes(range(32, 64))
NUMBER = "11010519491231002X"

# Pinned outputs for the all-zero master key. They fix the storage format: if
# one changes, every stored blob or index entry becomes unreadable or unfindable.
ZERO_MASTER_LOOKUP_HASH = "875981f0a497e057e37924574580bf3c1239d90899d8bd7c726a8f57f82728f4"
ZERO_MASTER_BLOB = (
    "01000102030405060708090a0b41dfe0cb7d360b70a277cdc2e444c952099e947eb5aa94dcc728ab1d68e8f5c8088a"
)


@pytest.fixture(scope="module")
def cipher() -> PiiCipher:
    return PiiCipher(ENC_KEY, INDEX_KEY)


# --- keys -------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_encryption_key_of_wrong_length_is_refused(length: int) -> None:
    """The message names the key and the length found."""
    with pytest.raises(ValueError, match=rf"enc_key must be 32 bytes long, got {length}"):
        PiiCipher(bytes(length), INDEX_KEY)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_index_key_of_wrong_length_is_refused(length: int) -> None:
    """The message names the key and the length found."""
    with pytest.raises(ValueError, match=rf"index_key must be 32 bytes long, got {length}"):
        PiiCipher(ENC_KEY, bytes(length))


@pytest.mark.parametrize("key", ["0" * 32, bytearray(32), None, 32])
def test_key_that_is_not_bytes_is_refused(key: object) -> None:
    """Text, mutable buffers and other objects are not keys."""
    with pytest.raises(TypeError, match="enc_key must be bytes"):
        PiiCipher(key, INDEX_KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="index_key must be bytes"):
        PiiCipher(ENC_KEY, key)  # type: ignore[arg-type]


def test_the_same_key_for_both_purposes_is_refused() -> None:
    """Encryption and index keys must be separate."""
    with pytest.raises(ValueError, match="different"):
        PiiCipher(ENC_KEY, ENC_KEY)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_master_key_of_wrong_length_is_refused(length: int) -> None:
    """The master key is exactly 32 bytes."""
    with pytest.raises(ValueError, match=rf"master key must be 32 bytes long, got {length}"):
        PiiCipher.from_master_key(bytes(length))


def test_generate_master_key_is_32_random_bytes() -> None:
    """Fresh keys have the right size and differ."""
    keys = {generate_master_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(isinstance(k, bytes) and len(k) == KEY_SIZE for k in keys)
    assert len(PiiCipher.generate_master_key()) == KEY_SIZE


def test_same_master_key_gives_interchangeable_ciphers() -> None:
    """Two processes with the same master key read each other's blobs and hashes."""
    master = generate_master_key()
    one, two = PiiCipher.from_master_key(master), PiiCipher.from_master_key(master)
    assert two.decrypt("resident_id", one.encrypt("resident_id", NUMBER)) == NUMBER
    assert one.lookup_hash("resident_id", NUMBER) == two.lookup_hash("resident_id", NUMBER)


def test_different_master_keys_do_not_mix() -> None:
    """Another master key neither decrypts nor finds."""
    one = PiiCipher.from_master_key(generate_master_key())
    two = PiiCipher.from_master_key(generate_master_key())
    with pytest.raises(PiiDecryptError):
        two.decrypt("resident_id", one.encrypt("resident_id", NUMBER))
    assert one.lookup_hash("resident_id", NUMBER) != two.lookup_hash("resident_id", NUMBER)


def test_pinned_lookup_hash_for_zero_master_key() -> None:
    """Key derivation and index encoding match the pinned value and the documented recipe."""
    cipher = PiiCipher.from_master_key(bytes(32))
    digest = cipher.lookup_hash("resident_id", NUMBER)
    assert digest.hex() == ZERO_MASTER_LOOKUP_HASH

    # The recipe, written out independently of the module.
    index_key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"xining-vc-registry/pii/hkdf-salt/v1",
        info=b"xining-vc-registry/pii/index-key/v1",
    ).derive(bytes(32))
    message = (
        b"xining-vc-registry/pii/lookup-hash/v1"
        + len(b"resident_id").to_bytes(4, "big")
        + b"resident_id"
        + len(NUMBER).to_bytes(4, "big")
        + NUMBER.encode()
    )
    assert hmac.new(index_key, message, hashlib.sha256).digest() == digest


def test_pinned_blob_for_zero_master_key_decrypts() -> None:
    """A blob written by this version stays readable."""
    cipher = PiiCipher.from_master_key(bytes(32))
    assert cipher.decrypt("resident_id", bytes.fromhex(ZERO_MASTER_BLOB)) == NUMBER


# --- no key material leaks --------------------------------------------------------


def test_repr_shows_no_key_material(cipher: PiiCipher) -> None:
    """repr and str show neither key in any common encoding."""
    for text in (repr(cipher), str(cipher), f"{cipher!r}"):
        for key in (ENC_KEY, INDEX_KEY):
            assert key.hex() not in text
            assert repr(key) not in text
            assert key[:8].hex() not in text


def test_cipher_cannot_be_pickled(cipher: PiiCipher) -> None:
    """Pickling would copy the keys out of the process."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cipher)


def test_cipher_has_no_instance_dict(cipher: PiiCipher) -> None:
    """Keys are not reachable through vars() (slots only)."""
    assert not hasattr(cipher, "__dict__")


# --- encryption -------------------------------------------------------------------


def test_blob_layout(cipher: PiiCipher) -> None:
    """version 0x01 ‖ 12-byte nonce ‖ ciphertext (same length as the UTF-8) ‖ 16-byte tag."""
    blob = cipher.encrypt("resident_id", NUMBER)
    assert blob[0] == 0x01
    assert len(blob) == 1 + 12 + len(NUMBER.encode()) + 16
    assert NUMBER.encode() not in blob


@given(st.sampled_from(list(DocumentType)), st.text(max_size=80))
def test_round_trip(doc_type: DocumentType, number: str) -> None:
    """Any text encrypted for a type decrypts for that type."""
    cipher = PiiCipher(ENC_KEY, INDEX_KEY)
    assert cipher.decrypt(doc_type, cipher.encrypt(doc_type, number)) == number


def test_type_given_as_enum_or_string_is_the_same(cipher: PiiCipher) -> None:
    """The canonical type value is bound, however it is spelt."""
    blob = cipher.encrypt(DocumentType.PASSPORT, "E12345678")
    assert cipher.decrypt(" Passport ", blob) == "E12345678"


def test_encryptions_of_the_same_value_differ(cipher: PiiCipher) -> None:
    """A random nonce per encryption: equal numbers are not visible as equal blobs."""
    blobs = {cipher.encrypt("resident_id", NUMBER) for _ in range(20)}
    assert len(blobs) == 20
    assert len({blob[1:13] for blob in blobs}) == 20


@given(st.data())
def test_tampering_with_any_byte_is_detected(data: st.DataObject) -> None:
    """Flipping any bits of any byte makes decryption fail."""
    cipher = PiiCipher(ENC_KEY, INDEX_KEY)
    blob = bytearray(cipher.encrypt("resident_id", NUMBER))
    index = data.draw(st.integers(0, len(blob) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="flip")
    blob[index] ^= flip
    with pytest.raises(PiiDecryptError):
        cipher.decrypt("resident_id", bytes(blob))


@given(st.data())
def test_truncated_or_extended_blob_is_detected(data: st.DataObject) -> None:
    """Cutting bytes off or appending bytes makes decryption fail."""
    cipher = PiiCipher(ENC_KEY, INDEX_KEY)
    blob = cipher.encrypt("resident_id", NUMBER)
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    with pytest.raises(PiiDecryptError):
        cipher.decrypt("resident_id", blob[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=16), label="extra")
    with pytest.raises(PiiDecryptError):
        cipher.decrypt("resident_id", blob + extra)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "too short"),
        (b"\x01" + bytes(27), "too short"),
        (b"\x02" + bytes(40), "unknown format version 2"),
        (b"\x00" + bytes(40), "unknown format version 0"),
        (b"\x01" + bytes(40), "authentication failed"),
    ],
)
def test_malformed_blobs_are_refused(cipher: PiiCipher, blob: bytes, message: str) -> None:
    """Each malformed blob gets its own reason."""
    with pytest.raises(PiiDecryptError, match=message):
        cipher.decrypt("resident_id", blob)


def test_blob_that_is_not_bytes_is_refused(cipher: PiiCipher) -> None:
    """A str (say, a hex column read by mistake) is refused, not decoded."""
    with pytest.raises(PiiDecryptError, match="not bytes"):
        cipher.decrypt("resident_id", "01abcdef")  # type: ignore[arg-type]


def test_blob_from_a_database_buffer_is_accepted(cipher: PiiCipher) -> None:
    """bytearray and memoryview (as some drivers return) decrypt like bytes."""
    blob = cipher.encrypt("resident_id", NUMBER)
    assert cipher.decrypt("resident_id", bytearray(blob)) == NUMBER
    assert cipher.decrypt("resident_id", memoryview(blob)) == NUMBER


@pytest.mark.parametrize("other", [t for t in DocumentType if t is not DocumentType.RESIDENT_ID])
def test_blob_moved_to_another_type_does_not_decrypt(cipher: PiiCipher, other: str) -> None:
    """The document type is bound as associated data."""
    blob = cipher.encrypt("resident_id", NUMBER)
    with pytest.raises(PiiDecryptError, match="wrong document type"):
        cipher.decrypt(other, blob)


def test_decrypt_error_does_not_contain_the_blob(cipher: PiiCipher) -> None:
    """Error messages carry no ciphertext or key."""
    blob = bytearray(cipher.encrypt("resident_id", NUMBER))
    blob[-1] ^= 1
    with pytest.raises(PiiDecryptError) as info:
        cipher.decrypt("resident_id", bytes(blob))
    text = str(info.value)
    assert blob.hex()[:16] not in text
    assert ENC_KEY.hex()[:16] not in text
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("method", ["encrypt", "decrypt", "lookup_hash"])
def test_unknown_document_type_is_invalid_input(cipher: PiiCipher, method: str) -> None:
    """Each entry point names document_type and lists the accepted types."""
    argument: object = b"\x01" + bytes(40) if method == "decrypt" else NUMBER
    with pytest.raises(InvalidInput) as info:
        getattr(cipher, method)("id_card", argument)
    assert info.value.field == "document_type"
    assert info.value.accepted is not None
    assert "resident_id" in info.value.accepted


# --- lookup hash ------------------------------------------------------------------


@given(st.sampled_from(list(DocumentType)), st.text(max_size=40))
def test_lookup_hash_is_deterministic_and_32_bytes(doc_type: DocumentType, number: str) -> None:
    """The same type and number always give the same 32 bytes."""
    cipher = PiiCipher(ENC_KEY, INDEX_KEY)
    first = cipher.lookup_hash(doc_type, number)
    assert len(first) == 32
    assert cipher.lookup_hash(doc_type.value, number) == first


@given(st.text(min_size=1, max_size=40))
def test_lookup_hash_differs_across_types(number: str) -> None:
    """One number under different document types gives different hashes."""
    cipher = PiiCipher(ENC_KEY, INDEX_KEY)
    hashes_by_type = {cipher.lookup_hash(t, number) for t in DocumentType}
    assert len(hashes_by_type) == len(DocumentType)


def test_lookup_hash_ignores_input_form(cipher: PiiCipher) -> None:
    """Lower case, surrounding space and full-width digits find the same entry."""
    expected = cipher.lookup_hash("resident_id", NUMBER)
    for variant in ("11010519491231002x", f"  {NUMBER}\n", "１１０１０５１９４９１２３１００２Ｘ"):
        assert cipher.lookup_hash("resident_id", variant) == expected


def test_lookup_hash_depends_on_index_key_only() -> None:
    """Another index key gives another hash; the encryption key plays no part."""
    base = PiiCipher(ENC_KEY, INDEX_KEY).lookup_hash("resident_id", NUMBER)
    other_enc = PiiCipher(bytes(32), INDEX_KEY).lookup_hash("resident_id", NUMBER)
    other_index = PiiCipher(ENC_KEY, bytes(32)).lookup_hash("resident_id", NUMBER)
    assert base == other_enc
    assert base != other_index


def test_lookup_hash_distinguishes_numbers(cipher: PiiCipher) -> None:
    """Numbers that differ in one character hash differently."""
    assert cipher.lookup_hash("passport", "E12345678") != cipher.lookup_hash(
        "passport", "E12345679"
    )
