"""Offline structural validators, a small registry a rule names by `validator:`.

Each takes the candidate secret and says whether it is well-formed enough to report.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def shannon_entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def base62(number: int, width: int = 6) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def github_checksum(token: str) -> bool:
    """GitHub's `gh?_` and `github_pat_` tokens end in base62(CRC32(body)), 6 characters."""
    body = token.rsplit("_", 1)[-1]
    if len(body) < 7 or not body.isalnum() or not body.isascii():
        return False
    payload, check = body[:-6], body[-6:]
    return base62(zlib.crc32(payload.encode("ascii"))) == check


def npm_checksum(token: str) -> bool:
    """npm's `npm_` tokens use the same CRC32/base62 scheme as GitHub's."""
    return github_checksum(token)


def _b64url_json(part: str) -> object:
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw)


def jwt_structure(token: str) -> bool:
    """Three base64url parts; the header is JSON naming an `alg`; the payload is a JSON object."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        header = _b64url_json(parts[0])
        payload = _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header and isinstance(payload, dict)


_PEM_ESCAPED_NEWLINE = re.compile(r"\\r|\\n|\\")
_PEM_LABEL = re.compile(r"-{4,5} ?BEGIN ([A-Z0-9 ]+?) ?-{4,5}")


def _pem_body(block: str) -> tuple[str, bytes | None, bool]:
    """The label, the decoded body (None when it is not base64) and whether a
    `Proc-Type: 4,ENCRYPTED` header says the body is encrypted."""
    text = _PEM_ESCAPED_NEWLINE.sub("\n", block)
    m = _PEM_LABEL.search(text)
    label = m.group(1) if m else ""
    lines = text.splitlines()
    encrypted = any("ENCRYPTED" in line for line in lines if ":" in line and "BEGIN" not in line)
    body = "".join(
        line.strip() for line in lines[1:-1] if line.strip() and ":" not in line and not line.startswith(("=", '"'))
    )
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return label, None, encrypted
    return label, data, encrypted


def private_key(block: str) -> bool:
    """A PEM/OpenSSH/PGP/SSH2 private-key block that holds key material: cryptography parses
    it, or its body has the right structure (DER SEQUENCE, openssh-key-v1 magic, an OpenPGP
    packet, the SSH2 magic). Placeholders (`MIIE...`, `<snip>`) and empty blocks do not."""
    label, data, encrypted = _pem_body(block)
    if data is None or len(data) < 32:
        return False
    if "OPENSSH" in label:
        return data.startswith(b"openssh-key-v1\0")
    if "PGP" in label:
        return bool(data[0] & 0x80)
    if "SSH2" in label:
        return data[:4] == b"\x3f\x6f\xf9\xeb"
    if encrypted:
        return True  # a legacy encrypted PEM body is ciphertext: no structure to check
    try:
        from cryptography.hazmat.primitives.serialization import load_der_private_key

        load_der_private_key(data, password=None)
        return True
    except TypeError:
        return True  # encrypted PKCS#8: still a private key
    except (ValueError, ImportError):
        pass
    return data[0] == 0x30  # ASN.1 SEQUENCE: a truncated or unsupported key, still key-shaped


def pypi_macaroon(token: str) -> bool:
    """`pypi-` + base64url(a macaroon for pypi.org or test.pypi.org)."""
    body = token.removeprefix("pypi-")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return False
    return raw.startswith((b"\x02\x01\x08pypi.org", b"\x02\x01\x0dtest.pypi.org"))


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "private-key": private_key,
    "pypi-macaroon": pypi_macaroon,
    "github-checksum": github_checksum,
    "npm-checksum": npm_checksum,
    "jwt": jwt_structure,
}

# Validators that prove a token was minted by its issuer (a checksum), not typed by hand:
# such a token is never a placeholder, whatever letters its random part happens to spell.
CHECKSUMS = frozenset({"github-checksum", "npm-checksum"})
