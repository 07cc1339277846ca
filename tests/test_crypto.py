"""The crypto module: AES-256-GCM, a versioned header, associated data that pins each
ciphertext to its purpose and name, PBKDF2 with a floor."""

from __future__ import annotations

import base64

import pytest

from sentra_scan import crypto
from sentra_scan.crypto import DecryptError
from sentra_scan.errors import ExitCode, KeyStateError

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
PLAIN = b'{"path": "deploy/config.py", "rule_id": "github-pat"}'
M = len(crypto.MAGIC)
KID = slice(M + 1, M + 1 + crypto.KEY_ID_LEN)


def sealed() -> bytes:
    return crypto.seal(KEY, PLAIN, purpose="ledger-scan", name="store/row-1")


def flip(blob: bytes, index: int) -> bytes:
    out = bytearray(blob)
    out[index] ^= 0x01
    return bytes(out)


def test_round_trip() -> None:
    blob = sealed()
    assert crypto.open_sealed(KEY, blob, purpose="ledger-scan", name="store/row-1") == PLAIN
    assert crypto.open_sealed(KEY, crypto.seal(KEY, b"", purpose="p", name="n"), purpose="p", name="n") == b""


def test_layout_is_versioned_and_plaintext_free() -> None:
    blob = sealed()
    assert blob.startswith(crypto.MAGIC)
    assert blob[M] == crypto.VERSION
    assert blob[KID] == crypto.key_id(KEY)
    assert len(blob) == crypto.HEADER_LEN + len(PLAIN) + 16  # 16-byte GCM tag
    assert PLAIN not in blob
    assert b"github-pat" not in blob


def test_fresh_nonce_every_time() -> None:
    blobs = [sealed() for _ in range(50)]
    assert len(set(blobs)) == 50
    nonces = {b[crypto.HEADER_LEN - crypto.NONCE_LEN : crypto.HEADER_LEN] for b in blobs}
    assert len(nonces) == 50
    assert all(len(n) == 12 for n in nonces)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("magic", "not Sentra ciphertext"),
        ("key id", "encrypted with another key"),
        ("nonce", "failed authentication"),
        ("body", "failed authentication"),
        ("tag", "failed authentication"),
    ],
)
def test_any_flipped_bit_is_refused(where: str, message: str) -> None:
    blob = sealed()
    index = {
        "magic": 0,
        "key id": KID.start,
        "nonce": crypto.HEADER_LEN - 1,
        "body": crypto.HEADER_LEN + 3,
        "tag": len(blob) - 1,
    }[where]
    with pytest.raises(DecryptError, match=message):
        crypto.open_sealed(KEY, flip(blob, index), purpose="ledger-scan", name="store/row-1")


def test_every_single_byte_flip_is_refused() -> None:
    blob = sealed()
    for i in range(len(blob)):
        with pytest.raises(DecryptError):
            crypto.open_sealed(KEY, flip(blob, i), purpose="ledger-scan", name="store/row-1")


@pytest.mark.parametrize("cut", [0, 3, crypto.HEADER_LEN, crypto.HEADER_LEN + 15, -1])
def test_truncated_blob(cut: int) -> None:
    blob = sealed()
    with pytest.raises(DecryptError, match=r"truncated|failed authentication"):
        crypto.open_sealed(KEY, blob[:cut], purpose="ledger-scan", name="store/row-1")


def test_wrong_key_says_so() -> None:
    with pytest.raises(DecryptError, match="encrypted with another key") as info:
        crypto.open_sealed(OTHER, sealed(), purpose="ledger-scan", name="store/row-1")
    assert info.value.hint  # says what to check
    assert info.value.exit_code == ExitCode.KEY


def test_relabelled_key_id_still_fails() -> None:
    """Rewriting the header's key id to the other key's does not help: the header is AAD."""
    blob = bytearray(sealed())
    blob[KID] = crypto.key_id(OTHER)
    with pytest.raises(DecryptError, match="failed authentication"):
        crypto.open_sealed(OTHER, bytes(blob), purpose="ledger-scan", name="store/row-1")


@pytest.mark.parametrize(
    ("purpose", "name"),
    [
        ("ledger-finding", "store/row-1"),  # moved to another table
        ("ledger-scan", "store/row-2"),  # swapped with another row
        ("ledger-scan", "other-store/row-1"),  # copied from another repository
        ("ledger-scan", "store/row-1\0"),
    ],
)
def test_moved_or_swapped_ciphertext_fails(purpose: str, name: str) -> None:
    with pytest.raises(DecryptError, match=f"{purpose}.*failed authentication: tampered, truncated or moved"):
        crypto.open_sealed(KEY, sealed(), purpose=purpose, name=name)


def test_purpose_and_name_do_not_run_together() -> None:
    """("a", "b\\0c") and ("a\\0b", "c") must not share associated data."""
    blob = crypto.seal(KEY, PLAIN, purpose="a", name="b")
    with pytest.raises(DecryptError):
        crypto.open_sealed(KEY, blob, purpose="ab", name="")


def test_unsupported_version_is_a_clear_error() -> None:
    blob = bytearray(sealed())
    blob[M] = 2
    with pytest.raises(DecryptError, match=r"unsupported ciphertext version 2 .*reads 1"):
        crypto.open_sealed(KEY, bytes(blob), purpose="ledger-scan", name="store/row-1")


def test_decrypt_error_is_a_key_state_error() -> None:
    assert issubclass(DecryptError, KeyStateError)


def test_only_aes_256_keys() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        crypto.seal(KEY[:16], PLAIN, purpose="p", name="n")


def test_pbkdf2_floor() -> None:
    salt = b"s" * 16
    with pytest.raises(KeyStateError, match="below the minimum 100000"):
        crypto.derive_password_key("pw", salt, 99_999)
    with pytest.raises(KeyStateError):
        crypto.derive_password_key("pw", salt, 0)
    key = crypto.derive_password_key("pw", salt, crypto.PBKDF2_MIN_ITERATIONS)
    assert len(key) == 32
    assert key == crypto.derive_password_key("pw", salt, 100_000)
    assert key != crypto.derive_password_key("pw", b"t" * 16, 100_000)
    assert key != crypto.derive_password_key("pW", salt, 100_000)
    assert crypto.PBKDF2_DEFAULT_ITERATIONS == 600_000


def test_key_id_is_not_the_key() -> None:
    kid = crypto.key_id(KEY)
    assert len(kid) == 8
    assert kid not in KEY
    assert kid.hex() not in KEY.hex()
    assert crypto.key_id(KEY) == kid
    assert crypto.key_id(OTHER) != kid
    blob = sealed()
    assert KEY not in blob
    assert base64.b64encode(KEY) not in blob


def test_new_keys_are_random() -> None:
    keys = {crypto.new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 32 for k in keys)


def test_subkeys_and_keyed_hashes() -> None:
    lookup = crypto.subkey(KEY, "sentra lookup v1")
    assert len(lookup) == 32
    assert lookup != KEY
    assert lookup != crypto.subkey(KEY, "other label")
    h = crypto.keyed_hash(lookup, "commit-id")
    assert h == crypto.keyed_hash(lookup, "commit-id")
    assert h != crypto.keyed_hash(crypto.subkey(OTHER, "sentra lookup v1"), "commit-id")
    assert "commit-id" not in h
