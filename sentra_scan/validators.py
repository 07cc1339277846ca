"""Offline structural validators, a small registry a rule names by `validator:`.

Each takes the candidate secret and says whether it is well-formed enough to report.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
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


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "github-checksum": github_checksum,
    "npm-checksum": npm_checksum,
    "jwt": jwt_structure,
}

# Validators that prove a token was minted by its issuer (a checksum), not typed by hand:
# such a token is never a placeholder, whatever letters its random part happens to spell.
CHECKSUMS = frozenset({"github-checksum", "npm-checksum"})
