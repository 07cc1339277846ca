"""Encoded secrets: base64 (standard and URL-safe) and percent-encoding.

A token that decodes to printable UTF-8 text is scanned again as text, up to a depth
limit; what is found there is reported at the encoded token's place (Kubernetes Secret
`data:`, basic-auth headers, docker `auths`, percent-encoded URLs).
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from sentra_scan.model import line_starts

MAX_DEPTH = 2
MIN_B64 = 16
MAX_TOKEN = 64 * 1024
# A base64 token of text: in base64, the first character of each 4-character group holds the
# top six bits of a byte, and for a byte below 0x80 (ASCII text) that is one of the first 32
# letters of the alphabet (A-Z, a-f). Tokens that fail this (paths, camelCase names, hashes,
# binary data) are not worth decoding, and the regex leaves them out without a Python call.
_TEXT_TOKEN = rf"(?:[A-Za-f][A-Za-z0-9+/_-]{{3}}){{{MIN_B64 // 4},}}[A-Za-z0-9+/_-]{{0,3}}={{0,2}}"
_B64 = re.compile(rf"(?<![A-Za-z0-9+/_=-])({_TEXT_TOKEN})(?![A-Za-z0-9+/_=-])")
_TEXT_TOKEN_RE = re.compile(_TEXT_TOKEN)
# What _B64 finds (the definition the tests compare with), found faster: a token is a whole
# run of base64 characters (its neighbours are none), so take each run that starts like text,
# then test it (`_skip`). _B64_RUN says which runs as a pattern (the tests' reference);
# `base64_runs` finds them without a regex step per character: the text as one byte per
# character (anything not Latin-1 becomes "?", which is not base64), every base64 byte mapped
# to "a" and every other byte to " ", then a run is a find of 16 "a"s.
_B64_RUN = re.compile(rf"(?<![A-Za-z0-9+/_=-])((?=[A-Za-f])[A-Za-z0-9+/_=-]{{{MIN_B64},}}+)")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-"
_RUN_TABLE = bytes(ord("a") if c in _B64_ALPHABET else ord(" ") for c in range(256))
_RUN_NEEDLE = b"a" * MIN_B64
_TEXT_LEAD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef")
_PCT = re.compile(r"[^\s'\"<>]*%[0-9A-Fa-f]{2}[^\s'\"<>]*")
_PCT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")  # finds the lines worth _PCT (which is slow on a whole text)


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
    """Every encoded token in `lines` that decodes to printable text, line by line."""
    text = "\n".join(lines)
    b64 = [(a, b) for a, b in base64_runs(text) if not _skip(text[a:b])] if len(text) >= MIN_B64 else []
    pct = list(_PCT_ESCAPE.finditer(text)) if "%" in text else []
    if not b64 and not pct:
        return
    # One pass over the whole text finds the candidates (neither kind of token spans a
    # line, and a line's edges look to the search like the text's); percent-encoded values
    # are then read on the lines that hold an escape.
    starts = line_starts(lines)
    tokens: dict[int, list[tuple[int, int]]] = {}
    for a, b in b64:
        tokens.setdefault(bisect_right(starts, a) - 1, []).append((a, b))
    for m in pct:
        tokens.setdefault(bisect_right(starts, m.start()) - 1, [])
    for i in sorted(tokens):
        for a, b in tokens[i]:
            decoded = _b64decode(text[a:b])
            if decoded is not None and len(decoded) >= 8:
                yield Decoded(i, a - starts[i], b - starts[i], decoded, "base64")
        line = lines[i]
        if "%" in line:
            for m in _PCT.finditer(line):
                decoded = unquote(m.group(0))
                if decoded != m.group(0):
                    yield Decoded(i, m.start(), m.end(), decoded, "percent")


def base64_runs(text: str) -> Iterator[tuple[int, int]]:
    """The spans of `_B64_RUN`'s matches: whole runs of at least MIN_B64 base64 characters
    that start with a character of base64'd ASCII text (A-Z, a-f)."""
    mapped = text.encode("latin-1", "replace").translate(_RUN_TABLE)  # one byte per character
    find = mapped.find
    pos = find(_RUN_NEEDLE)
    while pos >= 0:
        # The first 16 "a"s after a " " (or the start): `pos` begins a run.
        end = find(b" ", pos + MIN_B64)
        if end < 0:
            end = len(mapped)
        if text[pos] in _TEXT_LEAD:
            yield pos, end
        pos = find(_RUN_NEEDLE, end)


def _skip(token: str) -> bool:
    """Not worth decoding: a word or identifier, or a token whose decoding cannot be ASCII
    text (what `_B64` already leaves out)."""
    return _wordlike(token) or _TEXT_TOKEN_RE.fullmatch(token) is None


def _wordlike(token: str) -> bool:
    """Identifiers and words are valid base64 too: insist on some digits or mixed case."""
    return token.isalpha() and (token.islower() or token.isupper())
