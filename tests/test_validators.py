"""Offline validators: entropy, GitHub's CRC32 checksum, JWT structure."""

from __future__ import annotations

import base64
import json
import math
import zlib

import pytest

from sentra_scan.ruleset.examples import expand
from sentra_scan.validators import (
    BASE62,
    CHECKSUMS,
    VALIDATORS,
    base62,
    github_checksum,
    jwt_structure,
    npm_checksum,
    shannon_entropy,
)
from tests.helpers import canary_github_token

# --- entropy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bits"),
    [("", 0.0), ("a", 0.0), ("aaaaaaaa", 0.0), ("ab", 1.0), ("aabb", 1.0), ("abcd", 2.0), ("0123456789abcdef", 4.0)],
)
def test_shannon_entropy(text: str, bits: float) -> None:
    assert shannon_entropy(text) == pytest.approx(bits)


def test_entropy_of_random_text_is_high() -> None:
    assert shannon_entropy(expand("{{alnum:40}}", "entropy")) > 4.5
    assert shannon_entropy(BASE62) == pytest.approx(math.log2(62))
    assert shannon_entropy("password") < 3


# --- GitHub checksum -------------------------------------------------------------------


def test_base62() -> None:
    assert base62(0) == "000000"
    assert base62(61) == "00000z"
    assert base62(62) == "000010"
    assert base62(2**32 - 1) == "4gfFC3"
    assert base62(5, width=1) == "5"


@pytest.mark.parametrize("seed", ["a", "b", "c", "d", "e"])
def test_generated_github_token_passes(seed: str) -> None:
    token = canary_github_token(seed)
    assert token.startswith("ghp_")
    assert len(token) == 40
    assert github_checksum(token)


@pytest.mark.parametrize("prefix", ["gho_", "ghu_", "ghs_", "ghr_", "npm_"])
def test_other_prefixes_use_the_same_scheme(prefix: str) -> None:
    token = prefix + expand("{{github:36}}", prefix)
    assert github_checksum(token)
    assert npm_checksum(token)


def test_every_single_flipped_character_fails() -> None:
    token = canary_github_token("flip")
    for i in range(4, len(token)):
        replacement = "A" if token[i] != "A" else "B"
        flipped = token[:i] + replacement + token[i + 1 :]
        assert not github_checksum(flipped), f"flip at {i} passed"


def test_swapped_characters_fail() -> None:
    token = canary_github_token("swap")
    i = next(i for i in range(4, 30) if token[i] != token[i + 1])
    swapped = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    assert not github_checksum(swapped)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ghp_",
        "ghp_abc",
        "ghp_" + "a" * 36,
        "ghp_" + "é" * 30 + "000000",
        "ghp_" + "-" * 36,
    ],
)
def test_malformed_tokens_fail(token: str) -> None:
    assert not github_checksum(token)


def test_checksum_is_of_the_part_after_the_last_underscore() -> None:
    body = expand("{{alnum:30}}", "body")
    assert github_checksum("anything_" + body + base62(zlib.crc32(body.encode())))


def test_random_alnum_almost_never_passes() -> None:
    passed = sum(github_checksum("ghp_" + expand("{{alnum:36}}", f"r{i}")) for i in range(500))
    assert passed == 0


# --- JWT structure ---------------------------------------------------------------------


def b64url(data: object) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_generated_jwt_passes() -> None:
    for seed in ("a", "b", "c"):
        assert jwt_structure(expand("{{jwt}}", seed))


def test_jwt_with_empty_signature_is_well_formed() -> None:
    assert jwt_structure(f"{b64url({'alg': 'none'})}.{b64url({'sub': 'x'})}.")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f".{b64url({'sub': 'x'})}.sig",
        f"{b64url({'alg': 'HS256'})}..sig",
        f"{b64url({'typ': 'JWT'})}.{b64url({'sub': 'x'})}.sig",
        f"{b64url(['alg'])}.{b64url({'sub': 'x'})}.sig",
        f"{b64url({'alg': 'HS256'})}.{b64url([1, 2])}.sig",
        f"{b64url({'alg': 'HS256'})}.{b64url(b'not json')}.sig",
        b64url(bytes([0xFF, 0xFE])) + "." + b64url({"sub": "x"}) + ".sig",
        "eyJhbGciOiJIUzI1NiJ9.!!!!.sig",
    ],
)
def test_malformed_jwt_fails(token: str) -> None:
    assert not jwt_structure(token)


def test_registry() -> None:
    assert set(VALIDATORS) == {"github-checksum", "npm-checksum", "jwt", "private-key", "pypi-macaroon"}
    assert set(VALIDATORS) >= CHECKSUMS
    assert "jwt" not in CHECKSUMS  # structure is not proof of issue


def test_private_key_validator_parses_real_keys_and_refuses_placeholders() -> None:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec

    from sentra_scan.validators import private_key

    key = ec.generate_private_key(ec.SECP256R1())
    for fmt in (ser.PrivateFormat.TraditionalOpenSSL, ser.PrivateFormat.PKCS8, ser.PrivateFormat.OpenSSH):
        pem = key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption()).decode()
        assert private_key(pem)
        assert private_key(pem.replace("\n", "\\n"))  # a key pasted into a JSON string
    encrypted = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"pw"))
    assert private_key(encrypted.decode())
    assert not private_key("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----")
    assert not private_key("-----BEGIN PRIVATE KEY-----\n<snip>\n-----END PRIVATE KEY-----")
    assert not private_key(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "QUFB" * 20 + "\n-----END OPENSSH PRIVATE KEY-----"
    )


def test_pypi_macaroon_validator() -> None:
    from sentra_scan.validators import pypi_macaroon

    assert pypi_macaroon("pypi-AgEIcHlwaS5vcmc" + "A" * 60)
    assert pypi_macaroon("pypi-AgENdGVzdC5weXBpLm9yZw" + "B" * 58)
    assert not pypi_macaroon("pypi-AgEIcHl")
    assert not pypi_macaroon("pypi-" + "Z" * 60)
