"""Encoded secrets: base64 (standard and URL-safe) and percent-encoding.

A token that decodes to printable UTF-8 text is scanned again as text, up to a depth
limit; what is found there is reported at the encoded token's place (Kubernetes Secret
`data:`, basic-auth headers, docker `auths`, percent-encoded URLs).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

MAX_DEPTH = 2
MIN_B64 = 16
MAX_TOKEN = 64 * 1024
_B64 = re.compile(rf"(?<![A-Za-z0-9+/_=-])([A-Za-z0-9+/_-]{{{MIN_B64},}}={{0,2}})(?![A-Za-z0-9+/_=-])")
_PCT = re.compile(r"[^\s'\"<>]*%[0-9A-Fa-f]{2}[^\s'\"<>]*")


@dataclass(frozen=True)
class Decoded:
    line_index: int
    start: int  # column offset of the encoded token in its line (0-based)
    end: int
    text: str
    encoding: str  # "base64" or "percent"


def _printable(text: str) -> bool:
    if not text:
        return False
    good = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return good / len(text) >= 0.95


def _b64decode(token: str) -> str | None:
    raw = token.rstrip("=")
    if len(raw) % 4 == 1 or len(raw) > MAX_TOKEN:
        return None
    alphabet_url = "-" in raw or "_" in raw
    if alphabet_url and ("+" in raw or "/" in raw):
        return None
    padded = raw + "=" * (-len(raw) % 4)
    try:
        data = base64.urlsafe_b64decode(padded) if alphabet_url else base64.b64decode(padded, validate=True)
        text = data.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return text if _printable(text) else None


def decoded_tokens(lines: tuple[str, ...]) -> Iterator[Decoded]:
    """Every encoded token in `lines` that decodes to printable text."""
    for i, line in enumerate(lines):
        if len(line) >= MIN_B64:
            for m in _B64.finditer(line):
                token = m.group(1)
                # Identifiers and words are valid base64 too: insist on some digits or mixed case.
                if token.isalpha() and (token.islower() or token.isupper()):
                    continue
                text = _b64decode(token)
                if text is not None and len(text) >= 8:
                    yield Decoded(i, m.start(1), m.end(1), text, "base64")
        if "%" in line:
            for m in _PCT.finditer(line):
                text = unquote(m.group(0))
                if text != m.group(0):
                    yield Decoded(i, m.start(), m.end(), text, "percent")
