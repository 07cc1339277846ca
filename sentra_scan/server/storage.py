"""Where the server keeps ciphertext: a directory (default) or S3-compatible storage.

Every entry carries a version; a write names the version it replaces (0: a new entry), and
a stale version is a conflict, never a silent overwrite. The server never sees a key or a
plaintext value: entries are opaque ciphertext plus non-secret metadata.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FORMAT = 1
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class Conflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"version conflict (current version {current})")
        self.current = current


@dataclass(frozen=True)
class Entry:
    path: str
    version: int
    ciphertext: str  # base64, opaque
    meta: dict[str, Any]


def check_name(project: str, path: str) -> None:
    if not _SEGMENT.match(project):
        raise ValueError("invalid project name")
    parts = path.split("/")
    if len(parts) < 2 or not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts):
        raise ValueError("invalid entry path")


def _is_entry_path(path: str) -> bool:
    try:
        check_name("x", path)
    except ValueError:
        return False
    return True


class Backend(Protocol):
    def get(self, project: str, path: str) -> Entry | None: ...
    def put(self, project: str, path: str, ciphertext: str, meta: dict[str, Any], expected: int) -> int: ...
    def delete(self, project: str, path: str, expected: int) -> None: ...
    def list(self, project: str) -> list[tuple[str, int]]: ...


class DirBackend:
    """One JSON file per entry under DATA/projects/PROJECT/; writes are atomic and
    serialised by a lock file (safe across server worker processes)."""

    def __init__(self, root: Path) -> None:
        self.root = root / "projects"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (root / "FORMAT").write_text(f"{FORMAT}\n", encoding="utf-8")
        self._lock = threading.Lock()

    def _file(self, project: str, path: str) -> Path:
        check_name(project, path)
        return self.root / project / (path + ".json")

    @contextmanager
    def _locked(self, project: str) -> Iterator[None]:
        directory = self.root / project
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock, open(directory / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, project: str, path: str) -> Entry | None:
        f = self._file(project, path)
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Entry(path, int(doc["version"]), doc["ciphertext"], doc.get("meta", {}))

    def put(self, project: str, path: str, ciphertext: str, meta: dict[str, Any], expected: int) -> int:
        with self._locked(project):
            current = self.get(project, path)
            version = current.version if current else 0
            if version != expected:
                raise Conflict(version)
            f = self._file(project, path)
            f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = f.with_name(f".{f.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            doc = {"format": FORMAT, "version": version + 1, "ciphertext": ciphertext, "meta": meta}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, f)
            return version + 1

    def delete(self, project: str, path: str, expected: int) -> None:
        with self._locked(project):
            current = self.get(project, path)
            if current is None or current.version != expected:
                raise Conflict(current.version if current else 0)
            self._file(project, path).unlink()

    def list(self, project: str) -> list[tuple[str, int]]:
        if not _SEGMENT.match(project):
            raise ValueError("invalid project name")
        base = self.root / project
        out = []
        for f in sorted(base.rglob("*.json")) if base.exists() else []:
            rel = f.relative_to(base).as_posix()[: -len(".json")]
            doc = json.loads(f.read_text(encoding="utf-8"))
            out.append((rel, int(doc["version"])))
        return out


class S3Backend:
    """Objects under PREFIX/PROJECT/PATH.json in a bucket (boto3; any S3-compatible
    endpoint). Versions are checked under a lock in this process: run one server process
    per bucket prefix, or front it with the directory backend's lock semantics."""

    def __init__(
        self, bucket: str, *, prefix: str = "sentra", endpoint_url: str | None = None, client: Any = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._lock = threading.Lock()

    def _key(self, project: str, path: str) -> str:
        check_name(project, path)
        return f"{self.prefix}/{project}/{path}.json"

    def get(self, project: str, path: str) -> Entry | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(project, path))
        except self.client.exceptions.NoSuchKey:
            return None
        doc = json.loads(obj["Body"].read())
        return Entry(path, int(doc["version"]), doc["ciphertext"], doc.get("meta", {}))

    def put(self, project: str, path: str, ciphertext: str, meta: dict[str, Any], expected: int) -> int:
        with self._lock:
            current = self.get(project, path)
            version = current.version if current else 0
            if version != expected:
                raise Conflict(version)
            doc = {"format": FORMAT, "version": version + 1, "ciphertext": ciphertext, "meta": meta}
            self.client.put_object(Bucket=self.bucket, Key=self._key(project, path), Body=json.dumps(doc).encode())
            return version + 1

    def delete(self, project: str, path: str, expected: int) -> None:
        with self._lock:
            current = self.get(project, path)
            if current is None or current.version != expected:
                raise Conflict(current.version if current else 0)
            self.client.delete_object(Bucket=self.bucket, Key=self._key(project, path))

    def list(self, project: str) -> list[tuple[str, int]]:
        if not _SEGMENT.match(project):
            raise ValueError("invalid project name")
        base = f"{self.prefix}/{project}/"
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                rel = key[len(base) : -len(".json")]
                if not key.endswith(".json") or not _is_entry_path(rel):
                    continue  # not an entry: another tool's object under the prefix
                entry = self.get(project, rel)
                if entry is not None:
                    out.append((rel, entry.version))
        return sorted(out)
