"""Compiled Hyperscan keyword databases, kept in the user's cache directory.

Building a database of the rules' ~500 keywords takes ~40 ms, and a history scan builds two:
on a 5k-commit history that was 6% of the run. A database is stored serialized, keyed on
everything it is built from (the keywords in order, the flags, the mode, the binding's
version, the machine type); loading it takes well under a millisecond.

An entry is the SHA-256 of the serialized database, then the database: an entry that does
not match its digest (truncated, corrupted, edited), or that Hyperscan refuses (another
platform or version), is ignored and rebuilt. The keywords are public rule data, never a
secret; if the cache cannot be written the database is compiled every time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from sentra_scan.yamlcache import cache_dir

CACHE_FORMAT = "1"


def literal_database(keywords: list[bytes], flags: int) -> Any:
    """A block-mode database matching each of `keywords` literally (id = its index)."""
    import hyperscan

    version = getattr(hyperscan, "__version__", "?")
    machine = os.uname().machine if hasattr(os, "uname") else "?"
    h = hashlib.sha256(f"{CACHE_FORMAT}\0{version}\0{machine}\0{flags}\0".encode())
    for k in keywords:
        h.update(len(k).to_bytes(4, "big") + k)
    entry = cache_dir() / "hyperscan" / f"{h.hexdigest()}.db"
    db = _read(entry)
    if db is not None:
        return db
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=keywords,
        ids=list(range(len(keywords))),
        elements=len(keywords),
        flags=flags,
        literal=True,
    )
    _store(entry, hyperscan.dumpb(db))
    return db


def _read(entry: Path) -> Any:
    import hyperscan

    try:
        with open(entry, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    check, payload = raw[:32], raw[32:]
    if len(check) != 32 or hashlib.sha256(payload).digest() != check:
        return None
    try:
        return hyperscan.loadb(payload, mode=hyperscan.HS_MODE_BLOCK)
    except hyperscan.error:
        return None


def _store(entry: Path, payload: bytes) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, entry)
    except OSError:
        return
