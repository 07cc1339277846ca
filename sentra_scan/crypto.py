"""The one module that calls the cipher: AES-256-GCM with a fresh random 96-bit nonce per
encryption and associated data binding each ciphertext to what it is.

Sealed format (version 1):

    b"SNT" | version (1 byte) | key id (8 bytes) | nonce (12 bytes) | ciphertext+tag

The header (magic, version, key id) is authenticated with the purpose and name as
associated data, so a ciphertext moved to another entry, or re-labelled with another key
id, fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any

from sentra_scan.errors import KeyStateError

MAGIC = b"SNT"
VERSION = 1
KEY_ID_LEN = 8
NONCE_LEN = 12
HEADER_LEN = len(MAGIC) + 1 + KEY_ID_LEN + NONCE_LEN
KEY_LEN = 32
PBKDF2_DEFAULT_ITERATIONS = 600_000
PBKDF2_MIN_ITERATIONS = 100_000


class DecryptError(KeyStateError):
    """Wrong key, or data that was tampered with, truncated or moved."""


def new_key() -> bytes:
    return os.urandom(KEY_LEN)


def key_id(key: bytes) -> bytes:
    """A public identifier of a key (not a secret: a truncated keyed hash)."""
    return hmac.digest(key, b"sentra key id v1", "sha256")[:KEY_ID_LEN]


def _aad(header: bytes, purpose: str, name: str) -> bytes:
    return header + b"\0" + purpose.encode() + b"\0" + name.encode()


_CIPHERS: dict[bytes, tuple[bytes, Any]] = {}  # key -> (key id, AESGCM): a ledger seals thousands of rows


def _cipher(key: bytes) -> tuple[bytes, Any]:
    cached = _CIPHERS.get(key)
    if cached is None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(_CIPHERS) >= 8:
            _CIPHERS.clear()
        cached = _CIPHERS[key] = (key_id(key), AESGCM(key))
    return cached


def seal(key: bytes, plaintext: bytes, *, purpose: str, name: str) -> bytes:
    if len(key) != KEY_LEN:
        raise ValueError("AES-256 needs a 32-byte key")
    kid, aead = _cipher(key)
    nonce = os.urandom(NONCE_LEN)
    header = MAGIC + bytes([VERSION]) + kid + nonce
    return header + bytes(aead.encrypt(nonce, plaintext, _aad(header, purpose, name)))


def sealed_key_id(blob: bytes) -> bytes:
    if len(blob) < HEADER_LEN + 16 or not blob.startswith(MAGIC):
        raise DecryptError("not Sentra ciphertext (bad header or truncated)")
    if blob[len(MAGIC)] != VERSION:
        raise DecryptError(f"unsupported ciphertext version {blob[len(MAGIC)]} (this Sentra reads {VERSION})")
    return blob[len(MAGIC) + 1 : len(MAGIC) + 1 + KEY_ID_LEN]


def open_sealed(key: bytes, blob: bytes, *, purpose: str, name: str) -> bytes:
    from cryptography.exceptions import InvalidTag

    kid = sealed_key_id(blob)
    own_id, aead = _cipher(key)
    if not hmac.compare_digest(kid, own_id):
        raise DecryptError(f"{purpose} '{name}' was encrypted with another key", hint=_HINT)
    header = blob[:HEADER_LEN]
    nonce = header[-NONCE_LEN:]
    try:
        return bytes(aead.decrypt(nonce, blob[HEADER_LEN:], _aad(header, purpose, name)))
    except InvalidTag:
        raise DecryptError(f"{purpose} '{name}' failed authentication: tampered, truncated or moved") from None


_HINT = "check the key source ('sentra key status'); if the data was rotated, use the current key"


def derive_password_key(password: str, salt: bytes, iterations: int) -> bytes:
    if iterations < PBKDF2_MIN_ITERATIONS:
        raise KeyStateError(f"PBKDF2 iteration count {iterations} is below the minimum {PBKDF2_MIN_ITERATIONS}")
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, dklen=KEY_LEN)


def subkey(key: bytes, label: str) -> bytes:
    """A key for another use (e.g. keyed lookups), derived with HMAC-SHA256 (HKDF-expand, one block)."""
    return hmac.digest(key, label.encode() + struct.pack(">B", 1), "sha256")


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.digest(key, value.encode("utf-8"), "sha256").hex()
