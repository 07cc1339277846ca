"""Rule examples are templates, expanded at test time, so the repository carries no
realistic tokens (and no push protection, ours included, trips on our own rules).

A template is text with `{{ SPEC }}` holes. SPEC is one of:

    alnum:N  upper:N  lower:N  digits:N  hex:N  HEX:N  b64:N  b64url:N
    upalnum:N  lowalnum:N          random characters of that class
    chars:ALPHABET:N               random characters from ALPHABET
    github:N                       N base62 characters ending in a valid CRC32 checksum
    jwt                            a well-formed JWT (random claims, random signature)
    uuid                           a random UUID (lower-case)

Expansion is deterministic: the generator is seeded by the rule id and the example's index.
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib

from sentra_scan.validators import BASE62, base62

_CLASSES = {
    "alnum": string.ascii_letters + string.digits,
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "digits": string.digits,
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "b64": string.ascii_letters + string.digits + "+/",
    "b64url": string.ascii_letters + string.digits + "-_",
    "upalnum": string.ascii_uppercase + string.digits,
    "lowalnum": string.ascii_lowercase + string.digits,
}


def _random(rng: random.Random, alphabet: str, n: int) -> str:
    # Guarantee some variety so generated values pass any entropy floor.
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        if n < 8 or len(set(value)) >= min(len(set(alphabet)), n) // 2:
            return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    header = {"alg": "ES256", "typ": "JWT"}
    payload = {
        "sub": _random(rng, _CLASSES["lowalnum"], 12),
        "iat": rng.randrange(1_600_000_000, 1_800_000_000),
        "role": "authenticated",
    }
    sig = bytes(rng.randrange(256) for _ in range(64))
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()), _b64url(sig)])


def _expand_spec(spec: str, rng: random.Random) -> str:
    name, _, arg = spec.partition(":")
    if name == "jwt":
        return _jwt(rng)
    if name == "uuid":
        h = _random(rng, _CLASSES["hex"], 32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
    if name == "github":
        body = _random(rng, BASE62, int(arg) - 6)
        return body + base62(zlib.crc32(body.encode()))
    if name == "chars":
        alphabet, _, count = arg.rpartition(":")
        return _random(rng, alphabet, int(count))
    if name in _CLASSES:
        return _random(rng, _CLASSES[name], int(arg))
    raise ValueError(f"unknown template {spec!r}")


def expand(template: str, seed: str) -> str:
    """Fill every `{{ SPEC }}` hole of `template` with generated text."""
    rng = random.Random(seed)
    out: list[str] = []
    pos = 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            out.append(template[pos:])
            return "".join(out)
        end = template.find("}}", start)
        if end < 0:
            raise ValueError("unclosed '{{'")
        out.append(template[pos:start])
        out.append(_expand_spec(template[start + 2 : end].strip(), rng))
        pos = end + 2
